/* err: see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int kind, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->kind = kind;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return kind;
}

int err_prefix(struct err *e, const char *fmt, ...)
{
    if (!e)
        return ERR_INTERNAL;
    char head[ERR_MSG_SIZE], old[ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t hl = strlen(head), ol = strnlen(old, sizeof old - 1);
    if (hl > sizeof e->msg - 1)
        hl = sizeof e->msg - 1;
    if (ol > sizeof e->msg - 1 - hl)
        ol = sizeof e->msg - 1 - hl;
    memcpy(e->msg, head, hl);
    memcpy(e->msg + hl, old, ol);
    e->msg[hl + ol] = '\0';
    return e->kind;
}

const char *err_kind_name(int kind)
{
    switch (kind) {
    case ERR_OK: return "ok";
    case ERR_INPUT: return "input";
    case ERR_NOT_FOUND: return "not_found";
    case ERR_TOO_LARGE: return "too_large";
    case ERR_INVALID: return "invalid";
    case ERR_BUSY: return "busy";
    case ERR_UNAVAILABLE: return "unavailable";
    case ERR_TIMEOUT: return "timeout";
    case ERR_NOMEM: return "out_of_memory";
    case ERR_FORMAT: return "format";
    case ERR_IO: return "io";
    case ERR_CANCELLED: return "cancelled";
    default: return "internal";
    }
}
