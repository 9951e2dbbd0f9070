/* handler: what a route handler (api_*.c) does with its call: read the request, answer it
 * (call_reply, or call_error with an error kind: reply.c's table says the status and the
 * dialect's shape), or submit it to a model's batcher (call_submit) and shape the result
 * later, or suspend it while another thread produces the answer (generation) and stream it.
 * Implemented by the HTTP core (http.c, reply.c, stream.c; struct call is private to it,
 * call.h).
 *
 * A request's life (docs/ARCHITECTURE.md): the HTTP core routes it, checks the key and size
 * on a polling thread, then parses the JSON body and calls the route's handler on a request
 * thread. A handler either answers at once (call_reply / call_error) or picks a model
 * (call_use_model, registry.h: the call holds it) and calls call_submit, which validates and
 * tokenizes (pipeline_prepare_until) and queues the call on the model's batcher. A worker
 * runs the call in a batch and stores the pipeline's result in the call; a request thread
 * then hands it to the handler's respond function, which shapes it into the dialect's JSON. */
#ifndef INFERD_HANDLER_H
#define INFERD_HANDLER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "dialect.h"
#include "engine.h"
#include "err.h"

struct call;
struct model;
struct server;

/* ---- calls (http.c, reply.c) ---- */

/* Turns a forwarded pipeline result into the dialect's response body. Runs on a request
 * thread; result is the pipeline's (a reference the function may steal by returning it).
 * Returns the body (a new reference) or NULL with e set (its kind and message) for an error. */
typedef json_t *(*respond_fn)(struct call *c, json_t *result, struct err *e);

/* The parsed JSON body of a POST (borrowed; NULL for GET). */
json_t *call_body(const struct call *c);
/* The {name} of a /models/{name} route (borrowed; NULL elsewhere). */
const char *call_arg(const struct call *c);
/* A query-string argument (borrowed from the connection; NULL when absent). */
const char *call_query(const struct call *c, const char *key);
struct server *call_server(const struct call *c);
/* The model call_submit queued the call on (borrowed; NULL before). */
struct model *call_model(const struct call *c);
/* The prepared request (after call_submit; for token counts in the responder). */
const struct pipeline_request *call_request(const struct call *c);
/* Per-call state for the responder (freed with free() when the call ends unless NULL). */
void call_set_user(struct call *c, void *user);
void *call_user(const struct call *c);

/* Answers now with status and body (stolen). */
void call_reply(struct call *c, int status, json_t *body);
/* Answers now with a non-JSON body (malloc'ed text, stolen) of the given content type. */
void call_reply_text(struct call *c, int status, char *text, size_t len, const char *type);
/* The error kinds only HTTP has words for; call_error takes these and common/err.h's alike
 * (their values do not overlap). What each answers, per dialect, is reply.c's table. */
enum http_err_kind {
    ERR_MALFORMED = -100,    /* the body is not JSON */
    ERR_UNAUTHORIZED = -101, /* no API key, or a wrong one */
    ERR_METHOD = -102,       /* the path does not take this method */
    ERR_NO_MODEL = -103,     /* OpenAI's "model" names no model (its code "model_not_found") */
    ERR_GEN_INVALID = -104,  /* a generation request its dialect's rules refuse (parameters,
                              * prompt, messages, template, the scheduler's limits) */
    ERR_GEN_FAILED = -105,   /* a generation that failed once started */
    ERR_GEN_SCHEMA = -106,   /* an output constraint (JSON schema, regex) that cannot be compiled:
                              * the unsupported keyword, the malformed regex */
};

/* Answers now with an error in the route's dialect: kind (enum err_kind or enum
 * http_err_kind) decides the status and the error's type names (reply.c's tables), param
 * names the offending field for OpenAI's "param" (may be NULL). */
void call_error(struct call *c, int kind, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers now with kind's status and a body the handler built (stolen), for the errors
 * that say more than a message (/ready names the models it waits for). */
void call_error_body(struct call *c, int kind, json_t *body);
/* The HTTP status call_error answers kind with in dialect d (reply.c's table: any kind it
 * has no row for is 500). */
int status_of_err(enum dialect d, int kind);

/* Validates and tokenizes inputs/parameters with m's pipeline (errors answered with their
 * kind), checks max_input_tokens, then queues the call on m and suspends it; respond
 * shapes the result later. Takes over the caller's reference to m in every case. inputs and
 * parameters are only read during the call. Returns 0 when queued. */
int call_submit(struct call *c, struct model *m, const json_t *inputs, const json_t *parameters,
                respond_fn respond);

/* ---- calls answered from other threads (generation; http.c, stream.c) ---- */

/* Suspends c (the handler returns without an answer); after call_resume, on_resume(c, arg)
 * runs on a request thread and answers. */
void call_suspend(struct call *c, void (*on_resume)(struct call *c, void *arg), void *arg);
/* Any thread; exactly once after each call_suspend. */
void call_resume(struct call *c);
/* fn(arg) runs once when the call ends (answered and sent, or the client gone), on an HTTP
 * thread; the last thing that touches arg from the call's side. */
void call_on_end(struct call *c, void (*fn)(void *arg), void *arg);
/* The call holds m (takes over the caller's reference, unless it holds m already; dropped
 * when the call ends) and its metrics are labelled with m's name. */
void call_set_model(struct call *c, struct model *m);
/* The client's socket (-1 when unknown), for a scheduler to peek at. */
int call_fd(const struct call *c);
/* Adds a response header to the answer given later (at most 8; copied). */
void call_add_header(struct call *c, const char *name, const char *value);
/* A generation's queue and inference time (seconds), for the access log (an encoder job's come
 * from its batch). */
void call_set_times(struct call *c, double queue_seconds, double inference_seconds);

/* A body produced by another thread while it is sent (Server-Sent Events): chunked, each
 * write sent as soon as the socket takes it; the connection sleeps (suspended) while there is
 * nothing to send, never polling. Reference counted between the producer and the response. */
struct call_stream;
/* A stream with nothing to send yet; the producer holds the reference call_stream_end drops.
 * Writes before call_stream_start wait in its buffer. NULL when out of memory. */
struct call_stream *call_stream_new(void);
/* Answers c with 200, content_type (plus Cache-Control: no-cache and X-Accel-Buffering: no)
 * and the stream as the body. Returns 0, or -1 (c answered 500) when out of memory. */
int call_stream_start(struct call *c, struct call_stream *s, const char *content_type);
/* Any thread. Appends data; -1 once the client is gone (the response was torn down). */
int call_stream_write(struct call_stream *s, const char *data, size_t len);
/* The producer is done: the body ends after what was written (ok false: the connection is
 * closed instead of ending the chunked body cleanly). Drops the producer's reference. */
void call_stream_end(struct call_stream *s, bool ok);

#endif
