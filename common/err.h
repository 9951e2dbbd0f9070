/* err: error kinds and a message buffer shared by every layer (engine/, config/, server/;
 * common/ is the one library they all link, so that config/ needs nothing of the engine).
 * Fallible functions return 0 or a negative ERR_* kind and fill an optional struct err.
 * What a kind answers over HTTP is decided in one place, server/reply.c's kind_rows[] (per
 * API dialect: e.g. a generation request OpenAI's rules refuse is 400, 422 elsewhere); the
 * server adds the kinds only HTTP has (server/handler.h, enum http_err_kind). */
#ifndef INFERD_ERR_H
#define INFERD_ERR_H

enum err_kind {
    ERR_OK = 0,
    ERR_INPUT = -1,       /* malformed input: invalid UTF-8, wrong types */
    ERR_NOT_FOUND = -2,   /* unknown model, file or name */
    ERR_TOO_LARGE = -3,   /* over a size limit */
    ERR_INVALID = -4,     /* invalid parameter or value */
    ERR_BUSY = -5,        /* queue full */
    ERR_UNAVAILABLE = -6, /* not ready or draining */
    ERR_TIMEOUT = -7,     /* deadline passed */
    ERR_INTERNAL = -8,    /* a bug or an unexpected system failure */
    ERR_NOMEM = -9,       /* allocation failed */
    ERR_FORMAT = -10,     /* a model or tokenizer file is malformed */
    ERR_IO = -11,         /* a file could not be read */
    ERR_CANCELLED = -12,  /* stopped by the caller's cancel hook (its client left, its deadline
                           * passed or the server drains): the caller knows which */
};

#define ERR_MSG_SIZE 512

struct err {
    int kind;
    char msg[ERR_MSG_SIZE];
};

/* Sets e (when not NULL) and returns kind, so that failing is one line:
 *     return err_set(e, ERR_FORMAT, "%s: missing field '%s'", path, name); */
int err_set(struct err *e, int kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with more context ("file: " + old message). */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A short name for a kind, e.g. "invalid" for ERR_INVALID. */
const char *err_kind_name(int kind);

#endif
