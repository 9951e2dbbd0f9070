/* log: see log.h. A line is built in memory (a growing buffer), then written with one write()
 * under a mutex (a short write is finished before the next line starts). The settings are
 * atomics: read by every thread, set once at start. Lock order: out.mu alone. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#define VALUE_MAX 4096 /* bytes of one value or message written; a longer one ends in "..." */
#define LINE_MAX_BYTES (256u << 10) /* never reached with the values cut (a line is dropped) */

static _Atomic int min_level = LOG_INFO;
static _Atomic int format = LOG_FORMAT_TEXT;
static struct {
    pthread_mutex_t mu;
    _Atomic int fd;
} out = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = 2};

static const char *const level_names[] = {"debug", "info", "warn", "error", "info"};
static const char *const level_text[] = {"DEBUG", "INFO", "WARN", "ERROR", "INFO"};
static const char *const format_names[] = {"text", "json"};

static int index_of(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return (int)i;
    return -1;
}

int log_configure(const char *fmt, const char *level)
{
    int f = fmt ? index_of(fmt, format_names, 2) : atomic_load(&format);
    int l = level ? index_of(level, level_names, 4) : atomic_load(&min_level);
    if (f < 0 || l < 0)
        return -1;
    atomic_store(&format, f);
    atomic_store(&min_level, l);
    return 0;
}

void log_set_fd(int fd)
{
    atomic_store(&out.fd, fd);
}

bool log_enabled(enum log_level l)
{
    return (int)l >= atomic_load(&min_level);
}

/* ---- the line buffer ---- */

struct line {
    char *p;
    size_t n, cap;
    bool full; /* LINE_MAX_BYTES reached: the rest is dropped */
};

static void put(struct line *b, const char *s, size_t n)
{
    if (b->full)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = cap <= LINE_MAX_BYTES ? realloc(b->p, cap) : NULL;
        if (!p) {
            b->full = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void puts_(struct line *b, const char *s)
{
    put(b, s, strlen(s));
}

/* The length of the valid UTF-8 character at p (at most n bytes), 0 when invalid. */
static size_t utf8_char(const char *p, size_t n)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate((const uint8_t *)p, (utf8proc_ssize_t)n, &cp);
    return k > 0 ? (size_t)k : 0;
}

/* Text: printable ASCII and valid UTF-8 as they are, the rest as \xNN; quoted adds \" and \\. */
static void put_text(struct line *b, const char *s, bool quoted)
{
    size_t n = strnlen(s, VALUE_MAX + 1);
    bool cut = n > VALUE_MAX;
    n = cut ? VALUE_MAX : n;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c >= 0x80 ? utf8_char(s + i, n - i) : 1;
        char esc[8];
        if (k > 1) {
            put(b, s + i, k);
            i += k;
            continue;
        }
        if (c < 0x20 || c >= 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            puts_(b, esc);
        } else if (quoted && (c == '"' || c == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else {
            put(b, s + i, 1);
        }
        i++;
    }
    if (cut)
        puts_(b, "...");
}

/* A text value is bare when it is non-empty printable ASCII without space, quote, '=', '\'. */
static bool bare(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '=' || *p == '\\')
            return false;
    return true;
}

/* A JSON string, quotes included; invalid UTF-8 becomes U+FFFD. */
static void put_json_string(struct line *b, const char *s)
{
    static const char repl[] = "\\ufffd";
    size_t n = strnlen(s, VALUE_MAX + 1);
    bool cut = n > VALUE_MAX;
    n = cut ? VALUE_MAX : n;
    put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c >= 0x80) {
            size_t k = utf8_char(s + i, n - i);
            if (k)
                put(b, s + i, k);
            else
                puts_(b, repl);
            i += k ? k : 1;
            continue;
        }
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c == '\n') {
            puts_(b, "\\n");
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(b, esc);
        } else {
            put(b, s + i, 1);
        }
        i++;
    }
    if (cut)
        puts_(b, "...");
    put(b, "\"", 1);
}

/* ISO 8601 UTC with milliseconds. */
static void put_time(struct line *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[40];
    size_t k = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(t + k, sizeof t - k, ".%03ldZ", ts.tv_nsec / 1000000L);
    puts_(b, t);
}

/* A field's value as text (bare or quoted) or JSON. */
static void put_value(struct line *b, const struct log_field *f, bool json)
{
    char num[40];
    switch (f->kind) {
    case LOG_STR:
        if (!f->s)
            puts_(b, json ? "null" : "-");
        else if (json)
            put_json_string(b, f->s);
        else if (bare(f->s))
            put_text(b, f->s, false);
        else {
            put(b, "\"", 1);
            put_text(b, f->s, true);
            put(b, "\"", 1);
        }
        return;
    case LOG_INT:
        snprintf(num, sizeof num, "%lld", f->i);
        puts_(b, num);
        return;
    case LOG_MS:
        if (f->ms < 0)
            puts_(b, json ? "null" : "-");
        else {
            snprintf(num, sizeof num, "%.3f", f->ms);
            puts_(b, num);
        }
        return;
    }
}

static void build(struct line *b, enum log_level l, const char *msg, const struct log_field *f,
                  size_t n)
{
    bool json = atomic_load(&format) == LOG_FORMAT_JSON;
    if (json) {
        puts_(b, "{\"time\":\"");
        put_time(b);
        puts_(b, "\",\"level\":\"");
        puts_(b, level_names[l]);
        puts_(b, "\",\"msg\":");
        put_json_string(b, msg);
    } else {
        put_time(b);
        put(b, " ", 1);
        puts_(b, level_text[l]);
        puts_(b, " inferd: ");
        put_text(b, msg, false);
    }
    for (size_t i = 0; i < n; i++) {
        if (json) {
            put(b, ",", 1);
            put_json_string(b, f[i].key);
            put(b, ":", 1);
        } else {
            put(b, " ", 1);
            puts_(b, f[i].key);
            put(b, "=", 1);
        }
        put_value(b, &f[i], json);
    }
    if (json)
        put(b, "}", 1);
}

/* One write() for the whole line (a short one is finished under the lock). */
static void emit(struct line *b)
{
    if (b->full || !b->p)
        return;
    b->p[b->n++] = '\n';
    int fd = atomic_load(&out.fd);
    pthread_mutex_lock(&out.mu);
    for (size_t off = 0; off < b->n;) {
        ssize_t w = write(fd, b->p + off, b->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    pthread_mutex_unlock(&out.mu);
}

void log_fields(enum log_level l, const char *msg, const struct log_field *f, size_t n)
{
    if (!log_enabled(l))
        return;
    struct line b = {0};
    build(&b, l, msg, f, n);
    emit(&b);
    free(b.p);
}

void log_msg(enum log_level l, const char *fmt, ...)
{
    if (!log_enabled(l))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fields(l, msg, NULL, 0);
}
