/* test_serve_decoders_i14: the issue-14 decoder families served by the real daemon (Qwen3,
 * Gemma, Gemma 2, Gemma 3, Phi-3 fixtures; tools/refgen): TGI /generate greedy gives the refs'
 * 48 greedy ids of every prompt (past the sliding windows and Phi-3's LongRoPE switch; prompts
 * fed 4 tokens a step, max_batch_prefill_tokens 4, so chunked prefill crosses them too), and
 * OpenAI /v1/chat/completions renders Qwen3's chat template with chat_template_kwargs'
 * enable_thinking: the prompt's token count is the refs' and the answer is the text of the
 * refs' chat greedy ids (TGI /generate on the refs' rendered text, ids checked). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

static const char *const lms[] = {"qwen3-lm", "gemma-lm", "gemma2-lm", "gemma3-lm", "phi3-lm"};
#define N_LMS (sizeof lms / sizeof lms[0])

static struct daemon *srv;

static void srv_start(void)
{
    static const char small_prefill[] = "generation:\n  max_batch_prefill_tokens: 4\n";
    char *yaml = yaml_config(NULL, yaml_model("qwen3", lms[0], "text-generation", small_prefill),
                             yaml_model("gemma", lms[1], "text-generation", small_prefill),
                             yaml_model("gemma2", lms[2], "text-generation", small_prefill),
                             yaml_model("gemma3", lms[3], "text-generation", small_prefill),
                             yaml_model("phi3", lms[4], "text-generation", small_prefill), NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
}

static const char *const served[] = {"qwen3", "gemma", "gemma2", "gemma3", "phi3"};

/* TGI /generate of text on model, greedy, max_new tokens with details; the reply (200). */
static struct http_reply *tgi_greedy(const char *model, const char *text, size_t max_new,
                                     const char *what)
{
    struct http_reply *r = daemon_post(
        srv, "/generate",
        json_pack("{s:s, s:s, s:{s:b, s:i, s:b}}", "model", model, "inputs", text, "parameters",
                  "do_sample", 0, "max_new_tokens", (int)max_new, "details", 1));
    expect_status(r, 200, what);
    return r;
}

/* The ids of a /generate reply's details equal want (a JSON list). */
static void expect_ids(const struct http_reply *r, const json_t *want, const char *what)
{
    const json_t *toks = json_object_get(json_object_get(r->json, "details"), "tokens");
    ck_assert_msg(json_array_size(toks) == json_array_size(want), "%s: %zu tokens, not %zu", what,
                  json_array_size(toks), json_array_size(want));
    for (size_t t = 0; t < json_array_size(want); t++)
        ck_assert_msg(json_integer_value(json_object_get(json_array_get(toks, t), "id")) ==
                          json_integer_value(json_array_get(want, t)),
                      "%s: token %zu", what, t);
}

START_TEST(tgi_generate_greedy)
{
    json_t *refs = model_refs(lms[_i]);
    const json_t *gens = json_object_get(refs, "generations");
    ck_assert_int_ge(json_array_size(gens), 6);
    for (size_t i = 0; i < json_array_size(gens); i++) {
        const json_t *g = json_array_get(gens, i), *ids = json_object_get(g, "greedy_ids");
        char what[160];
        snprintf(what, sizeof what, "%s /generate prompt %zu", lms[_i], i);
        const char *prompt = json_string_value(json_object_get(g, "prompt"));
        struct http_reply *r = tgi_greedy(served[_i], prompt, json_array_size(ids), what);
        expect_ids(r, ids, what);
        char v[32];
        ck_assert(http_header(r, "x-prompt-tokens", v, sizeof v) &&
                  atoi(v) == (int)json_array_size(json_object_get(g, "input_ids")));
        http_reply_free(r);
    }
    json_decref(refs);
}
END_TEST

START_TEST(openai_chat_enable_thinking)
{
    json_t *refs = model_refs("qwen3-lm");
    const json_t *chats = json_object_get(refs, "chat");
    ck_assert_int_ge(json_array_size(chats), 2);
    for (size_t i = 0; i < json_array_size(chats); i++) {
        const json_t *c = json_array_get(chats, i), *ids = json_object_get(c, "greedy_ids");
        size_t n = json_array_size(ids);
        char what[160];
        snprintf(what, sizeof what, "qwen3 chat %zu (enable_thinking %s)", i,
                 json_is_true(json_object_get(c, "enable_thinking")) ? "true" : "false");
        /* the refs' rendered prompt, greedy: the refs' ids, and the text to expect */
        struct http_reply *ref =
            tgi_greedy("qwen3", json_string_value(json_object_get(c, "text")), n, what);
        expect_ids(ref, ids, what);
        struct http_reply *r = daemon_post(
            srv, "/v1/chat/completions",
            json_pack("{s:s, s:O, s:i, s:f, s:{s:O}}", "model", "qwen3", "messages",
                      json_object_get(c, "messages"), "max_tokens", (int)n, "temperature", 0.0,
                      "chat_template_kwargs", "enable_thinking",
                      json_object_get(c, "enable_thinking")));
        expect_status(r, 200, what);
        const json_t *usage = json_object_get(r->json, "usage");
        ck_assert_int_eq(json_integer_value(json_object_get(usage, "prompt_tokens")),
                         (int)json_array_size(json_object_get(c, "input_ids")));
        ck_assert_int_eq(json_integer_value(json_object_get(usage, "completion_tokens")), (int)n);
        const json_t *msg =
            json_object_get(json_array_get(json_object_get(r->json, "choices"), 0), "message");
        ck_assert_str_eq(json_string_value(json_object_get(msg, "content")),
                         json_string_value(json_object_get(ref->json, "generated_text")));
        http_reply_free(r);
        http_reply_free(ref);
    }
    json_decref(refs);
}
END_TEST

Suite *suite_serve_decoders_i14(void)
{
    Suite *s = suite_create("serve_decoders_i14");
    TCase *tc = tcase_create("served");
    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, srv_start, srv_stop);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_loop_test(tc, tgi_generate_greedy, 0, (int)N_LMS);
    tcase_add_test(tc, openai_chat_enable_thinking);
    suite_add_tcase(s, tc);
    return s;
}
