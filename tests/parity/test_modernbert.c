/* test_modernbert: the ModernBERT fixtures (modernbert-mlm, -seqcls, -seqcls-mean, -tokcls,
 * -embed: random tiny weights, local_attention 16 so that long inputs cross the local window)
 * against refs-dev.json: logits and last hidden states within 1e-4 at fp32, each input alone
 * and the refs' padded batch of 24 rows; the pipelines (fill-mask, text and token
 * classification, sentence embeddings with mean pooling + Normalize, feature extraction) alone
 * and batched; bf16 and int8 within the bounds measured on these large-weight fixtures (hidden
 * state cosines, classifier labels); config.json's ModernBERT keys and their defaults. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/hf_config.h"
#include "models/encoder.h"
#include "pipelines/pipeline.h"
#include "pipelines/runner.h"
#include "suites.h"
#include "support/pipeline_env.h"
#include "support/support.h"

#define TOL 1e-4


/* The largest |got[i] - want| over the flattened want. */
static double worst_diff(const float *got, const json_t *want, size_t expect_n)
{
    static float w[1 << 16];
    size_t n = json_flatten(want, w, sizeof w / sizeof w[0]);
    ck_assert_uint_eq(n, expect_n);
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)got[i] - w[i]));
    return worst;
}

struct model {
    struct dnn_ctx *ctx;
    struct encoder *m;
    struct encoder_run *run;
    json_t *refs;
    size_t W, H;
};

static void model_open(struct model *f, const char *name, enum dtype_compute dt)
{
    struct err e = {0};
    const char *dir = fixture_model(name);
    f->ctx = dnn_ctx_new(2, &e);
    ck_assert_msg(f->ctx != NULL, "%s", e.msg);
    ck_assert_msg(encoder_load(dir, dt, f->ctx, &f->m, &e) == 0, "%s: %s", name, e.msg);
    f->run = encoder_run_new();
    f->refs = fixture_json(dir, "refs-dev.json");
    f->W = encoder_out_width(f->m);
    f->H = (size_t)encoder_config(f->m)->hidden_size;
}

static void model_close(struct model *f)
{
    json_decref(f->refs);
    encoder_run_free(f->run);
    encoder_free(f->m);
    dnn_ctx_free(f->ctx);
}

/* B rows of S ids (mask: NULL for all ones) through the encoder. */
static void forward(struct model *f, int B, int S, const int32_t *ids, const int32_t *mask,
                    const float **out, const float **hidden)
{
    struct encoder_batch b = {B, S, ids, NULL, mask, NULL, 0};
    struct err e = {0};
    ck_assert_msg(encoder_forward(f->m, f->ctx, f->run, &b, out, hidden, &e) == 0, "%s", e.msg);
}

static int ids_of(const json_t *a, int32_t *ids, int cap)
{
    int n = (int)json_array_size(a);
    ck_assert_int_le(n, cap);
    for (int t = 0; t < n; t++)
        ids[t] = (int32_t)json_integer_value(json_array_get(a, (size_t)t));
    return n;
}

/* Compares a head's output rows for one sequence of n real tokens (row b of a batch of S). */
static double head_diff(const struct model *f, const float *out, int b, int S, int n,
                        const json_t *want)
{
    switch (encoder_head_kind(f->m)) {
    case HEAD_SEQ_CLS: return worst_diff(out + (size_t)b * f->W, want, f->W);
    case HEAD_TOKEN_CLS:
        return worst_diff(out + (size_t)b * (size_t)S * f->W, want, (size_t)n * f->W);
    default: return 0;
    }
}

static const char *const all_models[] = {"modernbert-mlm", "modernbert-seqcls",
                                         "modernbert-seqcls-mean", "modernbert-tokcls",
                                         "modernbert-embed"};
#define N_MODELS (sizeof all_models / sizeof all_models[0])

/* refs "token_features": each text alone, its last hidden state (the longest crosses the
 * local window several times). */
START_TEST(hidden_states_alone)
{
    struct model f;
    model_open(&f, all_models[_i], DTYPE_COMPUTE_F32);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(f.refs, "token_features"), i, x)
    {
        int32_t ids[512];
        int n = ids_of(json_object_get(x, "input_ids"), ids, 512);
        const float *out, *hidden;
        forward(&f, 1, n, ids, NULL, &out, &hidden);
        double d = worst_diff(hidden, json_object_get(x, "last_hidden_state"), (size_t)n * f.H);
        ck_assert_msg(d <= TOL, "%s text %zu (%d tokens): max |error| %.3g", all_models[_i], i, n,
                      d);
    }
    model_close(&f);
}
END_TEST

/* refs "logits" and "pair_logits": each input alone, then all of them in one padded batch. */
START_TEST(logits_alone_and_batched)
{
    const char *name = all_models[1 + _i]; /* the classifiers */
    struct model f;
    model_open(&f, name, DTYPE_COMPUTE_F32);
    json_t *items = json_array();
    json_array_extend(items, json_object_get(f.refs, "logits"));
    if (json_object_get(f.refs, "pair_logits"))
        json_array_extend(items, json_object_get(f.refs, "pair_logits"));
    size_t n_items = json_array_size(items), i;
    ck_assert_uint_gt(n_items, 0);
    int S = 0;
    json_t *x;
    json_array_foreach(items, i, x)
    {
        int n = (int)json_array_size(json_object_get(x, "input_ids"));
        S = n > S ? n : S;
    }
    int32_t *ids = calloc(n_items * (size_t)S, sizeof *ids);
    int32_t *mask = calloc(n_items * (size_t)S, sizeof *mask);
    json_array_foreach(items, i, x)
    {
        int n = ids_of(json_object_get(x, "input_ids"), ids + i * (size_t)S, S);
        for (int t = 0; t < n; t++)
            mask[i * (size_t)S + (size_t)t] = 1;
        const float *out;
        forward(&f, 1, n, ids + i * (size_t)S, NULL, &out, NULL);
        double d = head_diff(&f, out, 0, n, n, json_object_get(x, "logits"));
        ck_assert_msg(d <= TOL, "%s item %zu alone: max |error| %.3g", name, i, d);
    }
    const float *out;
    forward(&f, (int)n_items, S, ids, mask, &out, NULL);
    json_array_foreach(items, i, x)
    {
        int n = (int)json_array_size(json_object_get(x, "input_ids"));
        double d = head_diff(&f, out, (int)i, S, n, json_object_get(x, "logits"));
        ck_assert_msg(d <= TOL, "%s item %zu in a batch: max |error| %.3g", name, i, d);
    }
    free(ids);
    free(mask);
    json_decref(items);
    model_close(&f);
}
END_TEST

/* refs "batch": the rows transformers ran as one right-padded batch, their logits and (the
 * first rows) last hidden states of the real tokens; the batch forwarded whole and in halves. */
START_TEST(padded_batch_rows)
{
    const char *name = all_models[_i];
    struct model f;
    model_open(&f, name, DTYPE_COMPUTE_F32);
    const json_t *batch = json_object_get(f.refs, "batch");
    const json_t *rows = json_object_get(batch, "rows");
    int B = (int)json_array_size(rows);
    ck_assert_int_gt(B, 1);
    int S = (int)json_array_size(json_object_get(json_array_get(rows, 0), "input_ids"));
    int32_t *ids = calloc((size_t)B * (size_t)S, sizeof *ids);
    int32_t *mask = calloc((size_t)B * (size_t)S, sizeof *mask);
    int *len = calloc((size_t)B, sizeof *len);
    for (int b = 0; b < B; b++) {
        const json_t *r = json_array_get(rows, (size_t)b);
        ids_of(json_object_get(r, "input_ids"), ids + (size_t)b * (size_t)S, S);
        ids_of(json_object_get(r, "attention_mask"), mask + (size_t)b * (size_t)S, S);
        for (int t = 0; t < S; t++)
            len[b] += mask[(size_t)b * (size_t)S + (size_t)t];
    }
    const int splits[][2] = {{0, B}, {0, B / 2}, {B / 2, B}};
    for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
        int b0 = splits[k][0], nb = splits[k][1] - b0;
        const float *out, *hidden;
        size_t off = (size_t)b0 * (size_t)S;
        forward(&f, nb, S, ids + off, mask + off, &out, &hidden);
        for (int b = 0; b < nb; b++) {
            const json_t *r = json_array_get(rows, (size_t)(b0 + b));
            const json_t *want_h = json_object_get(r, "last_hidden_state"); /* first rows */
            double d = 0;
            if (want_h)
                d = worst_diff(hidden + (size_t)b * (size_t)S * f.H, want_h,
                               (size_t)len[b0 + b] * f.H);
            if (json_object_get(r, "logits"))
                d = fmax(d, head_diff(&f, out, b, S, len[b0 + b], json_object_get(r, "logits")));
            ck_assert_msg(d <= TOL, "%s batch row %d (%d tokens of %d, rows %d..%d): %.3g", name,
                          b0 + b, len[b0 + b], S, b0, b0 + nb - 1, d);
        }
    }
    free(ids);
    free(mask);
    free(len);
    model_close(&f);
}
END_TEST

/* ---- pipelines ---- */

/* Structural equality: same keys and lengths, equal strings and integers, reals within tol;
 * a difference is described in why (its JSON path). */
static bool close_json(const json_t *a, const json_t *b, double tol, char *path, size_t cap,
                       char *why, size_t why_cap)
{
    size_t plen = strlen(path);
    bool ok = true;
    if (json_is_number(a) && json_is_number(b)) {
        ok = json_is_integer(a) && json_is_integer(b)
                 ? json_integer_value(a) == json_integer_value(b)
                 : fabs(json_number_value(a) - json_number_value(b)) <= tol;
    } else if (json_is_array(a) && json_is_array(b)) {
        ok = json_array_size(a) == json_array_size(b);
        for (size_t i = 0; ok && i < json_array_size(a); i++) {
            snprintf(path + plen, cap - plen, "[%zu]", i);
            if (!close_json(json_array_get(a, i), json_array_get(b, i), tol, path, cap, why,
                            why_cap))
                return false;
        }
    } else if (json_is_object(a) && json_is_object(b)) {
        ok = json_object_size(a) == json_object_size(b);
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            snprintf(path + plen, cap - plen, ".%s", k);
            const json_t *w = json_object_get(b, k);
            if (!ok || !w || !close_json(v, w, tol, path, cap, why, why_cap)) {
                if (!w)
                    snprintf(why, why_cap, "%s: missing", path);
                return false;
            }
        }
    } else {
        ok = json_equal((json_t *)a, (json_t *)b);
    }
    if (!ok) {
        char *sa = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
        char *sb = json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(why, why_cap, "%s: %.80s vs %.80s", path, sa ? sa : "?", sb ? sb : "?");
        free(sa);
        free(sb);
    }
    path[plen] = '\0';
    return ok;
}

static void assert_close(const json_t *got, const json_t *want, double tol, const char *what)
{
    char path[256] = "$", why[400] = "";
    ck_assert_msg(close_json(got, want, tol, path, sizeof path, why, sizeof why), "%s: %s", what,
                  why);
}


static const struct {
    const char *model, *task;
} hf_pipelines[] = {
    {"modernbert-mlm", "fill-mask"},
    {"modernbert-seqcls", "text-classification"},
    {"modernbert-seqcls-mean", "text-classification"},
    {"modernbert-tokcls", "token-classification"},
};

/* refs "pipeline": every entry alone (labels, tokens, words, offsets exact, scores within
 * 1e-4), then all of them in one forward step. */
START_TEST(pipelines_match_transformers)
{
    const char *model = hf_pipelines[_i].model;
    struct env v;
    env_open_dt(&v, model, hf_pipelines[_i].task, DTYPE_COMPUTE_F32);
    json_t *refs = fixture_json(fixture_model(model), "refs-dev.json");
    json_t *entries = json_object_get(refs, "pipeline");
    size_t n = json_array_size(entries);
    ck_assert_uint_gt(n, 0);
    struct pipeline_request **reqs = calloc(n, sizeof *reqs);
    struct err e = {0};
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(entries, i);
        const json_t *in = json_object_get(x, "input"), *params = json_object_get(x, "parameters");
        char what[128];
        snprintf(what, sizeof what, "%s pipeline[%zu] alone", model, i);
        json_t *got = run_ok(&v, in, params, what);
        assert_close(got, json_object_get(x, "output"), TOL, what);
        json_decref(got);
        ck_assert_msg(pipeline_prepare(v.p, in, params, &reqs[i], &e) == 0, "%s", e.msg);
    }
    ck_assert_msg(pipeline_forward(v.p, v.w, reqs, n, &e) == 0, "%s", e.msg);
    for (size_t i = 0; i < n; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s pipeline[%zu] in a batch of %zu", model, i, n);
        json_t *got = NULL;
        ck_assert_msg(pipeline_finish(v.p, reqs[i], &got, &e) == 0, "%s: %s", what, e.msg);
        assert_close(got, json_object_get(json_array_get(entries, i), "output"), TOL, what);
        json_decref(got);
        pipeline_request_free(reqs[i]);
    }
    free(reqs);
    json_decref(refs);
    env_close(&v);
}
END_TEST

/* modernbert-embed through sentence-transformers' modules (mean pooling, Normalize): every
 * text in one request (sorted into padded batches) and each alone; feature extraction. */
START_TEST(sentence_embeddings_match)
{
    struct env v;
    env_open_dt(&v, "modernbert-embed", "sentence-embeddings", DTYPE_COMPUTE_F32);
    json_t *refs = fixture_json(fixture_model("modernbert-embed"), "refs-dev.json");
    static const char *const lists[] = {"sentence_embeddings", "sentence_embeddings_alone"};
    for (int l = 0; l < 2; l++) {
        json_t *entries = json_object_get(refs, lists[l]);
        json_t *texts = json_array(), *want = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(entries, i, x)
        {
            json_array_append(texts, json_object_get(x, "text"));
            json_array_append(want, json_object_get(x, "embedding"));
        }
        ck_assert_uint_gt(json_array_size(texts), 0);
        json_t *all = run_ok(&v, texts, NULL, lists[l]);
        assert_close(all, want, TOL, lists[l]);
        for (i = 0; l == 1 && i < json_array_size(texts); i++) {
            json_t *one = run_ok(&v, json_array_get(texts, i), NULL, "one sentence");
            assert_close(one, json_array_get(want, i), TOL, "sentence embedding alone");
            json_decref(one);
        }
        json_decref(all);
        json_decref(texts);
        json_decref(want);
    }
    env_close(&v);
    env_open_dt(&v, "modernbert-embed", "feature-extraction", DTYPE_COMPUTE_F32);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(refs, "feature_extraction_pipeline"), i, x)
    {
        json_t *got = run_ok(&v, json_object_get(x, "input"), json_object_get(x, "parameters"),
                             "feature-extraction");
        assert_close(got, json_object_get(x, "output"), TOL, "feature-extraction");
        json_decref(got);
    }
    json_decref(refs);
    env_close(&v);
}
END_TEST

/* ---- reduced precision ---- */

/* The smallest cosine between got's rows (n rows of H) and want's. */
static double min_cosine(const float *got, const json_t *want, size_t n, size_t H)
{
    static float w[1 << 16];
    ck_assert_uint_eq(json_flatten(want, w, sizeof w / sizeof w[0]), n * H);
    double worst = 1;
    for (size_t r = 0; r < n; r++) {
        double dot = 0, a = 0, b = 0;
        for (size_t k = 0; k < H; k++) {
            dot += (double)got[r * H + k] * w[r * H + k];
            a += (double)got[r * H + k] * got[r * H + k];
            b += (double)w[r * H + k] * w[r * H + k];
        }
        worst = fmin(worst, dot / sqrt(a * b));
    }
    return worst;
}

/* Per compute dtype: the smallest cosine allowed between a token's last hidden state and
 * transformers' fp32 one, and the share of the text classifiers' pipeline labels that must
 * agree with HF's. The fixtures' weights are large (|w| up to 0.69, standard deviation 0.55:
 * saturated softmaxes, a residual stream in the hundreds before the final norm), so bf16 and
 * int8 activations move them far more than the BERT fixtures (bf16: up to 1.2 on a hidden
 * value, 0.2 on a score); the bounds are the measured worst with a margin. */
static const struct {
    enum dtype_compute dt;
    const char *name;
    double min_cos, min_agree;
} reduced[] = {
    {DTYPE_COMPUTE_BF16, "bf16", 0.88, 0.9},
    {DTYPE_COMPUTE_INT8, "int8", 0.70, 0.8},
};

START_TEST(reduced_precision)
{
    const char *name = all_models[_i / 2];
    int d = _i % 2;
    struct model f;
    model_open(&f, name, reduced[d].dt);
    double cos = 1;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(f.refs, "token_features"), i, x)
    {
        int32_t ids[512];
        int n = ids_of(json_object_get(x, "input_ids"), ids, 512);
        const float *out, *hidden;
        forward(&f, 1, n, ids, NULL, &out, &hidden);
        cos = fmin(cos, min_cosine(hidden, json_object_get(x, "last_hidden_state"), (size_t)n,
                                   f.H));
    }
    model_close(&f);
    printf("modernbert %s %s: min cosine of hidden states %.4f\n", name, reduced[d].name, cos);
    ck_assert_msg(cos >= reduced[d].min_cos, "%s %s: min cosine %.4f", name, reduced[d].name, cos);
    if (strstr(name, "seqcls") == NULL)
        return;
    struct env v;
    env_open_dt(&v, name, "text-classification", reduced[d].dt);
    json_t *refs = fixture_json(fixture_model(name), "refs-dev.json");
    size_t agree = 0, n = json_array_size(json_object_get(refs, "pipeline"));
    json_array_foreach(json_object_get(refs, "pipeline"), i, x)
    {
        json_t *got = run_ok(&v, json_object_get(x, "input"), NULL, "reduced precision");
        const json_t *g = json_array_get(got, 0);
        const json_t *w = json_array_get(json_object_get(x, "output"), 0);
        agree += strcmp(json_string_value(json_object_get(g, "label")),
                        json_string_value(json_object_get(w, "label"))) == 0;
        json_decref(got);
    }
    printf("modernbert %s %s: %zu of %zu labels agree\n", name, reduced[d].name, agree, n);
    ck_assert_msg((double)agree >= reduced[d].min_agree * (double)n, "%s %s: %zu of %zu labels",
                  name, reduced[d].name, agree, n);
    json_decref(refs);
    env_close(&v);
}
END_TEST

/* ---- config.json ---- */

static int parse(const char *json, struct hf_config *c, struct err *e)
{
    return hf_config_parse(json, strlen(json), "config.json", c, e);
}

/* ModernBertConfig's defaults for what a file leaves out, and the keys that override them
 * (transformers 5's layer_types and per-layer-type rope_parameters included). */
START_TEST(config_keys_and_defaults)
{
    struct hf_config c;
    struct err e = {0};
    ck_assert_msg(parse("{\"model_type\": \"modernbert\", \"vocab_size\": 10, \"hidden_size\": 8,"
                        " \"num_hidden_layers\": 7, \"num_attention_heads\": 2,"
                        " \"intermediate_size\": 12}",
                        &c, &e) == 0,
                  "%s", e.msg);
    ck_assert_str_eq(c.hidden_act, "gelu");
    ck_assert_double_eq(c.layer_norm_eps, 1e-5);
    ck_assert_double_eq(c.rope_theta, 160000.0);
    ck_assert_double_eq(c.local_rope_theta, 10000.0);
    ck_assert_int_eq(c.sliding_window, 128);
    ck_assert_int_eq(c.max_position_embeddings, 8192);
    ck_assert(!c.norm_bias && !c.attention_bias && !c.mlp_bias && !c.classifier_bias);
    ck_assert(c.decoder_bias);
    ck_assert_str_eq(c.classifier_pooling, "cls");
    ck_assert_str_eq(c.classifier_activation, "gelu");
    for (int l = 0; l < 7; l++) /* global_attn_every_n_layers 3: layers 0, 3, 6 are global */
        ck_assert_int_eq(c.sliding_layers[l], l % 3 != 0);
    hf_config_fini(&c);
    ck_assert_msg(
        parse("{\"model_type\": \"modernbert\", \"vocab_size\": 10, \"hidden_size\": 8,"
              " \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"intermediate_size\": 12,"
              " \"hidden_activation\": \"gelu_pytorch_tanh\", \"norm_eps\": 1e-6,"
              " \"local_attention\": 64, \"classifier_pooling\": \"mean\", \"norm_bias\": true,"
              " \"layer_types\": [\"sliding_attention\", \"full_attention\"],"
              " \"rope_parameters\": {\"full_attention\": {\"rope_type\": \"default\","
              " \"rope_theta\": 80000.0}, \"sliding_attention\": {\"rope_type\": \"default\","
              " \"rope_theta\": 5000.0}}}",
              &c, &e) == 0,
        "%s", e.msg);
    ck_assert_str_eq(c.hidden_act, "gelu_pytorch_tanh");
    ck_assert_double_eq(c.layer_norm_eps, 1e-6);
    ck_assert_double_eq(c.rope_theta, 80000.0);
    ck_assert_double_eq(c.local_rope_theta, 5000.0);
    ck_assert_int_eq(c.sliding_window, 64);
    ck_assert_str_eq(c.classifier_pooling, "mean");
    ck_assert(c.norm_bias);
    ck_assert(c.sliding_layers[0] && !c.sliding_layers[1]);
    hf_config_fini(&c);
    ck_assert_int_eq(parse("{\"model_type\": \"modernbert\", \"vocab_size\": 10, \"hidden_size\":"
                           " 8, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,"
                           " \"intermediate_size\": 12, \"classifier_pooling\": \"max\"}",
                           &c, &e),
                     ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "classifier_pooling") != NULL, "%s", e.msg);
}
END_TEST

Suite *suite_modernbert(void)
{
    Suite *s = suite_create("modernbert");
    TCase *tc = tcase_create("fp32");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, hidden_states_alone, 0, N_MODELS);
    tcase_add_loop_test(tc, logits_alone_and_batched, 0, 3);
    tcase_add_loop_test(tc, padded_batch_rows, 0, N_MODELS - 1);
    tcase_add_loop_test(tc, pipelines_match_transformers, 0,
                        (int)(sizeof hf_pipelines / sizeof hf_pipelines[0]));
    tcase_add_test(tc, sentence_embeddings_match);
    tcase_add_loop_test(tc, reduced_precision, 0, 2 * N_MODELS);
    tcase_add_test(tc, config_keys_and_defaults);
    suite_add_tcase(s, tc);
    return s;
}
