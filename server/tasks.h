/* tasks: a pool of threads running queued tasks in arrival order. The HTTP layer uses it to
 * keep its polling threads free (they only read headers, route and write): parsing bodies,
 * tokenizing, rendering chat templates and encoding replies run here. A task is embedded
 * in its owner, so queueing one never allocates and never fails. */
#ifndef INFERD_TASKS_H
#define INFERD_TASKS_H

#include "err.h"

struct task {
    void (*run)(struct task *t); /* called once per tasks_push, on a pool thread */
    struct task *next;           /* the pool's */
};

struct tasks;

/* Starts n threads (n >= 1). */
struct tasks *tasks_new(int n, struct err *e);
/* Queues t; it runs on the next idle thread. */
void tasks_push(struct tasks *p, struct task *t);
/* Runs what is queued, joins the threads and frees the pool; NULL is a no-op. */
void tasks_free(struct tasks *p);

#endif
