/* batcher: one model's queue and its pool of workers. Jobs (prepared pipeline requests)
 * wait in arrival order; an idle worker takes the oldest job and the queued jobs closest to
 * its length while the batch stays within max_batch_size rows and max_batch_tokens padded
 * tokens (rows x longest row), waiting up to max_queue_delay_us for a fuller batch when
 * requests come concurrently (a lone request after a batch of one runs at once); it runs
 * them in one pipeline_forward, finishes each and hands it back through job->done. Jobs whose
 * client has gone (the socket reads EOF) or whose deadline passed are dropped before they
 * run; a running batch all of whose jobs are gone or late is cancelled between layers. Each worker owns its oneDNN context and scratch; the pipeline is shared read-only.
 * It knows nothing of HTTP beyond a socket to peek at. */
#ifndef INFERD_BATCHER_H
#define INFERD_BATCHER_H

#include <jansson.h>
#include <stddef.h>

#include "clock.h"
#include "config.h"
#include "err.h"
#include "engine.h"

struct metrics;

enum job_status {
    JOB_OK,           /* result holds the pipeline's output */
    JOB_FAILED,       /* error/err_kind say why (the engine failed) */
    JOB_TIMEOUT,      /* its deadline passed before it ran */
    JOB_DISCONNECTED, /* the client went away while it was queued */
};

struct job {
    struct pipeline_request *req; /* borrowed; must outlive the job */
    double deadline;              /* monotonic seconds; 0 = none */
    int fd;                       /* the client's socket, -1 when unknown */
    void (*done)(struct job *j);  /* called once, from a worker or the batcher's stop */
    void *owner;                  /* for done */
    /* set by the batcher */
    double enqueued, started; /* monotonic seconds */
    double infer_seconds;     /* wall time of the batch it ran in */
    size_t batch_rows;        /* encoder rows of that batch */
    enum job_status status;
    json_t *result; /* JOB_OK: new reference, taken over by done's owner */
    int err_kind;
    char error[ERR_MSG_SIZE];
    struct job *prev, *next;
};

struct batcher;

/* Starts cfg->workers threads running p (threads each: cfg->threads, 0 = cores/workers).
 * name labels the metrics. p must outlive the batcher. */
struct batcher *batcher_new(const struct pipeline *p, const struct model_config *cfg,
                            struct metrics *metrics, const char *name, struct err *e);
/* Queues j; ERR_BUSY when max_queue_size jobs wait, ERR_UNAVAILABLE once stopping. */
int batcher_push(struct batcher *b, struct job *j, struct err *e);
/* Ends every job now: queued ones are failed (ERR_UNAVAILABLE, "shutting down") and a
 * running batch is cancelled between layers; each job's done runs as usual. For a drain
 * that ran out of time. Later pushes still queue until batcher_stop. */
void batcher_abort(struct batcher *b);
/* Lets the workers finish every queued job, then joins them. */
void batcher_stop(struct batcher *b);
/* batcher_stop, then frees. */
void batcher_free(struct batcher *b);
size_t batcher_depth(struct batcher *b);


#endif
