/* deadline: the read deadline (server.read_timeout_ms) of the calls still reading their
 * request. */
#include "call.h"

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

/* ---- the read deadline ----
 *
 * libmicrohttpd's own timeout is an inactivity timeout: a client that sends a header byte
 * every few seconds (slowloris) would hold its connection for ever. Every call is on the
 * `reading` list from its request line (libmicrohttpd's URI callback) until its body is in;
 * the sweeper thread shuts down the socket of one still reading after read_timeout_ms, and
 * libmicrohttpd then closes the connection as it does for any socket error. The socket is
 * never closed under the sweeper: on_completed takes the call off the list (under reading.mu)
 * before libmicrohttpd closes it. Lock order: reading.mu alone (nothing is taken inside). */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct call *head;
    bool stop;
    double limit; /* seconds */
    pthread_t thread;
    bool started;
} reading = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

void deadline_add(struct call *c)
{
    pthread_mutex_lock(&reading.mu);
    c->reading = true;
    c->rprev = NULL;
    c->rnext = reading.head;
    if (reading.head)
        reading.head->rprev = c;
    reading.head = c;
    pthread_mutex_unlock(&reading.mu);
}

void deadline_done(struct call *c)
{
    pthread_mutex_lock(&reading.mu);
    if (c->reading) {
        if (c->rprev)
            c->rprev->rnext = c->rnext;
        else
            reading.head = c->rnext;
        if (c->rnext)
            c->rnext->rprev = c->rprev;
        c->reading = false;
    }
    pthread_mutex_unlock(&reading.mu);
}

static void *sweeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&reading.mu);
    while (!reading.stop) {
        double now = now_seconds();
        for (struct call *c = reading.head; c; c = c->rnext) {
            if (!c->cut && c->fd >= 0 && now - c->t_start > reading.limit) {
                shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&reading.cv, &reading.mu, &ts);
    }
    pthread_mutex_unlock(&reading.mu);
    return NULL;
}

void deadline_stop(void)
{
    if (!reading.started)
        return;
    pthread_mutex_lock(&reading.mu);
    reading.stop = true;
    pthread_cond_signal(&reading.cv);
    pthread_mutex_unlock(&reading.mu);
    pthread_join(reading.thread, NULL);
    reading.started = false;
}

int deadline_start(double limit, struct err *e)
{
    reading.stop = false;
    reading.limit = limit;
    if (pthread_create(&reading.thread, NULL, sweeper_main, NULL) != 0)
        return err_set(e, ERR_INTERNAL, "cannot start the read-deadline thread");
    reading.started = true;
    return 0;
}
