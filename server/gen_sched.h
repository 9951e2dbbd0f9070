/* gen_sched: continuous batching for one text-generation model. It schedules a loaded
 * generation model (struct gen_model, engine/generate/generator.h: loaded with
 * gen_model_load_config, freed with gen_model_free, the caller's) through the engine's
 * generator, which owns the sequences (KV caches, samplers, stoppers, streaming
 * detokenizers), the forward step and its oneDNN context; this scheduler owns the queue, the
 * admission, deadlines, cancels and client-gone checks, the metrics and the worker thread.
 *
 * Requests arrive already tokenized and validated (a request thread did it, with the dialect's
 * messages). Between two forward steps the worker admits queued requests while a slot is free
 * and the total tokens reserved by the running sequences (prompt + max_new_tokens each) stay
 * within max_batch_total_tokens; each step then runs every running sequence with a budget of
 * max_batch_prefill_tokens prompt tokens, which the generator spends as its architecture
 * allows (a decoder: prompt chunks beside the decodes, so a long prompt never stalls them; an
 * encoder-decoder such as T5: whole inputs encoded at admission, oldest first). Each sequence
 * that has a next token samples it with its own sampler (penalties, warpers, seeded RNG), runs
 * it through its stopper (EOS, stop strings, max_new_tokens) and its streaming detokenizer,
 * and the request hears about it at once through on_event. A finished, timed-out or cancelled
 * sequence leaves the batch at the next step boundary and its slot takes the next request.
 *
 * Beam search (params.num_beams > 1; engine/generate/generator.h "beam search"): a request
 * takes num_beams slots of max_batch_size and num_beams times its tokens of
 * max_batch_total_tokens; it is admitted, first come first served like any other, once that
 * many are free, and then steps beside the other requests (its first step feeds beam 0 alone:
 * the beams share one prompt, one encoder pass). Between steps the engine's gen_beam_advance
 * picks the new beams and reorders their caches (a beam continued once keeps its cache; a
 * forked one is copied into the cache of a beam nobody continues). It streams no tokens
 * (on_event is never called): its hypotheses come with on_done. A cancel or a deadline ends
 * it at the next step boundary without hypotheses.
 *
 * Prefix caching (cfg->generation.prefix_cache, a decoder; engine/generate/gen_cache.c): a
 * finished request's KV cache stays in the generator's pool with the tokens it holds, and a
 * request starts from the longest prefix of its prompt cached there or in a running request's
 * cache (at most n_prompt - 1 tokens; gen_result.cached_tokens says how many). After each
 * admission the pooled caches are trimmed, least recently used first, to what the running
 * requests leave of max_batch_total_tokens. Requests that want prompt logprobs and beam
 * searches reuse nothing.
 *
 * An encoder-decoder's request reserves its input + max_new_tokens likewise; its text is what
 * the decoder generates (no prompt before it), and prompt logprobs (decoder_input_details) are
 * refused with ERR_INVALID.
 *
 * Admission is first come, first served: a request that does not fit yet waits at the head
 * and nothing overtakes it. A request that wants prompt logprobs (decoder_input_details)
 * prefills in steps that compute every position's logits (engine/generate/gen_decoder.c).
 * The stopper and detokenizer start from the last 5 prompt ids (TGI's prefix offset), so the
 * text is what follows the prompt (a Llama "▁word" keeps its space). Each request samples
 * with its own generator seeded from params.seed (stream 0): the same seed gives the same
 * tokens whatever else runs in the batch; an OpenAI n > 1 is the API layer submitting n
 * requests. One worker thread runs a model's generation whatever
 * cfg->workers says (a step already batches every sequence), with cfg->threads oneDNN
 * threads (0 = every online CPU).
 *
 * Threads: gen_sched_submit and gen_sched_cancel may be called from any thread. on_event and
 * on_done are called from a worker thread, in order, never concurrently for one request; they
 * must not block (copy what they need, resume the connection, return) and may call
 * gen_sched_submit and gen_sched_cancel. After on_done the scheduler never touches the
 * request or its owner again.
 *
 * Metrics (when given): inferd_queue_depth, inferd_queue_duration_seconds (submit ->
 * admitted), inferd_requests_dropped_total (left the queue: "timeout", or "disconnect" for a
 * cancel or a closed socket), one inferd_batches_total / inferd_tokens_total /
 * inferd_batch_duration_seconds / inferd_batch_size observation per step (sequences, tokens
 * fed), inferd_generated_tokens_total (a beam search: its best hypothesis' tokens, at its end),
 * inferd_time_to_first_token_seconds (a beam search: its end), the
 * inferd_running_sequences gauge (requests, a beam search one) and, for each request that
 * looked for a cached prefix, inferd_prefix_cache_hits_total or _misses_total and
 * inferd_prefix_cache_tokens_total (prompt tokens reused).
 *
 *     struct gen_model *gm;
 *     gen_model_load_config("models/llama", &mcfg, &gm, &e);
 *     struct gen_sched *s = gen_sched_new(gm, &mcfg, metrics, "llama", &e);
 *     struct gen_req_spec spec = {.prompt = ids, .n_prompt = n, .params = &params,
 *                                 .on_event = stream_token, .on_done = finished, .owner = call};
 *     struct gen_req *r;
 *     if (gen_sched_submit(s, &spec, &r, &e) != 0) call_error(c, e.kind, ...);
 *     ...                                   // client went away:
 *     gen_sched_cancel(r);                  // slot freed at the next step; on_done still comes
 *     gen_sched_free(s);                    // drains (see gen_sched_stop), joins, frees
 *     gen_model_free(gm);
 */
#ifndef INFERD_GEN_SCHED_H
#define INFERD_GEN_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "engine.h"

struct metrics;
struct gen_sched;
struct gen_req;

/* ---- the model ------------------------------------------------------------------------ */

/* gen_model_load (engine/generate/generator.h) with a config entry's dtype and threads (cfg
 * may be NULL: fp32, default threads). */
int gen_model_load_config(const char *dir, const struct model_config *cfg, struct gen_model **out,
                          struct err *e);
/* cfg->generation.max_total_tokens, or when 0 its default: the model's max positions (T5 has
 * none), at most 4096 and at most max_batch_total_tokens. What the API layer passes to
 * gen_api_resolve_length (gen_api.h) as max_total_tokens. */
size_t gen_model_max_total_tokens(const struct gen_model *m, const struct model_config *cfg);

/* ---- requests ------------------------------------------------------------------------- */

enum gen_status {
    GEN_OK,        /* finished normally: result.finish says why */
    GEN_FAILED,    /* the engine failed; result.error says why */
    GEN_TIMEOUT,   /* the deadline passed (queued: nothing generated; running: cut short) */
    GEN_CANCELLED, /* gen_sched_cancel, or the client's socket closed */
};

/* struct gen_event (one generated token, its pointers valid during on_event only) is the
 * engine's: engine/generate/generator.h. */

/* One finished hypothesis of a beam search (transformers' sequences / sequences_scores). */
struct gen_hyp {
    const char *text; /* decoded, special tokens skipped (a decoder's: after the prompt) */
    size_t text_len;
    const int32_t *ids; /* generated ids (an encoder-decoder's without its start token) */
    size_t n_ids;
    float score;           /* the sequence score: sum of log-probs / length^length_penalty */
    enum gen_finish finish; /* GEN_FINISH_EOS when it ends with an eos id, else LENGTH */
};

/* Everything known when a request ends. Pointers stay valid during on_done only. A request
 * that never ran (cancelled or expired in the queue, or failed to start) has no ids (NULL),
 * text "", finish GEN_FINISH_NONE and first_token_seconds 0. One cut short (GEN_TIMEOUT,
 * GEN_CANCELLED while running) has finish GEN_FINISH_LENGTH and the text released so far, held
 * back text included (so it may extend the events' text); its last event had no finish. */
struct gen_result {
    enum gen_status status;
    enum gen_finish finish;
    char error[ERR_MSG_SIZE]; /* GEN_FAILED */
    const char *text; /* the whole generated text, stop handling applied */
    size_t text_len;
    const int32_t *ids; /* generated ids (n_generated) */
    size_t n_prompt, n_generated;
    uint64_t seed; /* the seed used (params.seed) */
    size_t cached_tokens; /* prompt tokens taken from the prefix cache (not computed again) */
    /* params.decoder_input_details: prompt logprobs (n_prompt; the first is NaN: TGI null) */
    const float *prompt_logprobs;
    /* params.num_beams > 1 and GEN_OK: the num_return_sequences best hypotheses (fewer when
     * fewer finished), best first; text, ids and finish above are the first's */
    const struct gen_hyp *hyps;
    size_t n_hyps;
    double queue_seconds;       /* submit -> admitted into a slot (or -> dropped) */
    double first_token_seconds; /* submit -> first token; 0 without one */
    double total_seconds;       /* submit -> done */
};

struct gen_req_spec {
    const int32_t *prompt; /* token ids, already truncated; copied */
    size_t n_prompt;       /* >= 1 */
    /* copied (gen_params_copy); max_new_tokens resolved (0: the room left under
     * max_total_tokens) */
    const struct gen_params *params;
    /* monotonic seconds (now_seconds()); 0 = none. Queued past it: GEN_TIMEOUT with nothing
     * generated; running: cut at the next step boundary */
    double deadline;
    /* the client's socket, peeked for EOF every 50 ms while queued or running (EOF or an error
     * is a cancel); -1 = unknown */
    int fd;
    void (*on_event)(void *owner, const struct gen_event *ev);  /* may be NULL */
    void (*on_done)(void *owner, const struct gen_result *res); /* required; exactly once */
    void *owner;
};

/* Starts the model's scheduler: cfg->batching.max_batch_size slots at most (each a KV cache
 * of max_total_tokens, growing with use and kept for the next request), at most
 * cfg->batching.max_queue_size requests queued, cfg->generation's token limits, one worker
 * thread with cfg->threads oneDNN threads. name labels the metrics (NULL: m->model_id);
 * metrics may be NULL. m and cfg are read during the call; m must outlive the scheduler.
 * ERR_INVALID when generation.max_total_tokens exceeds max_batch_total_tokens or what the
 * model can hold (GPT-2's positions). */
struct gen_sched *gen_sched_new(const struct gen_model *m, const struct model_config *cfg,
                                struct metrics *metrics, const char *name, struct err *e);

/* Queues a request; *out (may be NULL) is its handle for gen_sched_cancel. Errors (nothing
 * queued, on_done not called): ERR_BUSY when max_queue_size requests wait, ERR_UNAVAILABLE
 * once stopping, ERR_INVALID when prompt + max_new_tokens can never fit max_total_tokens or
 * max_batch_total_tokens (times num_beams), num_beams over max_batch_size (TGI's message: "`inputs` tokens + `max_new_tokens` must be <= N.
 * Given: ..."), for a prompt id outside the vocabulary, an empty prompt, no params or no
 * on_done, and for decoder_input_details on an encoder-decoder; ERR_NOMEM. */
int gen_sched_submit(struct gen_sched *s, const struct gen_req_spec *spec, struct gen_req **out,
                     struct err *e);

/* The client went away: the request leaves the queue or the batch at the next step boundary
 * (its slot free at once for the next request) and on_done follows with GEN_CANCELLED, unless
 * it already finished. Safe to call until on_done has returned. */
void gen_sched_cancel(struct gen_req *r);
/* gen_sched_cancel of every queued and running request, now and from now on: for a drain
 * that ran out of time. */
void gen_sched_abort(struct gen_sched *s);

size_t gen_sched_queued(struct gen_sched *s);
size_t gen_sched_running(struct gen_sched *s);
/* The resolved max_total_tokens (gen_model_max_total_tokens) the scheduler admits. */
size_t gen_sched_max_total_tokens(const struct gen_sched *s);

/* Drains: new submits get ERR_UNAVAILABLE, every queued and running request runs to its end
 * (deadlines and cancels still apply), each hears on_done, then the worker is joined. */
void gen_sched_stop(struct gen_sched *s);
/* gen_sched_stop, then frees. */
void gen_sched_free(struct gen_sched *s);

#endif
