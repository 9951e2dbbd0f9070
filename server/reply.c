/* reply: every response a call sends (reply.c is the only place that queues one), and the one
 * map from error kinds to HTTP statuses (kind_rows[]: no other file names an error's status;
 * callers say what went wrong with an err.h or handler.h kind) and from statuses to each
 * dialect's error shape (status_names[]: Hugging Face and TEI {"error", "error_type"}, TGI's
 * names, OpenAI {"error": {"message", "type", "param", "code"}}). Error messages are made
 * valid UTF-8 first. */
#include "call.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "log.h"
#include "metrics.h"

static void add_ms_header(struct MHD_Response *r, const char *name, double seconds)
{
    char v[32];
    snprintf(v, sizeof v, "%.3f", seconds * 1e3);
    MHD_add_response_header(r, name, v);
}

void call_common_headers(struct call *c, struct MHD_Response *r)
{
    if (server_draining(c->s))
        MHD_add_response_header(r, "Connection", "close");
    if (c->rid[0])
        MHD_add_response_header(r, "x-request-id", c->rid);
    for (size_t i = 0; i < c->n_hdr; i++)
        MHD_add_response_header(r, c->hdr[i].name, c->hdr[i].value);
}

/* Hands r to libmicrohttpd, or keeps it for the resume when built on a request thread. */
void call_deliver(struct call *c, int status, struct MHD_Response *r)
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
    call_common_headers(c, r);
    if (c->phase == PHASE_QUEUED && c->job.started > 0) {
        add_ms_header(r, "x-tokenization-time", c->t_prepared - c->t_start);
        add_ms_header(r, "x-queue-time", c->job.started - c->job.enqueued);
        add_ms_header(r, "x-inference-time", c->job.infer_seconds);
        add_ms_header(r, "x-total-time", now_seconds() - c->t_start);
        char v[32];
        snprintf(v, sizeof v, "%zu", c->job.batch_rows);
        MHD_add_response_header(r, "x-batch-size", v);
    }
    call_deliver(c, status, r);
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

/* ---- the one map: error kind (+ the route's dialect) -> status ---- */

#define SAME(status) {status, status, status}

/* A row per kind that is not a 500. Validation is 422 everywhere (TEI, TGI, and TEI's
 * /v1/embeddings), but a generation request OpenAI's rules refuse is vLLM's 400; a generation
 * that failed once started is TGI's 424. */
static const struct kind_row {
    int kind;
    int status[3];           /* by enum dialect */
    const char *openai_code; /* NULL: the status's (status_names) */
} kind_rows[] = {
    {ERR_MALFORMED, SAME(400), NULL},
    {ERR_UNAUTHORIZED, SAME(401), NULL},
    {ERR_NOT_FOUND, SAME(404), NULL},
    {ERR_NO_MODEL, SAME(404), "model_not_found"},
    {ERR_METHOD, SAME(405), NULL},
    {ERR_TOO_LARGE, SAME(413), NULL},
    {ERR_INPUT, SAME(422), NULL},
    {ERR_INVALID, SAME(422), NULL},
    {ERR_GEN_INVALID, {[DIALECT_HF] = 422, [DIALECT_OPENAI] = 400, [DIALECT_TGI] = 422}, NULL},
    {ERR_BUSY, SAME(429), NULL},
    {ERR_UNAVAILABLE, SAME(503), NULL},
    {ERR_TIMEOUT, SAME(504), NULL},
    {ERR_GEN_SCHEMA, SAME(422), NULL},
    {ERR_GEN_FAILED, {[DIALECT_HF] = 500, [DIALECT_OPENAI] = 500, [DIALECT_TGI] = 424}, NULL},
    /* every other kind (ERR_INTERNAL, ERR_NOMEM, ERR_FORMAT, ERR_IO, ERR_CANCELLED): 500 */
};

static const struct kind_row *kind_row(int kind)
{
    for (size_t i = 0; i < sizeof kind_rows / sizeof kind_rows[0]; i++)
        if (kind_rows[i].kind == kind)
            return &kind_rows[i];
    return NULL;
}

int status_of_err(enum dialect d, int kind)
{
    const struct kind_row *r = kind_row(kind);
    return r ? r->status[d] : 500;
}

/* ---- each dialect's names for a status ---- */

/* Hugging Face / TEI's error_type, TGI's (router/src/infer/mod.rs, server.rs), OpenAI's type
 * and code. The last row is every other status (500). */
static const struct status_names {
    int status;
    const char *hf, *tgi, *openai_type, *openai_code;
} status_names[] = {
    {400, "BadRequest", "bad_request", "invalid_request_error", NULL},
    {401, "Unauthorized", "unauthorized", "authentication_error", "invalid_api_key"},
    {404, "NotFound", "not_found", "invalid_request_error", "not_found"},
    {405, "MethodNotAllowed", "method_not_allowed", "invalid_request_error", NULL},
    {413, "PayloadTooLarge", "payload_too_large", "invalid_request_error", "payload_too_large"},
    {422, "Validation", "validation", "invalid_request_error", NULL},
    {424, "Backend", "generation", "invalid_request_error", NULL},
    {429, "Overloaded", "overloaded", "rate_limit_error", "overloaded"},
    {503, "Unhealthy", "unhealthy", "unavailable_error", NULL},
    {504, "Timeout", "timeout", "timeout_error", NULL},
    {0, "Backend", "generation", "server_error", NULL},
};

static const struct status_names *names_of(int status)
{
    const struct status_names *n = status_names;
    while (n->status && n->status != status)
        n++;
    return n;
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

void call_error(struct call *c, int kind, const char *param, const char *fmt, ...)
{
    char raw[512], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    utf8_sanitize(msg, sizeof msg, raw);
    if (!c->status)
        snprintf(c->err, sizeof c->err, "%s", msg);
    int status = status_of_err(c->dialect, kind);
    const struct status_names *n = names_of(status);
    const struct kind_row *r = kind_row(kind);
    json_t *body;
    if (c->dialect == DIALECT_OPENAI) {
        const char *code = r && r->openai_code ? r->openai_code : n->openai_code;
        body = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type",
                         n->openai_type, "param", param, "code", code);
    } else {
        body = json_pack("{s:s, s:s}", "error", msg, "error_type",
                         c->dialect == DIALECT_TGI ? n->tgi : n->hf);
    }
    call_reply(c, status, body);
}

void call_error_body(struct call *c, int kind, json_t *body)
{
    call_reply(c, status_of_err(c->dialect, kind), body);
}
