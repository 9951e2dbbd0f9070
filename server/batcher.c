/* batcher: see batcher.h. Owns the queue (a doubly linked list in arrival order, guarded by
 * one mutex), the batch-forming rule and the worker threads with their oneDNN contexts. */
#include "batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_gone.h"
#include "log.h"
#include "cpus.h"
#include "metrics.h"

#define SWEEP_INTERVAL 0.05 /* seconds between checks of every queued client */
#define STOP_INTERVAL 0.01  /* seconds between checks of a running batch's jobs */

struct batcher {
    const struct pipeline *p;
    struct batching_config cfg;
    int n_threads;
    struct metrics *metrics;
    char *name;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    size_t depth, queued_rows, queued_tokens;
    bool stopping;
    atomic_bool aborting; /* batcher_abort: every job ends now, answered 503 */
    double last_sweep;
    size_t last_batch_jobs; /* jobs in the batch most recently taken */

    pthread_t *threads;
    int n_workers, n_started;
};

static size_t job_rows(const struct job *j)
{
    return pipeline_request_items(j->req);
}

static size_t job_len(const struct job *j)
{
    return pipeline_request_max_len(j->req);
}

/* ---- the queue (callers hold mu) ---- */

static void unlink_job(struct batcher *b, struct job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        b->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        b->tail = j->prev;
    j->prev = j->next = NULL;
    b->depth--;
    b->queued_rows -= job_rows(j);
    b->queued_tokens -= pipeline_request_tokens(j->req);
}

/* Moves queued jobs that timed out or lost their client to *dropped (a singly linked
 * list through next). */
static void sweep(struct batcher *b, double now, struct job **dropped)
{
    bool check_clients = now - b->last_sweep >= SWEEP_INTERVAL;
    if (check_clients)
        b->last_sweep = now;
    for (struct job *j = b->head, *next; j; j = next) {
        next = j->next;
        enum job_status st = JOB_OK;
        if (j->deadline > 0 && now >= j->deadline)
            st = JOB_TIMEOUT;
        else if (check_clients && client_gone(j->fd))
            st = JOB_DISCONNECTED;
        if (st == JOB_OK)
            continue;
        unlink_job(b, j);
        j->status = st;
        j->next = *dropped;
        *dropped = j;
    }
}

/* The earliest time something in the queue needs attention: the oldest job's batching
 * delay or any job's deadline, whichever comes first. */
static double next_wake(const struct batcher *b)
{
    double t = b->head->enqueued + (double)b->cfg.max_queue_delay_us * 1e-6;
    for (const struct job *j = b->head; j; j = j->next)
        if (j->deadline > 0 && j->deadline < t)
            t = j->deadline;
    if (b->last_sweep + SWEEP_INTERVAL < t)
        t = b->last_sweep + SWEEP_INTERVAL;
    return t;
}

static bool queue_full(const struct batcher *b)
{
    return b->queued_rows >= b->cfg.max_batch_size || b->queued_tokens >= b->cfg.max_batch_tokens;
}

/* Waiting for a fuller batch only pays when requests come concurrently: a lone job after a
 * batch of one (a single client, or light load) runs at once instead of paying the delay. */
static bool worth_waiting(const struct batcher *b)
{
    return b->depth > 1 || b->last_batch_jobs > 1;
}

/* Takes the oldest job and then, repeatedly, the queued job closest to its length that
 * keeps the batch within max_batch_size rows and max_batch_tokens padded tokens. */
static size_t pick(struct batcher *b, struct job **batch, size_t cap)
{
    struct job *anchor = b->head;
    size_t n = 0, rows = job_rows(anchor), longest = job_len(anchor);
    size_t anchor_len = longest;
    unlink_job(b, anchor);
    batch[n++] = anchor;
    while (n < cap) {
        struct job *best = NULL;
        size_t best_diff = 0;
        for (struct job *j = b->head; j; j = j->next) {
            size_t len = job_len(j), r = rows + job_rows(j);
            size_t lmax = len > longest ? len : longest;
            if (r > b->cfg.max_batch_size || r * lmax > b->cfg.max_batch_tokens)
                continue;
            size_t diff = len > anchor_len ? len - anchor_len : anchor_len - len;
            if (!best || diff < best_diff) {
                best = j;
                best_diff = diff;
            }
        }
        if (!best)
            break;
        rows += job_rows(best);
        if (job_len(best) > longest)
            longest = job_len(best);
        unlink_job(b, best);
        batch[n++] = best;
    }
    return n;
}

static void finish_dropped(struct batcher *b, struct job *dropped)
{
    while (dropped) {
        struct job *j = dropped;
        dropped = j->next;
        j->next = NULL;
        metrics_dropped(b->metrics, b->name, j->status == JOB_TIMEOUT ? "timeout" : "disconnect");
        j->done(j);
    }
}

/* ---- the workers ---- */

/* A running batch, as its cancel hook sees it: it is cancelled when the batcher aborts or
 * when every one of its jobs is past its deadline or has lost its client (one live client
 * keeps the whole batch running). Asked by several pass threads at once: the answer is
 * recomputed at most every STOP_INTERVAL, the rest read the last one. */
struct running {
    struct batcher *b;
    struct job **batch;
    size_t n;
    atomic_long next_check_us; /* monotonic microseconds */
    atomic_bool stop;
};

static bool job_expired(const struct job *j, double now)
{
    return (j->deadline > 0 && now >= j->deadline) || client_gone(j->fd);
}

static bool running_stop(void *arg)
{
    struct running *r = arg;
    if (atomic_load(&r->b->aborting))
        return true;
    double now = now_seconds();
    long now_us = (long)(now * 1e6), due = atomic_load(&r->next_check_us);
    if (now_us < due || !atomic_compare_exchange_strong(&r->next_check_us, &due,
                                                        now_us + (long)(STOP_INTERVAL * 1e6)))
        return atomic_load(&r->stop);
    bool all = true;
    for (size_t i = 0; i < r->n && all; i++)
        all = job_expired(r->batch[i], now);
    if (all)
        atomic_store(&r->stop, true);
    return all;
}

/* A job of a cancelled batch: why it ended. */
static void cancelled_job(struct batcher *b, struct job *j)
{
    if (atomic_load(&b->aborting)) {
        j->status = JOB_FAILED;
        j->err_kind = ERR_UNAVAILABLE;
        snprintf(j->error, sizeof j->error, "the server is shutting down");
    } else {
        j->status = j->deadline > 0 && now_seconds() >= j->deadline ? JOB_TIMEOUT
                                                                     : JOB_DISCONNECTED;
    }
}

static void run_batch(struct batcher *b, struct pipeline_worker *w, struct job **batch, size_t n,
                      struct pipeline_request **reqs)
{
    double t0 = now_seconds();
    size_t rows = 0, tokens = 0, longest = 0;
    for (size_t i = 0; i < n; i++) {
        reqs[i] = batch[i]->req;
        rows += job_rows(batch[i]);
        tokens += pipeline_request_tokens(batch[i]->req);
        if (job_len(batch[i]) > longest)
            longest = job_len(batch[i]);
        batch[i]->started = t0;
        metrics_queue_time(b->metrics, b->name, t0 - batch[i]->enqueued);
    }
    struct err e = {0};
    struct running r = {.b = b, .batch = batch, .n = n};
    atomic_init(&r.next_check_us, (long)(t0 * 1e6));
    atomic_init(&r.stop, false);
    pipeline_worker_set_stop(w, running_stop, &r);
    int rc = pipeline_forward(b->p, w, reqs, n, &e);
    pipeline_worker_set_stop(w, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        struct job *j = batch[i];
        if (rc == ERR_CANCELLED) {
            cancelled_job(b, j);
            continue;
        }
        struct err fe = {0};
        int frc = rc ? rc : pipeline_finish(b->p, j->req, &j->result, &fe);
        if (frc) {
            j->status = JOB_FAILED;
            j->err_kind = frc;
            snprintf(j->error, sizeof j->error, "%s", rc ? e.msg : fe.msg);
        } else {
            j->status = JOB_OK;
        }
    }
    double t1 = now_seconds();
    metrics_batch(b->metrics, b->name, rows, tokens, rows * longest, t1 - t0);
    for (size_t i = 0; i < n; i++) {
        batch[i]->infer_seconds = t1 - t0;
        batch[i]->batch_rows = rows;
        batch[i]->done(batch[i]);
    }
}

static void *worker_main(void *arg)
{
    struct batcher *b = arg;
    struct err e = {0};
    struct pipeline_worker *w = NULL;
    pipeline_worker_new(b->n_threads, &w, &e);
    size_t cap = b->cfg.max_batch_size;
    struct job **batch = calloc(cap, sizeof *batch);
    struct pipeline_request **reqs = calloc(cap, sizeof *reqs);
    if (!w || !batch || !reqs)
        log_msg(LOG_ERROR, "model %s: a worker could not start: %s", b->name,
                w ? "out of memory" : e.msg);
    pthread_mutex_lock(&b->mu);
    for (;;) {
        struct job *dropped = NULL;
        double now = now_seconds();
        if (b->head)
            sweep(b, now, &dropped);
        if (dropped) {
            metrics_queue_depth(b->metrics, b->name, (long)b->depth);
            pthread_mutex_unlock(&b->mu);
            finish_dropped(b, dropped);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        if (!b->head) {
            if (b->stopping)
                break;
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        if (!b->stopping && !queue_full(b) && worth_waiting(b) &&
            now < b->head->enqueued + (double)b->cfg.max_queue_delay_us * 1e-6) {
            double t = next_wake(b);
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            double wait = t - now;
            if (wait < 0)
                wait = 0;
            long ns = ts.tv_nsec + (long)((wait - (double)(long)wait) * 1e9);
            ts.tv_sec += (time_t)wait + ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&b->cv, &b->mu, &ts);
            continue;
        }
        size_t n = pick(b, batch, cap);
        b->last_batch_jobs = n;
        metrics_queue_depth(b->metrics, b->name, (long)b->depth);
        pthread_mutex_unlock(&b->mu);
        /* a client that left while its job waited: drop it now rather than compute */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (client_gone(batch[i]->fd)) {
                batch[i]->status = JOB_DISCONNECTED;
                batch[i]->next = dropped;
                dropped = batch[i];
            } else {
                batch[kept++] = batch[i];
            }
        }
        finish_dropped(b, dropped);
        if (kept && (!w || !batch || !reqs)) {
            for (size_t i = 0; i < kept; i++) {
                batch[i]->status = JOB_FAILED;
                batch[i]->err_kind = ERR_NOMEM;
                snprintf(batch[i]->error, sizeof batch[i]->error, "the worker has no context");
                batch[i]->done(batch[i]);
            }
        } else if (kept) {
            run_batch(b, w, batch, kept, reqs);
        }
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    free(batch);
    free(reqs);
    pipeline_worker_free(w);
    return NULL;
}

struct batcher *batcher_new(const struct pipeline *p, const struct model_config *cfg,
                            struct metrics *metrics, const char *name, struct err *e)
{
    struct batcher *b = calloc(1, sizeof *b);
    if (!b || !(b->name = strdup(name))) {
        free(b);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    b->p = p;
    b->cfg = cfg->batching;
    b->metrics = metrics;
    b->n_workers = cfg->workers > 0 ? cfg->workers : 1;
    b->n_threads = cfg->threads;
    if (b->n_threads <= 0) {
        int cpus = cpus_usable();
        b->n_threads = cpus / b->n_workers > 0 ? cpus / b->n_workers : 1;
    }
    pthread_mutex_init(&b->mu, NULL);
    atomic_init(&b->aborting, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->threads = calloc((size_t)b->n_workers, sizeof *b->threads);
    if (!b->threads) {
        batcher_free(b);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < b->n_workers; i++) {
        if (pthread_create(&b->threads[i], NULL, worker_main, b) != 0) {
            batcher_free(b);
            err_set(e, ERR_INTERNAL, "model %s: cannot start worker threads", name);
            return NULL;
        }
        b->n_started++;
    }
    metrics_queue_depth(metrics, name, 0);
    return b;
}

int batcher_push(struct batcher *b, struct job *j, struct err *e)
{
    pthread_mutex_lock(&b->mu);
    if (b->stopping || atomic_load(&b->aborting)) {
        pthread_mutex_unlock(&b->mu);
        return err_set(e, ERR_UNAVAILABLE, "model %s is being unloaded", b->name);
    }
    if (b->depth >= b->cfg.max_queue_size) {
        size_t depth = b->depth; /* read under the lock */
        pthread_mutex_unlock(&b->mu);
        return err_set(e, ERR_BUSY, "Model is overloaded: %zu requests are queued for %s", depth,
                       b->name);
    }
    j->enqueued = now_seconds();
    j->prev = b->tail;
    j->next = NULL;
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    b->depth++;
    b->queued_rows += job_rows(j);
    b->queued_tokens += pipeline_request_tokens(j->req);
    metrics_queue_depth(b->metrics, b->name, (long)b->depth);
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

size_t batcher_depth(struct batcher *b)
{
    pthread_mutex_lock(&b->mu);
    size_t n = b->depth;
    pthread_mutex_unlock(&b->mu);
    return n;
}

void batcher_stop(struct batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->n_started; i++)
        pthread_join(b->threads[i], NULL);
    b->n_started = 0;
}

void batcher_abort(struct batcher *b)
{
    pthread_mutex_lock(&b->mu);
    atomic_store(&b->aborting, true);
    struct job *dropped = NULL;
    while (b->head) {
        struct job *j = b->head;
        unlink_job(b, j);
        cancelled_job(b, j);
        j->next = dropped;
        dropped = j;
    }
    metrics_queue_depth(b->metrics, b->name, 0);
    pthread_mutex_unlock(&b->mu);
    while (dropped) {
        struct job *j = dropped;
        dropped = j->next;
        j->next = NULL;
        j->done(j);
    }
}

void batcher_free(struct batcher *b)
{
    if (!b)
        return;
    batcher_stop(b);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b->threads);
    free(b->name);
    free(b);
}
