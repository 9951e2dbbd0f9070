/* test_encoders: every encoder fixture model (random tiny weights, real tokenizers)
 * against the logits transformers computed for it (refs-dev.json "logits", within
 * 1e-4 at fp32), each input alone and all of them in one padded batch; bert-embed's
 * last hidden states; and bad model directories that must fail cleanly. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder.h"
#include "suites.h"
#include "support/support.h"
#include "tokenizer/tokenizer.h"

static const char *const models[] = {
    "bert-seqcls",       "bert-tokcls",   "bert-qa",        "bert-nli",       "distilbert-seqcls",
    "distilbert-tokcls", "distilbert-qa", "roberta-seqcls", "roberta-tokcls", "xlmr-seqcls",
    "xlmr-tokcls",       "albert-seqcls", "electra-seqcls", "mpnet-seqcls",   "mpnet-tokcls",
    "mpnet-qa",          "deberta-seqcls", "deberta-nli",   "deberta-tokcls", "deberta-qa",
};

struct item {
    int32_t *ids, *types;
    int n;
    json_t *want; /* logits: [labels] | [[labels] per token] | start/end pair */
    json_t *want_end;
};

/* Flattens the expected values of one refs entry for the head kind. */
static size_t flatten(const json_t *j, float *out, size_t cap)
{
    if (json_is_number(j)) {
        if (cap)
            out[0] = (float)json_number_value(j);
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(j); i++)
        n += flatten(json_array_get(j, i), out ? out + n : NULL, cap > n ? cap - n : 0);
    return n;
}

static void run_and_compare(const char *name, const struct encoder *m, struct dnn_ctx *ctx,
                            struct encoder_run *run, struct item *items, size_t n_items,
                            bool batched)
{
    enum encoder_head head = encoder_head_kind(m);
    size_t W = encoder_out_width(m);
    size_t groups = batched ? 1 : n_items;
    for (size_t g = 0; g < groups; g++) {
        size_t from = batched ? 0 : g, to = batched ? n_items : g + 1;
        int S = 0;
        for (size_t i = from; i < to; i++)
            S = items[i].n > S ? items[i].n : S;
        int B = (int)(to - from);
        int32_t *ids = calloc((size_t)B * (size_t)S, sizeof *ids);
        int32_t *types = calloc((size_t)B * (size_t)S, sizeof *types);
        int32_t *mask = calloc((size_t)B * (size_t)S, sizeof *mask);
        int64_t pad = encoder_config(m)->pad_token_id;
        for (int b = 0; b < B; b++) {
            const struct item *it = &items[from + (size_t)b];
            for (int t = 0; t < S; t++) {
                size_t r = (size_t)b * (size_t)S + (size_t)t;
                ids[r] = t < it->n ? it->ids[t] : (int32_t)(pad >= 0 ? pad : 0);
                types[r] = t < it->n ? it->types[t] : 0;
                mask[r] = t < it->n;
            }
        }
        struct encoder_batch batch = {B, S, ids, types, mask, NULL, 0};
        const float *out = NULL;
        struct err e = {0};
        ck_assert_msg(encoder_forward(m, ctx, run, &batch, &out, NULL, &e) == 0, "%s: %s", name,
                      e.msg);
        for (int b = 0; b < B; b++) {
            const struct item *it = &items[from + (size_t)b];
            float want[8192], want_end[4096];
            size_t nw = flatten(it->want, want, 8192);
            double worst = 0;
            if (head == HEAD_SEQ_CLS) {
                ck_assert_uint_eq(nw, W);
                for (size_t k = 0; k < W; k++)
                    worst = fmax(worst, fabs(out[(size_t)b * W + k] - want[k]));
            } else if (head == HEAD_TOKEN_CLS) {
                ck_assert_uint_eq(nw, (size_t)it->n * W);
                for (size_t k = 0; k < nw; k++)
                    worst = fmax(worst, fabs(out[(size_t)b * (size_t)S * W + k] - want[k]));
            } else if (head == HEAD_QA) {
                size_t ne = flatten(it->want_end, want_end, 4096);
                ck_assert_uint_eq(nw, (size_t)it->n);
                ck_assert_uint_eq(ne, (size_t)it->n);
                for (int t = 0; t < it->n; t++) {
                    const float *o = out + ((size_t)b * (size_t)S + (size_t)t) * 2;
                    worst = fmax(worst, fabs(o[0] - want[t]));
                    worst = fmax(worst, fabs(o[1] - want_end[t]));
                }
            }
            ck_assert_msg(worst <= 1e-4, "%s item %zu (%s): max |logit error| %.3g", name,
                          from + (size_t)b, batched ? "in a batch" : "alone", worst);
        }
        free(ids);
        free(types);
        free(mask);
    }
}

START_TEST(logits_match_transformers)
{
    const char *name = models[_i];
    const char *dir = fixture_model(name);
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(2, &e);
    ck_assert_msg(ctx != NULL, "%s", e.msg);
    struct encoder *m = NULL;
    ck_assert_msg(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e) == 0, "%s: %s", name, e.msg);
    struct tokenizer *tk = NULL;
    ck_assert_msg(tokenizer_load(dir, &tk, &e) == 0, "%s", e.msg);
    json_t *refs = fixture_json(dir, "refs-dev.json");
    json_t *lists[2] = {json_object_get(refs, "logits"), json_object_get(refs, "pair_logits")};
    struct item items[64];
    size_t n = 0;
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *ref;
        json_array_foreach(lists[l], i, ref)
        {
            if (n == 64)
                break;
            const json_t *jids = json_object_get(ref, "input_ids");
            struct item *it = &items[n++];
            it->n = (int)json_array_size(jids);
            it->ids = calloc((size_t)it->n, sizeof *it->ids);
            it->types = calloc((size_t)it->n, sizeof *it->types);
            for (int t = 0; t < it->n; t++)
                it->ids[t] = (int32_t)json_integer_value(json_array_get(jids, (size_t)t));
            /* token types of a pair: from our tokenizer, whose ids must agree */
            const json_t *a = json_object_get(ref, "text"), *b = json_object_get(ref, "pair");
            if (!a) {
                a = json_object_get(ref, "question");
                b = json_object_get(ref, "context");
            }
            if (json_is_string(b)) {
                struct tokenizer_params p = tokenizer_params_default(tk);
                struct encodings enc = {0};
                ck_assert_int_eq(tokenizer_encode(tk, json_string_value(a), json_string_length(a),
                                                  json_string_value(b), json_string_length(b), &p,
                                                  &enc, &e),
                                 0);
                ck_assert_msg(enc.v[0].n == (size_t)it->n, "%s: pair %zu: %zu tokens, refs %d",
                              name, i, enc.v[0].n, it->n);
                for (int t = 0; t < it->n; t++) {
                    ck_assert_int_eq(enc.v[0].ids[t], it->ids[t]);
                    it->types[t] = (int32_t)enc.v[0].type_ids[t];
                }
                encodings_fini(&enc);
            }
            it->want = json_object_get(ref, "logits");
            it->want_end = NULL;
            if (!it->want) {
                it->want = json_object_get(ref, "start_logits");
                it->want_end = json_object_get(ref, "end_logits");
            }
        }
    }
    ck_assert_uint_gt(n, 0);
    struct encoder_run *run = encoder_run_new();
    run_and_compare(name, m, ctx, run, items, n, false);
    run_and_compare(name, m, ctx, run, items, n, true);
    for (size_t i = 0; i < n; i++) {
        free(items[i].ids);
        free(items[i].types);
    }
    encoder_run_free(run);
    json_decref(refs);
    tokenizer_free(tk);
    encoder_free(m);
    dnn_ctx_free(ctx);
}
END_TEST

START_TEST(bert_embed_hidden_states)
{
    const char *dir = fixture_model("bert-embed");
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(2, &e);
    struct encoder *m = NULL;
    ck_assert_msg(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(encoder_head_kind(m), HEAD_NONE);
    json_t *refs = fixture_json(dir, "refs-dev.json");
    struct encoder_run *run = encoder_run_new();
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(refs, "token_features"), i, ref)
    {
        const json_t *jids = json_object_get(ref, "input_ids");
        int n = (int)json_array_size(jids);
        int32_t ids[512], mask[512];
        for (int t = 0; t < n; t++) {
            ids[t] = (int32_t)json_integer_value(json_array_get(jids, (size_t)t));
            mask[t] = 1;
        }
        struct encoder_batch b = {1, n, ids, NULL, mask, NULL, 0};
        const float *out;
        ck_assert_msg(encoder_forward(m, ctx, run, &b, &out, NULL, &e) == 0, "%s", e.msg);
        static float want[512 * 64];
        size_t nw = flatten(json_object_get(ref, "last_hidden_state"), want, 512 * 64);
        ck_assert_uint_eq(nw, (size_t)n * 32);
        for (size_t k = 0; k < nw; k++)
            ck_assert_msg(fabsf(out[k] - want[k]) <= 1e-4, "text %zu value %zu: %g vs %g", i, k,
                          out[k], want[k]);
    }
    encoder_run_free(run);
    json_decref(refs);
    encoder_free(m);
    dnn_ctx_free(ctx);
}
END_TEST

/* Writes a model directory with the given config.json and safetensors bytes. */
static const char *bad_model(const char *config, const void *st, size_t st_len)
{
    const char *dir = temp_dir();
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fputs(config, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    f = fopen(path, "wb");
    fwrite(st, 1, st_len, f);
    fclose(f);
    return dir;
}

START_TEST(bad_models_fail_cleanly)
{
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    struct encoder *m = NULL;
    /* the real bert-seqcls weights, cut short */
    char src[1024];
    snprintf(src, sizeof src, "%s/model.safetensors", fixture_model("bert-seqcls"));
    size_t len;
    char *bytes = read_file(src, &len);
    char cfgpath[1024];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", fixture_model("bert-seqcls"));
    char *cfg = read_file(cfgpath, NULL);
    ck_assert_ptr_nonnull(bytes);
    const char *dir = bad_model(cfg, bytes, len / 2);
    ck_assert_int_ne(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(e.msg, "model.safetensors") != NULL, "%s", e.msg);

    /* header pointing outside the file: a tiny file claiming 1 GB of data */
    static const char hdr[] =
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,1000000000]}}";
    char buf[256];
    uint64_t hl = sizeof hdr - 1;
    memcpy(buf, &hl, 8);
    memcpy(buf + 8, hdr, hl);
    dir = bad_model(cfg, buf, 8 + hl);
    ck_assert_int_ne(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
    ck_assert_msg(strstr(e.msg, "'a'") != NULL, "%s", e.msg);

    /* wrong shape versus config: hidden_size says 64 */
    char *cfg64 = strdup(cfg);
    char *at = strstr(cfg64, "\"hidden_size\": 32");
    ck_assert_ptr_nonnull(at);
    memcpy(at, "\"hidden_size\": 64", 17);
    dir = bad_model(cfg64, bytes, len);
    ck_assert_int_ne(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
    ck_assert_msg(strstr(e.msg, "shape") != NULL, "%s", e.msg);

    /* unknown model_type */
    char *cfgx = strdup(cfg);
    at = strstr(cfgx, "\"model_type\": \"bert\"");
    ck_assert_ptr_nonnull(at);
    memcpy(at, "\"model_type\": \"xxxx\"", 20);
    dir = bad_model(cfgx, bytes, len);
    ck_assert_int_ne(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e), 0);
    ck_assert_msg(strstr(e.msg, "xxxx") != NULL, "%s", e.msg);

    free(cfg64);
    free(cfgx);
    free(cfg);
    free(bytes);
    dnn_ctx_free(ctx);
}
END_TEST

Suite *suite_encoders(void)
{
    Suite *s = suite_create("encoders");
    TCase *tc = tcase_create("fp32");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, logits_match_transformers, 0, (int)(sizeof models / sizeof models[0]));
    tcase_add_test(tc, bert_embed_hidden_states);
    tcase_add_test(tc, bad_models_fail_cleanly);
    suite_add_tcase(s, tc);
    return s;
}
