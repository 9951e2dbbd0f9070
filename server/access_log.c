/* access_log: a request's id (x-request-id) and its log line when it ends. */
#include "call.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "handler.h"
#include "registry.h"

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
void access_note(struct call *c, const char *url, const char *method)
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
    bool probe = c->route && (c->route->flags & ROUTE_PROBE);
    if (probe && (status < 400 || status == 503))
        return LOG_DEBUG;
    return status >= 400 ? LOG_WARN : LOG_INFO;
}

/* One line per request, written when it ends (answered and sent, or the client gone). */
void access_log(struct call *c, int status)
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
    if (c->stream)
        bytes = call_stream_sent(c->stream);
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

