/* gen_sched: see gen_sched.h. One worker thread per model owns the running sequences, their
 * KV caches (a pool of decoder_seq, reset and reused), the oneDNN context and the step
 * buffers; the queue (a doubly linked list in arrival order) and the cancel flags are the
 * only data shared with other threads, under one mutex. The worker's loop:
 *
 *   under the lock, at a step boundary: mark running requests that must leave (cancelled,
 *     past their deadline, client gone), drop such queued ones, release the slots of those
 *     that left, then admit queued requests in order while a slot is free and the tokens
 *     reserved stay within max_batch_total_tokens (the head waits for room rather than being
 *     overtaken, so a big request is never starved);
 *   without the lock: on_done of whatever left, a sampler and a stopper for each admitted
 *     request, then one decoder step: every decoding sequence's last token plus prompt
 *     chunks (oldest first) up to max_batch_prefill_tokens; then each sequence whose prompt
 *     is complete samples, stops and streams its token through on_event.
 *
 * A request whose prompt logprobs are wanted (decoder_input_details) needs the logits of
 * every prompt position: its chunks run in steps with all_logits, alongside the decodes
 * (one row each anyway) but without other prompt chunks, at most DETAILS_CHUNK tokens at a
 * time to bound the (tokens x vocab) logits.
 *
 * An encoder-decoder (T5, gen_model.t5) runs through the same loop; what differs is behind
 * struct backend: its sequences are t5_seq (cross-attention keys and values of the input, the
 * decoder's self-attention cache), and its step (step_t5) first encodes the inputs of newly
 * admitted requests, oldest first, in one t5_encode call of at most max_batch_prefill_tokens
 * input ids (an input longer than that is encoded alone: an encoder pass cannot be split),
 * then runs one decoder step of every encoded sequence: the decoder start token for those
 * just encoded (their first token comes in the same step), the last token for the others.
 * The sampler's repetition penalty and the detokenizer's context are the decoder's ids (the
 * start token, then the generated ones), as transformers' generate has them for an
 * encoder-decoder. Prompt logprobs are refused at submit (the input is not decoded).
 *
 * Generation uses one worker whatever cfg->workers says: a step already batches every
 * running sequence, and its threads (cfg->threads, 0 = every core) parallelize the matmuls. */
#include "gen_sched.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client_gone.h"
#include "clock.h"
#include "cpus.h"
#include "metrics.h"
#include "models/decoder.h"
#include "models/t5.h"

#define SWEEP_INTERVAL 0.05 /* seconds between checks of the clients' sockets */
#define DETOK_CONTEXT 5     /* prompt ids the detokenizer starts from (TGI's prefix offset) */
#define DETAILS_CHUNK 64    /* prompt tokens per step with all_logits */

struct gen_req {
    struct gen_sched *s;
    struct gen_req *prev, *next; /* the queue; `next` also links lists of leaving requests */
    int32_t *prompt;             /* (n_prompt), allocated with the request */
    size_t n_prompt;
    struct gen_params params;
    size_t reserve; /* n_prompt + max_new_tokens: its share of max_batch_total_tokens */
    double deadline, submitted, admitted, first_token;
    int fd;
    void (*on_event)(void *owner, const struct gen_event *ev);
    void (*on_done)(void *owner, const struct gen_result *res);
    void *owner;
    bool cancelled; /* under s->mu */

    /* the worker's, from admission on */
    void *seq;    /* struct decoder_seq, or struct t5_seq (backend) */
    size_t n_fed; /* prompt tokens in the cache (T5: n_prompt once encoded, else 0) */
    int32_t last; /* the token the next decode feeds */
    bool leaving; /* leaves at the next step boundary with `status` */
    enum gen_status status;
    char error[256]; /* GEN_FAILED */
    struct sampler *sampler;
    struct stopper *stopper;
    int32_t *ids; /* (params.max_new_tokens) generated */
    size_t n_ids;
    float *prompt_logprobs; /* (n_prompt) with decoder_input_details */
};

struct gen_sched;

/* What differs between a decoder-only model and an encoder-decoder: the sequences' caches,
 * the worker's activation buffers and how one step feeds them. */
struct backend {
    int (*seq_new)(const struct gen_sched *s, void **out, struct err *e);
    void (*seq_free)(void *seq);
    void (*seq_reset)(void *seq);
    void *(*run_new)(void);
    void (*run_free)(void *run);
    void (*step)(struct gen_sched *s, struct dnn_ctx *ctx, void *run);
};

struct gen_sched {
    const struct gen_model *m;
    const struct backend *be;
    size_t max_running, max_queue, max_total, max_batch_total, max_prefill;
    int n_threads;
    struct metrics *metrics;
    char *name;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gen_req *head, *tail;
    size_t depth;       /* queued */
    size_t n_running;   /* published copy of n_run (+ those being admitted) */
    size_t depth_shown; /* the queue depth the metrics show */
    bool stopping, cancel_pending;
    bool aborting; /* gen_sched_abort: every request is cancelled */
    bool started, ready; /* the worker runs; it reported how its start went */
    int start_rc;
    char start_msg[ERR_MSG_SIZE];
    pthread_t thread;

    /* the worker's */
    void **pool;           /* (max_running) free caches, reset */
    size_t n_pool, n_seqs; /* free ones, all created */
    struct gen_req **run;  /* (max_running) running, in admission order */
    size_t n_run, reserved;
    double last_sweep;
    /* one step */
    struct decoder_seq **st_seqs; /* (max_running) */
    struct t5_seq **st_t5;        /* (max_running) T5 */
    struct gen_req **st_reqs;     /* (max_running) */
    int *st_n;                    /* (max_running) */
    int32_t *st_tokens;           /* (max_running + max_prefill) */
    int32_t *enc_ids;             /* T5: (max(max_prefill, max_total)) input ids to encode */
    struct gen_event ev;
};

static void req_free(struct gen_req *r)
{
    if (!r)
        return;
    gen_params_fini(&r->params);
    sampler_free(r->sampler);
    stopper_free(r->stopper);
    free(r->ids);
    free(r->prompt_logprobs);
    free(r);
}

/* ---- ending a request: on_done, then it is freed (no lock held) ---- */

static void complete(struct gen_sched *s, struct gen_req *r, double now)
{
    struct gen_result res = {.status = r->status, .n_prompt = r->n_prompt, .text = ""};
    if (r->status == GEN_FAILED)
        snprintf(res.error, sizeof res.error, "%s", r->error);
    if (r->stopper) {
        struct gen_step step;
        struct err e = {0};
        if (stopper_finish_reason(r->stopper) == GEN_FINISH_NONE &&
            stopper_finish(r->stopper, GEN_FINISH_LENGTH, &step, &e) != 0 &&
            r->status != GEN_FAILED) {
            res.status = GEN_FAILED;
            snprintf(res.error, sizeof res.error, "%s", e.msg);
        }
        res.finish = stopper_finish_reason(r->stopper);
        res.text = stopper_text(r->stopper, &res.text_len);
    }
    res.ids = r->ids;
    res.n_generated = r->n_ids;
    res.seed = r->params.seed;
    res.prompt_logprobs = r->prompt_logprobs;
    res.queue_seconds = (r->admitted > 0 ? r->admitted : now) - r->submitted;
    res.first_token_seconds = r->n_ids ? r->first_token - r->submitted : 0;
    res.total_seconds = now - r->submitted;
    if (r->status == GEN_TIMEOUT && !r->seq)
        metrics_dropped(s->metrics, s->name, "timeout");
    else if (r->status == GEN_CANCELLED && !r->seq)
        metrics_dropped(s->metrics, s->name, "disconnect");
    r->on_done(r->owner, &res);
    req_free(r);
}

/* Completes every request of a list linked through next. */
static void complete_list(struct gen_sched *s, struct gen_req *list)
{
    if (!list)
        return;
    double now = now_seconds();
    while (list) {
        struct gen_req *r = list;
        list = r->next;
        complete(s, r, now);
    }
}

/* ---- the queue (callers hold mu) ---- */

static void unlink_req(struct gen_sched *s, struct gen_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        s->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->tail = r->prev;
    r->prev = r->next = NULL;
    s->depth--;
}

/* Moves queued requests that were cancelled, expired or lost their client to *out. */
static void sweep_queue(struct gen_sched *s, double now, bool check_clients, struct gen_req **out)
{
    for (struct gen_req *r = s->head, *next; r; r = next) {
        next = r->next;
        if (r->cancelled || s->aborting || (check_clients && client_gone(r->fd)))
            r->status = GEN_CANCELLED;
        else if (r->deadline > 0 && now >= r->deadline)
            r->status = GEN_TIMEOUT;
        else
            continue;
        unlink_req(s, r);
        r->next = *out;
        *out = r;
    }
}

/* Marks running requests that must leave (cancelled, past their deadline, client gone). */
static void mark_running(struct gen_sched *s, double now, bool check_clients)
{
    for (size_t i = 0; i < s->n_run; i++) {
        struct gen_req *r = s->run[i];
        if (r->leaving)
            continue;
        if (r->cancelled || s->aborting || (check_clients && client_gone(r->fd)))
            r->status = GEN_CANCELLED;
        else if (r->deadline > 0 && now >= r->deadline)
            r->status = GEN_TIMEOUT;
        else
            continue;
        r->leaving = true;
    }
}

/* Takes the leaving requests out of the batch (their caches back to the pool) into *out. */
static void retire(struct gen_sched *s, struct gen_req **out)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->n_run; i++) {
        struct gen_req *r = s->run[i];
        if (!r->leaving) {
            s->run[kept++] = r;
            continue;
        }
        s->be->seq_reset(r->seq);
        s->pool[s->n_pool++] = r->seq;
        s->reserved -= r->reserve;
        r->next = *out;
        *out = r;
    }
    s->n_run = kept;
}

/* Unlinks the queued requests that fit now, in order, into *out (in order); the head waits
 * when it does not fit, so that nothing overtakes it. A head already cancelled or expired
 * goes to *left instead. */
static void admit(struct gen_sched *s, double now, struct gen_req **out, struct gen_req **left)
{
    struct gen_req **tail = out;
    size_t n = s->n_run;
    while (s->head && n < s->max_running) {
        struct gen_req *r = s->head;
        bool expired = r->deadline > 0 && now >= r->deadline;
        if (!r->cancelled && !expired && s->reserved + r->reserve > s->max_batch_total)
            break;
        unlink_req(s, r);
        if (r->cancelled || expired) {
            r->status = r->cancelled ? GEN_CANCELLED : GEN_TIMEOUT;
            r->next = *left;
            *left = r;
            continue;
        }
        s->reserved += r->reserve;
        n++;
        *tail = r;
        tail = &r->next;
    }
}

/* ---- admission: the request's sampler, stopper and cache (no lock held) ---- */

static int start_req(struct gen_sched *s, struct gen_req *r, struct err *e)
{
    const struct gen_model *m = s->m;
    /* what precedes the first generated token in the sequence the model continues: the
     * prompt's tail, or an encoder-decoder's start token */
    size_t n_ctx = r->n_prompt < DETOK_CONTEXT ? r->n_prompt : DETOK_CONTEXT;
    const int32_t *ctx = r->prompt + r->n_prompt - n_ctx, *seen = r->prompt;
    size_t n_seen = r->n_prompt;
    if (m->t5) {
        ctx = seen = &m->decoder_start_token_id;
        n_ctx = n_seen = 1;
    }
    int rc = sampler_new(&r->params, (size_t)m->vocab_size, 0, &r->sampler, e);
    if (rc == 0)
        rc = stopper_new(&r->params, m->tokenizer, ctx, n_ctx, &r->stopper, e);
    if (rc)
        return rc;
    sampler_add_prompt(r->sampler, seen, n_seen);
    r->ids = malloc(r->params.max_new_tokens * sizeof *r->ids);
    if (!r->ids)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (r->params.decoder_input_details) {
        r->prompt_logprobs = malloc(r->n_prompt * sizeof *r->prompt_logprobs);
        if (!r->prompt_logprobs)
            return err_set(e, ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < r->n_prompt; i++)
            r->prompt_logprobs[i] = NAN;
    }
    if (s->n_pool > 0)
        r->seq = s->pool[--s->n_pool];
    else if ((rc = s->be->seq_new(s, &r->seq, e)) == 0)
        s->n_seqs++;
    return rc;
}

/* Starts the admitted requests (a list in order); a failed start ends at once. */
static void start_admitted(struct gen_sched *s, struct gen_req *list, double now)
{
    while (list) {
        struct gen_req *r = list;
        list = r->next;
        r->next = NULL;
        r->admitted = now;
        metrics_queue_time(s->metrics, s->name, now - r->submitted);
        struct err e = {0};
        if (start_req(s, r, &e) == 0) {
            s->run[s->n_run++] = r;
            continue;
        }
        /* not running: give its reservation back, and its cache if it got one */
        s->reserved -= r->reserve;
        if (r->seq) {
            s->pool[s->n_pool++] = r->seq;
            r->seq = NULL;
        }
        r->status = GEN_FAILED;
        snprintf(r->error, sizeof r->error, "%s", e.msg);
        complete(s, r, now);
    }
}

/* ---- one step ---- */

static void fail_req(struct gen_req *r, const char *msg)
{
    r->leaving = true;
    r->status = GEN_FAILED;
    snprintf(r->error, sizeof r->error, "%s", msg);
}

/* Log-probabilities of the prompt tokens a chunk predicts: row k (the chunk's token at
 * position n_fed + k) gives the probability of the prompt token at n_fed + k + 1. */
static void prompt_logprobs(struct gen_req *r, const float *rows, int k, int V)
{
    for (int j = 0; j < k; j++) {
        size_t next = r->n_fed + (size_t)j + 1;
        if (next >= r->n_prompt)
            break;
        const float *row = rows + (size_t)j * (size_t)V;
        int32_t id = r->prompt[next];
        r->prompt_logprobs[next] = (float)((double)row[id] - logits_logsumexp(row, (size_t)V));
    }
}

/* Samples r's next token from logits (modified in place), stops and streams it. */
static void emit(struct gen_sched *s, struct gen_req *r, float *logits, double now)
{
    struct gen_event *ev = &s->ev;
    int32_t id = sampler_sample(r->sampler, logits, &ev->token);
    if (r->n_ids == 0) {
        r->first_token = now;
        metrics_first_token(s->metrics, s->name, now - r->submitted);
    }
    r->ids[r->n_ids++] = id;
    struct gen_step st;
    struct err e = {0};
    if (stopper_push(r->stopper, id, &st, &e) != 0) {
        fail_req(r, e.msg);
        return;
    }
    if (st.finish == GEN_FINISH_NONE && r->n_ids >= r->params.max_new_tokens)
        st.finish = GEN_FINISH_LENGTH; /* not reached: the stopper has max_new_tokens too */
    ev->index = (uint32_t)(r->n_ids - 1);
    ev->special = tokenizer_is_special(s->m->tokenizer, id);
    ev->token_text = st.token_text;
    ev->token_text_len = st.token_text_len;
    ev->text = st.text;
    ev->text_len = st.text_len;
    ev->finish = st.finish;
    if (r->on_event)
        r->on_event(r->owner, ev);
    if (st.finish != GEN_FINISH_NONE) {
        r->leaving = true;
        r->status = GEN_OK;
    } else {
        r->last = id;
    }
}

/* Picks this step's tokens: each decoding sequence's last token, then prompt chunks in
 * admission order up to max_prefill. Returns the number of sequences; *all_logits when the
 * oldest prefilling request wants prompt logprobs (it is then the only one prefilling). */
static int compose(struct gen_sched *s, int *M_out, bool *all_logits)
{
    const struct gen_req *oldest = NULL;
    for (size_t i = 0; i < s->n_run && !oldest; i++)
        if (s->run[i]->n_fed < s->run[i]->n_prompt)
            oldest = s->run[i];
    bool details = oldest && oldest->params.decoder_input_details;
    size_t budget = s->max_prefill, M = 0;
    if (details && budget > DETAILS_CHUNK)
        budget = DETAILS_CHUNK;
    int n = 0;
    for (size_t i = 0; i < s->n_run; i++) {
        struct gen_req *r = s->run[i];
        size_t take = 1;
        if (r->n_fed >= r->n_prompt) {
            s->st_tokens[M] = r->last;
        } else {
            if (budget == 0 || (details ? r != oldest : r->params.decoder_input_details))
                continue;
            size_t left = r->n_prompt - r->n_fed;
            take = left < budget ? left : budget;
            memcpy(s->st_tokens + M, r->prompt + r->n_fed, take * sizeof *s->st_tokens);
            budget -= take;
        }
        s->st_seqs[n] = r->seq;
        s->st_reqs[n] = r;
        s->st_n[n] = (int)take;
        M += take;
        n++;
    }
    *M_out = (int)M;
    *all_logits = details;
    return n;
}

static void step_decoder(struct gen_sched *s, struct dnn_ctx *ctx, void *run)
{
    int M = 0;
    bool all_logits = false;
    int n = compose(s, &M, &all_logits);
    if (n == 0)
        return;
    struct decoder_step st = {.n_seqs = n,
                              .seqs = s->st_seqs,
                              .tokens = s->st_tokens,
                              .n_tokens = s->st_n,
                              .all_logits = all_logits};
    const float *logits = NULL;
    struct err e = {0};
    double t0 = now_seconds();
    if (decoder_forward(s->m->decoder, ctx, run, &st, &logits, &e) != 0) {
        for (int i = 0; i < n; i++)
            fail_req(s->st_reqs[i], e.msg);
        return;
    }
    double t1 = now_seconds();
    metrics_batch(s->metrics, s->name, (size_t)n, (size_t)M, (size_t)M, t1 - t0);
    int V = s->m->vocab_size;
    size_t row = 0, produced = 0;
    for (int i = 0; i < n; i++) {
        struct gen_req *r = s->st_reqs[i];
        int k = s->st_n[i];
        /* the step's logits are this worker's run memory: sampling may process them in place */
        float *rows = (float *)logits + (all_logits ? row : (size_t)i) * (size_t)V;
        float *last = all_logits ? rows + (size_t)(k - 1) * (size_t)V : rows;
        row += (size_t)k;
        if (r->n_fed < r->n_prompt) {
            if (all_logits && r->prompt_logprobs)
                prompt_logprobs(r, rows, k, V);
            r->n_fed += (size_t)k;
            if (r->n_fed < r->n_prompt)
                continue;
        }
        emit(s, r, last, t1);
        produced++;
    }
    metrics_generated(s->metrics, s->name, produced);
}

/* T5: picks the inputs to encode this step: requests not encoded yet in admission order while
 * their ids total at most max_prefill (the first one whatever its length). Returns how many
 * (their sequences, requests and lengths in st_t5, st_reqs, st_n; their ids in enc_ids). */
static int compose_encode(struct gen_sched *s, size_t *n_ids)
{
    size_t M = 0;
    int n = 0;
    for (size_t i = 0; i < s->n_run; i++) {
        struct gen_req *r = s->run[i];
        if (r->n_fed >= r->n_prompt)
            continue;
        if (n > 0 && M + r->n_prompt > s->max_prefill)
            break; /* the next ones wait for their turn, in order */
        memcpy(s->enc_ids + M, r->prompt, r->n_prompt * sizeof *s->enc_ids);
        s->st_t5[n] = r->seq;
        s->st_reqs[n] = r;
        s->st_n[n] = (int)r->n_prompt;
        M += r->n_prompt;
        n++;
    }
    *n_ids = M;
    return n;
}

/* T5: encodes what compose_encode picked; each encoded request's next decoder token is the
 * start token. A failure fails those requests only. */
static void encode(struct gen_sched *s, struct dnn_ctx *ctx, struct t5_run *run, int n)
{
    struct t5_encode_batch b = {.n_seqs = n, .seqs = s->st_t5, .ids = s->enc_ids, .n_ids = s->st_n};
    struct err e = {0};
    if (t5_encode(s->m->t5, ctx, run, &b, &e) != 0) {
        for (int i = 0; i < n; i++)
            fail_req(s->st_reqs[i], e.msg);
        return;
    }
    for (int i = 0; i < n; i++) {
        struct gen_req *r = s->st_reqs[i];
        r->n_fed = r->n_prompt;
        r->last = s->m->decoder_start_token_id;
    }
}

/* T5: the inputs to encode, then one decoder token of every encoded sequence. */
static void step_t5(struct gen_sched *s, struct dnn_ctx *ctx, void *run_)
{
    struct t5_run *run = run_;
    double t0 = now_seconds();
    size_t n_enc_ids = 0;
    int n_enc = compose_encode(s, &n_enc_ids);
    if (n_enc)
        encode(s, ctx, run, n_enc);
    int n = 0;
    for (size_t i = 0; i < s->n_run; i++) {
        struct gen_req *r = s->run[i];
        if (r->leaving || r->n_fed < r->n_prompt)
            continue;
        s->st_t5[n] = r->seq;
        s->st_reqs[n] = r;
        s->st_n[n] = 1;
        s->st_tokens[n] = r->last;
        n++;
    }
    if (n == 0) {
        if (n_enc)
            metrics_batch(s->metrics, s->name, (size_t)n_enc, n_enc_ids, n_enc_ids,
                          now_seconds() - t0);
        return;
    }
    struct t5_step st = {
        .n_seqs = n, .seqs = s->st_t5, .tokens = s->st_tokens, .n_tokens = s->st_n};
    const float *logits = NULL;
    struct err e = {0};
    if (t5_forward(s->m->t5, ctx, run, &st, &logits, &e) != 0) {
        for (int i = 0; i < n; i++)
            fail_req(s->st_reqs[i], e.msg);
        return;
    }
    double t1 = now_seconds();
    /* rows: the sequences stepped; tokens: input ids encoded + decoder tokens fed */
    metrics_batch(s->metrics, s->name, (size_t)n, n_enc_ids + (size_t)n, n_enc_ids + (size_t)n,
                  t1 - t0);
    int V = s->m->vocab_size;
    for (int i = 0; i < n; i++)
        emit(s, s->st_reqs[i], (float *)logits + (size_t)i * (size_t)V, t1);
    metrics_generated(s->metrics, s->name, (size_t)n);
}

/* ---- the two backends ---- */

static int dec_seq_new(const struct gen_sched *s, void **out, struct err *e)
{
    struct decoder_seq *seq = NULL;
    int rc = decoder_seq_new(s->m->decoder, (int)s->max_total, &seq, e);
    *out = seq;
    return rc;
}
static void dec_seq_free(void *seq)
{
    decoder_seq_free(seq);
}
static void dec_seq_reset(void *seq)
{
    decoder_seq_reset(seq);
}
static void *dec_run_new(void)
{
    return decoder_run_new();
}
static void dec_run_free(void *run)
{
    decoder_run_free(run);
}

static const struct backend decoder_backend = {dec_seq_new, dec_seq_free, dec_seq_reset,
                                               dec_run_new, dec_run_free, step_decoder};

/* Room for max_total input ids and as many decoder tokens: a request's input plus its new
 * tokens are within max_total, and the decoder caches the start token and every generated
 * one but the last. */
static int t5_backend_seq_new(const struct gen_sched *s, void **out, struct err *e)
{
    struct t5_seq *seq = NULL;
    int rc = t5_seq_new(s->m->t5, (int)s->max_total, (int)s->max_total, &seq, e);
    *out = seq;
    return rc;
}
static void t5_backend_seq_free(void *seq)
{
    t5_seq_free(seq);
}
static void t5_backend_seq_reset(void *seq)
{
    t5_seq_reset(seq);
}
static void *t5_backend_run_new(void)
{
    return t5_run_new();
}
static void t5_backend_run_free(void *run)
{
    t5_run_free(run);
}

static const struct backend t5_backend = {t5_backend_seq_new,   t5_backend_seq_free,
                                          t5_backend_seq_reset, t5_backend_run_new,
                                          t5_backend_run_free,  step_t5};

/* ---- the worker ---- */

static void worker_loop(struct gen_sched *s, struct dnn_ctx *ctx, void *run)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        double now = now_seconds();
        bool check_clients = now - s->last_sweep >= SWEEP_INTERVAL;
        if (check_clients)
            s->last_sweep = now;
        struct gen_req *left = NULL, *admitted = NULL;
        mark_running(s, now, check_clients);
        if (s->head && (check_clients || s->cancel_pending))
            sweep_queue(s, now, check_clients, &left);
        s->cancel_pending = false;
        retire(s, &left);
        admit(s, now, &admitted, &left);
        if (!s->n_run && !admitted && !left) {
            if (s->stopping && !s->head)
                break;
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        size_t running = s->n_run;
        for (const struct gen_req *r = admitted; r; r = r->next)
            running++;
        if (running != s->n_running)
            metrics_running(s->metrics, s->name, (long)running);
        if (s->depth != s->depth_shown)
            metrics_queue_depth(s->metrics, s->name, (long)s->depth);
        s->n_running = running;
        s->depth_shown = s->depth;
        pthread_mutex_unlock(&s->mu);

        complete_list(s, left);
        start_admitted(s, admitted, now);
        if (s->n_run)
            s->be->step(s, ctx, run);
        pthread_mutex_lock(&s->mu);
    }
    s->n_running = 0;
    metrics_running(s->metrics, s->name, 0);
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg)
{
    struct gen_sched *s = arg;
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(s->n_threads, &e);
    void *run = ctx ? s->be->run_new() : NULL;
    pthread_mutex_lock(&s->mu);
    s->ready = true;
    if (!run) {
        s->start_rc = ctx ? ERR_NOMEM : e.kind ? e.kind : ERR_INTERNAL;
        snprintf(s->start_msg, sizeof s->start_msg, "%s", ctx ? "out of memory" : e.msg);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (run)
        worker_loop(s, ctx, run);
    s->be->run_free(run);
    dnn_ctx_free(ctx);
    return NULL;
}

/* ---- the API ---- */

static int check_sizes(struct gen_sched *s, const struct model_config *cfg, struct err *e)
{
    const struct generation_section *g = &cfg->generation;
    if (s->max_running == 0 || s->max_queue == 0 || s->max_prefill == 0 || s->max_batch_total == 0)
        return err_set(e, ERR_INVALID,
                       "model %s: batching.max_batch_size, batching.max_queue_size, "
                       "generation.max_batch_total_tokens and max_batch_prefill_tokens must be "
                       ">= 1",
                       s->name);
    if (g->max_total_tokens > g->max_batch_total_tokens)
        return err_set(e, ERR_INVALID,
                       "model %s: generation.max_total_tokens (%zu) must be <= "
                       "generation.max_batch_total_tokens (%zu)",
                       s->name, g->max_total_tokens, g->max_batch_total_tokens);
    if (s->max_total > (size_t)INT32_MAX)
        return err_set(e, ERR_INVALID, "model %s: generation.max_total_tokens is too large",
                       s->name);
    /* the first cache: also the decoder's check of max_total_tokens (GPT-2's positions) */
    void *seq;
    int rc = s->be->seq_new(s, &seq, e);
    if (rc)
        return err_prefix(e, "model %s: generation.max_total_tokens: ", s->name);
    s->pool[s->n_pool++] = seq;
    s->n_seqs++;
    return 0;
}

struct gen_sched *gen_sched_new(const struct gen_model *m, const struct model_config *cfg,
                                struct metrics *metrics, const char *name, struct err *e)
{
    struct gen_sched *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name ? name : m->model_id))) {
        free(s);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->m = m;
    s->be = m->t5 ? &t5_backend : &decoder_backend;
    s->metrics = metrics;
    s->max_running = cfg->batching.max_batch_size;
    s->max_queue = cfg->batching.max_queue_size;
    s->max_batch_total = cfg->generation.max_batch_total_tokens;
    s->max_prefill = cfg->generation.max_batch_prefill_tokens;
    s->max_total = gen_model_max_total_tokens(m, cfg);
    s->n_threads = cfg->threads;
    if (s->n_threads <= 0) {
        s->n_threads = cpus_usable();
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    size_t cap = s->max_running;
    s->pool = calloc(cap ? cap : 1, sizeof *s->pool);
    s->run = calloc(cap ? cap : 1, sizeof *s->run);
    s->st_seqs = calloc(cap ? cap : 1, sizeof *s->st_seqs);
    s->st_t5 = calloc(cap ? cap : 1, sizeof *s->st_t5);
    s->st_reqs = calloc(cap ? cap : 1, sizeof *s->st_reqs);
    s->st_n = calloc(cap ? cap : 1, sizeof *s->st_n);
    s->st_tokens = calloc(cap + s->max_prefill, sizeof *s->st_tokens);
    if (m->t5) {
        size_t enc = s->max_prefill > s->max_total ? s->max_prefill : s->max_total;
        s->enc_ids = calloc(enc ? enc : 1, sizeof *s->enc_ids);
    }
    if (!s->pool || !s->run || !s->st_seqs || !s->st_t5 || !s->st_reqs || !s->st_n ||
        !s->st_tokens || (m->t5 && !s->enc_ids)) {
        gen_sched_free(s);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (check_sizes(s, cfg, e) != 0) {
        gen_sched_free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, worker_main, s) != 0) {
        gen_sched_free(s);
        err_set(e, ERR_INTERNAL, "model %s: cannot start the generation worker", s->name);
        return NULL;
    }
    s->started = true;
    pthread_mutex_lock(&s->mu);
    while (!s->ready)
        pthread_cond_wait(&s->cv, &s->mu);
    int rc = s->start_rc;
    pthread_mutex_unlock(&s->mu);
    if (rc) {
        err_set(e, rc, "model %s: the generation worker could not start: %s", s->name,
                s->start_msg);
        gen_sched_free(s);
        return NULL;
    }
    metrics_queue_depth(metrics, s->name, 0);
    metrics_running(metrics, s->name, 0);
    return s;
}

/* Checks spec and builds the request (not queued yet). */
static int make_req(struct gen_sched *s, const struct gen_req_spec *spec, struct gen_req **out,
                    struct err *e)
{
    if (!spec || !spec->prompt || spec->n_prompt == 0 || !spec->params || !spec->on_done)
        return err_set(e, ERR_INVALID, "a generation request needs a prompt, params and on_done");
    if (s->m->t5 && spec->params->decoder_input_details)
        return err_set(e, ERR_INVALID,
                       "`decoder_input_details` is not supported by an encoder-decoder model "
                       "(text2text-generation): its input is encoded, not decoded");
    for (size_t i = 0; i < spec->n_prompt; i++)
        if (spec->prompt[i] < 0 || spec->prompt[i] >= s->m->vocab_size)
            return err_set(e, ERR_INVALID, "prompt token %zu: id %d is not in the vocabulary (%d)",
                           i, (int)spec->prompt[i], s->m->vocab_size);
    size_t max_new = spec->params->max_new_tokens;
    if (max_new == 0) /* not resolved: whatever room is left */
        max_new = spec->n_prompt < s->max_total ? s->max_total - spec->n_prompt : 0;
    size_t total = spec->n_prompt + max_new;
    if (max_new == 0 || total > s->max_total || total > s->max_batch_total)
        return err_set(e, ERR_INVALID,
                       "`inputs` tokens + `max_new_tokens` must be <= %zu. Given: %zu `inputs` "
                       "tokens and %zu `max_new_tokens`",
                       s->max_total < s->max_batch_total ? s->max_total : s->max_batch_total,
                       spec->n_prompt, max_new);
    struct gen_req *r = calloc(1, sizeof *r + spec->n_prompt * sizeof *r->prompt);
    if (!r)
        return err_set(e, ERR_NOMEM, "out of memory");
    if (gen_params_copy(&r->params, spec->params, e) != 0) {
        free(r);
        return e ? e->kind : ERR_NOMEM;
    }
    r->params.max_new_tokens = (uint32_t)max_new;
    r->s = s;
    r->prompt = (int32_t *)(r + 1);
    memcpy(r->prompt, spec->prompt, spec->n_prompt * sizeof *r->prompt);
    r->n_prompt = spec->n_prompt;
    r->reserve = total;
    r->deadline = spec->deadline;
    r->fd = spec->fd;
    r->on_event = spec->on_event;
    r->on_done = spec->on_done;
    r->owner = spec->owner;
    *out = r;
    return 0;
}

int gen_sched_submit(struct gen_sched *s, const struct gen_req_spec *spec, struct gen_req **out,
                     struct err *e)
{
    if (out)
        *out = NULL;
    struct gen_req *r = NULL;
    int rc = make_req(s, spec, &r, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&s->mu);
    if (s->stopping)
        rc = err_set(e, ERR_UNAVAILABLE, "model %s is being unloaded", s->name);
    else if (s->depth >= s->max_queue)
        rc = err_set(e, ERR_BUSY, "Model is overloaded: %zu requests are queued for %s", s->depth,
                     s->name);
    if (rc) {
        pthread_mutex_unlock(&s->mu);
        req_free(r);
        return rc;
    }
    r->submitted = now_seconds();
    r->prev = s->tail;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    s->depth++;
    if (out)
        *out = r;
    metrics_queue_depth(s->metrics, s->name, (long)s->depth);
    s->depth_shown = s->depth;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void gen_sched_cancel(struct gen_req *r)
{
    if (!r)
        return;
    struct gen_sched *s = r->s;
    pthread_mutex_lock(&s->mu);
    r->cancelled = true;
    s->cancel_pending = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void gen_sched_abort(struct gen_sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->aborting = true;
    s->cancel_pending = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

size_t gen_sched_queued(struct gen_sched *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->depth;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t gen_sched_running(struct gen_sched *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n_running;
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t gen_sched_max_total_tokens(const struct gen_sched *s)
{
    return s->max_total;
}

void gen_sched_stop(struct gen_sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->thread, NULL);
    s->started = false;
}

void gen_sched_free(struct gen_sched *s)
{
    if (!s)
        return;
    gen_sched_stop(s);
    for (size_t i = 0; i < s->n_pool; i++)
        s->be->seq_free(s->pool[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->pool);
    free(s->run);
    free(s->st_seqs);
    free(s->st_t5);
    free(s->enc_ids);
    free(s->st_reqs);
    free(s->st_n);
    free(s->st_tokens);
    free(s->name);
    free(s);
}
