/* api_gen: one HTTP call's text generation, shared by the dialects that generate (api_tgi.c:
 * TGI /generate and /generate_stream; api_openai_gen.c: /v1/completions and
 * /v1/chat/completions; api_hf.c: POST /models/{name} text-generation). It tokenizes the
 * prompt, applies truncation and the length limits with the dialect's messages, submits one
 * request per choice (OpenAI n, TGI best_of) to the model's gen_sched and collects what comes
 * back on the scheduler's worker thread: every token (id, text, log-probabilities, the top
 * alternatives) and each choice's end. Then either the call, suspended meanwhile, is resumed
 * and the dialect shapes the whole answer on a request thread (gen_done_fn), or, streaming, the
 * dialect turns each token into Server-Sent Events bytes as it comes (struct gen_stream_ops,
 * on the worker thread) and they go out at once through a call_stream. A client that goes
 * away cancels every choice still running (call_on_end), so its slot frees at once.
 *
 * Lifetime: a gen_call is reference counted: one reference for the HTTP call (dropped when the
 * call ends), one per submitted request (dropped in its on_done). Its lock guards the choices,
 * the stream and the call pointer. */
#ifndef INFERD_API_GEN_H
#define INFERD_API_GEN_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gen_sched.h"
#include "gen_api.h"
#include "handler.h"

#define GEN_MAX_CHOICES 16

/* One generated token as recorded for the answer. */
struct gen_token {
    int32_t id;
    float logprob;
    bool special;
    char *text; /* the token's own text (TGI token.text), malloc'ed */
    uint32_t n_top;
    struct gen_logprob *top; /* n_top alternatives, malloc'ed */
    char **top_text;         /* their texts (each id decoded alone), malloc'ed */
};

struct gen_call;

/* One prompt of a call that has several (OpenAI completions' list prompt). */
struct gen_prompt {
    int32_t *ids;
    size_t n;
    char *text; /* as the dialect prints it back (echo), malloc'ed */
    size_t text_len;
};

/* A beam search's hypothesis as recorded for the answer (struct gen_hyp copied). */
struct gen_out_hyp {
    char *text; /* malloc'ed */
    size_t text_len;
    int32_t *ids; /* malloc'ed (n_ids) */
    size_t n_ids;
    float score;
};

/* One choice (one submitted request). */
struct gen_out {
    struct gen_call *g; /* its call (the request's owner) */
    size_t index;
    size_t prompt_i;     /* its prompt in g->prompts when the call has a list of them */
    struct gen_req *req; /* until done */
    uint64_t seed;       /* the seed of its sampler */
    bool done;
    enum gen_status status;
    enum gen_finish finish;
    char error[ERR_MSG_SIZE];
    char *text; /* the final text (result.text), malloc'ed once done */
    size_t text_len;
    size_t n_generated;
    size_t cached_tokens; /* prompt tokens taken from the prefix cache */
    struct gen_token *tokens; /* recorded when the dialect asks for tokens */
    size_t n_tokens, cap_tokens;
    float *prompt_logprobs; /* decoder_input_details: n_prompt, the first NaN */
    struct gen_out_hyp *hyps; /* num_beams > 1: the returned hypotheses, best first */
    size_t n_hyps;
    double queue_seconds, first_token_seconds, total_seconds;
    /* streaming: the token held back until the end (the last event waits for on_done) */
    bool has_last;
    struct gen_token last;
    char *last_delta; /* its released text (OpenAI delta) */
    size_t last_delta_len;
    bool started;        /* the dialect's first event of this choice went out */
    uint32_t n_streamed; /* token events sent for it */
};

struct gen_call;

/* Streaming: the dialect's SSE formatting. Each function runs on a worker thread under the
 * call's lock and appends bytes with gen_emit. */
struct gen_stream_ops {
    /* A token of choice i that is not the last one; delta: the text it releases. */
    void (*token)(struct gen_call *g, size_t i, const struct gen_token *t, const char *delta,
                  size_t delta_len);
    /* Choice i ended normally: its last token (NULL when it produced none) and the end. */
    void (*last)(struct gen_call *g, size_t i, const struct gen_token *t, const char *delta,
                 size_t delta_len);
    /* Choice i failed, timed out or was cancelled (out->status, out->error). */
    void (*error)(struct gen_call *g, size_t i);
    /* Every choice is done (may be NULL): e.g. OpenAI's usage chunk and [DONE]. */
    void (*finish)(struct gen_call *g);
};

/* Not streaming: shapes the answer on a request thread once every choice is done (each has
 * status GEN_OK; failures were answered before). Must answer the call. */
typedef void (*gen_done_fn)(struct gen_call *g, struct call *c);

struct gen_call {
    pthread_mutex_t mu;
    int refs;
    struct call *call;   /* NULL once the call ended */
    struct model *model; /* the call's (call_set_model); use only while the call lives */
    const struct gen_model *gm;
    struct gen_sched *gs;
    const struct gen_api *api; /* its dialect's rules (gen_api.h) */
    struct gen_params params;
    bool record_tokens; /* keep each token in out[i].tokens */
    /* the prompt */
    int32_t *prompt;
    size_t n_prompt;
    char *prompt_text; /* as the dialect prints it back (return_full_text, echo), malloc'ed */
    size_t prompt_text_len;
    /* several prompts (OpenAI completions' list, gen_call_push_prompt): n_choices / n_prompts
     * choices each, in order; 0: the one prompt above */
    struct gen_prompt prompts[GEN_MAX_CHOICES];
    size_t n_prompts;
    /* the choices */
    size_t n;
    struct gen_out out[GEN_MAX_CHOICES];
    size_t n_done;
    bool submitting; /* gen_call_run's loop: the end waits for it */
    int fail_kind; /* a submit that failed, its error kind (answered once the others are done) */
    char fail_msg[ERR_MSG_SIZE + 64];
    /* the answer */
    gen_done_fn done_fn;
    const struct gen_stream_ops *ops;
    struct call_stream *stream;            /* streaming; NULL otherwise */
    void *user;                            /* the dialect's state (freed with free()) */
    void (*user_fini)(struct gen_call *g); /* releases what user holds first (may be NULL) */
    char id[48];                           /* "cmpl-..." / "chatcmpl-..." */
    long long created;                     /* unix seconds */
    double t_start;
};

/* A gen_call for c on m (takes over the caller's reference to m in every case); NULL (c
 * answered 500) when out of memory. The params are g->params, api's defaults (gen_api_init),
 * to be filled by the dialect (gen_api_parse) before gen_call_tokenize. The call holds it until it
 * ends: a handler that answers an error before gen_call_run just returns. */
struct gen_call *gen_call_new(struct call *c, struct model *m, const struct gen_api *api);

/* Tokenizes text as the prompt (add_special: the tokenizer's post-processor, e.g. LLaMA's
 * BOS; chat prompts already hold theirs). Answers the call and returns -1 on failure. */
int gen_call_tokenize(struct gen_call *g, const char *text, size_t len, bool add_special);
/* Takes ids as the prompt (OpenAI's token-id prompts); ids are checked against the vocabulary. */
int gen_call_set_ids(struct gen_call *g, const int32_t *ids, size_t n);
/* Keeps the prompt's text for return_full_text / echo. */
int gen_call_set_prompt_text(struct gen_call *g, const char *text, size_t len);

/* Moves the prompt set so far (ids and text, checked by gen_call_check) to the end of the
 * call's list of prompts; gen_call_run then gives each prompt the same number of choices.
 * Answers the call and returns -1 when the list is full (GEN_MAX_CHOICES). */
int gen_call_push_prompt(struct gen_call *g);
/* Choice i's prompt (a view into the call: its one prompt or its list entry). */
struct gen_prompt gen_call_prompt(const struct gen_call *g, size_t i);
/* Prompt tokens over all the call's prompts, each counted once (usage). */
size_t gen_call_prompt_tokens(const struct gen_call *g);

/* Truncation (params.truncate keeps the last tokens), the length limits
 * (gen_api_resolve_length with the model's max_input_tokens and max_total_tokens) and an
 * empty prompt. Answers the call (ERR_GEN_INVALID) and returns -1 when invalid. */
int gen_call_check(struct gen_call *g);

/* Submits n choices (choice i samples with seed + i; with a list of prompts, n / n_prompts
 * choices per prompt, choice j of a prompt with seed + j) and suspends the call (done: not
 * streaming) or starts the stream (ops). Answers errors (429 overloaded, 503, ...) itself. */
void gen_call_run(struct gen_call *g, size_t n, gen_done_fn done, const struct gen_stream_ops *ops,
                  const char *content_type);

/* Streaming: appends bytes to the stream (from gen_stream_ops functions). */
void gen_emit(struct gen_call *g, const char *data, size_t len);
/* Appends "data: " + JSON (stolen) + "\n\n". */
void gen_emit_json(struct gen_call *g, json_t *v);
/* The generated text as a JSON string, after the prompt when one is given (return_full_text:
 * the prompt's text first; prompt NULL: the new text alone). NULL when out of memory. */
json_t *gen_text_json(const char *prompt, size_t prompt_len, const char *text, size_t len);

/* The error kind of a choice that did not end normally (ERR_TIMEOUT, ERR_UNAVAILABLE when
 * cancelled, ERR_GEN_FAILED); ERR_OK for one that did. reply.c turns it into a status. */
int gen_out_kind(const struct gen_out *o);

/* Sum of generated tokens over the choices. */
size_t gen_call_completion_tokens(const struct gen_call *g);
/* Prompt tokens taken from the prefix cache over all the call's prompts, each prompt counted
 * once as in usage.prompt_tokens (its first choice's): usage.prompt_tokens_details. */
size_t gen_call_cached_tokens(const struct gen_call *g);

/* Answers c with the error of the first choice that did not end normally; false when all
 * did. */
bool gen_call_answer_failure(struct gen_call *g, struct call *c);

/* Answers the call with an error of kind (call_error); a refused request's (ERR_GEN_INVALID,
 * ERR_INVALID, ERR_INPUT) message is "Input validation error: " + msg for TGI. */
void gen_call_error(struct gen_call *g, int kind, const char *param, const char *msg);
/* Answers a chat template render that failed with rc: ERR_INVALID (raise_exception, a value
 * the template cannot use: the request's messages) is ERR_GEN_INVALID naming param; anything
 * else (a budget broken: the model's template is at fault, out of memory) is ERR_INTERNAL
 * with the message. */
void gen_call_template_error(struct gen_call *g, int rc, const char *param, const char *msg);

/* A log-probability as JSON: null when not finite (serde_json writes NaN and -inf so). */
json_t *gen_logprob_json(float lp);

/* TGI's GET /info for a generation model (takes over the reference to m). */
void tgi_info(struct call *c, struct model *m);
/* POST /models/{name} on a text-generation model: the transformers pipeline's answer; on an
 * encoder-decoder (T5, text2text-generation) the Text2TextGenerationPipeline's (takes over the
 * reference to m). */
void hf_text_generation(struct call *c, struct model *m);

#endif
