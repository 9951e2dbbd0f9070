/* test_encoders_relpos: the encoders with relative-position attention (MPNet's shared bucket
 * bias, DeBERTa-v2/v3's disentangled c2p/p2c attention) against refs-dev.json: the right-padded
 * "batch" (every row's logits and the real tokens' last hidden states within 1e-4 at fp32, and
 * within the reduced-precision tolerance of the other families at bf16 and int8), the base
 * model's "token_features" alone (a long email crosses DeBERTa's log buckets and MPNet's
 * logarithmic buckets), mpnet-embed's sentence embeddings one by one and its feature-extraction
 * pipeline, and the config defaults of both families. Per-input logits, the pipelines and QA
 * are in the encoders and pipelines_e2e suites. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/hf_config.h"
#include "models/encoder.h"
#include "pipelines/runner.h"
#include "suites.h"
#include "support/model_variant.h"
#include "support/pipeline_env.h"
#include "support/support.h"

/* the last one has no refs "batch" */
static const char *const models[] = {
    "mpnet-seqcls", "mpnet-tokcls",   "mpnet-qa",   "mpnet-mlm",   "deberta-seqcls",
    "deberta-nli",  "deberta-tokcls", "deberta-qa", "deberta-mlm", "mpnet-embed",
};
#define N_MODELS ((int)(sizeof models / sizeof models[0]))
#define N_BATCH (N_MODELS - 1)

/* bf16 and int8: the bound the decoder and T5 suites put on logits, here on logits and hidden
 * states alike (see reduced_precision_runs) */
#define TOL_REDUCED 0.1

/* max |got[k] - want[k]| over the flattened want (n values expected). */
static double worst_of(const float *got, const json_t *want, size_t n)
{
    float *w = malloc((n + 1) * sizeof *w);
    ck_assert_uint_eq(json_flatten(want, w, n), n);
    double worst = 0;
    for (size_t k = 0; k < n; k++)
        worst = fmax(worst, fabs((double)got[k] - w[k]));
    free(w);
    return worst;
}

struct fixture {
    struct dnn_ctx *ctx;
    struct encoder *m;
    struct encoder_run *run;
};

/* The model in dir (a fixture's or a variant's). */
static void fixture_open(struct fixture *f, const char *dir, enum dtype_compute dt)
{
    struct err e = {0};
    f->ctx = dnn_ctx_new(2, &e);
    ck_assert_msg(f->ctx != NULL, "%s", e.msg);
    ck_assert_msg(encoder_load(dir, dt, f->ctx, &f->m, &e) == 0, "%s: %s", dir, e.msg);
    f->run = encoder_run_new();
}

static void fixture_close(struct fixture *f)
{
    encoder_run_free(f->run);
    encoder_free(f->m);
    dnn_ctx_free(f->ctx);
}

/* Values compared, in one order: what the engine gives and what the refs record. */
struct values {
    float *got, *want;
    size_t n, cap;
};

static void values_add(struct values *v, const float *got, const json_t *want, size_t n)
{
    if (v->n + n > v->cap) {
        v->cap = 2 * (v->n + n);
        v->got = realloc(v->got, v->cap * sizeof *v->got);
        v->want = realloc(v->want, v->cap * sizeof *v->want);
    }
    memcpy(v->got + v->n, got, n * sizeof *got);
    ck_assert_uint_eq(json_flatten(want, v->want + v->n, n), n);
    v->n += n;
}

static double values_worst(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t k = 0; k < n; k++)
        worst = fmax(worst, fabs((double)a[k] - b[k]));
    return worst;
}

/* The refs' right-padded batch through the model in dir at dt: each row's logits and its real
 * tokens' last hidden states where the refs record them, into v. */
static void batch_values(const char *name, const char *dir, enum dtype_compute dt,
                         struct values *v)
{
    struct fixture f;
    fixture_open(&f, dir, dt);
    json_t *refs = fixture_json(fixture_model(name), "refs-dev.json");
    const json_t *rows = json_object_get(json_object_get(refs, "batch"), "rows");
    int B = (int)json_array_size(rows);
    ck_assert_int_gt(B, 0);
    int S = (int)json_array_size(json_object_get(json_array_get(rows, 0), "input_ids"));
    int32_t *ids = calloc((size_t)B * (size_t)S, sizeof *ids);
    int32_t *mask = calloc((size_t)B * (size_t)S, sizeof *mask);
    for (int b = 0; b < B; b++) {
        const json_t *row = json_array_get(rows, (size_t)b);
        const json_t *ji = json_object_get(row, "input_ids");
        const json_t *jm = json_object_get(row, "attention_mask");
        ck_assert_int_eq((int)json_array_size(ji), S);
        for (int t = 0; t < S; t++) {
            size_t r = (size_t)b * (size_t)S + (size_t)t;
            ids[r] = (int32_t)json_integer_value(json_array_get(ji, (size_t)t));
            mask[r] = (int32_t)json_integer_value(json_array_get(jm, (size_t)t));
        }
    }
    enum encoder_head head = encoder_head_kind(f.m);
    /* a masked LM predicts one row only: the batch's vocabulary logits are not recorded */
    int32_t lm_row = 0;
    struct encoder_batch batch = {B, S, ids, NULL, mask, head == HEAD_MASKED_LM ? &lm_row : NULL,
                                  1};
    const float *out = NULL, *hidden = NULL;
    struct err e = {0};
    ck_assert_msg(encoder_forward(f.m, f.ctx, f.run, &batch, &out, &hidden, &e) == 0, "%s: %s",
                  name, e.msg);
    size_t W = encoder_out_width(f.m), H = (size_t)encoder_config(f.m)->hidden_size;
    int n_hidden = 0, n_logits = 0;
    for (int b = 0; b < B; b++) {
        const json_t *row = json_array_get(rows, (size_t)b);
        const json_t *hs = json_object_get(row, "last_hidden_state");
        size_t n = 0, at = (size_t)b * (size_t)S;
        while (n < (size_t)S && mask[at + n])
            n++;
        if (hs) {
            ck_assert_uint_eq(json_array_size(hs), n);
            values_add(v, hidden + at * H, hs, n * H);
            n_hidden++;
        }
        const json_t *lg = json_object_get(row, "logits");
        if (lg && head == HEAD_SEQ_CLS)
            values_add(v, out + (size_t)b * W, lg, W);
        else if (lg && head == HEAD_TOKEN_CLS)
            values_add(v, out + at * W, lg, n * W);
        const json_t *sl = json_object_get(row, "start_logits");
        const json_t *el = json_object_get(row, "end_logits");
        if (sl && el && head == HEAD_QA) {
            float *se = malloc(2 * n * sizeof *se);
            for (size_t t = 0; t < n; t++) {
                se[t] = out[(at + t) * 2];
                se[n + t] = out[(at + t) * 2 + 1];
            }
            values_add(v, se, sl, n);
            values_add(v, se + n, el, n);
            free(se);
            lg = sl;
        }
        n_logits += lg != NULL;
    }
    ck_assert_int_gt(n_hidden, 0);
    ck_assert(head == HEAD_MASKED_LM || head == HEAD_NONE || n_logits == B);
    free(ids);
    free(mask);
    json_decref(refs);
    fixture_close(&f);
}

static void values_fini(struct values *v)
{
    free(v->got);
    free(v->want);
}

START_TEST(padded_batch_matches)
{
    struct values v = {0};
    batch_values(models[_i], fixture_model(models[_i]), DTYPE_COMPUTE_F32, &v);
    double worst = values_worst(v.got, v.want, v.n);
    ck_assert_msg(worst <= 1e-4, "%s: max error %.3g in the padded batch", models[_i], worst);
    values_fini(&v);
}
END_TEST

/* bf16 and int8 against fp32 on the same weights. The fixtures' weights (std 0.55, seven times
 * the BERT fixtures') make attention nearly hard and the models chaotic: a bf16 rounding moves
 * their hidden states by ~0.1 (the same for a plain BERT at that scale). The tolerance is
 * checked on the fixture with every matrix scaled by 1/8, the BERT fixtures' scale. */
START_TEST(reduced_precision_runs)
{
    const char *name = models[_i / 2];
    enum dtype_compute dt = _i % 2 ? DTYPE_COMPUTE_INT8 : DTYPE_COMPUTE_BF16;
    const char *dir =
        model_variant_dir(fixture_model(name), &(struct model_variant){.scale_matrices = 0.125f});
    struct values ref = {0}, got = {0};
    batch_values(name, dir, DTYPE_COMPUTE_F32, &ref);
    batch_values(name, dir, dt, &got);
    ck_assert_uint_eq(ref.n, got.n);
    double worst = values_worst(got.got, ref.got, ref.n);
    ck_assert_msg(worst < TOL_REDUCED, "%s %s: max error %.3g", name,
                  dt == DTYPE_COMPUTE_INT8 ? "int8" : "bf16", worst);
    values_fini(&ref);
    values_fini(&got);
}
END_TEST

/* The base model's last hidden state of each text alone (refs "token_features"). */
START_TEST(token_features_match)
{
    struct fixture f;
    fixture_open(&f, fixture_model(models[_i]), DTYPE_COMPUTE_F32);
    json_t *refs = fixture_json(fixture_model(models[_i]), "refs-dev.json");
    size_t H = (size_t)encoder_config(f.m)->hidden_size, i;
    json_t *ref;
    json_array_foreach(json_object_get(refs, "token_features"), i, ref)
    {
        const json_t *jids = json_object_get(ref, "input_ids");
        int n = (int)json_array_size(jids);
        int32_t *ids = calloc((size_t)n, sizeof *ids), *mask = calloc((size_t)n, sizeof *mask);
        for (int t = 0; t < n; t++) {
            ids[t] = (int32_t)json_integer_value(json_array_get(jids, (size_t)t));
            mask[t] = 1;
        }
        int32_t lm_row = 0;
        bool mlm = encoder_head_kind(f.m) == HEAD_MASKED_LM;
        struct encoder_batch b = {1, n, ids, NULL, mask, mlm ? &lm_row : NULL, 1};
        const float *out, *hidden;
        struct err e = {0};
        ck_assert_msg(encoder_forward(f.m, f.ctx, f.run, &b, &out, &hidden, &e) == 0, "%s",
                      e.msg);
        double worst = worst_of(hidden, json_object_get(ref, "last_hidden_state"), (size_t)n * H);
        ck_assert_msg(worst <= 1e-4, "%s text %zu (%d tokens): max error %.3g", models[_i], i, n,
                      worst);
        free(ids);
        free(mask);
    }
    ck_assert_uint_gt(i, 0);
    json_decref(refs);
    fixture_close(&f);
}
END_TEST

/* mpnet-embed: sentence embeddings one text per call, and the feature-extraction pipeline. */
START_TEST(mpnet_embed_pipelines)
{
    const char *dir = fixture_model("mpnet-embed");
    json_t *refs = fixture_json(dir, "refs-dev.json");
    struct err e = {0};
    struct pipeline_worker *w = NULL;
    ck_assert_msg(pipeline_worker_new(2, &w, &e) == 0, "%s", e.msg);
    static const struct {
        const char *task, *key, *out;
    } runs[] = {{"sentence-embeddings", "sentence_embeddings_alone", "embedding"},
                {"feature-extraction", "feature_extraction_pipeline", "output"}};
    for (size_t r = 0; r < 2; r++) {
        struct pipeline *p = NULL;
        ck_assert_msg(pipeline_open(dir, runs[r].task, DTYPE_COMPUTE_F32, 2, &p, &e) == 0, "%s",
                      e.msg);
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(refs, runs[r].key), i, x)
        {
            const json_t *in = json_object_get(x, "text");
            if (!in)
                in = json_object_get(x, "input");
            json_t *got = NULL;
            ck_assert_msg(pipeline_run(p, w, in, json_object_get(x, "parameters"), &got, &e) == 0,
                          "%s", e.msg);
            const json_t *want = json_object_get(x, runs[r].out);
            size_t n = json_flatten(want, NULL, 0);
            float *g = malloc(n * sizeof *g);
            ck_assert_uint_eq(json_flatten(got, g, n), n);
            double worst = worst_of(g, want, n);
            ck_assert_msg(worst <= 1e-4, "%s[%zu]: max error %.3g", runs[r].key, i, worst);
            free(g);
            json_decref(got);
        }
        ck_assert_uint_gt(i, 0);
        pipeline_close(p);
    }
    pipeline_worker_free(w);
    json_decref(refs);
}
END_TEST

/* The config classes' defaults where a file says nothing. */
START_TEST(config_defaults)
{
    static const char mpnet[] = "{\"model_type\": \"mpnet\", \"vocab_size\": 10, \"hidden_size\": "
                                "8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                                "\"intermediate_size\": 16, \"pad_token_id\": 1}";
    static const char deberta[] = "{\"model_type\": \"deberta-v2\", \"vocab_size\": 10, "
                                  "\"hidden_size\": 8, \"num_hidden_layers\": 1, "
                                  "\"num_attention_heads\": 2, \"intermediate_size\": 16, "
                                  "\"pos_att_type\": \"p2c|c2p\"}";
    struct hf_config c;
    struct err e = {0};
    ck_assert_msg(hf_config_parse(mpnet, sizeof mpnet - 1, "mpnet", &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c.relative_attention_num_buckets, 32);
    ck_assert_int_eq(c.max_position_embeddings, 514);
    ck_assert_int_eq(c.position_offset, 2);
    ck_assert_int_eq(c.type_vocab_size, 0);
    ck_assert_double_eq(c.layer_norm_eps, 1e-12);
    hf_config_fini(&c);
    ck_assert_msg(hf_config_parse(deberta, sizeof deberta - 1, "deberta", &c, &e) == 0, "%s",
                  e.msg);
    ck_assert(!c.deberta.relative_attention && c.deberta.position_biased_input);
    ck_assert(c.deberta.c2p && c.deberta.p2c && !c.deberta.share_att_key);
    ck_assert_int_eq(c.deberta.max_relative_positions, 512);
    ck_assert_int_eq(c.deberta.position_buckets, -1);
    ck_assert_int_eq(c.deberta.pooler_hidden_size, 8);
    ck_assert_str_eq(c.deberta.pooler_hidden_act, "gelu");
    ck_assert_int_eq(c.type_vocab_size, 0);
    ck_assert_double_eq(c.layer_norm_eps, 1e-7);
    hf_config_fini(&c);
}
END_TEST

/* What the encoder does not run is refused at load with the key that asks for it. */
START_TEST(unsupported_features_refused)
{
    static const struct {
        const char *model, *patch, *msg;
    } cases[] = {
        {"deberta-seqcls", "{\"conv_kernel_size\": 3}", "conv_kernel_size"},
        {"deberta-seqcls", "{\"pooler_hidden_act\": \"cube\"}", "pooler_hidden_act"},
        {"mpnet-seqcls", "{\"relative_attention_num_buckets\": 16}",
         "relative_attention_num_buckets"},
    };
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct model_variant v = {.patch = cases[i].patch};
        const char *dir = model_variant_dir(fixture_model(cases[i].model), &v);
        struct encoder *m = NULL;
        ck_assert_int_ne(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(e.msg, cases[i].msg) != NULL, "%s", e.msg);
    }
    dnn_ctx_free(ctx);
}
END_TEST

Suite *suite_encoders_relpos(void)
{
    Suite *s = suite_create("encoders_relpos");
    TCase *tc = tcase_create("relpos");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, padded_batch_matches, 0, N_BATCH);
    tcase_add_loop_test(tc, reduced_precision_runs, 0, 2 * N_BATCH);
    tcase_add_loop_test(tc, token_features_match, 0, N_MODELS);
    tcase_add_test(tc, mpnet_embed_pipelines);
    tcase_add_test(tc, config_defaults);
    tcase_add_test(tc, unsupported_features_refused);
    suite_add_tcase(s, tc);
    return s;
}
