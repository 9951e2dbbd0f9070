/* test_serve_decoders_i14: the issue-14 decoder families served by the real daemon (Qwen3,
 * Gemma, Gemma 2, Gemma 3, Phi-3 fixtures; tools/refgen): TGI /generate greedy gives the refs'
 * 48 greedy ids of every prompt (past the sliding windows and Phi-3's LongRoPE switch; prompts
 * fed 4 tokens a step, max_batch_prefill_tokens 4, so chunked prefill crosses them too), and
 * OpenAI /v1/chat/completions renders Qwen3's chat template with chat_template_kwargs'
 * enable_thinking: the prompt's token count is the refs' and the answer is the text of the
 * refs' chat greedy ids (TGI /generate on the refs' rendered text, ids checked). The HF route
 * POST /models/NAME gives pipeline("text-generation")'s generated_text exactly; for Phi-3, whose
 * pipeline prompts plus 16 new tokens cross the LongRoPE switch where transformers' generate()
 * drops the context (tools/refgen/refgen.py), the reference is the pipeline's own postprocess of
 * the recompute-everything greedy ids (greedy_output), and the real pipeline output is checked
 * over the tokens before the switch. */
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

/* POST /models/NAME of a refs pipeline entry with its parameters, max_new_tokens replaced by
 * max_new when not negative; the reply's generated_text (a copy). */
static char *hf_pipeline(const char *model, const json_t *entry, int max_new, const char *what)
{
    char path[64];
    snprintf(path, sizeof path, "/models/%s", model);
    json_t *params = json_deep_copy(json_object_get(entry, "parameters"));
    if (max_new >= 0)
        json_object_set_new(params, "max_new_tokens", json_integer(max_new));
    struct http_reply *r = daemon_post(
        srv, path, json_pack("{s:O, s:o}", "inputs", json_object_get(entry, "input"), "parameters",
                             params));
    expect_status(r, 200, what);
    const json_t *out = json_array_get(r->json, 0);
    ck_assert_msg(json_is_array(r->json) && json_array_size(r->json) == 1 &&
                      json_object_size(out) == 1,
                  "%s: not [{generated_text}]", what);
    const char *text = json_string_value(json_object_get(out, "generated_text"));
    ck_assert_msg(text != NULL, "%s: no generated_text", what);
    char *copy = strdup(text);
    http_reply_free(r);
    return copy;
}

/* The number of leading greedy ids of the prompt's generations row that transformers'
 * generate() returns too (before Phi-3's LongRoPE switch drops its context). */
static size_t ids_agreeing(const json_t *refs, const char *prompt)
{
    const json_t *gens = json_object_get(refs, "generations");
    for (size_t i = 0; i < json_array_size(gens); i++) {
        const json_t *g = json_array_get(gens, i);
        if (strcmp(json_string_value(json_object_get(g, "prompt")), prompt) != 0)
            continue;
        const json_t *a = json_object_get(g, "greedy_ids"),
                     *b = json_object_get(g, "hf_generate_greedy_ids");
        size_t n = 0;
        while (n < json_array_size(a) && n < json_array_size(b) &&
               json_integer_value(json_array_get(a, n)) == json_integer_value(json_array_get(b, n)))
            n++;
        return n;
    }
    ck_abort_msg("no generations row for %s", prompt);
    return 0;
}

START_TEST(hf_pipeline_text_generation)
{
    json_t *refs = model_refs(lms[_i]);
    const json_t *pipe = json_object_get(refs, "pipeline");
    ck_assert_int_eq(json_array_size(pipe), 3);
    size_t crossing = 0;
    for (size_t i = 0; i < json_array_size(pipe); i++) {
        const json_t *p = json_array_get(pipe, i);
        char what[128];
        snprintf(what, sizeof what, "%s pipeline %zu", lms[_i], i);
        const json_t *exact = json_object_get(p, "greedy_output");
        const json_t *want = exact ? exact : json_object_get(p, "output");
        char *text = hf_pipeline(served[_i], p, -1, what);
        ck_assert_str_eq(text, json_string_value(
                                   json_object_get(json_array_get(want, 0), "generated_text")));
        free(text);
        if (!exact)
            continue;
        /* Phi-3: the pipeline's own output, over the new tokens generate() gets right */
        ck_assert(json_is_true(json_object_get(p, "crosses_longrope_switch")));
        crossing++;
        const char *input = json_string_value(json_object_get(p, "input"));
        size_t n = ids_agreeing(refs, input);
        ck_assert_int_gt(n, 0);
        ck_assert_int_lt(n, 16);
        text = hf_pipeline(served[_i], p, (int)n, what);
        const char *real = json_string_value(
            json_object_get(json_array_get(json_object_get(p, "output"), 0), "generated_text"));
        ck_assert_msg(strlen(text) > strlen(input) && strncmp(real, text, strlen(text)) == 0,
                      "%s: %d tokens: '%s' does not begin the pipeline's '%s'", what, (int)n, text,
                      real);
        free(text);
    }
    /* the Phi-3 fixture's pipeline prompts all cross the switch; the others have none */
    ck_assert_int_eq(crossing, strcmp(lms[_i], "phi3-lm") == 0 ? 3 : 0);
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
    tcase_add_loop_test(tc, hf_pipeline_text_generation, 0, (int)N_LMS);
    tcase_add_test(tc, openai_chat_enable_thinking);
    suite_add_tcase(s, tc);
    return s;
}
