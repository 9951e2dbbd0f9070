/* call: the private side of an HTTP call, shared by the files of the HTTP core and by no one
 * else (route handlers see handler.h's, registry.h's and server.h's functions): http.c (a
 * call's life: libmicrohttpd's callbacks, request threads, submitting work, suspend and resume), router.c (the route
 * table, API keys), reply.c (responses; the one map from error kinds to statuses and each
 * dialect's error shape), stream.c (SSE bodies), deadline.c (the read deadline), access_log.c
 * (request ids, one log line per request) and tls.c (server.tls). Lock order: a call's mu,
 * then libmicrohttpd's locks; a stream's mu (stream.c) after libmicrohttpd's response mutex. */
#ifndef INFERD_CALL_H
#define INFERD_CALL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "batcher.h"
#include "handler.h"
#include "http.h"
#include "registry.h"
#include "routes.h"
#include "server.h"
#include "tasks.h"

/* A route's flags (router.c's table). */
enum {
    ROUTE_OPEN = 1 << 0,    /* no API key needed (Kubernetes' probes cannot send one) */
    ROUTE_ON_POLL = 1 << 1, /* cheap: answered on the polling thread, never queued behind work */
    ROUTE_PROBE = 1 << 2,   /* asked every few seconds: answered while draining, logged at DEBUG */
};

struct route {
    const char *method;
    const char *path; /* exact ("/" too), or a prefix ending in '/' + one {name} segment */
    route_fn fn;
    enum dialect dialect;
    unsigned flags; /* ROUTE_* */
};

enum phase { PHASE_BODY, PHASE_QUEUED, PHASE_SUSPENDED, PHASE_ANSWERED };

/* What a request thread does with a call: run its handler, or answer it once woken. */
enum step { STEP_HANDLE, STEP_ANSWER };

#define MAX_EXTRA_HEADERS 8
/* The status logged (access log, metrics) for a client that left before its answer: nginx's
 * 499, never sent. */
#define STATUS_CLIENT_CLOSED 499
#define REQUEST_ID_MAX 128 /* bytes of a client's x-request-id kept; a longer one is replaced */

struct call {
    struct server *s;
    struct MHD_Connection *conn;
    const struct route *route; /* NULL: unknown path */
    enum dialect dialect;
    char *arg;
    enum phase phase;
    char *body;
    size_t len, cap;
    size_t sent; /* bytes of the answer (send_text) */
    json_t *json;
    size_t discarded; /* body bytes dropped past max_body_bytes */
    bool deferred;    /* the final call was put off once (on_request) */
    /* queued work */
    struct model *model;
    struct pipeline_request *req;
    respond_fn respond;
    void *user;
    struct job job;
    double t_start, t_prepared;
    int status; /* of the response queued; 0 none yet */
    /* answered from another thread (call_suspend / call_on_end / call_add_header) */
    void (*on_resume)(struct call *c, void *arg);
    void *resume_arg;
    void (*on_end)(void *arg);
    void *end_arg;
    struct {
        char name[40], value[88];
    } hdr[MAX_EXTRA_HEADERS];
    size_t n_hdr;
    /* off the polling threads (lock order: mu, then libmicrohttpd's locks) */
    struct task task;
    enum step step;
    pthread_mutex_t mu;
    bool in_work;      /* a request thread has the call; its connection is suspended */
    bool wake_wanted;  /* woken while in_work: answer before letting go */
    struct MHD_Response *pending; /* built off the polling thread, queued on resume */
    /* reading its request (from the request line until the body is in): see the sweeper */
    bool routed; /* start_call ran */
    bool reading, cut;
    int fd;
    struct call *rprev, *rnext;
    /* the access log (on_completed) */
    char rid[REQUEST_ID_MAX + 1]; /* x-request-id: the client's, or generated */
    char client[48];              /* the peer's address */
    char method[16];
    char path[256];                 /* as requested, cut */
    char err[512];                  /* an error answer's message (call_error's size) */
    const char *auth;               /* why a key was refused: "missing", "invalid"; NULL */
    double queue_s, infer_s;        /* a generation's (call_set_times); -1 unknown */
    struct call_stream *stream;     /* a streamed answer: its bytes are counted there */
};

/* router.c: routes c (method, path, key, declared size) and answers the failures. */
void router_start_call(struct call *c, const char *url, const char *method);

/* reply.c: hands r to libmicrohttpd, or keeps it in the call for its resume when built on a
 * request thread. */
void call_deliver(struct call *c, int status, struct MHD_Response *r);
/* The headers every response of c carries: Connection: close while draining, x-request-id,
 * the handler's (call_add_header). */
void call_common_headers(struct call *c, struct MHD_Response *r);

/* stream.c: the bytes a stream has sent; dropping a reference to it. */
size_t call_stream_sent(struct call_stream *s);
void call_stream_unref(struct call_stream *s);

/* deadline.c: c reads its request from now (its request line) until deadline_done; the
 * thread that cuts the late ones runs between deadline_start and deadline_stop. */
void deadline_add(struct call *c);
void deadline_done(struct call *c);
int deadline_start(double limit_seconds, struct err *e);
void deadline_stop(void);

/* access_log.c: what the log line says of the request (id, peer, method, path), and the line
 * itself when the call ends. */
void access_note(struct call *c, const char *url, const char *method);
void access_log(struct call *c, int status);

/* tls.c */
/* server.tls's files, NUL-terminated as libmicrohttpd takes them. It hands the text to GnuTLS
 * when the daemon starts and keeps no pointer to it, so they are freed right after. */
struct tls_pems {
    char *cert, *key;
};
/* With server.tls set: reads both files, adds MHD_USE_TLS to *flags and the two options to
 * opts (ended by MHD_OPTION_END either way). */
int tls_setup(const struct tls_config *t, unsigned *flags, struct MHD_OptionItem opts[3],
              struct tls_pems *p, struct err *e);
void tls_pems_free(struct tls_pems *p);

#endif
