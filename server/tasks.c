/* tasks: see tasks.h. One mutex guards the FIFO; idle threads wait on one condition. */
#include "tasks.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct tasks {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct task *head, *tail;
    bool stopping;
    pthread_t *threads;
    int n_started;
};

static void *tasks_main(void *arg)
{
    struct tasks *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct task *t = p->head;
        if (!t) {
            if (p->stopping)
                break;
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        t->next = NULL;
        t->run(t);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct tasks *tasks_new(int n, struct err *e)
{
    struct tasks *p = calloc(1, sizeof *p);
    if (p)
        p->threads = calloc((size_t)(n > 0 ? n : 1), sizeof *p->threads);
    if (!p || !p->threads) {
        free(p);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < (n > 0 ? n : 1); i++) {
        if (pthread_create(&p->threads[i], NULL, tasks_main, p) != 0) {
            tasks_free(p);
            err_set(e, ERR_INTERNAL, "cannot start the request threads");
            return NULL;
        }
        p->n_started++;
    }
    return p;
}

void tasks_push(struct tasks *p, struct task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void tasks_free(struct tasks *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}
