/* test_serve_log: the real daemon's log. Each request's line (text and JSON), read back from
 * the daemon's log file and its fields checked against what the client saw (status, bytes,
 * the x-request-id echoed: the client's, or a generated one when it sent none or an unusable
 * one); refused API keys at WARN without the key; server.log_level warn leaving out the INFO
 * lines; the start banner (version, oneDNN, keys on, threads) and each model's load line with
 * its normalized path; a reload's added/removed/replaced/kept line; a stream's line with its
 * bytes. */
#include <ctype.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

#define SPAM_BODY "{\"inputs\": \"WIN a FREE iPhone now!!!\"}"

/* Waits up to 10 s for a log line holding needle; returns it (malloc'ed, without '\n'). */
static char *wait_line(const struct daemon *d, const char *needle)
{
    long long end = now_ms() + 10000;
    for (;;) {
        char *log = daemon_log(d);
        char *at = strstr(log, needle);
        if (at) {
            char *start = at;
            while (start > log && start[-1] != '\n')
                start--;
            size_t len = strcspn(start, "\n");
            char *line = strndup(start, len);
            free(log);
            return line;
        }
        free(log);
        ck_assert_msg(now_ms() < end, "no log line with '%s'; log:\n%s", needle,
                      daemon_log_tail(d));
        sleep_ms(20);
    }
}

/* A text line as a JSON object of strings: "time", "level", "msg" (up to the first field)
 * and each key=value, the quoted values unescaped (\" and \\). */
static json_t *parse_text(const char *line)
{
    json_t *o = json_object();
    ck_assert_msg(strlen(line) > 25 && line[10] == 'T' && line[23] == 'Z' && line[24] == ' ',
                  "no ISO 8601 UTC time with ms: %s", line);
    json_object_set_new(o, "time", json_stringn(line, 24));
    const char *p = line + 25;
    size_t n = strcspn(p, " ");
    json_object_set_new(o, "level", json_stringn(p, n));
    p += n;
    ck_assert_msg(strncmp(p, " inferd: ", 9) == 0, "no 'inferd: ' in %s", line);
    p += 9;
    const char *msg = p;
    while (*p && !(*p == ' ' && strchr(p + 1, '=') && strcspn(p + 1, " =") == strcspn(p + 1, "=")))
        p++;
    json_object_set_new(o, "msg", json_stringn(msg, (size_t)(p - msg)));
    while (*p == ' ') {
        p++;
        size_t kl = strcspn(p, "=");
        char key[64];
        snprintf(key, sizeof key, "%.*s", (int)kl, p);
        p += kl + 1;
        struct buf v = {0};
        buf_add(&v, "", 0);
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                buf_add(&v, p, 1);
            }
            ck_assert_msg(*p == '"', "unterminated value of %s in %s", key, line);
            p++;
        } else {
            size_t vl = strcspn(p, " ");
            buf_add(&v, p, vl);
            p += vl;
        }
        json_object_set_new(o, key, json_string(v.p));
        free(v.p);
    }
    ck_assert_msg(*p == '\0', "trailing text in %s", line);
    return o;
}

static const char *field(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    ck_assert_msg(v != NULL, "no field %s", key);
    return v;
}

/* A field that must be a number of milliseconds >= 0. */
static double ms_field(const json_t *o, const char *key)
{
    const char *v = field(o, key);
    char *end;
    double x = strtod(v, &end);
    ck_assert_msg(*v && !*end && x >= 0, "%s=%s is not a duration", key, v);
    return x;
}

static bool is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return false;
    for (const char *p = s; *p; p++)
        if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
            return false;
    return true;
}

/* The x-request-id of a reply (static buffer; fails when absent). */
static const char *reply_id(const struct http_reply *r)
{
    static char id[300];
    ck_assert_msg(http_header(r, "x-request-id", id, sizeof id), "no x-request-id in:\n%s",
                  r->headers);
    return id;
}

static struct http_reply *post_spam(const struct daemon *d, const char *headers)
{
    return http_request(d->port, "POST", "/models/spam", SPAM_BODY, headers);
}

/* The text line of request id (waited for) parsed. */
static json_t *text_request_line(const struct daemon *d, const char *id)
{
    char needle[300];
    bool bare = strcspn(id, " \"=\\") == strlen(id);
    snprintf(needle, sizeof needle, bare ? "request_id=%s " : "request_id=\"%s\"", id);
    char *line = wait_line(d, needle);
    json_t *o = parse_text(line);
    free(line);
    ck_assert_str_eq(field(o, "msg"), "request");
    return o;
}

START_TEST(access_text)
{
    char *yaml = yaml_config("api_keys: [k-secret-777]\n",
                             yaml_model("spam", "spam-bert-tiny", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, "k-secret-777");
    free(yaml);
    char h[600];

    /* the client's id, echoed and logged (quoted: it has a space and an '=') */
    snprintf(h, sizeof h, "%s\nx-request-id: trace-42 a=b", d->auth);
    struct http_reply *r = post_spam(d, h);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(reply_id(r), "trace-42 a=b");
    json_t *o = text_request_line(d, "trace-42 a=b");
    ck_assert_str_eq(field(o, "level"), "INFO");
    ck_assert_str_eq(field(o, "client"), "127.0.0.1");
    ck_assert_str_eq(field(o, "method"), "POST");
    ck_assert_str_eq(field(o, "route"), "/models/spam");
    ck_assert_str_eq(field(o, "model"), "spam");
    ck_assert_str_eq(field(o, "status"), "200");
    ck_assert_uint_eq(strtoul(field(o, "bytes"), NULL, 10), r->body_len);
    ck_assert_str_eq(field(o, "batch_size"), "1");
    ms_field(o, "queue_ms");
    ck_assert(ms_field(o, "total_ms") >= ms_field(o, "inference_ms"));
    ck_assert_ptr_null(json_object_get(o, "error"));
    json_decref(o);
    http_reply_free(r);

    /* none sent: 32 hex digits, logged */
    r = post_spam(d, d->auth);
    ck_assert_int_eq(r->status, 200);
    char gen[300];
    snprintf(gen, sizeof gen, "%s", reply_id(r));
    ck_assert_msg(is_hex32(gen), "generated id '%s'", gen);
    json_decref(text_request_line(d, gen));
    http_reply_free(r);

    /* unusable ones are replaced: too long, not ASCII */
    char longid[140];
    memset(longid, 'x', 129);
    longid[129] = '\0';
    const char *bad[] = {longid, "caf\xc3\xa9"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(h, sizeof h, "%s\nx-request-id: %s", d->auth, bad[i]);
        r = post_spam(d, h);
        ck_assert_int_eq(r->status, 200);
        ck_assert_msg(is_hex32(reply_id(r)), "bad id %zu echoed as '%s'", i, reply_id(r));
        http_reply_free(r);
    }
    longid[128] = '\0'; /* 128 bytes is still taken */
    snprintf(h, sizeof h, "%s\nx-request-id: %s", d->auth, longid);
    r = post_spam(d, h);
    ck_assert_str_eq(reply_id(r), longid);
    http_reply_free(r);

    /* a wrong key and a missing one: WARN, which (never the key), the id echoed */
    r = post_spam(d, "Authorization: Bearer k-wrong-SECRETPART\nx-request-id: r401");
    ck_assert_int_eq(r->status, 401);
    ck_assert_str_eq(reply_id(r), "r401");
    http_reply_free(r);
    o = text_request_line(d, "r401");
    ck_assert_str_eq(field(o, "level"), "WARN");
    ck_assert_str_eq(field(o, "status"), "401");
    ck_assert_str_eq(field(o, "api_key"), "invalid");
    ck_assert_ptr_nonnull(strstr(field(o, "error"), "API key"));
    json_decref(o);
    r = http_request(d->port, "GET", "/v1/models", NULL, "x-request-id: r401b");
    ck_assert_int_eq(r->status, 401);
    http_reply_free(r);
    o = text_request_line(d, "r401b");
    ck_assert_str_eq(field(o, "api_key"), "missing");
    ck_assert_str_eq(field(o, "route"), "/v1/models");
    json_decref(o);

    /* a 422: WARN with the message the client got */
    snprintf(h, sizeof h, "%s\nx-request-id: r422", d->auth);
    r = http_request(d->port, "POST", "/models/spam", "{\"inputs\": 5}", h);
    ck_assert_int_eq(r->status, 422);
    o = text_request_line(d, "r422");
    ck_assert_str_eq(field(o, "level"), "WARN");
    ck_assert_str_eq(field(o, "status"), "422");
    ck_assert_str_eq(field(o, "error"), json_string_value(json_object_get(r->json, "error")));
    json_decref(o);
    http_reply_free(r);

    /* a probe is a DEBUG line: not written at info (the 404 after it is) */
    r = http_request(d->port, "GET", "/health", NULL, "x-request-id: rhealth");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(reply_id(r), "rhealth");
    http_reply_free(r);
    snprintf(h, sizeof h, "%s\nx-request-id: r404", d->auth);
    r = http_request(d->port, "GET", "/nope", NULL, h);
    ck_assert_int_eq(r->status, 404);
    http_reply_free(r);
    json_decref(text_request_line(d, "r404"));
    daemon_shutdown(d);
    char *log = daemon_log(d);
    ck_assert_msg(!strstr(log, "rhealth"), "a probe logged at info:\n%s", log);
    ck_assert_msg(!strstr(log, "SECRETPART") && !strstr(log, "k-wrong") &&
                      !strstr(log, "k-secret-777"),
                  "a key in the log:\n%s", log);
    free(log);
    daemon_stop(d);
}
END_TEST

/* Every line of the log as JSON; the line whose request_id is id (a new reference). */
static json_t *json_request_line(const struct daemon *d, const char *id)
{
    char needle[200];
    snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", id);
    char *line = wait_line(d, needle);
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    ck_assert_msg(o != NULL, "not JSON (%s): %s", je.text, line);
    free(line);
    return o;
}

START_TEST(access_json)
{
    char *yaml = yaml_config("log_format: json\nlog_level: debug\n",
                             yaml_model("spam", "spam-bert-tiny", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    struct http_reply *r = post_spam(d, "x-request-id: j1");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(reply_id(r), "j1");
    json_t *o = json_request_line(d, "j1");
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "info");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "request");
    ck_assert_str_eq(json_string_value(json_object_get(o, "route")), "/models/spam");
    ck_assert_str_eq(json_string_value(json_object_get(o, "model")), "spam");
    ck_assert_str_eq(json_string_value(json_object_get(o, "method")), "POST");
    ck_assert_str_eq(json_string_value(json_object_get(o, "client")), "127.0.0.1");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "status")), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "bytes")), (json_int_t)r->body_len);
    ck_assert_int_eq(json_integer_value(json_object_get(o, "batch_size")), 1);
    ck_assert(json_is_real(json_object_get(o, "queue_ms")));
    ck_assert(json_is_real(json_object_get(o, "inference_ms")));
    ck_assert(json_real_value(json_object_get(o, "total_ms")) >=
              json_real_value(json_object_get(o, "inference_ms")));
    const char *t = json_string_value(json_object_get(o, "time"));
    ck_assert_msg(t && strlen(t) == 24 && t[10] == 'T' && t[19] == '.' && t[23] == 'Z', "time %s",
                  t ? t : "(none)");
    json_decref(o);
    http_reply_free(r);

    r = http_request(d->port, "GET", "/nope", NULL, "x-request-id: j404");
    ck_assert_int_eq(r->status, 404);
    o = json_request_line(d, "j404");
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(o, "error")),
                     json_string_value(json_object_get(r->json, "error")));
    ck_assert(json_is_null(json_object_get(o, "model")));
    ck_assert(json_is_null(json_object_get(o, "batch_size")));
    json_decref(o);
    http_reply_free(r);

    r = http_request(d->port, "GET", "/health", NULL, "x-request-id: jh");
    http_reply_free(r);
    o = json_request_line(d, "jh"); /* debug: written at log_level debug */
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "debug");
    json_decref(o);
    daemon_shutdown(d);

    /* every line is one JSON object with time, level and msg */
    char *log = daemon_log(d);
    size_t n = 0;
    for (char *line = log, *nl; (nl = strchr(line, '\n')); line = nl + 1, n++) {
        json_error_t je;
        json_t *a = json_loadb(line, (size_t)(nl - line), 0, &je);
        ck_assert_msg(json_is_object(a), "line %zu is not a JSON object (%s): %.*s", n, je.text,
                      (int)(nl - line), line);
        ck_assert(json_is_string(json_object_get(a, "time")) &&
                  json_is_string(json_object_get(a, "level")) &&
                  json_is_string(json_object_get(a, "msg")));
        json_decref(a);
    }
    ck_assert_uint_ge(n, 6);
    free(log);
    daemon_stop(d);
}
END_TEST

START_TEST(level_warn)
{
    char *yaml = yaml_config("log_level: warn\n",
                             yaml_model("spam", "spam-bert-tiny", "text-classification", NULL),
                             NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    struct http_reply *r = post_spam(d, "x-request-id: w200");
    ck_assert_int_eq(r->status, 200);
    http_reply_free(r);
    r = http_request(d->port, "GET", "/nope", NULL, "x-request-id: w404");
    ck_assert_int_eq(r->status, 404);
    http_reply_free(r);
    json_t *o = text_request_line(d, "w404");
    ck_assert_str_eq(field(o, "level"), "WARN");
    json_decref(o);
    daemon_shutdown(d);
    char *log = daemon_log(d);
    ck_assert_msg(!strstr(log, "w200"), "an INFO request line at warn:\n%s", log);
    ck_assert_msg(!strstr(log, "model spam ready") && !strstr(log, "model spam loading"),
                  "INFO model lines at warn:\n%s", log);
    /* the banner, the listening line and the stop are written at every level */
    ck_assert_ptr_nonnull(strstr(log, "INFO inferd: starting "));
    ck_assert_ptr_nonnull(strstr(log, "INFO inferd: listening on http://"));
    ck_assert_ptr_nonnull(strstr(log, "INFO inferd: stopped"));
    free(log);
    daemon_stop(d);
}
END_TEST

START_TEST(banner)
{
    /* the model's path through "..": the log names the real directory */
    char dir[PATH_MAX], parent[PATH_MAX], real[PATH_MAX], path[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s", fixture_model("spam-bert-tiny"));
    ck_assert_ptr_nonnull(realpath(dir, real));
    snprintf(parent, sizeof parent, "%s", dir);
    char *base = strrchr(parent, '/');
    ck_assert_ptr_nonnull(base);
    *base++ = '\0';
    const char *pbase = strrchr(parent, '/');
    ck_assert_ptr_nonnull(pbase);
    snprintf(path, sizeof path, "%s/../%s/%s", parent, pbase + 1, base);
    char *yaml = yaml_config("api_keys: [bannerkey-55]\nhttp_threads: 3\nwork_threads: 1\n",
                             yaml_model("spam", path, "text-classification", NULL), NULL);
    struct daemon *d = daemon_start(yaml, "bannerkey-55");
    free(yaml);
    char *line = wait_line(d, "inferd: starting ");
    json_t *o = parse_text(line);
    free(line);
    ck_assert_str_eq(field(o, "level"), "INFO");
    ck_assert_str_eq(field(o, "version"), INFERD_VERSION);
    ck_assert_msg(strchr(field(o, "onednn"), '.') != NULL, "onednn=%s", field(o, "onednn"));
    ck_assert_str_eq(field(o, "api_keys"), "on");
    ck_assert_str_eq(field(o, "tls"), "off");
    ck_assert_str_eq(field(o, "http_threads"), "3");
    ck_assert_str_eq(field(o, "work_threads"), "1");
    ck_assert_str_eq(field(o, "models"), "1");
    json_decref(o);
    line = wait_line(d, "inferd: model spam loading ");
    o = parse_text(line);
    free(line);
    ck_assert_str_eq(field(o, "task"), "text-classification");
    ck_assert_str_eq(field(o, "path"), real);
    ck_assert_str_eq(field(o, "dtype"), "fp32");
    ck_assert_str_eq(field(o, "workers"), "1");
    ck_assert_str_eq(field(o, "threads"), "1");
    json_decref(o);
    line = wait_line(d, "inferd: model spam ready (");
    ck_assert_msg(strstr(line, real) && !strstr(line, "/../"), "ready line: %s", line);
    free(line);
    daemon_shutdown(d);
    char *log = daemon_log(d);
    ck_assert_msg(!strstr(log, "bannerkey"), "the key in the log:\n%s", log);
    free(log);
    daemon_stop(d);
}
END_TEST

static char *four_models(const char *a_extra, const char *second, const char *third)
{
    return yaml_config(NULL, yaml_model("a", "spam-bert-tiny", "text-classification", a_extra),
                       yaml_model(second, "spam-bert-tiny", "text-classification", NULL),
                       yaml_model(third, "spam-bert-tiny", "text-classification", NULL), NULL);
}

START_TEST(reload_changes)
{
    char *yaml = four_models(NULL, "b", "c");
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    yaml = four_models("max_input_tokens: 16\n", "c", "d");
    daemon_write_config(d, yaml);
    free(yaml);
    daemon_signal(d, SIGHUP);
    char *line = wait_line(d, "inferd: models changed ");
    json_t *o = parse_text(line);
    free(line);
    ck_assert_str_eq(field(o, "added"), "d");
    ck_assert_str_eq(field(o, "removed"), "b");
    ck_assert_str_eq(field(o, "replaced"), "a");
    ck_assert_str_eq(field(o, "kept"), "c");
    json_decref(o);
    free(wait_line(d, "inferd: reloaded "));
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

START_TEST(stream_logged)
{
    char *yaml = yaml_config(NULL, yaml_model("gpt2", "gpt2-lm", "text-generation", NULL), NULL);
    struct daemon *d = daemon_start(yaml, NULL);
    free(yaml);
    const char *body = "{\"inputs\": \"Hello\", \"parameters\": {\"max_new_tokens\": 4}}";
    struct http_reply *r =
        http_request(d->port, "POST", "/generate_stream", body, "x-request-id: s1");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(reply_id(r), "s1");
    ck_assert_uint_gt(r->body_len, 0);
    json_t *o = text_request_line(d, "s1");
    ck_assert_str_eq(field(o, "level"), "INFO");
    ck_assert_str_eq(field(o, "route"), "/generate_stream");
    ck_assert_str_eq(field(o, "model"), "gpt2");
    ck_assert_str_eq(field(o, "status"), "200");
    ck_assert_uint_eq(strtoul(field(o, "bytes"), NULL, 10), r->body_len);
    json_decref(o);
    http_reply_free(r);

    r = http_request(d->port, "POST", "/generate", body, "x-request-id: g1");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(reply_id(r), "g1");
    o = text_request_line(d, "g1");
    ck_assert_uint_eq(strtoul(field(o, "bytes"), NULL, 10), r->body_len);
    ms_field(o, "queue_ms");
    ms_field(o, "inference_ms");
    ck_assert_str_eq(field(o, "batch_size"), "-");
    json_decref(o);
    http_reply_free(r);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

Suite *suite_serve_log(void)
{
    Suite *s = suite_create("serve_log");
    TCase *tc = tcase_create("log");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, access_text);
    tcase_add_test(tc, access_json);
    tcase_add_test(tc, level_warn);
    tcase_add_test(tc, banner);
    tcase_add_test(tc, reload_changes);
    tcase_add_test(tc, stream_logged);
    suite_add_tcase(s, tc);
    return s;
}
