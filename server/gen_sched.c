/* gen_sched: see gen_sched.h. One worker thread per model steps the engine's generator
 * (engine/generate/generator.h: the sequences, their caches, the oneDNN context and the step
 * buffers are its); the queue (a doubly linked list in arrival order) and the cancel flags are
 * the only data shared with other threads, under one mutex. The worker's loop:
 *
 *   under the lock, at a step boundary: mark running requests that must leave (cancelled,
 *     past their deadline, client gone), drop such queued ones, retire the sequences of those
 *     that left, then admit queued requests in order while a slot is free and the tokens
 *     reserved stay within max_batch_total_tokens (the head waits for room rather than being
 *     overtaken, so a big request is never starved);
 *   without the lock: on_done of whatever left, a generator sequence for each admitted
 *     request (starting from its cached prefix, gen_cache.c; then the pooled caches trimmed
 *     to what the running requests leave of max_batch_total_tokens), then one
 *     generator_step over the running sequences with a budget of max_batch_prefill_tokens
 *     prompt tokens; its events (step_event) stream each token through on_event and mark
 *     the requests that finished or failed.
 *
 * How a step spends its prompt budget is the generator's (it depends on the architecture:
 * prompt chunks for a decoder, whole encoder passes for T5); who runs is the scheduler's.
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

#define SWEEP_INTERVAL 0.05 /* seconds between checks of the clients' sockets */

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

    size_t slots; /* the batch slots it takes: num_beams for a beam search, else 1 */

    /* the worker's, from admission on */
    struct gen_seq *seq;   /* the generator's sequence (NULL: never admitted) */
    struct gen_beam *beam; /* a beam search's sequences instead (num_beams > 1) */
    size_t cached;         /* prompt tokens taken from the prefix cache */
    bool leaving;          /* leaves at the next step boundary with `status` */
    enum gen_status status;
    char error[ERR_MSG_SIZE]; /* GEN_FAILED */
};

struct gen_sched {
    const struct gen_model *m;
    struct generator *gen;
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
    struct gen_req **run;     /* (max_running) running, in admission order */
    struct gen_seq **run_seq; /* (max_running) their sequences, for the step */
    size_t n_run, reserved;
    size_t n_slots; /* slots the running requests take (a beam search: num_beams) */
    double last_sweep;
};

static void req_free(struct gen_req *r)
{
    if (!r)
        return;
    gen_params_fini(&r->params);
    gen_seq_free(r->seq);
    gen_beam_free(r->beam);
    free(r);
}

/* ---- ending a request: on_done, then it is freed (no lock held) ---- */

/* A hypothesis' text as the transformers pipelines decode it (special tokens skipped): an
 * encoder-decoder's generated ids alone; a decoder's prompt + generated ids decoded together,
 * less the prompt's own text (TextGenerationPipeline), so that a first "▁word" keeps its
 * space. */
static int hyp_text(const struct gen_sched *s, const struct gen_req *r, struct gen_hyp *h,
                    struct err *e)
{
    char *text = NULL;
    size_t len = 0;
    if (gen_model_is_encoder_decoder(s->m)) {
        int rc = gen_model_decode_skip_special(s->m, h->ids, h->n_ids, &text, &len, e);
        h->text = text;
        h->text_len = len;
        return rc;
    }
    size_t n = r->n_prompt + h->n_ids;
    int32_t *all = malloc(n * sizeof *all);
    char *prompt = NULL;
    size_t plen = 0;
    int rc = all ? 0 : err_set(e, ERR_NOMEM, "out of memory");
    if (rc == 0) {
        memcpy(all, r->prompt, r->n_prompt * sizeof *all);
        memcpy(all + r->n_prompt, h->ids, h->n_ids * sizeof *all);
        rc = gen_model_decode_skip_special(s->m, all, n, &text, &len, e);
    }
    if (rc == 0)
        rc = gen_model_decode_skip_special(s->m, r->prompt, r->n_prompt, &prompt, &plen, e);
    if (rc == 0) {
        size_t skip = plen < len ? plen : len;
        memmove(text, text + skip, len - skip + 1);
        h->text = text;
        h->text_len = len - skip;
        text = NULL;
    }
    free(all);
    free(prompt);
    free(text);
    return rc;
}

static bool is_eos(const struct gen_params *p, int32_t id)
{
    for (size_t i = 0; i < p->n_eos_token_ids; i++)
        if (p->eos_token_ids[i] == id)
            return true;
    return false;
}

/* A finished beam search's hypotheses into res (best first; *out to free after on_done). */
static int beam_results(const struct gen_sched *s, const struct gen_req *r, struct gen_result *res,
                        struct gen_hyp **out, struct err *e)
{
    size_t n = gen_beam_n_results(r->beam);
    *out = NULL;
    if (n == 0)
        return 0;
    struct gen_hyp *h = calloc(n, sizeof *h);
    if (!h)
        return err_set(e, ERR_NOMEM, "out of memory");
    *out = h;
    res->hyps = h;
    for (size_t i = 0; i < n; i++) {
        gen_beam_result(r->beam, i, &h[i].ids, &h[i].n_ids, &h[i].score);
        h[i].finish = h[i].n_ids && is_eos(&r->params, h[i].ids[h[i].n_ids - 1])
                          ? GEN_FINISH_EOS
                          : GEN_FINISH_LENGTH;
        int rc = hyp_text(s, r, &h[i], e);
        if (rc)
            return rc;
        res->n_hyps = i + 1;
    }
    res->finish = h[0].finish;
    res->text = h[0].text;
    res->text_len = h[0].text_len;
    res->ids = h[0].ids;
    res->n_generated = h[0].n_ids;
    return 0;
}

static void hyps_free(struct gen_hyp *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++)
        free((char *)h[i].text);
    free(h);
}

static void complete(struct gen_sched *s, struct gen_req *r, double now)
{
    struct gen_result res = {.status = r->status, .n_prompt = r->n_prompt, .text = ""};
    if (r->status == GEN_FAILED)
        snprintf(res.error, sizeof res.error, "%s", r->error);
    if (r->seq) {
        struct gen_seq_result out;
        struct err e = {0};
        if (gen_seq_result(r->seq, &out, &e) != 0 && r->status != GEN_FAILED) {
            res.status = GEN_FAILED;
            snprintf(res.error, sizeof res.error, "%s", e.msg);
        }
        res.finish = out.finish;
        res.text = out.text;
        res.text_len = out.text_len;
        res.ids = out.ids;
        res.n_generated = out.n_ids;
        res.prompt_logprobs = out.prompt_logprobs;
    }
    struct gen_hyp *hyps = NULL;
    if (r->beam && r->status == GEN_OK) {
        struct err e = {0};
        if (beam_results(s, r, &res, &hyps, &e) != 0) {
            res.status = GEN_FAILED;
            snprintf(res.error, sizeof res.error, "%s", e.msg);
            res.hyps = NULL; /* none half made */
            res.n_hyps = 0;
        }
        r->first_token = now; /* a beam search's tokens are known at its end */
    }
    size_t n_hyps = hyps ? gen_beam_n_results(r->beam) : 0;
    res.seed = r->params.seed;
    res.cached_tokens = r->cached;
    res.queue_seconds = (r->admitted > 0 ? r->admitted : now) - r->submitted;
    res.first_token_seconds = res.n_generated ? r->first_token - r->submitted : 0;
    res.total_seconds = now - r->submitted;
    bool ran = r->seq || r->beam;
    if (r->status == GEN_TIMEOUT && !ran)
        metrics_dropped(s->metrics, s->name, "timeout");
    else if (r->status == GEN_CANCELLED && !ran)
        metrics_dropped(s->metrics, s->name, "disconnect");
    r->on_done(r->owner, &res);
    hyps_free(hyps, n_hyps);
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
        if (r->beam)
            gen_beam_retire(s->gen, r->beam);
        else
            gen_seq_retire(s->gen, r->seq);
        s->reserved -= r->reserve;
        s->n_slots -= r->slots;
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
    while (s->head) {
        struct gen_req *r = s->head;
        bool expired = r->deadline > 0 && now >= r->deadline;
        if (!r->cancelled && !expired &&
            (s->n_slots + r->slots > s->max_running ||
             s->reserved + r->reserve > s->max_batch_total))
            break;
        unlink_req(s, r);
        if (r->cancelled || expired) {
            r->status = r->cancelled ? GEN_CANCELLED : GEN_TIMEOUT;
            r->next = *left;
            *left = r;
            continue;
        }
        s->reserved += r->reserve;
        s->n_slots += r->slots;
        *tail = r;
        tail = &r->next;
    }
}

/* ---- admission and steps (no lock held) ---- */

/* Starts the admitted requests (a list in order): each gets its generator sequence; a failed
 * start ends at once. */
static void start_admitted(struct gen_sched *s, struct gen_req *list, double now)
{
    while (list) {
        struct gen_req *r = list;
        list = r->next;
        r->next = NULL;
        r->admitted = now;
        metrics_queue_time(s->metrics, s->name, now - r->submitted);
        struct err e = {0};
        int rc = r->slots > 1
                     ? gen_beam_start(s->gen, r->prompt, r->n_prompt, &r->params, r, &r->beam, &e)
                     : gen_seq_start(s->gen, r->prompt, r->n_prompt, &r->params, r, &r->seq, &e);
        size_t cached = 0;
        if (rc == 0 && r->seq && gen_seq_prefix_cached(r->seq, &cached)) {
            r->cached = cached;
            metrics_prefix_cache(s->metrics, s->name, cached);
        }
        if (rc == 0) {
            s->run[s->n_run++] = r;
            continue;
        }
        s->reserved -= r->reserve; /* not running: give its reservation back */
        s->n_slots -= r->slots;
        r->status = GEN_FAILED;
        snprintf(r->error, sizeof r->error, "%s", e.msg);
        complete(s, r, now);
    }
    /* the pooled caches' tokens within what the running requests leave of the KV budget */
    generator_trim(s->gen, s->max_batch_total - s->reserved);
}

static void fail_req(struct gen_req *r, const char *msg)
{
    r->leaving = true;
    r->status = GEN_FAILED;
    snprintf(r->error, sizeof r->error, "%s", msg);
}

/* A sequence's event during generator_step: its token streams to the request; a finished
 * or failed request leaves at the next step boundary. */
static void step_event(void *arg, const struct gen_step_event *ev)
{
    struct gen_sched *s = arg;
    struct gen_req *r = ev->user;
    if (ev->token && ev->token->index == 0) {
        r->first_token = ev->now;
        metrics_first_token(s->metrics, s->name, ev->now - r->submitted);
    }
    if (ev->error) {
        fail_req(r, ev->error);
        return;
    }
    if (r->on_event)
        r->on_event(r->owner, ev->token);
    if (ev->token->finish != GEN_FINISH_NONE) {
        r->leaving = true;
        r->status = GEN_OK;
    }
}

/* After a step: a beam search's search step and its caches' reordering; it leaves once the
 * search is over (or failed: a beam's error was reported by the step). */
static void advance_beam(struct gen_sched *s, struct gen_req *r)
{
    if (!r->beam || r->leaving)
        return;
    struct err e = {0};
    if (gen_beam_advance(s->gen, r->beam, &e) != 0) {
        fail_req(r, e.msg);
        return;
    }
    if (gen_beam_done(r->beam)) {
        r->leaving = true;
        r->status = GEN_OK;
        /* inferd_generated_tokens_total counts what it returns: its best hypothesis */
        const int32_t *ids;
        size_t n = 0;
        float score;
        if (gen_beam_n_results(r->beam))
            gen_beam_result(r->beam, 0, &ids, &n, &score);
        if (n)
            metrics_generated(s->metrics, s->name, n);
    }
}

/* One generator step over the running requests (a beam search's running beams each; its
 * first step beam 0 alone), and its metrics. */
static void step(struct gen_sched *s)
{
    size_t k = 0, beams = 0;
    for (size_t i = 0; i < s->n_run; i++) {
        struct gen_req *r = s->run[i];
        if (!r->beam) {
            s->run_seq[k++] = r->seq;
            continue;
        }
        size_t b = gen_beam_seqs(r->beam, s->run_seq + k);
        k += b;
        beams += b;
    }
    struct gen_step_stats st;
    generator_step(s->gen, s->run_seq, k, s->max_prefill, step_event, s, &st);
    if (st.batch)
        metrics_batch(s->metrics, s->name, st.rows, st.tokens, st.tokens, st.seconds);
    if (st.generated)
        metrics_generated(s->metrics, s->name, st.produced);
    for (size_t i = 0; beams && i < s->n_run; i++)
        advance_beam(s, s->run[i]);
}

/* ---- the worker ---- */

static void worker_loop(struct gen_sched *s)
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
        if (admitted)
            start_admitted(s, admitted, now);
        if (s->n_run)
            step(s);
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
    int rc = generator_open(s->gen, &e);
    pthread_mutex_lock(&s->mu);
    s->ready = true;
    if (rc) {
        s->start_rc = rc;
        snprintf(s->start_msg, sizeof s->start_msg, "%s", e.msg);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        worker_loop(s);
    generator_close(s->gen);
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
    if (generator_prepare(s->gen, e) != 0)
        return err_prefix(e, "model %s: generation.max_total_tokens: ", s->name);
    return 0;
}

struct gen_sched *gen_sched_new(const struct gen_model *m, const struct model_config *cfg,
                                struct metrics *metrics, const char *name, struct err *e)
{
    struct gen_sched *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name ? name : gen_model_id(m)))) {
        free(s);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->m = m;
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
    size_t cap = s->max_running ? s->max_running : 1;
    s->run = calloc(cap, sizeof *s->run);
    s->run_seq = calloc(cap, sizeof *s->run_seq);
    struct generator_limits lim = {.max_seqs = s->max_running,
                                   .max_total = s->max_total,
                                   .max_prefill = s->max_prefill,
                                   .threads = s->n_threads,
                                   .prefix_cache = cfg->generation.prefix_cache};
    if (s->run && s->run_seq)
        s->gen = generator_new(m, &lim, e);
    if (!s->gen) {
        gen_sched_free(s);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (check_sizes(s, cfg, e) != 0) {
        gen_sched_free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, worker_main, s) != 0) {
        err_set(e, ERR_INTERNAL, "model %s: cannot start the generation worker", s->name);
        gen_sched_free(s);
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
    int rc = gen_model_check_request(s->m, spec->prompt, spec->n_prompt, spec->params, e);
    if (rc)
        return rc;
    size_t max_new = spec->params->max_new_tokens;
    if (max_new == 0) /* not resolved: whatever room is left */
        max_new = spec->n_prompt < s->max_total ? s->max_total - spec->n_prompt : 0;
    size_t total = spec->n_prompt + max_new;
    size_t slots = spec->params->num_beams > 1 ? spec->params->num_beams : 1;
    if (slots > s->max_running)
        return err_set(e, ERR_INVALID,
                       "`num_beams` must be <= %zu (this model's batching.max_batch_size: each "
                       "beam takes a slot). Given: %zu",
                       s->max_running, slots);
    if (slots > 1 && max_new > 0 && total <= s->max_total && total * slots > s->max_batch_total)
        return err_set(e, ERR_INVALID,
                       "(`inputs` tokens + `max_new_tokens`) * `num_beams` must be <= %zu (each "
                       "beam holds its tokens). Given: %zu `inputs` tokens, %zu "
                       "`max_new_tokens` and %zu beams",
                       s->max_batch_total, spec->n_prompt, max_new, slots);
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
    r->reserve = total * slots;
    r->slots = slots;
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
    generator_free(s->gen);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->run);
    free(s->run_seq);
    free(s->name);
    free(s);
}
