/* test_decoders_i14: the issue-14 decoder families (Qwen3 tied and untied, Gemma, Gemma 2,
 * Gemma 3, Phi-3; tiny random weights, tools/refgen) against what transformers computed
 * (refs-dev.json): the first 8 logits at position 0 and the top-20 at the last prompt position
 * within 1e-4 at fp32, and every greedy token (48, past the sliding windows of 8 and Phi-3's
 * LongRoPE switch at 16), each prompt alone, prefilled in chunks of 3 tokens, and the batch rows
 * together; the warped distributions of the seeded-sampling references along their sampled
 * ids; Qwen3's chat template with enable_thinking on and off (text, ids, greedy); bf16 and int8
 * near fp32; the config defaults of the new model_types. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate/generator.h"
#include "generate/sampling.h"
#include "loader/hf_config.h"
#include "models/decoder.h"
#include "suites.h"
#include "support/model_variant.h"
#include "support/support.h"

#define TOL 1e-4
#define MAX_IDS 128

static const char *const models[] = {"qwen3-lm",  "qwen3-lm-untied", "gemma-lm",
                                     "gemma2-lm", "gemma3-lm",       "phi3-lm"};
#define N_MODELS ((int)(sizeof models / sizeof models[0]))

struct fixture {
    struct dnn_ctx *ctx;
    struct decoder_model *d;
    struct decoder_run *run;
    json_t *refs;
    int V;
};

static void fixture_open(struct fixture *f, const char *name, enum dtype_compute dt)
{
    struct err e = {0};
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", fixture_model(name));
    f->ctx = dnn_ctx_new(1, &e);
    ck_assert_msg(f->ctx != NULL, "%s", e.msg);
    ck_assert_msg(decoder_load(dir, dt, f->ctx, &f->d, &e) == 0, "%s: %s", dir, e.msg);
    f->run = decoder_run_new();
    f->refs = fixture_json(dir, "refs-dev.json");
    f->V = decoder_vocab_size(f->d);
}

static void fixture_close(struct fixture *f)
{
    json_decref(f->refs);
    decoder_run_free(f->run);
    decoder_unload(f->d);
    dnn_ctx_free(f->ctx);
}

static const float *forward_ok(struct fixture *f, struct decoder_seq **seqs, int n_seqs,
                               const int32_t *tokens, const int *n_tokens, bool all_logits)
{
    struct err e = {0};
    const float *logits = NULL;
    struct decoder_step st = {n_seqs, seqs, tokens, n_tokens, all_logits, false};
    int rc = decoder_forward(f->d, f->ctx, f->run, &st, &logits, &e);
    ck_assert_msg(rc == 0, "%s", e.msg);
    return logits;
}

/* Feeds ids (n) to s in chunks of at most chunk tokens (all logits on the first chunk, whose
 * position 0 logits_err_first8 checks when ref has it); returns the largest error and the logits of
 * the last position in *last (run memory). */
static double prefill(struct fixture *f, struct decoder_seq *s, const int32_t *ids, int n,
                      int chunk, const json_t *ref, const float **last)
{
    double worst = 0;
    *last = NULL;
    for (int at = 0; at < n; at += chunk) {
        int k = n - at < chunk ? n - at : chunk;
        const float *logits = forward_ok(f, &s, 1, ids + at, &k, at == 0);
        if (at == 0 && json_object_get(ref, "logits_first_position_first8"))
            worst = logits_err_first8(logits, ref);
        *last = at == 0 ? logits + (size_t)(k - 1) * (size_t)f->V : logits;
    }
    return fmax(worst, logits_err_top20(*last, f->V, ref));
}

/* Greedy tokens after a prefill: out[0] from last, then one decode step per token. */
static void greedy(struct fixture *f, struct decoder_seq *s, const float *last, int32_t *out,
                   int n)
{
    out[0] = decoder_argmax(last, f->V);
    int one = 1;
    for (int k = 1; k < n; k++)
        out[k] = decoder_argmax(forward_ok(f, &s, 1, &out[k - 1], &one, false), f->V);
}

static void expect_ids(const char *name, const char *how, int i, const json_t *want,
                       const int32_t *got)
{
    for (size_t k = 0; k < json_array_size(want); k++)
        ck_assert_msg(got[k] == json_integer_value(json_array_get(want, k)),
                      "%s %s %d: greedy token %zu is %d, not %lld", name, how, i, k, got[k],
                      (long long)json_integer_value(json_array_get(want, k)));
}

/* Every generation prompt alone (chunk: its prefill's chunk size; 1000: whole). */
static void each_prompt(const char *name, int chunk)
{
    struct fixture f;
    fixture_open(&f, name, DTYPE_COMPUTE_F32);
    const json_t *gens = json_object_get(f.refs, "generations");
    ck_assert_int_ge(json_array_size(gens), 6);
    for (size_t i = 0; i < json_array_size(gens); i++) {
        const json_t *g = json_array_get(gens, i);
        int32_t ids[MAX_IDS], got[MAX_IDS];
        int n = json_read_ints(json_object_get(g, "input_ids"), ids, MAX_IDS);
        int n_greedy = (int)json_array_size(json_object_get(g, "greedy_ids"));
        ck_assert_int_ge(n_greedy, 32);
        struct decoder_seq *s;
        struct err e = {0};
        ck_assert_int_eq(decoder_seq_new(f.d, n + n_greedy, &s, &e), 0);
        const float *last;
        double err = prefill(&f, s, ids, n, chunk, g, &last);
        ck_assert_msg(err <= TOL, "%s prompt %zu (chunks of %d): max |logit error| %.3g", name, i,
                      chunk, err);
        greedy(&f, s, last, got, n_greedy);
        expect_ids(name, chunk < n ? "chunked" : "alone", (int)i,
                   json_object_get(g, "greedy_ids"), got);
        decoder_seq_free(s);
    }
    fixture_close(&f);
}

START_TEST(each_prompt_alone)
{
    each_prompt(models[_i], 1000);
}
END_TEST

/* Prompts fed 3 tokens a step: chunks cross the windows (8) and Phi-3's switch (16). */
START_TEST(chunked_prefill)
{
    each_prompt(models[_i], 3);
}
END_TEST

/* The batch rows prefilled in one step, then decoded together. */
START_TEST(batch_rows_together)
{
    const char *name = models[_i];
    struct fixture f;
    fixture_open(&f, name, DTYPE_COMPUTE_F32);
    const json_t *rows = json_object_get(json_object_get(f.refs, "batch"), "rows");
    enum { MAX_ROWS = 8 };
    int n = (int)json_array_size(rows), n_tokens[MAX_ROWS], M = 0, steps = 0;
    ck_assert(n > 1 && n <= MAX_ROWS);
    struct decoder_seq *seqs[MAX_ROWS];
    int32_t tokens[MAX_ROWS * MAX_IDS], got[MAX_ROWS][MAX_IDS];
    struct err e = {0};
    for (int i = 0; i < n; i++) {
        const json_t *row = json_array_get(rows, (size_t)i);
        n_tokens[i] = json_read_ints(json_object_get(row, "input_ids"), tokens + M, MAX_IDS);
        M += n_tokens[i];
        int g = (int)json_array_size(json_object_get(row, "greedy_ids"));
        steps = g > steps ? g : steps;
        ck_assert_int_eq(decoder_seq_new(f.d, 256, &seqs[i], &e), 0);
    }
    const float *logits = forward_ok(&f, seqs, n, tokens, n_tokens, false);
    for (int i = 0; i < n; i++) {
        const json_t *row = json_array_get(rows, (size_t)i);
        double err = logits_err_top20(logits + (size_t)i * (size_t)f.V, f.V, row);
        ck_assert_msg(err <= TOL, "%s batch row %d: max |logit error| %.3g", name, i, err);
        got[i][0] = decoder_argmax(logits + (size_t)i * (size_t)f.V, f.V);
        n_tokens[i] = 1;
    }
    for (int k = 1; k < steps; k++) {
        for (int i = 0; i < n; i++)
            tokens[i] = got[i][k - 1];
        logits = forward_ok(&f, seqs, n, tokens, n_tokens, false);
        for (int i = 0; i < n; i++)
            got[i][k] = decoder_argmax(logits + (size_t)i * (size_t)f.V, f.V);
    }
    for (int i = 0; i < n; i++) {
        expect_ids(name, "batch row", i,
                   json_object_get(json_array_get(rows, (size_t)i), "greedy_ids"), got[i]);
        decoder_seq_free(seqs[i]);
    }
    fixture_close(&f);
}
END_TEST

/* What transformers' warpers leave of logits (temperature, top-k, top-p) against one
 * reference step {ids, probs} (descending): the same ids, probabilities within TOL. */
static void expect_warped(const char *name, size_t at, float *logits, int V, const json_t *params,
                          const json_t *step, struct logits_scratch *sc)
{
    double temperature = json_number_value(json_object_get(params, "temperature"));
    logits_temperature(logits, (size_t)V, temperature);
    logits_top_k(logits, (size_t)V, (size_t)json_integer_value(json_object_get(params, "top_k")),
                 sc);
    logits_top_p(logits, (size_t)V, json_number_value(json_object_get(params, "top_p")), sc);
    double mx = -INFINITY, sum = 0;
    int kept = 0;
    for (int v = 0; v < V; v++)
        if (logits[v] != -INFINITY) {
            mx = fmax(mx, logits[v]);
            kept++;
        }
    for (int v = 0; v < V; v++)
        if (logits[v] != -INFINITY)
            sum += exp(logits[v] - mx);
    const json_t *ids = json_object_get(step, "ids"), *probs = json_object_get(step, "probs");
    ck_assert_msg((size_t)kept == json_array_size(ids), "%s sampling step %zu: %d kept, not %zu",
                  name, at, kept, json_array_size(ids));
    for (size_t k = 0; k < json_array_size(ids); k++) {
        json_int_t id = json_integer_value(json_array_get(ids, k));
        ck_assert_msg(logits[id] != -INFINITY, "%s sampling step %zu: %lld was removed", name, at,
                      (long long)id);
        double p = exp(logits[id] - mx) / sum;
        double want = json_number_value(json_array_get(probs, k));
        ck_assert_msg(fabs(p - want) <= TOL, "%s sampling step %zu: p(%lld) %g, not %g", name, at,
                      (long long)id, p, want);
    }
}

START_TEST(sampling_distributions)
{
    const char *name = models[_i];
    struct fixture f;
    fixture_open(&f, name, DTYPE_COMPUTE_F32);
    struct logits_scratch sc;
    ck_assert_int_eq(logits_scratch_init(&sc, (size_t)f.V, NULL), 0);
    float *work = malloc((size_t)f.V * sizeof *work);
    const json_t *samples = json_object_get(f.refs, "sampling");
    const struct hf_rope_scaling *rs = &decoder_config(f.d)->rope_scaling;
    int64_t switch_at = rs->n_factors ? rs->original_max_position_embeddings : INT64_MAX;
    ck_assert_int_gt(json_array_size(samples), 0);
    for (size_t i = 0; i < json_array_size(samples); i++) {
        const json_t *smp = json_array_get(samples, i), *steps = json_object_get(smp, "steps");
        int32_t ids[MAX_IDS], sampled[MAX_IDS];
        int n = json_read_ints(json_object_get(smp, "input_ids"), ids, MAX_IDS);
        int n_s = json_read_ints(json_object_get(smp, "sampled_ids"), sampled, MAX_IDS);
        struct decoder_seq *s;
        struct err e = {0};
        ck_assert_int_eq(decoder_seq_new(f.d, n + n_s, &s, &e), 0);
        const float *logits = forward_ok(&f, &s, 1, ids, &n, false);
        int one = 1;
        /* Phi-3: transformers' generate() drops its cache past the LongRoPE switch, so its
         * draws there are context-free (tools/refgen/README.md): only the steps before */
        for (int k = 0; k < n_s && n + k <= switch_at; k++) {
            memcpy(work, logits, (size_t)f.V * sizeof *work);
            expect_warped(name, (size_t)k, work, f.V, json_object_get(smp, "parameters"),
                          json_array_get(steps, (size_t)k), &sc);
            if (k + 1 < n_s)
                logits = forward_ok(&f, &s, 1, &sampled[k], &one, false);
        }
        decoder_seq_free(s);
    }
    free(work);
    logits_scratch_fini(&sc);
    fixture_close(&f);
}
END_TEST

/* Qwen3's chat template (enable_thinking as a template variable, as chat_template_kwargs
 * passes it): the rendered text and ids of transformers' apply_chat_template, then greedy. */
START_TEST(qwen3_chat_template)
{
    const char *name = models[_i];
    struct err e = {0};
    struct gen_model *gm = NULL;
    const char *dir = fixture_model(name);
    ck_assert_msg(gen_model_load(dir, NULL, &gm, &e) == 0, "%s", e.msg);
    struct fixture f;
    fixture_open(&f, name, DTYPE_COMPUTE_F32);
    const json_t *chats = json_object_get(f.refs, "chat");
    ck_assert_int_ge(json_array_size(chats), 2);
    for (size_t i = 0; i < json_array_size(chats); i++) {
        const json_t *c = json_array_get(chats, i);
        json_t *extra = json_pack("{s:O, s:O}", "add_generation_prompt",
                                  json_object_get(c, "add_generation_prompt"), "enable_thinking",
                                  json_object_get(c, "enable_thinking"));
        char *text = NULL;
        size_t len = 0;
        ck_assert_msg(gen_model_render_chat(gm, json_object_get(c, "messages"), extra, &text,
                                            &len, &e) == 0,
                      "%s", e.msg);
        ck_assert_str_eq(text, json_string_value(json_object_get(c, "text")));
        int32_t *ids = NULL, want[MAX_IDS], got[MAX_IDS];
        size_t n = 0;
        ck_assert_int_eq(gen_model_tokenize(gm, text, len, true, false, &ids, &n, &e), 0);
        int n_want = json_read_ints(json_object_get(c, "input_ids"), want, MAX_IDS);
        ck_assert_int_eq((int)n, n_want);
        for (int k = 0; k < n_want; k++)
            ck_assert_int_eq(ids[k], want[k]);
        int n_greedy = (int)json_array_size(json_object_get(c, "greedy_ids"));
        struct decoder_seq *s;
        ck_assert_int_eq(decoder_seq_new(f.d, n_want + n_greedy, &s, &e), 0);
        const float *last = forward_ok(&f, &s, 1, want, &n_want, false);
        greedy(&f, s, last, got, n_greedy);
        expect_ids(name, "chat", (int)i, json_object_get(c, "greedy_ids"), got);
        decoder_seq_free(s);
        free(ids);
        free(text);
        json_decref(extra);
    }
    fixture_close(&f);
    gen_model_free(gm);
}
END_TEST

/* BF16 and INT8 linears stay near fp32: test_decoders' 0.1 for logits of about 2 (its
 * fixtures' largest), here 5% of the largest reference logit (refgen's logits reach 25). */
START_TEST(reduced_precision_runs)
{
    const char *name = models[_i / 2];
    enum dtype_compute dt = _i % 2 ? DTYPE_COMPUTE_INT8 : DTYPE_COMPUTE_BF16;
    struct fixture f;
    fixture_open(&f, name, dt);
    const json_t *g = json_array_get(json_object_get(f.refs, "generations"), 0);
    int32_t ids[MAX_IDS];
    int n = json_read_ints(json_object_get(g, "input_ids"), ids, MAX_IDS);
    struct decoder_seq *s;
    struct err e = {0};
    ck_assert_int_eq(decoder_seq_new(f.d, n, &s, &e), 0);
    const float *last;
    double err = prefill(&f, s, ids, n, 1000, g, &last);
    double top = json_number_value(
        json_array_get(json_object_get(json_object_get(g, "last_logits_top20"), "values"), 0));
    double tol = 0.05 * fmax(2.0, fabs(top));
    ck_assert_msg(err < tol, "%s %s: logit error %g (tolerance %g)", name,
                  dt == DTYPE_COMPUTE_INT8 ? "int8" : "bf16", err, tol);
    decoder_seq_free(s);
    fixture_close(&f);
}
END_TEST

/* The new model_types' config defaults (transformers' config classes). */
START_TEST(config_defaults_of_new_types)
{
    static const char base[] = "\"vocab_size\": 10, \"hidden_size\": 8, \"num_hidden_layers\": 6,"
                               " \"num_attention_heads\": 2, \"intermediate_size\": 16";
    static const struct {
        const char *extra;
        const char *sliding; /* per layer, NULL: no per-layer list */
        int64_t window, head_dim;
        double attn_cap, final_cap, qpas, local_base;
        bool tied;
    } cases[] = {
        {"\"model_type\": \"qwen3\"", NULL, 0, 128, 0, 0, 0, 0, false},
        {"\"model_type\": \"qwen3\", \"use_sliding_window\": true, \"sliding_window\": 4,"
         " \"max_window_layers\": 4",
         "000011", 4, 128, 0, 0, 0, 0, false},
        {"\"model_type\": \"gemma\"", NULL, 0, 256, 0, 0, 0, 0, true},
        {"\"model_type\": \"gemma2\"", "101010", 4096, 256, 50, 30, 256, 0, true},
        {"\"model_type\": \"gemma2\", \"attn_logit_softcapping\": null, \"head_dim\": 4",
         "101010", 4096, 4, 0, 30, 256, 0, true},
        {"\"model_type\": \"gemma3_text\"", "111110", 4096, 256, 0, 0, 256, 10000, true},
        {"\"model_type\": \"gemma3_text\", \"sliding_window_pattern\": 3, \"sliding_window\": 8",
         "110110", 8, 256, 0, 0, 256, 10000, true},
        {"\"model_type\": \"phi3\"", NULL, 0, 4, 0, 0, 0, 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "{%s, %s}", base, cases[i].extra);
        struct hf_config c;
        struct err e = {0};
        ck_assert_msg(hf_config_parse(text, strlen(text), "config.json", &c, &e) == 0, "%s: %s",
                      text, e.msg);
        ck_assert_msg(c.sliding_window == cases[i].window, "%s: window %lld", text,
                      (long long)c.sliding_window);
        ck_assert_msg((c.sliding_layers == NULL) == (cases[i].sliding == NULL), "%s", text);
        for (int l = 0; cases[i].sliding && l < 6; l++)
            ck_assert_msg(c.sliding_layers[l] == (cases[i].sliding[l] == '1'), "%s: layer %d", text,
                          l);
        ck_assert_msg(c.head_dim == cases[i].head_dim, "%s: head_dim %lld", text,
                      (long long)c.head_dim);
        ck_assert_msg(c.attn_logit_softcapping == cases[i].attn_cap &&
                          c.final_logit_softcapping == cases[i].final_cap &&
                          c.query_pre_attn_scalar == cases[i].qpas &&
                          c.rope_local_base_freq == cases[i].local_base,
                      "%s", text);
        ck_assert_msg(c.tie_word_embeddings == cases[i].tied, "%s", text);
        hf_config_fini(&c);
    }
}
END_TEST

/* LongRoPE's lists must fit the rotary dimension; an unknown Gemma activation is refused. */
START_TEST(bad_new_configs_fail_cleanly)
{
    static const struct {
        const char *model, *patch, *want;
    } cases[] = {
        {"phi3-lm",
         "{\"rope_scaling\": {\"type\": \"longrope\", \"short_factor\": [1.0],"
         " \"long_factor\": [2.0]}}",
         "short_factor"},
        {"phi3-lm", "{\"rope_scaling\": {\"type\": \"longrope\", \"short_factor\": [1.0]}}",
         "long_factor"},
        {"phi3-lm", "{\"partial_rotary_factor\": 1.5}", "partial_rotary_factor"},
        {"gemma-lm", "{\"hidden_activation\": \"relu\"}", "relu"},
        {"qwen3-lm", "{\"head_dim\": 8}", "q_proj"},
    };
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[1024];
        snprintf(src, sizeof src, "%s", fixture_model(cases[i].model));
        const char *dir = model_variant_dir(src, &(struct model_variant){.patch = cases[i].patch});
        struct decoder_model *d = NULL;
        ck_assert_int_ne(decoder_load(dir, DTYPE_COMPUTE_F32, ctx, &d, &e), 0);
        ck_assert_ptr_null(d);
        ck_assert_msg(strstr(e.msg, cases[i].want) != NULL, "%s: '%s'", cases[i].patch, e.msg);
    }
    dnn_ctx_free(ctx);
}
END_TEST

Suite *suite_decoders_i14(void)
{
    Suite *s = suite_create("decoders_i14");
    TCase *tc = tcase_create("fp32");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, each_prompt_alone, 0, N_MODELS);
    tcase_add_loop_test(tc, chunked_prefill, 0, N_MODELS);
    tcase_add_loop_test(tc, batch_rows_together, 0, N_MODELS);
    tcase_add_loop_test(tc, sampling_distributions, 0, N_MODELS);
    tcase_add_loop_test(tc, qwen3_chat_template, 0, 2); /* models[0], [1]: the Qwen3 pair */
    tcase_add_loop_test(tc, reduced_precision_runs, 0, 2 * N_MODELS);
    tcase_add_test(tc, config_defaults_of_new_types);
    tcase_add_test(tc, bad_new_configs_fail_cleanly);
    suite_add_tcase(s, tc);
    return s;
}
