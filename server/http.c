/* http: see http.h. libmicrohttpd runs a small pool of polling threads with suspend/resume.
 * The polling threads only read headers and bodies, route, check keys and write: once a
 * POST body is in, the connection is suspended and the call goes to the request threads
 * (tasks.h), which parse the JSON, run the route's handler (tokenizing, rendering chat
 * templates) and build the response; a queued call's connection stays suspended until a
 * worker has its result, which a request thread turns into the response. A response built
 * off the polling threads waits in the call (pending) until the connection is resumed,
 * since libmicrohttpd takes responses only inside its own callback. So no polling thread
 * ever waits for compute or large JSON, and /health answers under any load. */
#include "call.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static struct tasks *work_pool; /* the running daemon's request threads (one daemon a process) */

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
    call_set_model(c, m);
    const struct pipeline *p = model_pipeline(m);
    struct err e = {0};
    struct pipeline_stop stop = {call_late, c};
    int rc = pipeline_prepare_until(p, inputs, parameters, &stop, &c->req, &e);
    if (rc == ERR_CANCELLED) {
        call_error(c, ERR_TIMEOUT, NULL, "request timed out after %ld ms while tokenizing",
                   server_config(c->s)->request_timeout_ms);
        return rc;
    }
    if (rc) { /* OpenAI's only queued route is /v1/embeddings: its inputs are "input" */
        call_error(c, rc, c->dialect == DIALECT_OPENAI ? "input" : NULL, "%s",
                   e.msg);
        return rc;
    }
    size_t limit = model_config(m)->max_input_tokens;
    size_t longest = pipeline_request_max_len(c->req);
    if (limit && longest > limit) {
        call_error(c, ERR_INVALID, NULL,
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
        call_error(c, ERR_UNAVAILABLE, NULL, "the client went away while the request was queued");
        c->status = STATUS_CLIENT_CLOSED;
        return MHD_YES;
    case JOB_TIMEOUT:
        call_error(c, ERR_TIMEOUT, NULL, "request timed out after %ld ms",
                   server_config(c->s)->request_timeout_ms);
        return MHD_YES;
    case JOB_FAILED:
        call_error(c, j->err_kind, NULL, "%s", j->error);
        return MHD_YES;
    case JOB_OK: break;
    }
    json_t *result = j->result;
    j->result = NULL;
    struct err e = {0};
    json_t *body = c->respond(c, result, &e);
    if (body != result)
        json_decref(result);
    if (!body) {
        call_error(c, e.kind ? e.kind : ERR_NOMEM, NULL, "%s", e.kind ? e.msg : "out of memory");
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

struct model *call_use_model(struct call *c, const char *name, unsigned tasks, const char *param)
{
    struct model *m = NULL;
    struct err e = {0};
    int rc = registry_pick(c->s, name, tasks, &m, &e);
    if (rc) {
        call_error(c, rc, param, "%s", e.msg);
        return NULL;
    }
    call_set_model(c, m);
    return m;
}

void call_set_model(struct call *c, struct model *m)
{
    if (c->model == m)
        return;
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

/* ---- request handling ---- */

static void run_handler(struct call *c)
{
    if (c->discarded) {
        call_error(c, ERR_TOO_LARGE, NULL, "request body is over the limit of %zu bytes",
                   server_config(c->s)->max_body_bytes);
        return;
    }
    if (strcmp(c->route->method, "POST") == 0) {
        json_error_t je;
        c->json = json_loadb(c->body ? c->body : "", c->len, JSON_ALLOW_NUL, &je);
        if (!c->json) {
            call_error(c, ERR_MALFORMED, NULL, "malformed JSON body: %s (line %d, column %d)", je.text,
                       je.line, je.column);
            return;
        }
        if (!json_is_object(c->json)) {
            call_error(c, ERR_INVALID, NULL, "the request body must be a JSON object");
            return;
        }
    }
    if (server_draining(c->s) && !(c->route->flags & ROUTE_PROBE)) {
        call_error(c, ERR_UNAVAILABLE, NULL, "the server is shutting down");
        return;
    }
    c->route->fn(c);
    if (!c->status && c->phase != PHASE_QUEUED && c->phase != PHASE_SUSPENDED)
        call_error(c, ERR_INTERNAL, NULL, "the handler gave no answer");
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
        call_error(c, ERR_INTERNAL, NULL, "the handler gave no answer");
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
    deadline_done(c);
    if (c->route->flags & ROUTE_ON_POLL) {
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
    deadline_add(c);
    return c;
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
        access_note(c, url, method);
        router_start_call(c, url, method);
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
    deadline_done(c);
    if (!c->routed) { /* the request line came, its headers never did */
        pthread_mutex_destroy(&c->mu);
        free(c);
        return;
    }
    if (c->on_end)
        c->on_end(c->end_arg);
    struct metrics *m = server_metrics(c->s);
    const char *model = c->model ? model_name(c->model) : NULL; /* never a client string */
    metrics_request(m, model, route_label(c), c->status ? c->status : STATUS_CLIENT_CLOSED,
                    now_seconds() - c->t_start);
    metrics_inflight_add(m, -1);
    access_log(c, c->status ? c->status : STATUS_CLIENT_CLOSED);
    if (c->stream)
        call_stream_unref(c->stream);
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
    if (deadline_start((double)cfg->read_timeout_ms * 1e-3, e)) {
        tasks_free(h->work);
        free(h);
        return NULL;
    }
    struct MHD_OptionItem tls[3];
    struct tls_pems pems = {0};
    if (tls_setup(&cfg->tls, &flags, tls, &pems, e)) {
        deadline_stop();
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
        deadline_stop();
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
    deadline_stop();
    tasks_free(h->work);
    work_pool = NULL;
    free(h);
}
