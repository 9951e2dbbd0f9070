/* test_abuse_chat: hostile chat templates against the real daemon (issue 11). A chat template
 * is code that comes with a model directory; whatever it does, the daemon keeps serving:
 *   - a template that breaks a render budget (an empty string repeated 10^12 times, which
 *     looped forever, then a string of 10^12 bytes) answers /v1/chat/completions with 500 and
 *     the OpenAI error shape naming the budget, two such requests at once included, while
 *     /health answers and the other models serve; SIGTERM then exits 0;
 *   - a template of 100k `not` (one per line), which compiled and then overflowed an HTTP
 *     thread's stack on the first chat request, is refused when the model loads: its requests
 *     answer 503, the log says why, the daemon serves the others and exits 0 on SIGTERM.
 * The models are llama-lm with tokenizer_config.json's chat_template replaced (every other
 * file a symlink to llama-lm's). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

/* DIR/NAME: llama-lm with chat_template = tmpl. */
static const char *bomb_model(const char *dir, const char *name, const char *tmpl)
{
    static char paths[2][600];
    static int k;
    char *out = paths[k++ % 2], a[1200], b[1200];
    snprintf(out, sizeof paths[0], "%s/%s", dir, name);
    ck_assert_int_eq(mkdir(out, 0755), 0);
    const char *src = fixture_model("llama-lm");
    static const char *const linked[] = {"config.json", "generation_config.json",
                                         "model.safetensors", "tokenizer.json"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(a, sizeof a, "%s/%s", src, linked[i]);
        snprintf(b, sizeof b, "%s/%s", out, linked[i]);
        ck_assert_msg(symlink(a, b) == 0, "symlink %s: %s", b, strerror(errno));
    }
    json_t *cfg = fixture_json(src, "tokenizer_config.json");
    json_object_set_new(cfg, "chat_template", json_string(tmpl));
    snprintf(b, sizeof b, "%s/tokenizer_config.json", out);
    ck_assert_int_eq(json_dump_file(cfg, b, 0), 0);
    json_decref(cfg);
    return out;
}

static const char chat_body[] = "{\"model\": \"%s\", \"max_tokens\": 2, \"messages\": "
                                "[{\"role\": \"user\", \"content\": \"Hello\"}]}";

static struct http_reply *chat(const struct daemon *d, const char *model)
{
    char body[256];
    snprintf(body, sizeof body, chat_body, model);
    return http_request(d->port, "POST", "/v1/chat/completions", body, NULL);
}

static struct http_reply *completion(const struct daemon *d)
{
    return http_request(d->port, "POST", "/v1/completions",
                        "{\"model\": \"llama\", \"prompt\": \"Hi\", \"max_tokens\": 2}", NULL);
}

static void expect_health(const struct daemon *d, const char *what)
{
    struct http_reply *r = http_request(d->port, "GET", "/health", NULL, NULL);
    expect_status(r, 200, what);
    http_reply_free(r);
}

/* The error message of an OpenAI error body. */
static const char *openai_message(const struct http_reply *r)
{
    return json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
}

START_TEST(render_budget_is_an_error_not_a_hang)
{
    struct daemon *d = daemon_new(NULL);
    const char *bomb =
        bomb_model(d->dir, "bomb", "{{ ('' * 1000000000000) ~ ('x' * 1000000000000) }}");
    char *yaml = yaml_config(NULL, yaml_model("bomb", bomb, "text-generation", NULL),
                             yaml_model("llama", "llama-lm", "text-generation", NULL), NULL);
    daemon_write_config(d, yaml);
    free(yaml);
    daemon_exec(d, NULL);
    daemon_wait_listening(d, 30000);
    daemon_wait_ready(d, 120000);
    /* two at once: before, each left an HTTP thread spinning for good */
    char body[256];
    snprintf(body, sizeof body, chat_body, "bomb");
    struct http_spec specs[2] = {{"POST", "/v1/chat/completions", body, NULL},
                                 {"POST", "/v1/chat/completions", body, NULL}};
    struct http_multi *m = http_multi_start(d->port, specs, 2);
    ck_assert_msg(http_multi_wait(m, 30000), "the chat requests did not end; log:\n%s",
                  daemon_log_tail(d));
    for (size_t i = 0; i < 2; i++) {
        const struct http_reply *r = http_multi_reply(m, i);
        expect_openai_error(r, 500, "chat with a template over its output budget");
        ck_assert_msg(strstr(openai_message(r), "chat template: exceeded the output budget"),
                      "message: %s", r->body);
    }
    http_multi_free(m);
    expect_health(d, "GET /health after the template bombs");
    /* the other model still serves */
    struct http_reply *r = completion(d);
    expect_status(r, 200, "a completion from the other model after the template bombs");
    http_reply_free(r);
    daemon_shutdown(d); /* SIGTERM: exit 0 within 30 s, no sanitizer report */
    daemon_stop(d);
}
END_TEST

START_TEST(deep_template_is_refused_at_load)
{
    struct daemon *d = daemon_new(NULL);
    size_t n = 100000;
    char *tmpl = malloc(n * 4 + 16);
    ck_assert_ptr_nonnull(tmpl);
    strcpy(tmpl, "{{ ");
    for (size_t i = 0; i < n; i++)
        memcpy(tmpl + 3 + i * 4, "not\n", 4);
    strcpy(tmpl + 3 + n * 4, "x }}");
    const char *deep = bomb_model(d->dir, "deep", tmpl);
    free(tmpl);
    /* allow_partial_start: the other model serves while the deep one is refused */
    char *yaml = yaml_config("allow_partial_start: true\n",
                             yaml_model("deep", deep, "text-generation", NULL),
                             yaml_model("llama", "llama-lm", "text-generation", NULL), NULL);
    daemon_write_config(d, yaml);
    free(yaml);
    daemon_exec(d, NULL);
    daemon_wait_listening(d, 30000);
    /* the good model comes up; the deep one does not (before: it did, and crashed) */
    long long end = now_ms() + 120000;
    for (;;) {
        struct http_reply *r = completion(d);
        long st = r->status;
        http_reply_free(r);
        if (st == 200)
            break;
        ck_assert_msg(daemon_alive(d), "daemon died; log:\n%s", daemon_log_tail(d));
        ck_assert_msg(now_ms() < end, "llama never answered 200 (last %ld); log:\n%s", st,
                      daemon_log_tail(d));
        sleep_ms(50);
    }
    sleep_ms(200); /* the deep one has had time to fail too */
    for (int i = 0; i < 2; i++) {
        struct http_reply *r = chat(d, "deep");
        expect_openai_error(r, 503, "chat with a model whose template was refused");
        http_reply_free(r);
    }
    ck_assert_msg(daemon_alive(d), "daemon died; log:\n%s", daemon_log_tail(d));
    expect_health(d, "GET /health with a refused template");
    char *log = daemon_log(d);
    ck_assert_msg(strstr(log, "nests too deeply") != NULL, "the log does not say why:\n%s",
                  daemon_log_tail(d));
    free(log);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

Suite *suite_abuse_chat(void)
{
    Suite *s = suite_create("abuse_chat");
    TCase *tc = tcase_create("templates");
    tcase_add_test(tc, render_budget_is_an_error_not_a_hang);
    tcase_add_test(tc, deep_template_is_refused_at_load);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return s;
}
