/* params: the generation parameters of one request (struct gen_params: how stop strings end
 * the text, which log-probabilities are reported, the sampling values, the end-of-sequence ids,
 * the lengths) and the model's generation_config.json (struct gen_config). Owns the stop strings
 * it copies. Knows no API dialect: the server's dialect files (server/params_tgi.c,
 * params_openai.c, params_pipeline.c) read a request's JSON into a struct gen_params with their
 * reference server's defaults, checks and messages, and resolve its lengths once the prompt is
 * tokenized; the engine takes the result as plain values.
 *
 *     struct gen_config cfg;
 *     gen_config_load("models/llama", &cfg, &e);          // a missing file is not an error
 *     struct gen_params p;
 *     gen_params_init(&p, &cfg);                          // neutral values, the model's eos ids
 *     p.do_sample = true; p.temperature = 0.7; p.max_new_tokens = 64;
 *     gen_params_add_stop(&p, "\n\n", 2, &e);
 *     ... sampler_new(&p, ...), stopper_new(&p, ...) ...
 *     gen_params_fini(&p);
 */
#ifndef INFERD_GEN_PARAMS_H
#define INFERD_GEN_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct json_t;

#define GEN_MAX_STOP 16  /* storage for stop strings (a dialect may allow fewer) */
#define GEN_MAX_EOS 16   /* end-of-sequence ids kept (generation_config + stop_token_ids) */
#define GEN_MAX_TOP_N 20 /* alternatives per position (OpenAI's top_logprobs maximum) */

/* How stop strings end the text (see stop.h). */
enum gen_stop_mode {
    GEN_STOP_SUFFIX_KEEP, /* TGI: when the text ends with one; it stays in the text */
    GEN_STOP_CUT,         /* OpenAI: its first occurrence anywhere; the text ends before it */
    GEN_STOP_CUT_AFTER,   /* vLLM include_stop_str_in_output: ... the text ends after it */
};

/* Which distribution reported log-probabilities come from (see sampling.h). */
enum gen_logprobs_mode {
    GEN_LOGPROBS_PROCESSED, /* log_softmax of the logits after every processor (TGI) */
    GEN_LOGPROBS_RAW,       /* log_softmax of the model's logits (vLLM's default) */
};

/* transformers' early_stopping: false (a heuristic on the current length), true (stop once
 * num_beams hypotheses are finished), "never" (the canonical bound). */
enum gen_early_stopping {
    GEN_EARLY_STOP_FALSE,
    GEN_EARLY_STOP_TRUE,
    GEN_EARLY_STOP_NEVER,
};

/* generation_config.json: the values present in the file (has_* false when absent or null). */
struct gen_config {
    bool has_do_sample, has_temperature, has_top_k, has_top_p, has_typical_p;
    bool has_repetition_penalty, has_max_length, has_max_new_tokens;
    bool do_sample;
    double temperature, top_p, typical_p, repetition_penalty;
    int64_t top_k, max_length, max_new_tokens;
    int32_t eos_token_ids[GEN_MAX_EOS]; /* eos_token_id, an integer or a list */
    size_t n_eos_token_ids;
    int64_t bos_token_id, pad_token_id, decoder_start_token_id; /* -1 when absent */
    /* beam search and the length processors (transformers 4.x generate) */
    bool has_num_beams, has_num_return_sequences, has_length_penalty, has_early_stopping;
    bool has_no_repeat_ngram_size, has_min_length, has_min_new_tokens;
    int64_t num_beams, num_return_sequences, no_repeat_ngram_size, min_length, min_new_tokens;
    double length_penalty;
    enum gen_early_stopping early_stopping;
    int64_t forced_bos_token_id, forced_eos_token_id; /* -1 when absent */
};

/* A config with nothing set (what a model without generation_config.json has). */
void gen_config_init(struct gen_config *cfg);
/* Reads DIR/generation_config.json; without one, the generation keys of DIR/config.json (as
 * transformers' GenerationConfig.from_model_config does); neither: cfg as gen_config_init. A
 * malformed one is ERR_FORMAT naming the file and the key. */
int gen_config_load(const char *dir, struct gen_config *cfg, struct err *e);
/* Same from JSON text; `what` names the source in messages. */
int gen_config_parse(const char *json, size_t len, const char *what, struct gen_config *cfg,
                     struct err *e);
/* transformers builds the generation config from config.json when generation_config.json has no
 * eos_token_id: takes config.json's ids (hf_config.eos_token_ids) in that case. */
void gen_config_fallback_eos(struct gen_config *cfg, const int64_t *ids, size_t n);
/* The generation keys of obj (a JSON object: config.json's task_specific_params[task], say)
 * over cfg: what obj sets replaces cfg's (GenerationConfig.update). ERR_FORMAT as
 * gen_config_parse, naming what. */
int gen_config_update(struct gen_config *cfg, const struct json_t *obj, const char *what,
                      struct err *e);

struct grammar;

struct gen_params {
    /* stopping (stop.h) */
    uint32_t max_new_tokens;  /* 0 = not given: the dialect resolves it (prompt known) */
    uint32_t max_length;      /* cap on prompt + new tokens (generate()'s); 0 = none */
    char *stop[GEN_MAX_STOP]; /* NUL-terminated, owned; never empty strings */
    size_t stop_len[GEN_MAX_STOP];
    size_t n_stop;
    enum gen_stop_mode stop_mode;
    bool ignore_eos;
    int32_t eos_token_ids[GEN_MAX_EOS];
    size_t n_eos_token_ids;

    /* logits processing and sampling (sampling.h); neutral values turn a step off */
    bool do_sample;            /* false = greedy; the warpers below apply only when true */
    double temperature;        /* 1 = off */
    int32_t top_k;             /* 0 = off */
    double top_p;              /* 1 = off */
    double typical_p;          /* 1 = off */
    double repetition_penalty; /* 1 = off; over prompt + generated tokens, as HF */
    double frequency_penalty;  /* 0 = off; OpenAI's, over generated tokens */
    double presence_penalty;   /* 0 = off; OpenAI's, over generated tokens */
    uint64_t seed;             /* the request's seed, or a random one when none was given */
    bool seed_given;

    /* what to report */
    bool details;               /* TGI details */
    bool decoder_input_details; /* TGI prefill tokens */
    bool return_full_text;      /* prompt + generated text (OpenAI completions: echo) */
    bool logprobs;              /* OpenAI logprobs asked for */
    uint32_t top_n_tokens;      /* alternatives per position (TGI top_n_tokens, OpenAI
                                   top_logprobs or completions' logprobs) */
    enum gen_logprobs_mode logprobs_mode;
    uint32_t truncate;  /* keep the last N prompt tokens; 0 = no truncation */
    uint32_t best_of;   /* TGI best_of, 1 when absent */
    uint32_t n;         /* OpenAI n, 1 when absent */
    bool watermark;     /* TGI watermark (only false: true is refused, not implemented) */
    bool stream;        /* OpenAI stream */
    bool include_usage; /* OpenAI stream_options.include_usage */

    /* beam search (beam.h; transformers 4.x generate with num_beams > 1, greedy only) */
    uint32_t num_beams;            /* 1 = no beam search */
    uint32_t num_return_sequences; /* the best finished hypotheses returned (<= num_beams) */
    double length_penalty;         /* a hypothesis scores sum_logprobs / length^penalty */
    enum gen_early_stopping early_stopping;
    uint32_t no_repeat_ngram_size; /* 0 = off; n-grams of the decoder's input_ids */
    uint32_t min_length;           /* eos banned while input_ids are shorter; 0 = off */
    uint32_t min_new_tokens;       /* eos banned before this many new tokens; 0 = off */
    int32_t forced_bos_token_id;   /* -1 = off: the first generated token (encoder-decoder) */
    int32_t forced_eos_token_id;   /* -1 = off: the token at max length */
    /* bad_words_ids (NoBadWordsLogitsProcessor): each sequence's length, then its ids, back
     * to back (bad_words_size int32s, owned; NULL = none); gen_params_set_bad_words */
    int32_t *bad_words;
    size_t bad_words_size;

    /* constrained decoding (grammar.h): the output must match it; NULL = none. Owned: one
     * reference, dropped by gen_params_fini and taken again by gen_params_copy. */
    struct grammar *grammar;
};

/* Neutral values: greedy, every processor off (temperature, top_p, typical_p and
 * repetition_penalty 1, top_k 0, penalties 0), no stop strings, no length set, best_of and n 1,
 * the first value of each mode enum (GEN_STOP_SUFFIX_KEEP, GEN_LOGPROBS_PROCESSED), seed 0; the
 * end-of-sequence ids of cfg (may be NULL: none). A dialect sets its own defaults over these. */
void gen_params_init(struct gen_params *p, const struct gen_config *cfg);
void gen_params_fini(struct gen_params *p);
/* Deep copy (the stop strings); dst needs gen_params_fini. */
int gen_params_copy(struct gen_params *dst, const struct gen_params *src, struct err *e);
/* Sets bad_words (a copy of words: each sequence's length, then its ids; n int32s). */
int gen_params_set_bad_words(struct gen_params *p, const int32_t *words, size_t n,
                             struct err *e);
/* Appends a stop string (copied); ERR_INVALID when empty or over GEN_MAX_STOP. */
int gen_params_add_stop(struct gen_params *p, const char *s, size_t len, struct err *e);

#endif
