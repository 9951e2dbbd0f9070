/* test_serve_struct: structured output through the real daemon (suite `serve_struct`): OpenAI
 * response_format (json_schema on /v1/chat/completions with the Llama 3 chat fixture,
 * json_object on /v1/completions) and TGI parameters.grammar (json and regex on /generate and
 * /generate_stream) with the random-weight gpt2-lm and llama-lm fixtures, sampled over several
 * seeds, streamed and not, and TGI's {"type": "json_object", "value": schema} form of
 * response_format: every output parses and validates (support/json_check.c, a
 * validator independent of the compiler; PCRE2 for regexes), and the streamed deltas add up to
 * a valid document. Bad schemas and regexes are 422 in both dialects, naming the keyword. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/json_check.h"
#include "support/support.h"

static struct daemon *srv;

static void srv_start(void)
{
    char *yaml = yaml_config(NULL, yaml_model("gpt2", "gpt2-lm", "text-generation", NULL),
                             yaml_model("chat", fixture_chat_model(), "text-generation", NULL),
                             NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

static const char *const schema_text =
    "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":6},"
    "\"temp\":{\"type\":\"integer\",\"minimum\":-40,\"maximum\":50},\"unit\":{\"enum\":[\"C\","
    "\"F\"]},\"days\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"maxItems\":2},\"sky\":{\"anyOf\":[{\"$ref\":\"#/$defs/sky\"},{\"type\":\"null\"}]}},"
    "\"required\":[\"city\",\"temp\",\"unit\",\"days\"],\"additionalProperties\":false,"
    "\"$defs\":{\"sky\":{\"type\":\"object\",\"properties\":{\"clear\":{\"type\":\"boolean\"}},"
    "\"required\":[\"clear\"]}}}";

static void expect_valid(const json_t *schema, const char *text, const char *what)
{
    json_error_t je;
    json_t *doc = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    ck_assert_msg(doc, "%s: not JSON (%s): %s", what, je.text, text);
    char why[256] = "";
    ck_assert_msg(json_check(schema, schema, doc, why, sizeof why), "%s: invalid (%s): %s", what,
                  why, text);
    json_decref(doc);
}

/* The JSON objects of an SSE body's data: events ([DONE] left out). */
static json_t *events(const char *body)
{
    json_t *out = json_array();
    for (const char *p = strstr(body, "data:"); p; p = strstr(p, "data:")) {
        p += 5;
        while (*p == ' ')
            p++;
        const char *end = strstr(p, "\n\n");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        json_t *v = json_loadb(p, n, 0, NULL);
        if (v)
            json_array_append_new(out, v);
        p += n;
    }
    return out;
}

static json_t *chat_body(uint64_t seed, bool stream, json_t *schema)
{
    return json_pack("{s:s, s:[{s:s, s:s}], s:i, s:I, s:f, s:b, s:{s:s, s:{s:s, s:o, s:b}}}",
                     "model", "chat", "messages", "role", "user", "content", "Weather?",
                     "max_tokens", 150, "seed", (json_int_t)seed, "temperature", 1.0, "stream",
                     stream, "response_format", "type", "json_schema", "json_schema", "name",
                     "weather", "schema", schema, "strict", 1);
}

START_TEST(openai_json_schema)
{
    json_t *schema = json_loads(schema_text, 0, NULL);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        char what[64];
        snprintf(what, sizeof what, "chat seed %d", (int)seed);
        struct http_reply *r =
            daemon_post(srv, "/v1/chat/completions", chat_body(seed, false, json_incref(schema)));
        expect_status(r, 200, what);
        const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(c0, "finish_reason")), "stop");
        expect_valid(schema,
                     json_string_value(json_object_get(json_object_get(c0, "message"), "content")),
                     what);
        http_reply_free(r);
        /* streamed: the same seed gives the same document, in deltas */
        r = daemon_post(srv, "/v1/chat/completions", chat_body(seed, true, json_incref(schema)));
        expect_status(r, 200, what);
        json_t *ev = events(r->body);
        struct buf text = {0};
        buf_add(&text, "", 0);
        const char *finish = NULL;
        for (size_t i = 0; i < json_array_size(ev); i++) {
            const json_t *ch = json_array_get(json_object_get(json_array_get(ev, i), "choices"), 0);
            const char *piece =
                json_string_value(json_object_get(json_object_get(ch, "delta"), "content"));
            if (piece)
                buf_add(&text, piece, strlen(piece));
            if (json_is_string(json_object_get(ch, "finish_reason")))
                finish = json_string_value(json_object_get(ch, "finish_reason"));
        }
        ck_assert_msg(finish && strcmp(finish, "stop") == 0, "%s stream: finish %s", what,
                      finish ? finish : "none");
        expect_valid(schema, text.p, what);
        free(text.p);
        json_decref(ev);
        http_reply_free(r);
    }
    json_decref(schema);
}
END_TEST

START_TEST(openai_json_object)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct http_reply *r = daemon_post(
            srv, "/v1/completions",
            json_pack("{s:s, s:s, s:i, s:I, s:{s:s}}", "model", "gpt2", "prompt", "JSON:",
                      "max_tokens", 40, "seed", (json_int_t)seed, "response_format", "type",
                      "json_object"));
        expect_status(r, 200, "json_object");
        const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
        const char *text = json_string_value(json_object_get(c0, "text"));
        const char *fin = json_string_value(json_object_get(c0, "finish_reason"));
        if (strcmp(fin, "stop") == 0) {
            json_t *doc = json_loads(text, JSON_ALLOW_NUL, NULL);
            ck_assert_msg(json_is_object(doc), "not an object: %s", text);
            json_decref(doc);
        } else { /* random weights inside a free string: cut at max_tokens */
            ck_assert_str_eq(fin, "length");
            ck_assert_msg(text[0] == '{', "%s", text);
        }
        http_reply_free(r);
    }
}
END_TEST

START_TEST(tgi_grammar)
{
    json_t *schema = json_loads(schema_text, 0, NULL);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct http_reply *r = daemon_post(
            srv, "/generate",
            json_pack("{s:s, s:{s:i, s:I, s:b, s:{s:s, s:O}}}", "inputs", "Weather:",
                      "parameters", "max_new_tokens", 150, "seed", (json_int_t)seed, "do_sample",
                      1, "grammar", "type", "json", "value", schema));
        expect_status(r, 200, "tgi json");
        expect_valid(schema, json_string_value(json_object_get(r->json, "generated_text")),
                     "tgi json");
        http_reply_free(r);
        /* the schema as JSON text, streamed */
        r = daemon_post(srv, "/generate_stream",
                        json_pack("{s:s, s:{s:i, s:I, s:b, s:b, s:{s:s, s:s}}}", "inputs",
                                  "Weather:", "parameters", "max_new_tokens", 150, "seed",
                                  (json_int_t)seed, "do_sample", 1, "details", 1, "grammar", "type",
                                  "json", "value", schema_text));
        expect_status(r, 200, "tgi json stream");
        json_t *ev = events(r->body);
        const json_t *last = json_array_get(ev, json_array_size(ev) - 1);
        const char *gen = json_string_value(json_object_get(last, "generated_text"));
        ck_assert_msg(gen, "no generated_text in the last event: %s", r->body);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(last, "details"),
                                                           "finish_reason")),
                         "eos_token");
        expect_valid(schema, gen, "tgi json stream");
        json_decref(ev);
        http_reply_free(r);
    }
    json_decref(schema);
    /* a regex */
    const char *re = "(cat|dog)-[0-9]{2}:[a-z]{1,3}";
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR) "^(cat|dog)-[0-9]{2}:[a-z]{1,3}$",
                                     PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct http_reply *r = daemon_post(
            srv, "/generate",
            json_pack("{s:s, s:{s:i, s:I, s:b, s:{s:s, s:s}}}", "inputs", "Pet:", "parameters",
                      "max_new_tokens", 20, "seed", (json_int_t)seed, "do_sample", 1, "grammar",
                      "type", "regex", "value", re));
        expect_status(r, 200, "tgi regex");
        const char *text = json_string_value(json_object_get(r->json, "generated_text"));
        ck_assert_msg(pcre2_match(code, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL) >= 0,
                      "'%s' does not match %s", text, re);
        http_reply_free(r);
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
}
END_TEST

/* TGI's response_format on /v1/chat/completions, {"type": "json_object" or "json", "value": a
 * schema or its text} (what huggingface_hub's InferenceClient sends for a json_schema): the
 * schema constrains the output, as json_schema does; an unparsable value is 400. */
START_TEST(openai_tgi_response_format)
{
    json_t *schema = json_loads(schema_text, 0, NULL);
    static const char *const types[] = {"json_object", "json"};
    for (uint64_t seed = 1; seed <= 2; seed++) {
        char what[64];
        snprintf(what, sizeof what, "TGI response_format seed %d", (int)seed);
        json_t *value = seed == 1 ? json_incref(schema) : json_string(schema_text);
        struct http_reply *r = daemon_post(
            srv, "/v1/chat/completions",
            json_pack("{s:s, s:[{s:s, s:s}], s:i, s:I, s:f, s:{s:s, s:o}}", "model", "chat",
                      "messages", "role", "user", "content", "Weather?", "max_tokens", 150, "seed",
                      (json_int_t)seed, "temperature", 1.0, "response_format", "type",
                      types[seed - 1], "value", value));
        expect_status(r, 200, what);
        const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(c0, "finish_reason")), "stop");
        expect_valid(schema,
                     json_string_value(json_object_get(json_object_get(c0, "message"), "content")),
                     what);
        http_reply_free(r);
    }
    json_decref(schema);
    struct http_reply *r = daemon_post(
        srv, "/v1/chat/completions",
        json_pack("{s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "model", "chat", "messages", "role",
                  "user", "content", "Hi", "response_format", "type", "json_object", "value",
                  "{not json"));
    expect_openai_error(r, 400, "an unparsable value");
    ck_assert_msg(strstr(r->body, "`response_format`: `value` is not a JSON schema"), "%s",
                  r->body);
    http_reply_free(r);
}
END_TEST

/* 422 in both dialects, naming what is wrong. */
START_TEST(bad_constraints_422)
{
    struct http_reply *r = daemon_post(
        srv, "/v1/chat/completions",
        json_pack("{s:s, s:[{s:s, s:s}], s:i, s:{s:s, s:{s:s, s:{s:s, s:b}}}}", "model", "chat",
                  "messages", "role", "user", "content", "Hi", "max_tokens", 4,
                  "response_format", "type", "json_schema", "json_schema", "name", "x", "schema",
                  "type", "array", "uniqueItems", 1));
    expect_openai_error(r, 422, "uniqueItems");
    const json_t *err = json_object_get(r->json, "error");
    ck_assert_str_eq(json_string_value(json_object_get(err, "param")), "response_format");
    ck_assert_msg(strstr(json_string_value(json_object_get(err, "message")), "`uniqueItems`"),
                  "%s", r->body);
    http_reply_free(r);
    r = daemon_post(srv, "/generate",
                    json_pack("{s:s, s:{s:{s:s, s:s}}}", "inputs", "Hi", "parameters", "grammar",
                              "type", "regex", "value", "(ab"));
    expect_hf_error(r, 422, "bad regex");
    ck_assert_msg(strstr(json_string_value(json_object_get(r->json, "error")),
                         "Input validation error: `grammar`: regex: a missing )"),
                  "%s", r->body);
    http_reply_free(r);
    r = daemon_post(srv, "/generate",
                    json_pack("{s:s, s:{s:{s:s, s:{s:s, s:s}}}}", "inputs", "Hi", "parameters",
                              "grammar", "type", "json", "value", "type", "string", "format",
                              "email"));
    expect_hf_error(r, 422, "format email");
    ck_assert_msg(strstr(r->body, "\\\"email\\\""), "%s", r->body);
    http_reply_free(r);
    /* a malformed response_format is the dialect's own 400 */
    r = daemon_post(srv, "/v1/chat/completions",
                    json_pack("{s:s, s:[{s:s, s:s}], s:{s:s}}", "model", "chat", "messages",
                              "role", "user", "content", "Hi", "response_format", "type", "yaml"));
    expect_openai_error(r, 400, "type yaml");
    http_reply_free(r);
}
END_TEST

Suite *suite_serve_struct(void)
{
    Suite *s = suite_create("serve_struct");
    TCase *tc = tcase_create("structured");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, openai_json_schema);
    tcase_add_test(tc, openai_json_object);
    tcase_add_test(tc, openai_tgi_response_format);
    tcase_add_test(tc, tgi_grammar);
    tcase_add_test(tc, bad_constraints_422);
    suite_add_tcase(s, tc);
    return s;
}
