/* http: see http.h. libmicrohttpd runs a small pool of polling threads with suspend/resume.
 * The polling threads only read headers and bodies, route, check keys and write: once a
 * POST body is in, the connection is suspended and the call goes to the request threads
 * (tasks.h), which parse the JSON, run the route's handler (tokenizing, rendering chat
 * templates) and build the response; a queued call's connection stays suspended until a
 * worker has its result, which a request thread turns into the response. A response built
 * off the polling threads waits in the call (pending) until the connection is resumed,
 * since libmicrohttpd takes responses only inside its own callback. So no polling thread
 * ever waits for compute or large JSON, and /health answers under any load. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utf8proc.h>

#include "batcher.h"
#include "log.h"
#include "metrics.h"
#include "tasks.h"

#define DISCARD_LIMIT (1u << 20) /* bytes of an oversized chunked body read before closing */
/* libmicrohttpd's per-connection pool: the request line, headers, query arguments and the
 * read buffer live there. Its default 32 KiB closed a request of ~500 query arguments without
 * an answer (each argument takes ~64 bytes of pool, and when the arguments fill it there is
 * no room left for the error response); 1 MiB answers 12,000 arguments (URIs of ~100 KB,
 * far past the 8 KB proxies pass) and headers over it get libmicrohttpd's 431. The pool is
 * mapped, not touched: 200 open connections add 0.5 MB of RSS. */
#define CONN_MEMORY (1u << 20)
#define TRIM_AFTER_BYTES (1u << 20) /* a call with a larger body or answer ends in malloc_trim */

struct http {
    struct MHD_Daemon *d;
    struct tasks *work; /* the request threads */
};

struct route {
    const char *method;
    const char *path; /* exact ("/" too), or a prefix ending in '/' + one {name} segment */
    route_fn fn;
    enum dialect dialect;
    bool open;    /* no API key needed */
    bool on_poll; /* cheap: answered on the polling thread (probes, metrics, listings) */
};

static const struct route routes[] = {
    {"GET", "/health", route_health, DIALECT_HF, true, true},
    {"GET", "/ready", route_ready, DIALECT_HF, true, true},
    {"GET", "/metrics", route_metrics, DIALECT_HF, false, true},
    {"POST", "/models/", route_hf_models, DIALECT_HF, false, false},
    {"POST", "/embed", route_tei_embed, DIALECT_HF, false, false},
    {"POST", "/predict", route_tei_predict, DIALECT_HF, false, false},
    {"POST", "/rerank", route_tei_rerank, DIALECT_HF, false, false},
    {"POST", "/tokenize", route_tei_tokenize, DIALECT_HF, false, false},
    {"POST", "/decode", route_tei_decode, DIALECT_HF, false, false},
    {"GET", "/info", route_tei_info, DIALECT_HF, false, true},
    {"POST", "/v1/embeddings", route_openai_embeddings, DIALECT_OPENAI, false, false},
    {"POST", "/embeddings", route_openai_embeddings, DIALECT_OPENAI, false, false},
    {"GET", "/v1/models", route_openai_models, DIALECT_OPENAI, false, true},
    {"POST", "/generate", route_tgi_generate, DIALECT_TGI, false, false},
    {"POST", "/generate_stream", route_tgi_generate_stream, DIALECT_TGI, false, false},
    {"POST", "/v1/completions", route_openai_completions, DIALECT_OPENAI, false, false},
    {"POST", "/v1/chat/completions", route_openai_chat, DIALECT_OPENAI, false, false},
    {"POST", "/", route_tgi_compat, DIALECT_TGI, false, false},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

enum phase { PHASE_BODY, PHASE_QUEUED, PHASE_SUSPENDED, PHASE_ANSWERED };

/* What a request thread does with a call: run its handler, or answer it once woken. */
enum step { STEP_HANDLE, STEP_ANSWER };

#define MAX_EXTRA_HEADERS 8
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

static struct tasks *work_pool; /* the running daemon's request threads (one daemon a process) */

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

static void reading_add(struct call *c)
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

static void reading_done(struct call *c)
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

static void sweeper_stop(void)
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

static int sweeper_start(double limit, struct err *e)
{
    reading.stop = false;
    reading.limit = limit;
    if (pthread_create(&reading.thread, NULL, sweeper_main, NULL) != 0)
        return err_set(e, ERR_INTERNAL, "cannot start the read-deadline thread");
    reading.started = true;
    return 0;
}

static atomic_long active_calls;

long http_active_calls(void)
{
    return atomic_load(&active_calls);
}

/* ---- accessors ---- */

json_t *call_body(const struct call *c)
{
    return c->json;
}
const char *call_arg(const struct call *c)
{
    return c->arg;
}
const char *call_query(const struct call *c, const char *key)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, key);
}
struct server *call_server(const struct call *c)
{
    return c->s;
}
struct model *call_model(const struct call *c)
{
    return c->model;
}
const struct pipeline_request *call_request(const struct call *c)
{
    return c->req;
}
void call_set_user(struct call *c, void *user)
{
    free(c->user);
    c->user = user;
}
void *call_user(const struct call *c)
{
    return c->user;
}

/* ---- responses ---- */

static void add_ms_header(struct MHD_Response *r, const char *name, double seconds)
{
    char v[32];
    snprintf(v, sizeof v, "%.3f", seconds * 1e3);
    MHD_add_response_header(r, name, v);
}

/* Hands r to libmicrohttpd, or keeps it for the resume when built on a request thread. */
static void deliver(struct call *c, int status, struct MHD_Response *r)
{
    c->status = status;
    pthread_mutex_lock(&c->mu);
    bool keep = c->in_work && !c->pending;
    if (keep)
        c->pending = r;
    pthread_mutex_unlock(&c->mu);
    if (keep)
        return;
    MHD_queue_response(c->conn, (unsigned)status, r);
    MHD_destroy_response(r);
}

/* Queues status + text; every response goes through here. */
static void send_text(struct call *c, int status, char *text, size_t len, const char *type)
{
    c->sent = len;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, text, text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 401)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    if (status == 429 || status == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    if (status == 405 && c->route)
        MHD_add_response_header(r, "Allow", c->route->method);
    if (server_draining(c->s))
        MHD_add_response_header(r, "Connection", "close");
    if (c->rid[0])
        MHD_add_response_header(r, "x-request-id", c->rid);
    for (size_t i = 0; i < c->n_hdr; i++)
        MHD_add_response_header(r, c->hdr[i].name, c->hdr[i].value);
    if (c->phase == PHASE_QUEUED && c->job.started > 0) {
        add_ms_header(r, "x-tokenization-time", c->t_prepared - c->t_start);
        add_ms_header(r, "x-queue-time", c->job.started - c->job.enqueued);
        add_ms_header(r, "x-inference-time", c->job.infer_seconds);
        add_ms_header(r, "x-total-time", now_seconds() - c->t_start);
        char v[32];
        snprintf(v, sizeof v, "%zu", c->job.batch_rows);
        MHD_add_response_header(r, "x-batch-size", v);
    }
    deliver(c, status, r);
}

/* The body when the real one cannot be encoded (out of memory), in the call's dialect. */
static const char *fallback_body(enum dialect d)
{
    static const char *const bodies[] = {
        [DIALECT_HF] = "{\"error\":\"out of memory\",\"error_type\":\"Backend\"}",
        [DIALECT_TGI] = "{\"error\":\"out of memory\",\"error_type\":\"generation\"}",
        [DIALECT_OPENAI] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                           "\"server_error\",\"param\":null,\"code\":null}}",
    };
    return bodies[d];
}

/* An error body's message ("error" or "error.message"), for the log line. */
static void keep_error(struct call *c, const json_t *body)
{
    const json_t *e = json_object_get(body, "error");
    const char *msg = json_string_value(json_is_object(e) ? json_object_get(e, "message") : e);
    if (msg && !c->err[0])
        snprintf(c->err, sizeof c->err, "%s", msg);
}

void call_reply(struct call *c, int status, json_t *body)
{
    if (c->status) { /* answered already: a handler bug, never a second response */
        json_decref(body);
        return;
    }
    if (status >= 400)
        keep_error(c, body);
    char *json =
        body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(body);
    /* the body ends with a newline (a shell's prompt after curl starts on its own line) */
    size_t len = json ? strlen(json) : 0;
    char *text = json ? realloc(json, len + 2) : NULL;
    if (text) {
        memcpy(text + len, "\n", 2);
    } else {
        free(json);
        text = strdup(fallback_body(c->dialect));
        status = 500;
    }
    send_text(c, status, text, text ? strlen(text) : 0, "application/json");
    c->phase = PHASE_ANSWERED;
}

void call_reply_text(struct call *c, int status, char *text, size_t len, const char *type)
{
    if (c->status) {
        free(text);
        return;
    }
    send_text(c, status, text, len, type);
    c->phase = PHASE_ANSWERED;
}

static const char *hf_error_type(int status)
{
    switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 413: return "PayloadTooLarge";
    case 422: return "Validation";
    case 429: return "Overloaded";
    case 503: return "Unhealthy";
    case 504: return "Timeout";
    default: return "Backend";
    }
}

/* TGI's error_type names (router/src/infer/mod.rs, server.rs). */
static const char *tgi_error_type(int status)
{
    switch (status) {
    case 401: return "unauthorized";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 413: return "payload_too_large";
    case 422: return "validation";
    case 424: return "generation";
    case 429: return "overloaded";
    case 503: return "unhealthy";
    case 504: return "timeout";
    default: return status >= 500 ? "generation" : "bad_request";
    }
}

static const char *openai_error_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 429: return "rate_limit_error";
    case 503: return "unavailable_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static const char *openai_error_code(int status)
{
    switch (status) {
    case 401: return "invalid_api_key";
    case 404: return "not_found";
    case 413: return "payload_too_large";
    case 429: return "overloaded";
    default: return NULL;
    }
}

/* Copies src into dst[cap] as valid UTF-8 (JSON strings must be): each byte that does not
 * start a valid character becomes U+FFFD, and a cut never splits a character. Error messages
 * quote clients' bytes (paths, names), which may be anything. */
static void utf8_sanitize(char *dst, size_t cap, const char *src)
{
    static const char repl[] = "\xEF\xBF\xBD";
    size_t o = 0;
    for (const uint8_t *p = (const uint8_t *)src; *p;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p, -1, &cp);
        const char *from = n > 0 ? (const char *)p : repl;
        size_t len = n > 0 ? (size_t)n : 3;
        if (o + len >= cap)
            break;
        memcpy(dst + o, from, len);
        o += len;
        p += n > 0 ? n : 1;
    }
    dst[o] = '\0';
}

void call_error(struct call *c, int status, const char *param, const char *fmt, ...)
{
    char raw[512], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    utf8_sanitize(msg, sizeof msg, raw);
    if (!c->status)
        snprintf(c->err, sizeof c->err, "%s", msg);
    json_t *body;
    if (c->dialect == DIALECT_OPENAI) {
        const char *code = openai_error_code(status);
        body = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type",
                         openai_error_type(status), "param", param, "code", code);
    } else {
        body =
            json_pack("{s:s, s:s}", "error", msg, "error_type",
                      c->dialect == DIALECT_TGI ? tgi_error_type(status) : hf_error_type(status));
    }
    call_reply(c, status, body);
}

int status_of_err(int kind)
{
    switch (kind) {
    case ERR_INPUT:
    case ERR_INVALID: return 422;
    case ERR_NOT_FOUND: return 404;
    case ERR_TOO_LARGE: return 413;
    case ERR_BUSY: return 429;
    case ERR_UNAVAILABLE: return 503;
    case ERR_TIMEOUT: return 504;
    default: return 500;
    }
}

/* ---- submitting work ---- */

/* The call's result is ready (a job done, a generation finished): a request thread answers
 * it, then resumes the connection. Woken while a request thread still has it (its handler
 * has not returned yet), that thread answers it before letting go. */
static void call_wake(struct call *c)
{
    pthread_mutex_lock(&c->mu);
    bool busy = c->in_work;
    if (busy)
        c->wake_wanted = true;
    else {
        c->in_work = true;
        c->step = STEP_ANSWER;
    }
    pthread_mutex_unlock(&c->mu);
    if (!busy)
        tasks_push(work_pool, &c->task);
}

/* A handler on a polling thread that waits for a result suspends its connection itself
 * (a request thread's call is suspended already). */
static void suspend_inline(struct call *c)
{
    pthread_mutex_lock(&c->mu);
    bool inl = !c->in_work;
    pthread_mutex_unlock(&c->mu);
    if (inl)
        MHD_suspend_connection(c->conn);
}

static void job_done(struct job *j)
{
    call_wake(j->owner);
}

/* A call's deadline passed (a drain waits for the calls in flight, whose deadlines bound it). */
static bool call_late(void *arg)
{
    const struct call *c = arg;
    long timeout_ms = server_config(c->s)->request_timeout_ms;
    return timeout_ms > 0 && now_seconds() >= c->t_start + (double)timeout_ms * 1e-3;
}

int call_submit(struct call *c, struct model *m, const json_t *inputs, const json_t *parameters,
                respond_fn respond)
{
    c->model = m;
    const struct pipeline *p = model_pipeline(m);
    struct err e = {0};
    struct pipeline_stop stop = {call_late, c};
    int rc = pipeline_prepare_until(p, inputs, parameters, &stop, &c->req, &e);
    if (rc == ERR_CANCELLED) {
        call_error(c, 504, NULL, "request timed out after %ld ms while tokenizing",
                   server_config(c->s)->request_timeout_ms);
        return rc;
    }
    if (rc) { /* OpenAI's only queued route is /v1/embeddings: its inputs are "input" */
        call_error(c, status_of_err(rc), c->dialect == DIALECT_OPENAI ? "input" : NULL, "%s",
                   e.msg);
        return rc;
    }
    size_t limit = model_config(m)->max_input_tokens;
    size_t longest = pipeline_request_max_len(c->req);
    if (limit && longest > limit) {
        call_error(c, 422, NULL,
                   "`inputs` must have less than %zu tokens. Given: %zu (ask for truncation "
                   "to cut them)",
                   limit + 1, longest);
        return ERR_INVALID;
    }
    c->respond = respond;
    c->t_prepared = now_seconds();
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    long timeout_ms = server_config(c->s)->request_timeout_ms;
    c->job = (struct job){
        .req = c->req,
        .deadline = timeout_ms > 0 ? c->t_start + (double)timeout_ms * 1e-3 : 0,
        .fd = ci ? ci->connect_fd : -1,
        .done = job_done,
        .owner = c,
    };
    c->phase = PHASE_QUEUED;
    suspend_inline(c);
    if ((rc = model_push(m, &c->job, &e)) != 0) {
        c->job.status = JOB_FAILED;
        c->job.err_kind = rc;
        snprintf(c->job.error, sizeof c->job.error, "%s", e.msg);
        job_done(&c->job);
    }
    return 0;
}

/* The resumed call: its job is done one way or another. */
static enum MHD_Result answer_job(struct call *c)
{
    struct job *j = &c->job;
    switch (j->status) {
    case JOB_DISCONNECTED: /* nobody is listening: the write fails and the connection closes */
        call_error(c, 503, NULL, "the client went away while the request was queued");
        c->status = 499;
        return MHD_YES;
    case JOB_TIMEOUT:
        call_error(c, 504, NULL, "request timed out after %ld ms",
                   server_config(c->s)->request_timeout_ms);
        return MHD_YES;
    case JOB_FAILED:
        call_error(c, status_of_err(j->err_kind), NULL, "%s", j->error);
        return MHD_YES;
    case JOB_OK: break;
    }
    json_t *result = j->result;
    j->result = NULL;
    int status = 200;
    struct err e = {0};
    json_t *body = c->respond(c, result, &status, &e);
    if (body != result)
        json_decref(result);
    if (!body) {
        call_error(c, status ? status : 500, NULL, "%s", e.msg);
        return MHD_YES;
    }
    call_reply(c, 200, body);
    return MHD_YES;
}

/* ---- calls answered from other threads ---- */

void call_suspend(struct call *c, void (*on_resume)(struct call *c, void *arg), void *arg)
{
    c->on_resume = on_resume;
    c->resume_arg = arg;
    c->phase = PHASE_SUSPENDED;
    suspend_inline(c);
}

void call_resume(struct call *c)
{
    call_wake(c);
}

void call_on_end(struct call *c, void (*fn)(void *arg), void *arg)
{
    c->on_end = fn;
    c->end_arg = arg;
}

void call_set_model(struct call *c, struct model *m)
{
    if (c->model)
        model_unref(c->model);
    c->model = m;
}

int call_fd(const struct call *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

void call_add_header(struct call *c, const char *name, const char *value)
{
    if (c->n_hdr >= MAX_EXTRA_HEADERS)
        return;
    snprintf(c->hdr[c->n_hdr].name, sizeof c->hdr[0].name, "%s", name);
    snprintf(c->hdr[c->n_hdr].value, sizeof c->hdr[0].value, "%s", value);
    c->n_hdr++;
}

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

static void stream_unref(struct call_stream *s)
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
    stream_unref(s);
}

int call_stream_start(struct call *c, struct call_stream *s, const char *content_type)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, s, stream_release);
    if (!r) {
        call_error(c, 500, NULL, "out of memory");
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
    if (server_draining(c->s))
        MHD_add_response_header(r, "Connection", "close");
    if (c->rid[0])
        MHD_add_response_header(r, "x-request-id", c->rid);
    for (size_t i = 0; i < c->n_hdr; i++)
        MHD_add_response_header(r, c->hdr[i].name, c->hdr[i].value);
    c->stream = s;
    deliver(c, 200, r);
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
    stream_unref(s);
}

/* ---- request handling ---- */

static const struct route *match(const char *url, const char *method, bool *known_path,
                                 const char **arg)
{
    const struct route *path_match = NULL;
    *arg = NULL;
    for (size_t i = 0; i < N_ROUTES; i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);
        const char *a = NULL;
        if (n > 1 && r->path[n - 1] == '/') {
            if (strncmp(url, r->path, n) != 0 || !url[n] || strchr(url + n, '/'))
                continue;
            a = url + n;
        } else if (strcmp(url, r->path) != 0) {
            continue;
        }
        path_match = r;
        if (strcmp(method, r->method) == 0) {
            *known_path = true;
            *arg = a;
            return r;
        }
    }
    *known_path = path_match != NULL;
    return path_match;
}

/* Constant-time comparison of the bearer token with each configured key. */
static bool key_ok(struct call *c)
{
    const struct server_config *cfg = server_config(c->s);
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization");
    c->auth = "invalid";
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        c->auth = "missing";
        return false;
    }
    const char *tok = h + 7;
    size_t tl = strlen(tok);
    bool ok = false;
    for (size_t i = 0; i < cfg->n_api_keys; i++) {
        const char *k = cfg->api_keys[i];
        size_t kl = strlen(k);
        unsigned diff = (unsigned)(kl ^ tl);
        for (size_t b = 0; b < kl; b++)
            diff |= (unsigned char)k[b] ^ (unsigned char)(b < tl ? tok[b] : 0);
        ok |= diff == 0;
    }
    if (ok)
        c->auth = NULL;
    return ok;
}

/* With keys configured, everything but the open routes (the probes) needs one, unknown paths
 * and wrong methods included: without a key nothing tells which routes exist. */
static bool authorized(struct call *c, const struct route *r, bool method_ok)
{
    if (server_config(c->s)->n_api_keys == 0 || (r && method_ok && r->open))
        return true;
    return key_ok(c);
}

/* First call for a request: route, method, auth, declared size. Answers the failures. */
static void start_call(struct call *c, const char *url, const char *method)
{
    bool known = false;
    const char *arg = NULL;
    const struct route *r = match(url, method, &known, &arg);
    c->route = r;
    c->dialect = r ? r->dialect : strncmp(url, "/v1/", 4) == 0 ? DIALECT_OPENAI : DIALECT_HF;
    bool method_ok = r && strcmp(method, r->method) == 0;
    if (!authorized(c, r, method_ok)) {
        call_error(c, 401, NULL, "missing or invalid API key (send \"Authorization: Bearer KEY\")");
        return;
    }
    if (!r) {
        call_error(c, 404, NULL, "no route for %s %s", method, url);
        return;
    }
    if (!method_ok) {
        call_error(c, 405, NULL, "%s does not accept %s (use %s)", url, method, r->method);
        return;
    }
    if (arg && !(c->arg = strdup(arg))) {
        call_error(c, 500, NULL, "out of memory");
        return;
    }
    size_t max = server_config(c->s)->max_body_bytes;
    const char *cl = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > max)
        call_error(c, 413, NULL, "request body of %s bytes is over the limit of %zu bytes", cl,
                   max);
}

static void run_handler(struct call *c)
{
    if (c->discarded) {
        call_error(c, 413, NULL, "request body is over the limit of %zu bytes",
                   server_config(c->s)->max_body_bytes);
        return;
    }
    if (strcmp(c->route->method, "POST") == 0) {
        json_error_t je;
        c->json = json_loadb(c->body ? c->body : "", c->len, JSON_ALLOW_NUL, &je);
        if (!c->json) {
            call_error(c, 400, NULL, "malformed JSON body: %s (line %d, column %d)", je.text,
                       je.line, je.column);
            return;
        }
        if (!json_is_object(c->json)) {
            call_error(c, 422, NULL, "the request body must be a JSON object");
            return;
        }
    }
    if (server_draining(c->s) && !c->route->open && c->route->fn != route_ready &&
        c->route->fn != route_metrics) {
        call_error(c, 503, NULL, "the server is shutting down");
        return;
    }
    c->route->fn(c);
    if (!c->status && c->phase != PHASE_QUEUED && c->phase != PHASE_SUSPENDED)
        call_error(c, 500, NULL, "the handler gave no answer");
}

/* A woken call: its job's result, or the suspended handler's continuation. */
static void answer_woken(struct call *c)
{
    if (c->phase == PHASE_QUEUED) {
        answer_job(c);
        return;
    }
    if (c->phase == PHASE_SUSPENDED) {
        c->phase = PHASE_ANSWERED;
        c->on_resume(c, c->resume_arg);
    }
    if (!c->status)
        call_error(c, 500, NULL, "the handler gave no answer");
}

/* A request thread's turn with a call (its connection suspended): run the handler or answer
 * it, again while it was woken meanwhile; then let go, resuming the connection when a
 * response waits (otherwise a worker's result wakes it later). */
static void work_run(struct task *t)
{
    struct call *c = (struct call *)((char *)t - offsetof(struct call, task));
    for (;;) {
        if (c->step == STEP_HANDLE)
            run_handler(c);
        else
            answer_woken(c);
        pthread_mutex_lock(&c->mu);
        if (c->wake_wanted) {
            c->wake_wanted = false;
            c->step = STEP_ANSWER;
            pthread_mutex_unlock(&c->mu);
            continue;
        }
        c->in_work = false;
        bool resume = c->pending != NULL;
        pthread_mutex_unlock(&c->mu);
        if (resume)
            MHD_resume_connection(c->conn);
        return;
    }
}

/* The body is in: a cheap route answers here, the others go to a request thread. */
static void dispatch(struct call *c)
{
    reading_done(c);
    if (c->route->on_poll) {
        run_handler(c);
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->in_work = true;
    c->step = STEP_HANDLE;
    pthread_mutex_unlock(&c->mu);
    MHD_suspend_connection(c->conn);
    tasks_push(work_pool, &c->task);
}

/* A resumed call: queue the response a request thread built. */
static enum MHD_Result send_pending(struct call *c)
{
    pthread_mutex_lock(&c->mu);
    struct MHD_Response *r = c->pending;
    c->pending = NULL;
    pthread_mutex_unlock(&c->mu);
    if (!r) /* resumed with nothing to say: never happens; close rather than guess */
        return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(c->conn, (unsigned)c->status, r);
    MHD_destroy_response(r);
    return ok;
}

static struct call *call_new(struct server *s, struct MHD_Connection *conn)
{
    struct call *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->conn = conn;
    c->t_start = now_seconds();
    c->job.fd = -1;
    c->queue_s = c->infer_s = -1;
    c->task.run = work_run;
    pthread_mutex_init(&c->mu, NULL);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    reading_add(c);
    return c;
}

/* ---- the access log ---- */

/* n bytes from getrandom, or (no entropy pool yet) unique ones from a clock and a counter. */
static void random_bytes(uint8_t *r, size_t n)
{
    if (getrandom(r, n, GRND_NONBLOCK) == (ssize_t)n)
        return;
    static atomic_ulong counter;
    unsigned long long x = atomic_fetch_add(&counter, 1);
    x ^= (unsigned long long)(now_seconds() * 1e9);
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        r[i] = (uint8_t)(x >> 56);
    }
}

/* x-request-id: the client's when it is 1 to REQUEST_ID_MAX printable ASCII bytes, else 32
 * random hex digits (a value that would break the log or a header is replaced, not cut). */
static void set_request_id(struct call *c)
{
    const char *v = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "x-request-id");
    size_t n = v ? strnlen(v, REQUEST_ID_MAX + 1) : 0;
    bool ok = n >= 1 && n <= REQUEST_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = v[i] >= 0x20 && v[i] < 0x7f;
    if (ok) {
        memcpy(c->rid, v, n);
        c->rid[n] = '\0';
        return;
    }
    uint8_t r[16];
    random_bytes(r, sizeof r);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof r; i++) {
        c->rid[2 * i] = hex[r[i] >> 4];
        c->rid[2 * i + 1] = hex[r[i] & 15];
    }
    c->rid[2 * sizeof r] = '\0';
}

/* What the log line says about the request: id, peer, method and path. */
static void note_request(struct call *c, const char *url, const char *method)
{
    set_request_id(c);
    snprintf(c->method, sizeof c->method, "%s", method);
    snprintf(c->path, sizeof c->path, "%s", url);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->client,
                  sizeof c->client);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->client,
                  sizeof c->client);
}

void call_set_times(struct call *c, double queue_seconds, double inference_seconds)
{
    c->queue_s = queue_seconds;
    c->infer_s = inference_seconds;
}

/* The probes and /metrics are asked every few seconds: their answers are DEBUG lines (an
 * unready /ready is an answer too), a refused key or an error is not. */
static enum log_level call_log_level(const struct call *c, int status)
{
    route_fn fn = c->route ? c->route->fn : NULL;
    bool probe = fn == route_health || fn == route_ready || fn == route_metrics;
    if (probe && (status < 400 || (fn == route_ready && status == 503)))
        return LOG_DEBUG;
    return status >= 400 ? LOG_WARN : LOG_INFO;
}

/* One line per request, written when it ends (answered and sent, or the client gone). */
static void log_call(struct call *c, int status)
{
    enum log_level l = call_log_level(c, status);
    if (!log_enabled(l))
        return;
    double q = c->queue_s, inf = c->infer_s;
    long long batch = -1;
    if (c->job.started > 0) {
        q = c->job.started - c->job.enqueued;
        inf = c->job.infer_seconds;
        batch = (long long)c->job.batch_rows;
    }
    size_t bytes = c->sent;
    if (c->stream) {
        pthread_mutex_lock(&c->stream->mu);
        bytes = c->stream->sent;
        pthread_mutex_unlock(&c->stream->mu);
    }
    struct log_field f[13] = {
        LOG_S("request_id", c->rid),
        LOG_S("client", c->client[0] ? c->client : NULL),
        LOG_S("method", c->method),
        LOG_S("route", c->path),
        LOG_S("model", c->model ? model_name(c->model) : NULL),
        LOG_I("status", status),
        LOG_I("bytes", bytes),
        LOG_MS("queue_ms", q >= 0 ? q * 1e3 : -1),
        LOG_MS("inference_ms", inf >= 0 ? inf * 1e3 : -1),
        LOG_MS("total_ms", (now_seconds() - c->t_start) * 1e3),
        batch >= 0 ? LOG_I("batch_size", batch) : LOG_S("batch_size", NULL),
    };
    size_t n = 11;
    if (status >= 400)
        f[n++] = LOG_S("error", c->err[0] ? c->err : NULL);
    if (status == 401 && c->auth)
        f[n++] = LOG_S("api_key", c->auth);
    log_fields(l, "request", f, n);
}

/* libmicrohttpd's URI callback: a request line is in; the call starts here, so that the
 * read deadline counts from it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)uri;
    return call_new(cls, conn);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct call *c = *con_cls;
    if (!c && !(c = *con_cls = call_new(cls, conn)))
        return MHD_NO;
    if (!c->routed) {
        c->routed = true;
        atomic_fetch_add(&active_calls, 1);
        metrics_inflight_add(server_metrics(c->s), 1);
        note_request(c, url, method);
        start_call(c, url, method);
        return MHD_YES;
    }
    if (c->phase != PHASE_BODY || c->pending)
        return send_pending(c);
    if (c->status) { /* answered early (413, 404...): discard whatever body follows */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        size_t max = server_config(c->s)->max_body_bytes;
        if (c->discarded || c->len + n > max) {
            /* A chunked body over the limit (a declared one was refused at its headers):
             * libmicrohttpd only takes a response once the upload ends, so the rest is
             * read and dropped, never buffered, and a sender that goes on past
             * DISCARD_LIMIT more bytes is disconnected. */
            c->discarded += n;
            return c->discarded > DISCARD_LIMIT ? MHD_NO : MHD_YES;
        }
        if (c->len + n + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + n + 1)
                cap *= 2;
            char *b = realloc(c->body, cap);
            if (!b)
                return MHD_NO;
            c->body = b;
            c->cap = cap;
        }
        memcpy(c->body + c->len, upload_data, n);
        c->len += n;
        return MHD_YES;
    }
    /* The final call is put off by one turn of libmicrohttpd's loop: it then waits without
     * reading, so a connection suspended from here is not read on resume, where a client's
     * half-close (EOF) would close it unanswered (docs/DECISIONS.md). */
    if (!c->deferred) {
        c->deferred = true;
        return MHD_YES;
    }
    dispatch(c);
    return MHD_YES;
}

static const char *route_label(const struct call *c)
{
    if (!c->route)
        return "other";
    if (c->arg)
        return "/models/{name}";
    return c->route->path;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct call *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    reading_done(c);
    if (!c->routed) { /* the request line came, its headers never did */
        pthread_mutex_destroy(&c->mu);
        free(c);
        return;
    }
    if (c->on_end)
        c->on_end(c->end_arg);
    struct metrics *m = server_metrics(c->s);
    const char *model = c->model ? model_name(c->model) : NULL; /* never a client string */
    metrics_request(m, model, route_label(c), c->status ? c->status : 499,
                    now_seconds() - c->t_start);
    metrics_inflight_add(m, -1);
    log_call(c, c->status ? c->status : 499);
    if (c->stream)
        stream_unref(c->stream);
    if (c->pending)
        MHD_destroy_response(c->pending);
    pthread_mutex_destroy(&c->mu);
    json_decref(c->job.result);
    pipeline_request_free(c->req);
    if (c->model)
        model_unref(c->model);
    json_decref(c->json);
    free(c->user);
    bool large = c->len + c->discarded > TRIM_AFTER_BYTES || c->sent > TRIM_AFTER_BYTES;
    free(c->body);
    free(c->arg);
    free(c);
    atomic_fetch_sub(&active_calls, 1);
    if (large) /* give the pages of a large body or answer back (docs/DECISIONS.md) */
        malloc_trim(0);
}

/* ---- TLS (server.tls) ---- */

#define PEM_MAX (1u << 20) /* bytes; a certificate chain is a few KiB */

/* server.tls's files, NUL-terminated as libmicrohttpd takes them. It hands the text to GnuTLS
 * when the daemon starts and keeps no pointer to it, so they are freed right after. */
struct tls_pems {
    char *cert, *key;
};

/* *out = the whole file at path, NUL-terminated; what names it in messages. */
static int read_pem(const char *path, const char *what, char **out, struct err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_IO, "server.tls.%s '%s' cannot be read: %s", what, path,
                       strerror(errno));
    char *text = malloc(PEM_MAX + 1);
    size_t len = text ? fread(text, 1, PEM_MAX + 1, f) : 0;
    bool failed = ferror(f);
    fclose(f);
    int rc = 0;
    if (!text)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    else if (failed)
        rc = err_set(e, ERR_IO, "server.tls.%s '%s' cannot be read", what, path);
    else if (len == 0 || len > PEM_MAX)
        rc = err_set(e, ERR_IO, "server.tls.%s '%s' is %s", what, path,
                     len ? "over 1 MiB: not a PEM file" : "empty");
    if (rc) {
        free(text);
        return rc;
    }
    text[len] = '\0';
    *out = text;
    return 0;
}

static void tls_pems_free(struct tls_pems *p)
{
    if (p->key)
        explicit_bzero(p->key, strlen(p->key));
    free(p->key);
    free(p->cert);
    *p = (struct tls_pems){0};
}

/* With server.tls set: reads both files, adds MHD_USE_TLS to *flags and the two options to
 * opts (ended by MHD_OPTION_END either way). */
static int tls_setup(const struct tls_config *t, unsigned *flags, struct MHD_OptionItem opts[3],
                     struct tls_pems *p, struct err *e)
{
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    if (!t->cert)
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return err_set(e, ERR_INVALID,
                       "server.tls is set but this libmicrohttpd was built without HTTPS");
    int rc = read_pem(t->cert, "cert", &p->cert, e);
    if (rc == 0)
        rc = read_pem(t->key, "key", &p->key, e);
    if (rc) {
        tls_pems_free(p);
        return rc;
    }
    *flags |= MHD_USE_TLS;
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, p->key};
    opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, p->cert};
    opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return 0;
}

/* libmicrohttpd's own messages (a TLS handshake error, a socket it could not accept) as log
 * lines, so that a JSON log stays one object a line. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_msg(LOG_WARN, "libmicrohttpd: %s", msg);
}

struct http *http_start(struct server *s, const struct server_config *cfg, int *port, struct err *e)
{
    struct http *h = calloc(1, sizeof *h);
    if (!h) {
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    /* poll(), not epoll: libmicrohttpd 0.9.75's MHD_quiesce_daemon (the drain) races its own
     * epoll workers to remove the listening socket from their epoll sets, and the loser aborts
     * the process ("Failed to remove listen FD from epoll set"); with poll() quiescing only
     * flags the workers. Each worker polls its share of max_connections. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, cfg->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->port);
        sl = sizeof *a4;
    } else if (inet_pton(AF_INET6, cfg->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->port);
        sl = sizeof *a6;
        flags |= MHD_USE_IPv6;
    } else {
        free(h);
        err_set(e, ERR_INVALID, "server.host '%s' is not an IPv4 or IPv6 address", cfg->host);
        return NULL;
    }
    (void)sl;
    if (!(h->work = tasks_new(cfg->work_threads, e))) {
        free(h);
        return NULL;
    }
    work_pool = h->work;
    if (sweeper_start((double)cfg->read_timeout_ms * 1e-3, e)) {
        tasks_free(h->work);
        free(h);
        return NULL;
    }
    struct MHD_OptionItem tls[3];
    struct tls_pems pems = {0};
    if (tls_setup(&cfg->tls, &flags, tls, &pems, e)) {
        sweeper_stop();
        tasks_free(h->work);
        free(h);
        return NULL;
    }
    h->d = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->http_threads > 0 ? cfg->http_threads : 1),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((cfg->idle_timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    tls_pems_free(&pems);
    if (!h->d) {
        sweeper_stop();
        tasks_free(h->work);
        free(h);
        if (cfg->tls.cert)
            err_set(e, ERR_IO,
                    "cannot start HTTPS on %s:%d (the port in use, or server.tls.cert and .key "
                    "not a PEM certificate and its private key: see libmicrohttpd's reason above)",
                    cfg->host, cfg->port);
        else
            err_set(e, ERR_IO, "cannot listen on %s:%d (in use, or not an address of this host)",
                    cfg->host, cfg->port);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = di ? di->port : cfg->port;
    return h;
}

void http_quiesce(struct http *h)
{
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void http_stop(struct http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    sweeper_stop();
    tasks_free(h->work);
    work_pool = NULL;
    free(h);
}
