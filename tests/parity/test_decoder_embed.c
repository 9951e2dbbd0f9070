/* test_decoder_embed: sentence embeddings from a decoder (engine/models/encoder_causal.c):
 * the mistral-embed fixture (MistralModel, sentence-transformers lasttoken pooling + Normalize,
 * e5-mistral's prompts, a tokenizer that pads left with </s>) against refs-dev.json: last
 * hidden states within 1e-4 alone and in padded batches (left and right), sentence embeddings
 * within 1e-4 in one request and each alone, prompted embeddings (prompt_name, prompt, the
 * prompt's tokens), feature extraction; bf16 and int8 within measured cosine bounds; a
 * *ForCausalLM checkpoint (qwen3-lm, tied and untied) embeds with its lm_head left out. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder.h"
#include "pipelines/pipeline.h"
#include "pipelines/runner.h"
#include "suites.h"
#include "support/pipeline_env.h"
#include "support/support.h"

#define TOL 1e-4
#define MAXN 256

static int ids_of(const json_t *a, int32_t *ids, int cap)
{
    int n = (int)json_array_size(a);
    ck_assert_int_le(n, cap);
    for (int t = 0; t < n; t++)
        ids[t] = (int32_t)json_integer_value(json_array_get(a, (size_t)t));
    return n;
}

/* The largest |got[i] - want[i]| over want's n rows of h (nested lists). */
static double worst_rows(const float *got, const json_t *want, size_t n, size_t h)
{
    ck_assert_uint_eq(json_array_size(want), n);
    double worst = 0;
    for (size_t r = 0; r < n; r++) {
        const json_t *row = json_array_get(want, r);
        ck_assert_uint_eq(json_array_size(row), h);
        for (size_t k = 0; k < h; k++)
            worst = fmax(worst, fabs(got[r * h + k] - json_number_value(json_array_get(row, k))));
    }
    return worst;
}

/* Last hidden states of each refs "token_features" text alone, then all of them in one batch
 * padded on the left (as sentence-transformers pads this tokenizer) and on the right. */
START_TEST(hidden_states_alone_and_padded)
{
    struct err e = {0};
    const char *dir = fixture_model("mistral-embed");
    struct dnn_ctx *ctx = dnn_ctx_new(2, &e);
    struct encoder *m;
    ck_assert_msg(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(encoder_head_kind(m), HEAD_NONE);
    struct encoder_run *run = encoder_run_new();
    json_t *refs = fixture_json(dir, "refs-dev.json");
    const json_t *feats = json_object_get(refs, "token_features");
    size_t B = json_array_size(feats), H = (size_t)encoder_config(m)->hidden_size;
    ck_assert_uint_ge(B, 2);
    int32_t ids[8][MAXN], n[8];
    int S = 0;
    ck_assert_uint_le(B, 8);
    for (size_t i = 0; i < B; i++) {
        const json_t *x = json_array_get(feats, i);
        n[i] = ids_of(json_object_get(x, "input_ids"), ids[i], MAXN);
        S = n[i] > S ? n[i] : S;
        struct encoder_batch b = {1, n[i], ids[i], NULL, NULL, NULL, 0};
        const float *out, *hidden;
        ck_assert_msg(encoder_forward(m, ctx, run, &b, &out, &hidden, &e) == 0, "%s", e.msg);
        double d = worst_rows(hidden, json_object_get(x, "last_hidden_state"), (size_t)n[i], H);
        ck_assert_msg(d <= TOL, "text %zu alone: max |error| %.3g", i, d);
    }
    int32_t *bid = calloc(B * (size_t)S, sizeof *bid), *mask = calloc(B * (size_t)S, sizeof *mask);
    for (int left = 0; left < 2; left++) {
        for (size_t i = 0; i < B; i++)
            for (int t = 0; t < S; t++) {
                int pad = left ? S - n[i] : 0, k = t - pad; /* k: the token at t */
                bool in = k >= 0 && k < n[i];
                bid[i * (size_t)S + (size_t)t] = in ? ids[i][k] : 2;
                mask[i * (size_t)S + (size_t)t] = in;
            }
        struct encoder_batch b = {(int)B, S, bid, NULL, mask, NULL, 0};
        const float *out, *hidden;
        ck_assert_msg(encoder_forward(m, ctx, run, &b, &out, &hidden, &e) == 0, "%s", e.msg);
        for (size_t i = 0; i < B; i++) {
            size_t pad = left ? (size_t)(S - n[i]) : 0;
            const float *row = hidden + (i * (size_t)S + pad) * H;
            double d = worst_rows(row, json_object_get(json_array_get(feats, i),
                                                       "last_hidden_state"),
                                  (size_t)n[i], H);
            ck_assert_msg(d <= TOL, "text %zu in a %s-padded batch: max |error| %.3g", i,
                          left ? "left" : "right", d);
        }
    }
    free(bid);
    free(mask);
    json_decref(refs);
    encoder_run_free(run);
    encoder_free(m);
    dnn_ctx_free(ctx);
}
END_TEST


/* The largest |a - b| over two JSON lists of numbers (nested once or not at all). */
static double json_diff(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return fabs(json_number_value(a) - json_number_value(b));
    ck_assert_msg(json_is_array(a) && json_is_array(b), "not lists");
    ck_assert_uint_eq(json_array_size(a), json_array_size(b));
    double worst = 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        worst = fmax(worst, json_diff(json_array_get(a, i), json_array_get(b, i)));
    return worst;
}

/* entries' texts (and embeddings into *want) for the rows whose prompt_name is pname (NULL:
 * every row). */
static json_t *texts_of(const json_t *entries, const char *pname, json_t **want)
{
    json_t *texts = json_array();
    *want = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(entries, i, x)
    {
        const char *p = json_string_value(json_object_get(x, "prompt_name"));
        if (pname && (!p || strcmp(p, pname) != 0))
            continue;
        json_array_append(texts, json_object_get(x, "text"));
        json_array_append(*want, json_object_get(x, "embedding"));
    }
    return texts;
}

/* Every refs text in one request (padded batches) and the first five alone; feature
 * extraction's token states. */
START_TEST(sentence_embeddings_match)
{
    struct env v;
    env_open_dt(&v, "mistral-embed", "sentence-embeddings", DTYPE_COMPUTE_F32);
    json_t *refs = fixture_json(fixture_model("mistral-embed"), "refs-dev.json");
    char pooling[64];
    pipeline_pooling_name(v.p, pooling, sizeof pooling);
    ck_assert_str_eq(pooling, "lasttoken");
    static const char *const lists[] = {"sentence_embeddings", "sentence_embeddings_alone"};
    for (int l = 0; l < 2; l++) {
        json_t *want, *texts = texts_of(json_object_get(refs, lists[l]), NULL, &want);
        ck_assert_uint_gt(json_array_size(texts), 0);
        json_t *all = run_ok(&v, texts, NULL, lists[l]);
        double d = json_diff(all, want);
        ck_assert_msg(d <= TOL, "%s: max |error| %.3g", lists[l], d);
        for (size_t i = 0; l == 1 && i < json_array_size(texts); i++) {
            json_t *one = run_ok(&v, json_array_get(texts, i), NULL, "one sentence");
            d = json_diff(one, json_array_get(want, i));
            ck_assert_msg(d <= TOL, "sentence %zu alone: max |error| %.3g", i, d);
            json_decref(one);
        }
        json_decref(all);
        json_decref(texts);
        json_decref(want);
    }
    env_close(&v);
    env_open_dt(&v, "mistral-embed", "feature-extraction", DTYPE_COMPUTE_F32);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(refs, "feature_extraction_pipeline"), i, x)
    {
        json_t *got = run_ok(&v, json_object_get(x, "input"), NULL, "feature-extraction");
        double d = json_diff(json_array_get(json_array_get(got, 0), 0),
                             json_array_get(json_array_get(json_object_get(x, "output"), 0), 0));
        ck_assert_msg(d <= TOL, "feature-extraction %zu: max |error| %.3g", i, d);
        json_decref(got);
    }
    json_decref(refs);
    env_close(&v);
}
END_TEST

/* refs "prompted_embeddings": per prompt name, its texts with parameters.prompt_name, and
 * with parameters.prompt (its text); the tokens of prompt + text as sentence-transformers';
 * an unknown prompt name is refused naming the model's prompts. */
START_TEST(prompted_embeddings_match)
{
    struct env v;
    env_open_dt(&v, "mistral-embed", "sentence-embeddings", DTYPE_COMPUTE_F32);
    const char *dir = fixture_model("mistral-embed");
    json_t *refs = fixture_json(dir, "refs-dev.json");
    json_t *st = fixture_json(dir, "config_sentence_transformers.json");
    const json_t *prompts = json_object_get(st, "prompts");
    ck_assert_uint_eq(json_object_size(prompts), 2);
    const char *pname;
    json_t *ptext;
    int rows = 0;
    json_object_foreach((json_t *)prompts, pname, ptext)
    {
        json_t *want, *texts = texts_of(json_object_get(refs, "prompted_embeddings"), pname, &want);
        ck_assert_uint_eq(json_array_size(texts), 6);
        rows += (int)json_array_size(texts);
        json_t *by_name = json_pack("{s:s}", "prompt_name", pname);
        json_t *by_text = json_pack("{s:O}", "prompt", ptext);
        json_t *a = run_ok(&v, texts, by_name, pname), *b = run_ok(&v, texts, by_text, pname);
        double d = json_diff(a, want);
        ck_assert_msg(d <= TOL, "prompt %s: max |error| %.3g", pname, d);
        ck_assert_msg(json_diff(b, a) == 0, "prompt %s: by text differs from by name", pname);
        /* a prompt: its tokens are sentence-transformers' (prompt + text, one string) */
        const json_t *first = NULL;
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(refs, "prompted_embeddings"), i, x)
            if (!first && strcmp(json_string_value(json_object_get(x, "prompt_name")), pname) == 0)
                first = x;
        char joined[1024];
        snprintf(joined, sizeof joined, "%s%s", json_string_value(ptext),
                 json_string_value(json_object_get(first, "text")));
        struct tokenizer_params tp = tokenizer_params_default(pipeline_tokenizer(v.p));
        tp.add_special_tokens = true;
        struct encodings enc = {0};
        struct err e = {0};
        ck_assert_int_eq(tokenizer_encode(pipeline_tokenizer(v.p), joined, strlen(joined), NULL, 0,
                                          &tp, &enc, &e),
                         0);
        const json_t *ids = json_object_get(first, "input_ids");
        ck_assert_uint_eq(enc.v[0].n, json_array_size(ids));
        for (size_t t = 0; t < enc.v[0].n; t++)
            ck_assert_int_eq(enc.v[0].ids[t], json_integer_value(json_array_get(ids, t)));
        encodings_fini(&enc);
        json_decref(a);
        json_decref(b);
        json_decref(by_name);
        json_decref(by_text);
        json_decref(texts);
        json_decref(want);
    }
    ck_assert_int_eq(rows, 12);
    json_t *bad = json_pack("{s:s}", "prompt_name", "passage"), *out = NULL;
    struct err e = {0};
    json_t *in = json_string("x");
    ck_assert_int_eq(pipeline_run(v.p, v.w, in, bad, &out, &e), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "'passage' not found"));
    ck_assert_ptr_nonnull(strstr(e.msg, "'query'"));
    json_decref(in);
    json_decref(bad);
    json_decref(st);
    json_decref(refs);
    env_close(&v);
}
END_TEST

/* The smallest cosine between got's vectors and want's (lists of lists). */
static double min_cosine(const json_t *got, const json_t *want)
{
    ck_assert_uint_eq(json_array_size(got), json_array_size(want));
    double worst = 1;
    for (size_t r = 0; r < json_array_size(got); r++) {
        const json_t *g = json_array_get(got, r), *w = json_array_get(want, r);
        double dot = 0, a = 0, b = 0;
        for (size_t k = 0; k < json_array_size(g); k++) {
            double x = json_number_value(json_array_get(g, k));
            double y = json_number_value(json_array_get(w, k));
            dot += x * y;
            a += x * x;
            b += y * y;
        }
        worst = fmin(worst, dot / sqrt(a * b));
    }
    return worst;
}

/* bf16 and int8 linears: every sentence embedding's cosine with sentence-transformers' fp32
 * one; the bounds are the measured worst (bf16 0.9973, int8 0.954) with a margin. */
static const struct {
    enum dtype_compute dt;
    const char *name;
    double min_cos;
} reduced[] = {
    {DTYPE_COMPUTE_BF16, "bf16", 0.99},
    {DTYPE_COMPUTE_INT8, "int8", 0.93},
};

START_TEST(reduced_precision)
{
    struct env v;
    env_open_dt(&v, "mistral-embed", "sentence-embeddings", reduced[_i].dt);
    json_t *refs = fixture_json(fixture_model("mistral-embed"), "refs-dev.json");
    json_t *want, *texts = texts_of(json_object_get(refs, "sentence_embeddings"), NULL, &want);
    json_t *got = run_ok(&v, texts, NULL, reduced[_i].name);
    double cos = min_cosine(got, want);
    printf("mistral-embed %s: min cosine of sentence embeddings %.5f\n", reduced[_i].name, cos);
    ck_assert_msg(cos >= reduced[_i].min_cos, "%s: min cosine %.5f", reduced[_i].name, cos);
    json_decref(got);
    json_decref(texts);
    json_decref(want);
    json_decref(refs);
    env_close(&v);
}
END_TEST

/* A *ForCausalLM checkpoint (Qwen3: bf16 weights, tied and untied lm_head) opens as a
 * sentence-embeddings model, its lm_head left out (no modules.json: mean pooling); a text
 * alone and in a batch with a longer one give the same vector. */
START_TEST(causal_lm_checkpoint_embeds)
{
    static const char *const names[] = {"qwen3-lm", "qwen3-lm-untied"};
    struct env v;
    env_open_dt(&v, names[_i], "sentence-embeddings", DTYPE_COMPUTE_F32);
    json_t *one = json_string("Hello world!");
    json_t *two = json_pack("[s, s]", "Hello world!", "a longer text than the first one is");
    json_t *a = run_ok(&v, one, NULL, "alone"), *b = run_ok(&v, two, NULL, "batch");
    ck_assert_uint_gt(json_array_size(a), 0);
    double d = json_diff(a, json_array_get(b, 0));
    ck_assert_msg(d <= 1e-5, "%s: alone vs batched %.3g", names[_i], d);
    json_decref(a);
    json_decref(b);
    json_decref(one);
    json_decref(two);
    env_close(&v);
}
END_TEST

Suite *suite_decoder_embed(void)
{
    Suite *s = suite_create("decoder_embed");
    TCase *tc = tcase_create("mistral-embed");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, hidden_states_alone_and_padded);
    tcase_add_test(tc, sentence_embeddings_match);
    tcase_add_test(tc, prompted_embeddings_match);
    tcase_add_loop_test(tc, reduced_precision, 0, 2);
    tcase_add_loop_test(tc, causal_lm_checkpoint_embeds, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
