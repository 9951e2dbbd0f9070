/* test_log: server/log.c's lines, read back from a pipe: the text format's quoting and
 * escaping, the JSON format parsed by jansson (invalid UTF-8, control characters, nulls), the
 * level filter, long values cut, and lines of several threads never interleaved; and the
 * weights' load-progress hook (engine/models/weights.h) on a real checkpoint. */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "models/encoder.h"
#include "models/weights.h"
#include "ops/dnnl.h"
#include "suites.h"
#include "support/support.h"

/* The lines go to a temp file; read back whole. */
static char log_path[300];

static void capture(const char *format, const char *level)
{
    snprintf(log_path, sizeof log_path, "%s/log", temp_dir());
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    ck_assert_int_ge(fd, 0);
    log_set_fd(fd);
    ck_assert_int_eq(log_configure(format, level), 0);
}

/* Everything written since capture (malloc'ed); the log goes back to stderr, text, info. */
static char *captured(void)
{
    char *text = read_file(log_path, NULL);
    ck_assert_ptr_nonnull(text);
    log_set_fd(2);
    log_configure("text", "info");
    return text;
}

/* The part of a text line after the time: "LEVEL inferd: ...". */
static const char *after_time(const char *line)
{
    ck_assert_msg(strlen(line) > 25 && line[4] == '-' && line[10] == 'T' && line[19] == '.' &&
                      line[23] == 'Z' && line[24] == ' ',
                  "no ISO 8601 time with ms: %s", line);
    return line + 25;
}

START_TEST(text_quoting)
{
    capture("text", "info");
    struct log_field f[] = {
        LOG_S("bare", "a/b:c"), LOG_S("space", "a b"),     LOG_S("quote", "say \"hi\" \\"),
        LOG_S("eq", "k=v"),     LOG_S("nul", NULL),        LOG_S("empty", ""),
        LOG_S("ctl", "a\nb"),   LOG_S("bad", "x\xff"),     LOG_S("utf8", "caf\xc3\xa9"),
        LOG_I("n", -42),        LOG_MS("ms", 1.23456),     LOG_MS("unknown", -1),
    };
    log_fields(LOG_INFO, "hello\nworld", f, sizeof f / sizeof f[0]);
    char *text = captured();
    ck_assert_str_eq(after_time(text),
                     "INFO inferd: hello\\x0aworld bare=a/b:c space=\"a b\" "
                     "quote=\"say \\\"hi\\\" \\\\\" eq=\"k=v\" nul=- empty=\"\" ctl=\"a\\x0ab\" "
                     "bad=\"x\\xff\" utf8=\"caf\xc3\xa9\" n=-42 ms=1.235 unknown=-\n");
    free(text);
}
END_TEST

START_TEST(json_lines)
{
    capture("json", "debug");
    struct log_field f[] = {
        LOG_S("s", "a \"b\"\n\t\x01"), LOG_S("bad", "x\xff\xfey"), LOG_S("nul", NULL),
        LOG_I("n", 7),                  LOG_MS("ms", 2.5),          LOG_MS("unknown", -1),
    };
    log_fields(LOG_DEBUG, "m\xc3", f, sizeof f / sizeof f[0]);
    log_msg(LOG_WARN, "plain %d", 5);
    char *text = captured();
    char *nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    json_error_t je;
    json_t *a = json_loadb(text, (size_t)(nl - text), 0, &je);
    ck_assert_msg(a != NULL, "not JSON (%s): %s", je.text, text);
    ck_assert_str_eq(json_string_value(json_object_get(a, "level")), "debug");
    ck_assert_str_eq(json_string_value(json_object_get(a, "msg")), "m\xef\xbf\xbd");
    ck_assert_str_eq(json_string_value(json_object_get(a, "s")), "a \"b\"\n\t\x01");
    ck_assert_str_eq(json_string_value(json_object_get(a, "bad")),
                     "x\xef\xbf\xbd\xef\xbf\xbdy");
    ck_assert(json_is_null(json_object_get(a, "nul")));
    ck_assert_int_eq(json_integer_value(json_object_get(a, "n")), 7);
    ck_assert(json_is_real(json_object_get(a, "ms")));
    ck_assert(json_real_value(json_object_get(a, "ms")) == 2.5);
    ck_assert(json_is_null(json_object_get(a, "unknown")));
    const char *t = json_string_value(json_object_get(a, "time"));
    ck_assert_msg(t && strlen(t) == 24 && t[10] == 'T' && t[23] == 'Z', "time %s", t ? t : "-");
    json_t *b = json_loads(nl + 1, 0, &je);
    ck_assert_msg(b != NULL, "second line not JSON (%s): %s", je.text, nl + 1);
    ck_assert_str_eq(json_string_value(json_object_get(b, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(b, "msg")), "plain 5");
    json_decref(a);
    json_decref(b);
    free(text);
}
END_TEST

START_TEST(levels)
{
    ck_assert_int_eq(log_configure("xml", NULL), -1);
    ck_assert_int_eq(log_configure(NULL, "verbose"), -1);
    capture("text", "warn");
    ck_assert(!log_enabled(LOG_INFO));
    ck_assert(log_enabled(LOG_WARN));
    log_msg(LOG_DEBUG, "d");
    log_msg(LOG_INFO, "i");
    log_msg(LOG_WARN, "w");
    log_msg(LOG_ERROR, "e");
    log_msg(LOG_ALWAYS, "a");
    char *text = captured();
    const char *want[] = {"WARN inferd: w", "ERROR inferd: e", "INFO inferd: a"};
    const char *p = text;
    for (size_t i = 0; i < 3; i++) {
        ck_assert_msg(strncmp(after_time(p), want[i], strlen(want[i])) == 0, "line %zu: %s", i,
                      text);
        p = strchr(p, '\n') + 1;
    }
    ck_assert_str_eq(p, "");
    free(text);
}
END_TEST

START_TEST(long_value_cut)
{
    capture("json", "info");
    char *big = malloc(10000);
    memset(big, 'a', 9999);
    big[9999] = '\0';
    struct log_field f[] = {LOG_S("big", big)};
    log_fields(LOG_INFO, "m", f, 1);
    char *text = captured();
    json_t *a = json_loads(text, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(a);
    const char *v = json_string_value(json_object_get(a, "big"));
    ck_assert_uint_eq(strlen(v), 4096 + 3);
    ck_assert_str_eq(v + 4096, "...");
    json_decref(a);
    free(big);
    free(text);
}
END_TEST

#define THREADS 4
#define LINES 2000

static void *writer(void *arg)
{
    long t = (long)(intptr_t)arg;
    char pad[300];
    memset(pad, 'a' + (int)t, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES; i++) {
        struct log_field f[] = {LOG_I("thread", t), LOG_I("i", i), LOG_S("pad", pad)};
        log_fields(LOG_INFO, "line", f, 3);
    }
    return NULL;
}

/* Lines of 4 threads at once: each whole, each thread's in order. */
START_TEST(threads_never_interleave)
{
    capture("json", "info");
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    char *text = captured();
    int next[THREADS] = {0};
    size_t n = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1, n++) {
        json_error_t je;
        json_t *a = json_loadb(line, (size_t)(nl - line), 0, &je);
        ck_assert_msg(a != NULL, "line %zu broken (%s)", n, je.text);
        int t = (int)json_integer_value(json_object_get(a, "thread"));
        ck_assert_int_eq(json_integer_value(json_object_get(a, "i")), next[t]++);
        ck_assert_uint_eq(strlen(json_string_value(json_object_get(a, "pad"))), 299);
        json_decref(a);
    }
    ck_assert_uint_eq(n, THREADS * LINES);
    free(text);
}
END_TEST

struct progress_seen {
    size_t calls, last, total;
    bool ordered;
};

static void on_progress(void *arg, size_t taken, size_t total)
{
    struct progress_seen *p = arg;
    p->ordered &= taken == p->last + 1 && (p->calls == 0 || total == p->total);
    p->calls++;
    p->last = taken;
    p->total = total;
}

/* The hook counts each tensor once, 1..taken of the file's total; off again with NULL. */
START_TEST(weights_progress_hook)
{
    const char *dir = fixture_model("bert-seqcls");
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    ck_assert_msg(ctx != NULL, "%s", e.msg);
    struct progress_seen seen = {.ordered = true};
    weights_set_progress(on_progress, &seen);
    struct encoder *m = NULL;
    ck_assert_msg(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e) == 0, "%s", e.msg);
    encoder_free(m);
    weights_set_progress(NULL, NULL);
    ck_assert(seen.ordered);
    ck_assert_uint_gt(seen.calls, 10);
    ck_assert_uint_eq(seen.last, seen.calls);
    ck_assert_uint_le(seen.last, seen.total);
    ck_assert_uint_ge(seen.last + 2, seen.total); /* at most a buffer or two not taken */
    size_t before = seen.calls;
    ck_assert_msg(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e) == 0, "%s", e.msg);
    encoder_free(m);
    ck_assert_uint_eq(seen.calls, before);
    dnn_ctx_free(ctx);
}
END_TEST

Suite *suite_log(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, text_quoting);
    tcase_add_test(tc, json_lines);
    tcase_add_test(tc, levels);
    tcase_add_test(tc, long_value_cut);
    tcase_add_test(tc, threads_never_interleave);
    tcase_add_test(tc, weights_progress_hook);
    suite_add_tcase(s, tc);
    return s;
}
