/* test_bin_parity: the pytorch_model.bin fixtures (tests/data/models-bin.tar.xz, written by
 * real torch.save from the safetensors fixtures by tools/refgen/make_bin_fixtures.py) load
 * through the same model loaders and give the same outputs as their safetensors originals:
 * float32 ones the same logits (within 1e-6: the same weights, so in fact equal), float16 and
 * bfloat16 ones every weight equal to the original rounded to that type (within half a unit
 * in the last place) and logits close to the original's. Covers a single file, a sharded
 * index, tied embeddings (three names, one storage), two offset views of one storage and
 * transposed (strided) views. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/checkpoint.h"
#include "models/decoder.h"
#include "models/encoder.h"
#include "models/t5.h"
#include "ops/dnnl.h"
#include "suites.h"
#include "support/support.h"

/* A model directory: fixture src_model's files but its model.safetensors, and the weight
 * files of models-bin/<variant>. Returns a malloc'ed path. */
static char *bin_model(const char *variant, const char *src_model)
{
    char parent[1024], cmd[4096];
    snprintf(parent, sizeof parent, "%s", temp_dir());
    char *dir = strdup(model_link_copy(parent, variant, src_model, "model.safetensors", NULL));
    snprintf(cmd, sizeof cmd, "ln -s '%s'/models-bin/%s/* '%s'/",
             fixture_dir("models-bin.tar.xz"), variant, dir);
    ck_assert_int_eq(system(cmd), 0);
    return dir;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

/* ---- encoders ---- */

/* bert-seqcls's logits for two fixed rows, malloc'ed; *n gets their count. */
static float *encoder_logits(const char *dir, size_t *n)
{
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    struct encoder *m = NULL;
    ck_assert_msg(encoder_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e) == 0, "%s: %s", dir, e.msg);
    const int32_t ids[16] = {101, 7592, 2088, 2003, 1037, 3231, 102, 0,
                             101, 2023, 2003, 2200, 2204, 999, 102, 0};
    const int32_t mask[16] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0};
    struct encoder_batch b = {.batch = 2, .seq = 8, .ids = ids, .mask = mask};
    struct encoder_run *run = encoder_run_new();
    const float *out = NULL;
    ck_assert_msg(encoder_forward(m, ctx, run, &b, &out, NULL, &e) == 0, "%s", e.msg);
    *n = 2 * encoder_out_width(m);
    float *copy = malloc(*n * sizeof *copy);
    memcpy(copy, out, *n * sizeof *copy);
    encoder_run_free(run);
    encoder_free(m);
    dnn_ctx_free(ctx);
    return copy;
}

static const char *const bert_variants[] = {"bert-seqcls-bin", "bert-seqcls-sharded"};

START_TEST(bert_bin_same_logits)
{
    char *dir = bin_model(bert_variants[_i], "bert-seqcls");
    size_t n_bin, n_orig;
    float *got = encoder_logits(dir, &n_bin);
    float *want = encoder_logits(fixture_model("bert-seqcls"), &n_orig);
    ck_assert_uint_eq(n_bin, n_orig);
    ck_assert_msg(max_diff(got, want, n_bin) <= 1e-6, "%s: logits differ by %g", dir,
                  max_diff(got, want, n_bin));
    free(got);
    free(want);
    free(dir);
}
END_TEST

/* ---- T5 ---- */

/* t5-s2s's decoder logits for four forced decoder tokens after a fixed input, malloc'ed. */
static float *t5_logits(const char *dir, size_t *n)
{
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    struct t5_model *m = NULL;
    ck_assert_msg(t5_load(dir, DTYPE_COMPUTE_F32, ctx, &m, &e) == 0, "%s: %s", dir, e.msg);
    struct t5_seq *s = NULL;
    ck_assert_int_eq(t5_seq_new(m, 16, 8, &s, &e), 0);
    struct t5_run *run = t5_run_new();
    const int32_t ids[6] = {13, 8, 34, 55, 21, 1};
    int n_ids = 6, n_tok = 4;
    struct t5_encode_batch enc = {.n_seqs = 1, .seqs = &s, .ids = ids, .n_ids = &n_ids};
    ck_assert_msg(t5_encode(m, ctx, run, &enc, &e) == 0, "%s", e.msg);
    const int32_t toks[4] = {t5_decoder_start_token_id(m), 5, 9, 2};
    struct t5_step st = {.n_seqs = 1, .seqs = &s, .tokens = toks, .n_tokens = &n_tok,
                         .all_logits = true};
    const float *lg = NULL;
    ck_assert_msg(t5_forward(m, ctx, run, &st, &lg, &e) == 0, "%s", e.msg);
    *n = 4 * (size_t)t5_vocab_size(m);
    float *copy = malloc(*n * sizeof *copy);
    memcpy(copy, lg, *n * sizeof *copy);
    t5_run_free(run);
    t5_seq_free(s);
    t5_unload(m);
    dnn_ctx_free(ctx);
    return copy;
}

/* T5's state_dict holds shared.weight and encoder/decoder.embed_tokens.weight as one tensor. */
START_TEST(t5_tied_bin_same_logits)
{
    char *dir = bin_model("t5-s2s-bin", "t5-s2s");
    struct checkpoint *ck = NULL;
    struct err e = {0};
    ck_assert_int_eq(checkpoint_open(dir, &ck, &e), 0);
    ck_assert_str_eq(checkpoint_format(ck), "pytorch");
    const struct tensor *sh = checkpoint_get(ck, "shared.weight");
    ck_assert_ptr_nonnull(sh);
    ck_assert_ptr_eq(checkpoint_get(ck, "encoder.embed_tokens.weight")->data, sh->data);
    ck_assert_ptr_eq(checkpoint_get(ck, "decoder.embed_tokens.weight")->data, sh->data);
    checkpoint_close(ck);
    size_t n_bin, n_orig;
    float *got = t5_logits(dir, &n_bin);
    float *want = t5_logits(fixture_model("t5-s2s"), &n_orig);
    ck_assert_uint_eq(n_bin, n_orig);
    ck_assert_msg(max_diff(got, want, n_bin) <= 1e-6, "logits differ by %g",
                  max_diff(got, want, n_bin));
    free(got);
    free(want);
    free(dir);
}
END_TEST

/* ---- reduced precision: every weight against the original ---- */

/* Every tensor of dir's .bin equals the original's, rounded to its type: within half an ulp
 * of that type (2^-11 relative for F16, 2^-8 for BF16, plus F16's subnormal spacing). */
static void expect_rounded_weights(const char *dir, const char *src_model, enum dtype dt)
{
    struct checkpoint *bin = NULL, *orig = NULL;
    struct err e = {0};
    ck_assert_msg(checkpoint_open(dir, &bin, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(checkpoint_open(fixture_model(src_model), &orig, &e), 0);
    ck_assert_uint_eq(checkpoint_count(bin), checkpoint_count(orig));
    double rel = dt == DTYPE_F16 ? ldexp(1, -11) : ldexp(1, -8);
    double abs_floor = dt == DTYPE_F16 ? ldexp(1, -25) : 0;
    for (size_t i = 0; i < checkpoint_count(bin); i++) {
        const struct tensor *t = checkpoint_at(bin, i), *o = checkpoint_get(orig, t->name);
        ck_assert_msg(o != NULL, "%s", t->name);
        ck_assert_int_eq(t->dtype, dt);
        ck_assert_int_eq(t->n_dims, o->n_dims);
        ck_assert_mem_eq(t->shape, o->shape, sizeof t->shape);
        float *a = malloc(t->n_elements * sizeof *a + 1), *b = malloc(o->n_elements * sizeof *b + 1);
        ck_assert_int_eq(tensor_to_f32(t, a, t->n_elements, &e), 0);
        ck_assert_int_eq(tensor_to_f32(o, b, o->n_elements, &e), 0);
        for (size_t k = 0; k < t->n_elements; k++)
            ck_assert_msg(fabs((double)a[k] - b[k]) <= rel * fabs(b[k]) + abs_floor,
                          "%s[%zu]: %g, original %g", t->name, k, a[k], b[k]);
        free(a);
        free(b);
    }
    checkpoint_close(bin);
    checkpoint_close(orig);
}

static const struct {
    const char *variant;
    enum dtype dt;
} t5_rounded[] = {{"t5-s2s-fp16", DTYPE_F16}, {"t5-s2s-bf16", DTYPE_BF16}};

START_TEST(t5_reduced_precision)
{
    char *dir = bin_model(t5_rounded[_i].variant, "t5-s2s");
    expect_rounded_weights(dir, "t5-s2s", t5_rounded[_i].dt);
    size_t n_bin, n_orig;
    float *got = t5_logits(dir, &n_bin);
    float *want = t5_logits(fixture_model("t5-s2s"), &n_orig);
    double scale = 0;
    for (size_t i = 0; i < n_orig; i++)
        scale = fmax(scale, fabs(want[i]));
    ck_assert_msg(max_diff(got, want, n_bin) <= 0.05 * scale + 1e-3, "%s: logits differ by %g",
                  dir, max_diff(got, want, n_bin));
    free(got);
    free(want);
    free(dir);
}
END_TEST

/* ---- a decoder: views of one storage and transposed views ---- */

static float *llama_logits(const char *dir, size_t *n)
{
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    struct decoder_model *d = NULL;
    ck_assert_msg(decoder_load(dir, DTYPE_COMPUTE_F32, ctx, &d, &e) == 0, "%s: %s", dir, e.msg);
    struct decoder_seq *s = NULL;
    ck_assert_int_eq(decoder_seq_new(d, 16, &s, &e), 0);
    struct decoder_run *run = decoder_run_new();
    const int32_t toks[5] = {1, 450, 4996, 17354, 1701};
    int n_tok = 5;
    struct decoder_step st = {.n_seqs = 1, .seqs = &s, .tokens = toks, .n_tokens = &n_tok,
                              .all_logits = true};
    const float *lg = NULL;
    ck_assert_msg(decoder_forward(d, ctx, run, &st, &lg, &e) == 0, "%s", e.msg);
    *n = 5 * (size_t)decoder_vocab_size(d);
    float *copy = malloc(*n * sizeof *copy);
    memcpy(copy, lg, *n * sizeof *copy);
    decoder_run_free(run);
    decoder_seq_free(s);
    decoder_unload(d);
    dnn_ctx_free(ctx);
    return copy;
}

START_TEST(llama_views_bf16)
{
    char *dir = bin_model("llama-lm-bf16", "llama-lm");
    struct checkpoint *ck = NULL;
    struct err e = {0};
    ck_assert_int_eq(checkpoint_open(dir, &ck, &e), 0);
    const struct tensor *emb = checkpoint_get(ck, "model.embed_tokens.weight");
    const struct tensor *head = checkpoint_get(ck, "lm_head.weight");
    /* one storage: lm_head starts where embed_tokens ends */
    ck_assert_ptr_eq((const char *)emb->data + emb->size_bytes, head->data);
    checkpoint_close(ck);
    expect_rounded_weights(dir, "llama-lm", DTYPE_BF16);
    size_t n_bin, n_orig;
    float *got = llama_logits(dir, &n_bin);
    float *want = llama_logits(fixture_model("llama-lm"), &n_orig);
    ck_assert_uint_eq(n_bin, n_orig);
    double scale = 0;
    for (size_t i = 0; i < n_orig; i++)
        scale = fmax(scale, fabs(want[i]));
    ck_assert_msg(max_diff(got, want, n_bin) <= 0.05 * scale + 1e-3, "logits differ by %g",
                  max_diff(got, want, n_bin));
    free(got);
    free(want);
    free(dir);
}
END_TEST

/* safetensors wins when a directory has both. */
START_TEST(safetensors_preferred)
{
    char *dir = bin_model("t5-s2s-fp16", "t5-s2s");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ln -s '%s/model.safetensors' '%s/'", fixture_model("t5-s2s"), dir);
    ck_assert_int_eq(system(cmd), 0);
    struct checkpoint *ck = NULL;
    struct err e = {0};
    ck_assert_int_eq(checkpoint_open(dir, &ck, &e), 0);
    ck_assert_str_eq(checkpoint_format(ck), "safetensors");
    checkpoint_close(ck);
    free(dir);
}
END_TEST

Suite *suite_bin_parity(void)
{
    Suite *s = suite_create("bin_parity");
    TCase *tc = tcase_create("bin_parity");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, bert_bin_same_logits, 0, 2);
    tcase_add_test(tc, t5_tied_bin_same_logits);
    tcase_add_loop_test(tc, t5_reduced_precision, 0, 2);
    tcase_add_test(tc, llama_views_bf16);
    tcase_add_test(tc, safetensors_preferred);
    suite_add_tcase(s, tc);
    return s;
}
