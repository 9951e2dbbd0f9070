/* generator: text generation behind one interface, whatever the architecture. Two objects:
 *
 * struct gen_model (gen_model.c): a loaded generation model directory, shared read-only by
 * every thread: the network (a decoder, or an encoder-decoder such as T5), its tokenizer,
 * generation_config.json (config.json's eos ids as transformers' fallback) and the chat
 * templates of tokenizer_config.json / chat_template.jinja. Callers see facts through
 * functions (model id, max positions, vocabulary, encoder-decoder or not, chat template,
 * the generation defaults) and the text operations the API dialects need (tokenize a prompt,
 * render the chat template under its budgets, decode ids); nothing else of the model.
 *
 * struct generator (generator.c): what one stepping thread needs to run a model: its oneDNN
 * context and activation buffers, a pool of KV caches, and the sequences (struct gen_seq:
 * cache, sampler, stopper with its streaming detokenizer, generated ids, prompt logprobs).
 * generator_step runs one forward step over the sequences it is given: it decides how a step
 * spends its prompt-token budget (prompt chunks beside the decodes for a decoder; encoder
 * passes that cannot be split for an encoder-decoder), samples each sequence that has a next
 * token, runs it through its stopper and reports it as an event. Who runs, when, and for how
 * long (queues, admission, deadlines, cancels) is the caller's: server/gen_sched.c.
 *
 * Each architecture kind is one file (gen_decoder.c, gen_t5.c) behind struct gen_kind
 * (gen_impl.h) and one row of the kinds table in gen_model.c.
 *
 *     struct gen_model *m;
 *     gen_model_load("models/llama", NULL, &m, &e);
 *     struct generator *g = generator_new(m, &(struct generator_limits){...}, &e);
 *     generator_prepare(g, &e);              // the first cache: checks max_total
 *     generator_open(g, &e);                 // on the thread that steps
 *     gen_seq_start(g, ids, n, &params, req, &seq, &e);
 *     while (...) generator_step(g, seqs, n_seqs, budget, on_step_event, sched, &stats);
 *     gen_seq_retire(g, seq); gen_seq_result(seq, &res, &e); gen_seq_free(seq);
 *     generator_close(g); generator_free(g); gen_model_free(m);
 *
 * Threads: a gen_model is read-only once loaded (any thread). A generator and its sequences
 * belong to one thread at a time; generator_open, generator_step and generator_close must run
 * on the same thread (oneDNN threads are per thread). */
#ifndef INFERD_GENERATOR_H
#define INFERD_GENERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "generate/grammar.h"
#include "generate/params.h"
#include "generate/sampling.h"
#include "generate/stop.h"
#include "dtype.h"

struct json_t;
struct tokenizer;

/* ---- the model ------------------------------------------------------------------------ */

struct gen_model;

struct gen_model_opts {
    enum dtype_compute dtype; /* the weights' compute type */
    int threads;              /* oneDNN threads for prepacking; 0 = the default */
};

/* Loads DIR: config.json picks the kind (its model_type among gen_model_types'; any other is
 * refused with every type generation runs), its weights (o->dtype, prepacked with o->threads
 * oneDNN threads; o NULL: fp32, default threads), tokenizer.json, tokenizer_config.json (chat
 * template, special tokens), generation_config.json (eos_token_id from config.json when it
 * has none). Errors are the loaders' (ERR_FORMAT, ERR_IO, ...). */
int gen_model_load(const char *dir, const struct gen_model_opts *o, struct gen_model **out,
                   struct err *e);
void gen_model_free(struct gen_model *m);

/* Every config.json model_type generation runs (the kinds' tables in order); returns how
 * many there are (at most cap written). */
size_t gen_model_types(const char **names, size_t cap);

const char *gen_model_id(const struct gen_model *m); /* the directory's base name */
/* The positions the model can hold (for max_total_tokens defaults); 0 when nothing bounds
 * them (T5's relative positions). */
int64_t gen_model_max_positions(const struct gen_model *m);
int gen_model_vocab_size(const struct gen_model *m);
/* An encoder-decoder (T5): the prompt is encoded, the text is what the decoder generates. */
bool gen_model_is_encoder_decoder(const struct gen_model *m);
/* An encoder-decoder's first decoder token (generation_config.json's decoder_start_token_id,
 * else config.json's); -1 for a decoder-only model. */
int32_t gen_model_decoder_start_token_id(const struct gen_model *m);
/* generation_config.json (+ config.json's eos ids): the defaults of gen_params. */
const struct gen_config *gen_model_config(const struct gen_model *m);
bool gen_model_has_chat_template(const struct gen_model *m);
/* The tokenizer, for the routes that tokenize any kind of model (/tokenize); generation
 * itself goes through the functions below. */
const struct tokenizer *gen_model_tokenizer(const struct gen_model *m);

/* The ids of text (*ids malloc'ed, at least one element allocated; *n may be 0): with the
 * tokenizer's special tokens when add_special; cut to the tokenizer's model_max_length when
 * truncate and it has one. Errors: the tokenizer's (ERR_INVALID...), ERR_NOMEM. */
int gen_model_tokenize(const struct gen_model *m, const char *text, size_t len, bool add_special,
                       bool truncate, int32_t **ids, size_t *n, struct err *e);
/* Translation inputs from language codes (tokenizer_translation_encode), cut to the
 * tokenizer's model_max_length when truncate; *forced_bos the target language's id. */
bool gen_model_has_language_codes(const struct gen_model *m);
int gen_model_tokenize_translation(const struct gen_model *m, const char *text, size_t len,
                                   const char *src_lang, const char *tgt_lang, bool truncate,
                                   int32_t **ids, size_t *n, int32_t *forced_bos,
                                   struct err *e);
/* The text of ids, special tokens kept (*text malloc'ed). */
int gen_model_decode(const struct gen_model *m, const int32_t *ids, size_t n, char **text,
                     size_t *len, struct err *e);
/* The text of ids with the tokenizer's special tokens skipped (decode(skip_special_tokens=True),
 * what the text2text pipelines return). */
int gen_model_decode_skip_special(const struct gen_model *m, const int32_t *ids, size_t n,
                                  char **text, size_t *len, struct err *e);

/* config.json's task_specific_params: the task names starting with `prefix` ("" for all), in
 * the file's order (at most cap written; pointers valid while m lives); returns how many. */
size_t gen_model_task_names(const struct gen_model *m, const char *prefix, const char **names,
                            size_t cap);
/* config.json's task_specific_params[task] over cfg (the generation defaults a transformers
 * pipeline of `task` has built so far: Pipeline.__init__ updates its generation config with
 * them), and that entry's "prefix" (NULL when none; valid while m lives). *found false (cfg
 * unchanged) when the model has no such entry. ERR_FORMAT for an entry with a malformed value
 * (cfg unchanged). */
int gen_model_task_config(const struct gen_model *m, const char *task, struct gen_config *cfg,
                          const char **prefix, bool *found, struct err *e);
/* Whether id is one of the tokenizer's named special tokens (bos, eos, unk, pad). */
bool gen_model_is_named_special(const struct gen_model *m, int32_t id);
/* The chat template rendered (chat_template_set_render: its budgets, raise_exception as
 * ERR_INVALID; ERR_INVALID too when the model has none). */
int gen_model_render_chat(const struct gen_model *m, const struct json_t *messages,
                          const struct json_t *extra, char **out, size_t *len, struct err *e);
/* Whether its chat templates' text (the main one or "tool_use") holds needle: e.g. the
 * tool-call markers a template teaches its model ("<tool_call>", "[TOOL_CALLS]"). */
bool gen_model_chat_template_mentions(const struct gen_model *m, const char *needle);
/* What the model refuses in a request: ERR_INVALID for prompt logprobs
 * (decoder_input_details) on an encoder-decoder or with beam search, and for a prompt id or a
 * forced_bos/eos_token_id outside the vocabulary. */
int gen_model_check_request(const struct gen_model *m, const int32_t *prompt, size_t n,
                            const struct gen_params *p, struct err *e);

/* ---- events --------------------------------------------------------------------------- */

/* One generated token, as soon as it is known. Its pointers are valid during the callback. */
struct gen_event {
    uint32_t index;          /* 0 for the first generated token */
    struct gen_choice token; /* id, logprob and top alternatives (top_n_tokens of params) */
    bool special;            /* a special token (tokenizer_is_special: skipped in the text) */
    /* TGI token.text: this token's own text (may be empty while a character is incomplete) */
    const char *token_text;
    size_t token_text_len;
    /* text released by this token (OpenAI delta.content); concatenated over all events it is
     * the final generated text, stop handling applied */
    const char *text;
    size_t text_len;
    enum gen_finish finish; /* GEN_FINISH_NONE but on the last token */
};

/* What generator_step reports for one sequence: a token was sampled (token; it is the last
 * one when token->finish is set), the sequence failed (error; after a sampled token when
 * token is set too: that token was not streamed), or both. */
struct gen_step_event {
    void *user; /* gen_seq_start's */
    const struct gen_event *token;
    const char *error;
    double now; /* monotonic seconds when the step's forward pass ended */
};
typedef void (*gen_step_fn)(void *arg, const struct gen_step_event *ev);

/* One step's numbers, for the caller's metrics. */
struct gen_step_stats {
    bool batch;         /* a forward pass ran: one batch observation */
    size_t rows;        /* sequences stepped */
    size_t tokens;      /* tokens fed (encoder inputs + decoder tokens) */
    double seconds;     /* the step's forward time */
    bool generated;     /* the decode succeeded: `produced` tokens were sampled */
    size_t produced;
};

/* ---- the generator -------------------------------------------------------------------- */

struct generator;
struct gen_seq;

struct generator_limits {
    size_t max_seqs;    /* sequences stepped together at most */
    size_t max_total;   /* tokens per sequence: prompt + generated (<= INT32_MAX) */
    size_t max_prefill; /* the largest per-step prompt budget generator_step will be given */
    int threads;        /* oneDNN threads of generator_open (> 0) */
    /* prefix caching (gen_cache.c): a sequence starts from the longest cached prefix of its
     * prompt (a retired sequence's cache kept with its tokens, or a running one's prompt) */
    bool prefix_cache;
};

/* A generator for m (which must outlive it): no cache, no oneDNN context yet. NULL with
 * ERR_NOMEM. */
struct generator *generator_new(const struct gen_model *m, const struct generator_limits *lim,
                                struct err *e);
/* Makes the first cache (kept in the pool): the model's check of max_total (ERR_INVALID past
 * GPT-2's positions). */
int generator_prepare(struct generator *g, struct err *e);
/* On the stepping thread: the oneDNN context and the activation buffers. */
int generator_open(struct generator *g, struct err *e);
void generator_close(struct generator *g);
void generator_free(struct generator *g);

/* A sequence for prompt (borrowed: prompt and p must outlive the sequence; p->max_new_tokens
 * resolved, >= 1): a cache from the pool (or a new one), its sampler (seeded from p->seed),
 * its stopper and detokenizer starting from the last prompt ids (TGI's prefix offset; an
 * encoder-decoder's decoder start token). user comes back in its events. On failure nothing
 * is kept. */
int gen_seq_start(struct generator *g, const int32_t *prompt, size_t n_prompt,
                  const struct gen_params *p, void *user, struct gen_seq **out, struct err *e);
/* The sequence left the batch: its cache goes back to the pool (its text and ids stay), with
 * the tokens it holds when prefix caching is on. Every started sequence is retired before
 * gen_seq_free. */
void gen_seq_retire(struct generator *g, struct gen_seq *s);
/* Whether s looked for a cached prefix of its prompt (prefix caching on, a decoder, no prompt
 * logprobs, not a beam), and the prompt tokens it reused (*n_cached, <= n_prompt - 1: they are
 * not fed again). */
bool gen_seq_prefix_cached(const struct gen_seq *s, size_t *n_cached);

/* Prefix caching's budget: resets the least recently used pooled caches until those still
 * holding tokens hold at most max_tokens (the caller's KV budget minus what the running
 * sequences reserve). */
void generator_trim(struct generator *g, size_t max_tokens);
/* The tokens the pooled caches hold. */
size_t generator_cached_tokens(const struct generator *g);

struct gen_seq_result {
    enum gen_finish finish; /* GEN_FINISH_LENGTH when cut short */
    const char *text;       /* the whole generated text, stop handling applied */
    size_t text_len;
    const int32_t *ids; /* generated ids */
    size_t n_ids;
    const float *prompt_logprobs; /* (n_prompt) with decoder_input_details, else NULL */
};
/* What the sequence produced; one not finished is finished as cut short (held-back text
 * released). Pointers valid until gen_seq_free. Non-zero when that failed (e says why; *out
 * still filled). */
int gen_seq_result(struct gen_seq *s, struct gen_seq_result *out, struct err *e);
void gen_seq_free(struct gen_seq *s);

/* One step over seqs (n <= max_seqs, in admission order; none retired), spending at most
 * prefill_budget (<= max_prefill) prompt tokens: calls fn for every sequence that sampled a
 * token or failed, then fills *stats. A sequence that finished or failed must not be given
 * again. */
void generator_step(struct generator *g, struct gen_seq *const *seqs, size_t n,
                    size_t prefill_budget, gen_step_fn fn, void *arg, struct gen_step_stats *stats);

/* ---- beam search (gen_beam.c) ---------------------------------------------------------- */

/* A beam search request (params->num_beams > 1; greedy, beam.h's semantics) owns num_beams
 * sequences, each with its own cache: it takes num_beams of the generator's max_seqs. Its
 * first step runs beam 0 alone (every beam holds the same input); then all of them, every
 * step. After each generator_step, gen_beam_advance picks the new beams and reorders the
 * caches: a beam continued by one new beam keeps its cache (moved, no copy), one continued by
 * several is copied into the caches of the beams nobody continues. No token events: the
 * results come at the end (a stream has nothing to show before).
 *
 *     gen_beam_start(g, ids, n, &params, req, &b, &e);
 *     while (!gen_beam_done(b)) {
 *         size_t k = gen_beam_seqs(b, seqs);          // with other requests' sequences
 *         generator_step(g, seqs, k, budget, fn, arg, &stats);
 *         gen_beam_advance(g, b, &e);
 *     }
 *     for (i < gen_beam_n_results(b)) gen_beam_result(b, i, &ids, &n, &score);
 *     gen_beam_retire(g, b); gen_beam_free(b); */
struct gen_beam;
int gen_beam_start(struct generator *g, const int32_t *prompt, size_t n_prompt,
                   const struct gen_params *p, void *user, struct gen_beam **out,
                   struct err *e);
/* The sequences to give this step (up to num_beams written); 0 once done. */
size_t gen_beam_seqs(struct gen_beam *b, struct gen_seq **out);
/* After a step that gave gen_beam_seqs': the beam search step and the caches' reordering
 * (no-op while the first step's prompt is still being fed). ERR_NOMEM when a fork could not
 * be copied (the search is then done, without results). */
int gen_beam_advance(struct generator *g, struct gen_beam *b, struct err *e);
bool gen_beam_done(const struct gen_beam *b);
size_t gen_beam_n_results(const struct gen_beam *b);
/* Result i (best first): the generated ids (an encoder-decoder's without its start token)
 * and the sequence score (transformers' sequences_scores). */
void gen_beam_result(const struct gen_beam *b, size_t i, const int32_t **ids, size_t *n,
                     float *score);
void gen_beam_retire(struct generator *g, struct gen_beam *b);
void gen_beam_free(struct gen_beam *b);

#endif
