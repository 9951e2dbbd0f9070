/* stream: a call's body sent as it is produced (Server-Sent Events): the producer writes,
 * libmicrohttpd pulls. */
#include "call.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- streamed bodies ----
 *
 * libmicrohttpd pulls a callback response's body through stream_read whenever the socket can
 * take more. With nothing to send, stream_read suspends the connection (allowed from a
 * content reader, MHD_suspend_connection's documentation) and returns 0; the producer's next
 * write resumes it, which wakes the connection's polling thread through its inter-thread
 * channel (MHD_USE_ITC). Both happen under the stream's lock, so a resume always follows the
 * suspend it answers: a resume that came first would be swallowed by the suspend
 * (internal_suspend_connection_ cancels a pending resume) and leave the connection stalled
 * in MHD_CONNECTION_CHUNKED_BODY_UNREADY. Lock order: libmicrohttpd's response mutex (held
 * around stream_read), then the stream's, then libmicrohttpd's cleanup mutex (suspend and
 * resume take it); nothing takes them the other way round. */

struct call_stream {
    pthread_mutex_t mu;
    struct MHD_Connection *conn; /* while the response lives; NULL after */
    char *buf;
    size_t len, off, cap;
    bool suspended; /* by stream_read, waiting for a write */
    bool started;   /* call_stream_start ran */
    bool ended, ok;
    int refs;
    size_t sent; /* bytes handed to libmicrohttpd (the access log's) */
};

struct call_stream *call_stream_new(void)
{
    struct call_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 1;
    return s;
}

void call_stream_unref(struct call_stream *s)
{
    pthread_mutex_lock(&s->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->buf);
    free(s);
}

/* Wakes a connection stream_read put to sleep; s->mu held. */
static void stream_wake(struct call_stream *s)
{
    if (s->suspended && s->conn) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct call_stream *s = cls;
    pthread_mutex_lock(&s->mu);
    if (s->off < s->len) {
        size_t n = s->len - s->off < max ? s->len - s->off : max;
        memcpy(out, s->buf + s->off, n);
        s->off += n;
        s->sent += n;
        if (s->off == s->len)
            s->off = s->len = 0;
        pthread_mutex_unlock(&s->mu);
        return (ssize_t)n;
    }
    if (s->ended) {
        bool ok = s->ok;
        pthread_mutex_unlock(&s->mu);
        return ok ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    s->suspended = true;
    MHD_suspend_connection(s->conn);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* The response is destroyed (body sent, or the connection closed). */
static void stream_release(void *cls)
{
    struct call_stream *s = cls;
    pthread_mutex_lock(&s->mu);
    s->conn = NULL;
    s->suspended = false;
    pthread_mutex_unlock(&s->mu);
    call_stream_unref(s);
}

int call_stream_start(struct call *c, struct call_stream *s, const char *content_type)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_release);
    if (!r) {
        call_error(c, ERR_NOMEM, NULL, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    s->refs += 2; /* the response's, dropped by stream_release, and the call's (on_completed) */
    s->conn = c->conn;
    s->started = true;
    pthread_mutex_unlock(&s->mu);
    MHD_add_response_header(r, "Content-Type", content_type);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    call_common_headers(c, r);
    c->stream = s;
    call_deliver(c, 200, r);
    c->phase = PHASE_ANSWERED;
    return 0;
}

int call_stream_write(struct call_stream *s, const char *data, size_t len)
{
    pthread_mutex_lock(&s->mu);
    if (s->started && !s->conn) { /* the response is gone: so is the client */
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) {
            pthread_mutex_unlock(&s->mu);
            return -1;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    stream_wake(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void call_stream_end(struct call_stream *s, bool ok)
{
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    s->ok = ok;
    stream_wake(s);
    pthread_mutex_unlock(&s->mu);
    call_stream_unref(s);
}

size_t call_stream_sent(struct call_stream *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->sent;
    pthread_mutex_unlock(&s->mu);
    return n;
}
