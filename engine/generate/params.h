/* params: the generation parameters of one request (struct gen_params), read from JSON in one of
 * the API dialects and validated with that dialect's rules and messages, and the model's
 * generation_config.json (struct gen_config), which supplies defaults where the dialect takes
 * them. Owns the stop strings it copies; knows nothing of HTTP, models or tokens: checks that
 * need the prompt length come later, in gen_params_resolve_length.
 *
 *     struct gen_config cfg;
 *     gen_config_load("models/llama", &cfg, &e);          // a missing file is not an error
 *     struct gen_limits lim = gen_limits_default();
 *     struct gen_params p;
 *     if (gen_params_parse(GEN_DIALECT_TGI, json_object_get(body, "parameters"), &cfg, &lim,
 *                          &p, &e) != 0)
 *         reply 422 with e.msg;                            // e.g. "`top_p` must be > 0.0 and
 * < 1.0" gen_params_resolve_length(&p, n_prompt, max_input, max_total, &e);
 *     ... sampler_new(&p, ...), stopper_new(&p, ...) ...
 *     gen_params_fini(&p);
 *
 * What each dialect does (its reference server's behaviour):
 *
 * GEN_DIALECT_TGI, the `parameters` object of TGI's /generate and /generate_stream (NULL when
 *   the request has none: then do_sample is true, as TGI's default_parameters()). Setting
 *   temperature, top_k, top_p or typical_p turns sampling on. Checks in TGI's order with its
 *   messages (router/src/validation.rs): best_of needs sampling, `temperature` strictly positive,
 *   `repetition_penalty` strictly positive, `frequency_penalty` in [-2, 2], `top_p` and
 *   `typical_p` in (0, 1) (1.0 is refused), `top_k` strictly positive, `max_new_tokens` strictly
 *   positive, at most max_stop_sequences stop strings, no seed with best_of > 1, `top_n_tokens`
 *   <= max_top_n_tokens, `truncate` in [1, max_input_tokens]. generation_config.json gives only
 *   eos_token_id. A stop string ends generation when the text ends with it, and stays in the text.
 *   Log-probabilities are those of the processed distribution (after penalties and warpers).
 *   Absent max_new_tokens: up to max_total_tokens - prompt (resolved by
 *   gen_params_resolve_length). return_full_text defaults to false (/generate's default).
 *   `presence_penalty` is accepted too (range [-2, 2]), an extension.
 *
 * GEN_DIALECT_CHAT and GEN_DIALECT_COMPLETIONS, the whole body of OpenAI's /v1/chat/completions and
 *   /v1/completions, as vLLM serves them: max_completion_tokens (or max_tokens) >= 1, default
 *   unlimited (chat) or 16 (completions); temperature in [0, 2], 0 = greedy; top_p in (0, 1];
 *   frequency_penalty and presence_penalty in [-2, 2]; n >= 1; stop a string or a list; seed any
 *   integer; logprobs (chat: a boolean with top_logprobs 0..20; completions: an integer 0..5);
 *   stream, stream_options.include_usage (only with stream); the vLLM extras top_k (-1 or 0 =
 *   off), repetition_penalty (> 0), ignore_eos, stop_token_ids, include_stop_str_in_output;
 *   completions' echo = return_full_text. Unset temperature, top_p, top_k and repetition_penalty
 *   come from generation_config.json when it has them (vLLM's default). The first occurrence
 *   of a stop string anywhere in the text ends it, and the text is cut before it.
 *   Log-probabilities are those of the raw logits (vLLM's default logprobs mode).
 *
 * GEN_DIALECT_PIPELINE, the `parameters` of the transformers text-generation pipeline (Hugging
 *   Face POST /models/{name}): generate()'s semantics. Every unset value comes from
 *   generation_config.json, then transformers' defaults (do_sample false, temperature 1,
 *   top_k 50, top_p 1, typical_p 1, repetition_penalty 1, max_length 20); the warpers apply only
 *   when do_sample is true, and are then validated with transformers' messages
 *   ("`temperature` (=0.0) has to be a strictly positive float, ..."). return_full_text
 *   defaults to true. No stop strings. */
#ifndef INFERD_GEN_PARAMS_H
#define INFERD_GEN_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct json_t;

#define GEN_MAX_STOP 16  /* storage for stop strings; gen_limits.max_stop_sequences <= this */
#define GEN_MAX_EOS 16   /* end-of-sequence ids kept (generation_config + stop_token_ids) */
#define GEN_MAX_TOP_N 20 /* alternatives per position (OpenAI's top_logprobs maximum) */

enum gen_dialect {
    GEN_DIALECT_TGI,
    GEN_DIALECT_CHAT,
    GEN_DIALECT_COMPLETIONS,
    GEN_DIALECT_PIPELINE,
};

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

/* Server limits the validation needs (TGI's launcher flags). */
struct gen_limits {
    uint32_t max_stop_sequences; /* TGI --max-stop-sequences, default 4 (also OpenAI's limit) */
    uint32_t max_top_n_tokens;   /* TGI --max-top-n-tokens, default 5 */
    uint32_t max_best_of;        /* TGI --max-best-of, default 2 */
    uint32_t max_input_tokens;   /* bounds TGI `truncate`; 0 = not checked */
    uint32_t max_n;              /* OpenAI `n`, default 8 */
};

struct gen_limits gen_limits_default(void);

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
};

/* A config with nothing set (what a model without generation_config.json has). */
void gen_config_init(struct gen_config *cfg);
/* Reads DIR/generation_config.json; a missing file leaves cfg as gen_config_init. A malformed
 * one is ERR_FORMAT naming the file and the key. */
int gen_config_load(const char *dir, struct gen_config *cfg, struct err *e);
/* Same from JSON text; `what` names the source in messages. */
int gen_config_parse(const char *json, size_t len, const char *what, struct gen_config *cfg,
                     struct err *e);
/* transformers builds the generation config from config.json when generation_config.json has no
 * eos_token_id: takes config.json's ids (hf_config.eos_token_ids) in that case. */
void gen_config_fallback_eos(struct gen_config *cfg, const int64_t *ids, size_t n);

struct gen_params {
    enum gen_dialect dialect;

    /* stopping (stop.h) */
    uint32_t max_new_tokens;  /* 0 = not given: gen_params_resolve_length decides */
    uint32_t max_length;      /* PIPELINE: prompt + new tokens cap from max_length; 0 = none */
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
};

/* Reads and validates params from obj (TGI: the `parameters` object or NULL; OpenAI: the whole
 * request body; PIPELINE: the `parameters` object or NULL). cfg may be NULL (no
 * generation_config.json). Keys gen_params_unsupported refuses are ERR_INVALID; unknown keys
 * are ignored, as the reference servers do; JSON null is absent. A wrong type or an invalid
 * value is ERR_INVALID with a message naming the field. out needs gen_params_fini afterwards,
 * also on failure. */
int gen_params_parse(enum gen_dialect d, const struct json_t *obj, const struct gen_config *cfg,
                     const struct gen_limits *lim, struct gen_params *out, struct err *e);

/* The first key of obj (TGI and PIPELINE: the `parameters` object; OpenAI: the whole body)
 * that the dialect's reference defines, inferd does not implement, and that asks for something
 * (a constraint on what is generated: TGI `grammar`, OpenAI `tools`, `response_format` other
 * than {"type": "text"}, `logit_bias`, the pipeline's `num_return_sequences`, ...): ERR_INVALID
 * "`KEY` is not supported: inferd does not implement ...", *key (may be NULL) set to it. Null
 * and neutral values (watermark false, tool_choice "none", logit_bias {}) pass; metadata (user,
 * metadata, store) and unknown keys are not its business. gen_params_parse calls it first; the
 * HTTP layer may call it before, to name the key in its answer. The table, with each key's
 * neutral value, is in params.c. */
int gen_params_unsupported(enum gen_dialect d, const struct json_t *obj, const char **key,
                           struct err *e);

/* The dialect's defaults with no request values (as gen_params_parse of an empty object, but
 * with seed 0 and not random). */
void gen_params_init(struct gen_params *p, enum gen_dialect d, const struct gen_config *cfg);
void gen_params_fini(struct gen_params *p);
/* Deep copy (the stop strings); dst needs gen_params_fini. */
int gen_params_copy(struct gen_params *dst, const struct gen_params *src, struct err *e);
/* Appends a stop string (copied); ERR_INVALID when empty or over GEN_MAX_STOP. */
int gen_params_add_stop(struct gen_params *p, const char *s, size_t len, struct err *e);

/* TGI's streaming checks: best_of != 1 and decoder_input_details are refused on
 * /generate_stream ("`best_of` != 1 is not supported when streaming tokens"). */
int gen_params_check_stream(const struct gen_params *p, struct err *e);

/* Once the prompt is tokenized (n_input tokens, after truncation): sets max_new_tokens when it
 * was not given (the room left under max_total_tokens; PIPELINE: generation_config's
 * max_new_tokens, else max_length - n_input) and checks the limits with the dialect's message:
 * TGI "`inputs` tokens + `max_new_tokens` must be <= 2048. Given: 2000 `inputs` tokens and 100
 * `max_new_tokens`" and "`inputs` must have less than 1024 tokens. Given: 1500"; OpenAI "This
 * model's maximum context length is ..."; PIPELINE "Input length of input_ids is ...".
 * max_input_tokens or max_total_tokens 0 = no such limit. ERR_INVALID when over. */
int gen_params_resolve_length(struct gen_params *p, size_t n_input, size_t max_input_tokens,
                              size_t max_total_tokens, struct err *e);

#endif
