/* test_serve_api: what the generation dialects refuse, the OpenAI list prompt, TGI's POST /
 * and the newline that ends JSON bodies, on the real daemon with the gpt2-lm and t5-s2s
 * fixtures. Parameters the reference APIs define and inferd does not implement (OpenAI tools,
 * logit_bias, suffix, best_of; TGI watermark, adapter_id) are
 * refused naming the key (OpenAI 400 invalid_request_error with param, TGI 422 validation),
 * their neutral values and metadata accepted; so are the pipeline route's (num_return_sequences,
 * num_beams, min_new_tokens). A list prompt on /v1/completions answers each
 * prompt's n choices in order (index = prompt * n + j), each the refs' greedy text, usage
 * summed, streamed too. POST / is /generate's answer in a list (return_full_text true by default
 * on text-generation, false on text2text-generation) or, with "stream": true, /generate_stream.
 * Expected texts: the fixtures' refs-dev.json (transformers' greedy generations). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

#define MAX_NEW 24 /* the refs' greedy length (gpt2-lm) */

static struct daemon *srv;

static void srv_start(void)
{
    char *yaml = yaml_config(NULL, yaml_model("gpt2", "gpt2-lm", "text-generation", NULL),
                             yaml_model("t5", "t5-s2s", "text2text-generation", NULL),
                             yaml_model("seqcls", "bert-seqcls", "text-classification", NULL),
                             NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

/* refs "generations" entry i of a fixture model (new reference). */
static json_t *generation(const char *model, size_t i)
{
    json_t *refs = model_refs(model);
    json_t *g = json_incref(json_array_get(json_object_get(refs, "generations"), i));
    json_decref(refs);
    ck_assert_ptr_nonnull(g);
    return g;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    ck_assert_msg(s, "no string \"%s\"", key);
    return s;
}

static char *concat(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    ck_assert_ptr_nonnull(s);
    snprintf(s, n, "%s%s", a, b);
    return s;
}

/* ---- refusals ---- */

/* body (stolen) to path is refused: OpenAI 400 naming key in param and message. */
static void expect_oai_refused(const char *path, json_t *body, const char *key)
{
    struct http_reply *r = daemon_post(srv, path, body);
    char what[200];
    snprintf(what, sizeof what, "%s with `%s`", path, key);
    expect_openai_error(r, 400, what);
    const json_t *err = json_object_get(r->json, "error");
    ck_assert_str_eq(str(err, "type"), "invalid_request_error");
    ck_assert_msg(json_is_string(json_object_get(err, "param")) &&
                      strcmp(str(err, "param"), key) == 0,
                  "%s: param is not \"%s\": %s", what, key, r->body);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "`%s` is not supported", key);
    ck_assert_msg(strstr(str(err, "message"), quoted), "%s: %s", what, r->body);
    http_reply_free(r);
}

/* A completion of "Hi" with one extra key (value stolen). */
static json_t *completion_with(const char *key, json_t *value)
{
    json_t *b = json_pack("{s:s, s:s, s:i, s:f}", "model", "gpt2", "prompt", "Hi", "max_tokens", 2,
                          "temperature", 0.0);
    json_object_set_new(b, key, value);
    return b;
}

static json_t *chat_with(const char *key, json_t *value)
{
    json_t *b = json_pack("{s:s, s:[{s:s, s:s}], s:i}", "model", "gpt2", "messages", "role",
                          "user", "content", "Hi", "max_tokens", 2);
    json_object_set_new(b, key, value);
    return b;
}

START_TEST(openai_refuses_what_it_does_not_do)
{
    const char *chat = "/v1/chat/completions", *cmpl = "/v1/completions";
    /* tools and tool_choice are served (test_serve_tools.c); the legacy functions are not */
    expect_oai_refused(chat, chat_with("functions", json_pack("[{s:s}]", "name", "f")),
                       "functions");
    expect_oai_refused(chat, chat_with("function_call", json_pack("{s:s}", "name", "f")),
                       "function_call");
    expect_oai_refused(cmpl, completion_with("logit_bias", json_pack("{s:i}", "50256", -100)),
                       "logit_bias");
    expect_oai_refused(cmpl, completion_with("suffix", json_string(" the end")), "suffix");
    expect_oai_refused(cmpl, completion_with("best_of", json_integer(3)), "best_of");
    expect_oai_refused(cmpl, completion_with("guided_regex", json_string("[0-9]+")),
                       "guided_regex");
    expect_oai_refused(cmpl, completion_with("min_tokens", json_integer(5)), "min_tokens");
}
END_TEST

/* Neutral values and metadata change nothing: the same greedy text as without them. */
START_TEST(openai_accepts_neutral_values)
{
    json_t *g = generation("gpt2-lm", 0);
    static const char *const keys[] = {"response_format", "logit_bias", "user",
                                       "metadata",        "suffix",     "best_of"};
    json_t *values[] = {json_pack("{s:s}", "type", "text"), json_object(), json_string("u-1"),
                        json_pack("{s:s}", "team", "a"),    json_string(""), json_integer(1)};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *b = json_pack("{s:s, s:s, s:i, s:f}", "model", "gpt2", "prompt", str(g, "prompt"),
                              "max_tokens", MAX_NEW, "temperature", 0.0);
        json_object_set_new(b, keys[i], values[i]);
        struct http_reply *r = daemon_post(srv, "/v1/completions", b);
        expect_status(r, 200, keys[i]);
        const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
        ck_assert_str_eq(str(c0, "text"), str(g, "greedy_text"));
        http_reply_free(r);
    }
    json_decref(g);
}
END_TEST

/* body (stolen) to path: TGI's 422 validation error naming key. */
static void expect_tgi_refused(const char *path, json_t *body, const char *key)
{
    struct http_reply *r = daemon_post(srv, path, body);
    char what[200], want[100];
    snprintf(what, sizeof what, "%s with `%s`", path, key);
    expect_hf_error(r, 422, what);
    ck_assert_str_eq(str(r->json, "error_type"), "validation");
    snprintf(want, sizeof want, "Input validation error: `%s` is not supported", key);
    ck_assert_msg(strncmp(str(r->json, "error"), want, strlen(want)) == 0, "%s: %s", what,
                  r->body);
    http_reply_free(r);
}

START_TEST(tgi_refuses_what_it_does_not_do)
{
    static const char *const paths[] = {"/generate", "/generate_stream", "/"};
    for (size_t i = 0; i < 3; i++) {
        expect_tgi_refused(
            paths[i], json_pack("{s:s, s:{s:b}}", "inputs", "Hi", "parameters", "watermark", 1),
            "watermark");
        expect_tgi_refused(
            paths[i], json_pack("{s:s, s:{s:s}}", "inputs", "Hi", "parameters", "adapter_id", "x"),
            "adapter_id");
    }
    /* the neutral values pass */
    struct http_reply *r = daemon_post(
        srv, "/generate",
        json_pack("{s:s, s:{s:b, s:n, s:n, s:i}}", "inputs", "Hi", "parameters", "watermark", 0,
                  "grammar", "adapter_id", "max_new_tokens", 2));
    expect_status(r, 200, "watermark false, grammar null");
    http_reply_free(r);
}
END_TEST

/* The pipeline route (POST /models/{name}) refuses generate() options it does not do (beam
 * search itself runs there: test_serve_s2s.c). */
START_TEST(pipeline_refuses_what_it_does_not_do)
{
    static const struct {
        const char *key, *want;
    } cases[] = {
        {"num_return_sequences", "Greedy methods without beam search do not support "
                                 "`num_return_sequences` different than 1 (got 3)."},
        {"min_new_tokens", "`min_new_tokens` is not supported without beam search"},
        {"prefix", "`prefix` is not supported: inferd does not implement a prompt prefix"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *params = json_pack("{s:i}", "max_new_tokens", 4);
        json_object_set_new(params, cases[i].key,
                            strcmp(cases[i].key, "prefix") ? json_integer(3) : json_string("x"));
        struct http_reply *r = daemon_post(
            srv, "/models/gpt2", json_pack("{s:s, s:o}", "inputs", "Hello", "parameters", params));
        expect_hf_error(r, 422, cases[i].key);
        ck_assert_msg(strstr(str(r->json, "error"), cases[i].want), "%s: %s", cases[i].key,
                      r->body);
        http_reply_free(r);
    }
    struct http_reply *r = daemon_post(
        srv, "/models/gpt2",
        json_pack("{s:s, s:{s:i, s:i, s:i}}", "inputs", "Hello", "parameters", "max_new_tokens", 4,
                  "num_return_sequences", 1, "num_beams", 1));
    expect_status(r, 200, "num_return_sequences 1");
    http_reply_free(r);
}
END_TEST

/* ---- the list prompt ---- */

/* body (stolen) to /v1/completions: OpenAI's 400 naming param. */
static void expect_oai_error_param(json_t *body, const char *param)
{
    struct http_reply *r = daemon_post(srv, "/v1/completions", body);
    expect_openai_error(r, 400, param);
    ck_assert_str_eq(str(json_object_get(r->json, "error"), "param"), param);
    http_reply_free(r);
}

START_TEST(openai_list_prompt)
{
    enum { N_PROMPTS = 3, N = 2 };
    json_t *gens[N_PROMPTS], *prompts = json_array();
    size_t n_in = 0;
    for (size_t k = 0; k < N_PROMPTS; k++) {
        gens[k] = generation("gpt2-lm", k);
        json_array_append(prompts, json_object_get(gens[k], "prompt"));
        n_in += json_array_size(json_object_get(gens[k], "input_ids"));
    }
    struct http_reply *r = daemon_post(
        srv, "/v1/completions",
        json_pack("{s:s, s:o, s:i, s:f, s:i}", "model", "gpt2", "prompt", prompts, "max_tokens",
                  MAX_NEW, "temperature", 0.0, "n", N));
    expect_status(r, 200, "list prompt");
    const json_t *ch = json_object_get(r->json, "choices");
    ck_assert_uint_eq(json_array_size(ch), N_PROMPTS * N);
    for (size_t i = 0; i < N_PROMPTS * N; i++) {
        const json_t *c = json_array_get(ch, i);
        ck_assert_int_eq(json_integer_value(json_object_get(c, "index")), (json_int_t)i);
        ck_assert_msg(strcmp(str(c, "text"), str(gens[i / N], "greedy_text")) == 0,
                      "choice %zu: %s", i, str(c, "text"));
    }
    /* cached_tokens: each prompt once (its first choice's), whatever earlier tests left in
     * the prefix cache, at most all but one token of each */
    json_t *got = json_deep_copy(json_object_get(r->json, "usage"));
    const json_t *det = json_object_get(got, "prompt_tokens_details");
    json_int_t cached = json_integer_value(json_object_get(det, "cached_tokens"));
    ck_assert(json_is_integer(json_object_get(det, "cached_tokens")) && cached >= 0 &&
              cached <= (json_int_t)(n_in - N_PROMPTS));
    json_object_del(got, "prompt_tokens_details");
    json_t *usage = json_pack("{s:i, s:i, s:i}", "prompt_tokens", (int)n_in, "completion_tokens",
                              N_PROMPTS * N * MAX_NEW, "total_tokens",
                              (int)n_in + N_PROMPTS * N * MAX_NEW);
    expect_json(got, usage, 0, "usage");
    json_decref(usage);
    json_decref(got);
    http_reply_free(r);

    /* token id lists, with echo: each choice starts with its own prompt */
    json_t *ids = json_pack("[O, O]", json_object_get(gens[1], "input_ids"),
                            json_object_get(gens[0], "input_ids"));
    r = daemon_post(srv, "/v1/completions",
                    json_pack("{s:s, s:o, s:i, s:f, s:b}", "model", "gpt2", "prompt", ids,
                              "max_tokens", MAX_NEW, "temperature", 0.0, "echo", 1));
    expect_status(r, 200, "token id lists");
    ch = json_object_get(r->json, "choices");
    ck_assert_uint_eq(json_array_size(ch), 2);
    for (size_t i = 0; i < 2; i++) {
        const json_t *g = gens[i == 0 ? 1 : 0];
        char *want = concat(str(g, "prompt"), str(g, "greedy_text"));
        ck_assert_str_eq(str(json_array_get(ch, i), "text"), want);
        free(want);
    }
    http_reply_free(r);

    /* streamed: every chunk names its choice; the texts by index are the refs' */
    r = daemon_post(srv, "/v1/completions",
                    json_pack("{s:s, s:[s, s], s:i, s:f, s:b, s:{s:b}}", "model", "gpt2",
                              "prompt", str(gens[0], "prompt"), str(gens[2], "prompt"),
                              "max_tokens", MAX_NEW, "temperature", 0.0, "stream", 1,
                              "stream_options", "include_usage", 1));
    expect_status(r, 200, "list prompt stream");
    struct buf text[2] = {{0}, {0}};
    buf_add(&text[0], "", 0);
    buf_add(&text[1], "", 0);
    size_t finished = 0;
    json_t *last = NULL;
    for (char *p = r->body; (p = strstr(p, "data: ")) != NULL; p += 6) {
        char *end = strstr(p, "\n\n");
        ck_assert_ptr_nonnull(end);
        if (strncmp(p + 6, "[DONE]", 6) == 0)
            break;
        json_t *ev = json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL);
        ck_assert_ptr_nonnull(ev);
        const json_t *c = json_array_get(json_object_get(ev, "choices"), 0);
        if (c) {
            json_int_t i = json_integer_value(json_object_get(c, "index"));
            ck_assert(i == 0 || i == 1);
            buf_add(&text[i], str(c, "text"), strlen(str(c, "text")));
            finished += json_is_string(json_object_get(c, "finish_reason"));
        }
        json_decref(last);
        last = ev;
    }
    ck_assert_uint_eq(finished, 2);
    ck_assert_str_eq(text[0].p, str(gens[0], "greedy_text"));
    ck_assert_str_eq(text[1].p, str(gens[2], "greedy_text"));
    const json_t *u = json_object_get(last, "usage");
    ck_assert_int_eq(json_integer_value(json_object_get(u, "completion_tokens")), 2 * MAX_NEW);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")),
                     (json_int_t)(json_array_size(json_object_get(gens[0], "input_ids")) +
                                  json_array_size(json_object_get(gens[2], "input_ids"))));
    /* both prompts ran above: all but their last tokens come from the prefix cache */
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(u, "prompt_tokens_details"), "cached_tokens")),
                     (json_int_t)(json_array_size(json_object_get(gens[0], "input_ids")) - 1 +
                                  json_array_size(json_object_get(gens[2], "input_ids")) - 1));
    json_decref(last);
    free(text[0].p);
    free(text[1].p);
    http_reply_free(r);

    /* more choices than a request holds; an entry of the wrong kind */
    expect_oai_error_param(json_pack("{s:s, s:[s,s,s,s,s,s,s,s,s], s:i}", "model", "gpt2",
                                     "prompt", "a", "b", "c", "d", "e", "f", "g", "h", "i", "n", 2),
                           "prompt");
    expect_oai_error_param(json_pack("{s:s, s:[s, [s]]}", "model", "gpt2", "prompt", "a", "b"),
                           "prompt");
    for (size_t k = 0; k < N_PROMPTS; k++)
        json_decref(gens[k]);
}
END_TEST

/* ---- TGI POST / ---- */

START_TEST(tgi_compat_route)
{
    json_t *g = generation("gpt2-lm", 0);
    char *full = concat(str(g, "prompt"), str(g, "greedy_text"));
    /* text-generation: return_full_text by default, the answer in a list */
    struct http_reply *r =
        daemon_post(srv, "/",
                    json_pack("{s:s, s:{s:b, s:i}, s:s}", "inputs", str(g, "prompt"),
                              "parameters", "do_sample", 0, "max_new_tokens", MAX_NEW, "model",
                              "gpt2"));
    expect_status(r, 200, "POST /");
    ck_assert_msg(json_is_array(r->json) && json_array_size(r->json) == 1, "not [answer]: %s",
                  r->body);
    ck_assert_str_eq(str(json_array_get(r->json, 0), "generated_text"), full);
    http_reply_free(r);
    /* given false, and stream false said outright: /generate's text */
    r = daemon_post(srv, "/",
                    json_pack("{s:s, s:{s:b, s:i, s:b, s:b}, s:s, s:b}", "inputs",
                              str(g, "prompt"), "parameters", "do_sample", 0, "max_new_tokens",
                              MAX_NEW, "return_full_text", 0, "details", 1, "model", "gpt2",
                              "stream", 0));
    expect_status(r, 200, "POST / return_full_text false");
    const json_t *a = json_array_get(r->json, 0);
    ck_assert_str_eq(str(a, "generated_text"), str(g, "greedy_text"));
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(a, "details"), "generated_tokens")),
        MAX_NEW);
    http_reply_free(r);
    /* stream: /generate_stream's events, the last one with the full text */
    r = daemon_post(srv, "/",
                    json_pack("{s:s, s:{s:b, s:i}, s:s, s:b}", "inputs", str(g, "prompt"),
                              "parameters", "do_sample", 0, "max_new_tokens", MAX_NEW, "model",
                              "gpt2", "stream", 1));
    expect_status(r, 200, "POST / stream");
    char v[64];
    ck_assert(http_header(r, "Content-Type", v, sizeof v) && strcmp(v, "text/event-stream") == 0);
    size_t events = 0;
    const char *lastev = NULL;
    for (const char *p = r->body; (p = strstr(p, "data: ")) != NULL; p += 6) {
        events++;
        lastev = p + 6;
    }
    ck_assert_uint_eq(events, MAX_NEW);
    json_t *ev = json_loadb(lastev, strcspn(lastev, "\n"), 0, NULL);
    ck_assert_str_eq(str(ev, "generated_text"), full);
    json_decref(ev);
    http_reply_free(r);
    /* text2text-generation: the decoder's text alone by default */
    json_t *t = generation("t5-s2s", 0);
    r = daemon_post(srv, "/",
                    json_pack("{s:s, s:{s:b, s:i}, s:s}", "inputs", str(t, "input"), "parameters",
                              "do_sample", 0, "max_new_tokens", 16, "model", "t5"));
    expect_status(r, 200, "POST / t5");
    ck_assert_str_eq(str(json_array_get(r->json, 0), "generated_text"), str(t, "greedy_text"));
    http_reply_free(r);
    json_decref(t);
    /* stream must be a boolean */
    r = daemon_post(srv, "/", json_pack("{s:s, s:s}", "inputs", "Hi", "stream", "yes"));
    expect_hf_error(r, 422, "stream \"yes\"");
    ck_assert_str_eq(str(r->json, "error_type"), "validation");
    http_reply_free(r);
    free(full);
    json_decref(g);
}
END_TEST

/* ---- JSON bodies end with a newline; SSE stays exact ---- */

static void expect_newline(struct http_reply *r, long status, const char *what)
{
    expect_status(r, status, what);
    ck_assert_msg(r->body_len >= 2 && r->body[r->body_len - 1] == '\n' &&
                      r->body[r->body_len - 2] != '\n',
                  "%s: the body does not end with one newline: %s", what, r->body);
    ck_assert_msg(r->json, "%s: not JSON", what);
    http_reply_free(r);
}

START_TEST(json_bodies_end_with_newline)
{
    expect_newline(daemon_get(srv, "/v1/models"), 200, "OpenAI GET /v1/models");
    expect_newline(daemon_post(srv, "/v1/completions", json_pack("{s:s}", "model", "gpt2")), 400,
                   "OpenAI error");
    expect_newline(daemon_post(srv, "/generate",
                               json_pack("{s:s, s:{s:i}}", "inputs", "Hi", "parameters",
                                         "max_new_tokens", 2)),
                   200, "TGI /generate");
    expect_newline(daemon_post(srv, "/models/seqcls", json_pack("{s:s}", "inputs", "Hello")), 200,
                   "HF /models/seqcls");
    /* the stream's framing is unchanged: events end with one blank line, nothing after */
    struct http_reply *r =
        daemon_post(srv, "/generate_stream",
                    json_pack("{s:s, s:{s:i}}", "inputs", "Hi", "parameters", "max_new_tokens", 2));
    expect_status(r, 200, "/generate_stream");
    ck_assert_msg(r->body_len > 3 && strcmp(r->body + r->body_len - 3, "}\n\n") == 0,
                  "stream end: %s", r->body);
    http_reply_free(r);
}
END_TEST

START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

Suite *suite_serve_api(void)
{
    Suite *s = suite_create("serve_api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, openai_refuses_what_it_does_not_do);
    tcase_add_test(tc, openai_accepts_neutral_values);
    tcase_add_test(tc, tgi_refuses_what_it_does_not_do);
    tcase_add_test(tc, pipeline_refuses_what_it_does_not_do);
    tcase_add_test(tc, openai_list_prompt);
    tcase_add_test(tc, tgi_compat_route);
    tcase_add_test(tc, json_bodies_end_with_newline);
    tcase_add_test(tc, shutdown_is_clean);
    suite_add_tcase(s, tc);
    return s;
}
