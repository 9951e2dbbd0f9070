/* log: the daemon's log on stderr. Every line goes through here: a level, a message and
 * optional fields, written as text or as one JSON object, each line with one write() so that
 * lines of different threads never interleave. The format and the least severe level written
 * come from server.log_format and server.log_level (set once at start).
 *
 *   text: 2026-12-06T12:10:00.123Z INFO inferd: request id=5f0c... status=200 total_ms=3.570
 *   json: {"time":"2026-12-06T12:10:00.123Z","level":"info","msg":"request","id":"5f0c...",
 *          "status":200,"total_ms":3.570}
 *
 * Values are escaped: text quotes a value with spaces, quotes, '=' or non-printable bytes
 * ("a b", \" \\ \xNN), JSON escapes as JSON does; invalid UTF-8 becomes \xNN (text) or U+FFFD
 * (JSON), and a message never spans two lines. A value or message over 4096 bytes is cut and
 * ends in "...". */
#ifndef INFERD_LOG_H
#define INFERD_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* LOG_ALWAYS is written whatever server.log_level says, labelled info: the start banner, the
 * listening line and the stop, which supervisors and scripts read (the port, the version). */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_ALWAYS };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Sets the format ("text" | "json") and the least severe level written ("debug" | "info" |
 * "warn" | "error"); NULL keeps the current one (text and info until then). Returns -1, changing
 * nothing, for an unknown name. Call before other threads log. */
int log_configure(const char *format, const char *level);
/* Where lines go (default 2, stderr); for tests. */
void log_set_fd(int fd);
/* Whether a line of level l is written. */
bool log_enabled(enum log_level l);

/* A line with a printf-style message. */
void log_msg(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A field of a structured line: a string (NULL: written as - / null), an integer, or a
 * duration in milliseconds (3 decimals; negative: unknown, - / null). */
enum log_kind { LOG_STR, LOG_INT, LOG_MS };
struct log_field {
    const char *key;
    enum log_kind kind;
    const char *s;
    long long i;
    double ms;
};
#define LOG_S(k, v) ((struct log_field){.key = (k), .kind = LOG_STR, .s = (v)})
#define LOG_I(k, v) ((struct log_field){.key = (k), .kind = LOG_INT, .i = (long long)(v)})
#define LOG_MS(k, v) ((struct log_field){.key = (k), .kind = LOG_MS, .ms = (v)})

/* A line with message msg (plain text) and n fields, in order. */
void log_fields(enum log_level l, const char *msg, const struct log_field *f, size_t n);

#endif
