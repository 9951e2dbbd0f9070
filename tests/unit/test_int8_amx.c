/* test_int8_amx: INT8 linears on the AMX kernel (engine/ops/matmul_int8_amx.c) against a naive
 * s8 loop: the activations quantized per tensor as the engine does (int8_quantize_row), the
 * weights per output channel (round(w / w_scales[n]) with l's own scales), the s32 sums exact,
 * then y = act(acc * sx * sw[n] + b[n]) + residual in double: tolerance 4e-6 (1 + |pre| +
 * |residual|) (the float epilogue's rounding and GELU's ~1e-7 approximations). Shapes with M
 * not a multiple of 16 or 32 and N not a multiple of 32, every activation, bias and residual
 * on and off, one and two threads; and the AMX path bit for bit equal to oneDNN's path (same
 * s32, same epilogue), the feed-forward pair and the QKV heads too. Skipped (passes) on CPUs
 * without AMX. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/amx.h"
#include "ops/linear_kind.h"
#include "ops/ops.h"
#include "suites.h"
#include "test_rand.h"

static const int shapes[][3] = {
    /* M, K, N: M at the kernel's minimum (32), M = 33, 45, 70 (not multiples of 16 / 32),
     * N = 33, 40, 50, 300 (not multiples of 32), K multiples of 64 up to bert's 768 */
    {32, 64, 32}, {33, 64, 40}, {45, 128, 96}, {70, 192, 50}, {64, 768, 33}, {70, 256, 300},
};

/* The naive s8 reference of y (M, N) for l on x; res: y's old value (NULL without). */
static void check_naive(const struct linear *l, const float *w, const float *x, const float *res,
                        const float *y, int M)
{
    int K = l->in_features, N = l->out_features;
    int8_t *xq = malloc((size_t)M * K), *wq = malloc((size_t)N * K);
    ck_assert(xq && wq);
    float sx = int8_quantize_row(x, xq, M * K);
    for (int n = 0; n < N; n++) {
        float inv = 1.0f / l->w_scales[n];
        for (int k = 0; k < K; k++)
            wq[(size_t)n * K + k] = (int8_t)lrintf(w[(size_t)n * K + k] * inv);
    }
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int32_t acc = 0;
            for (int k = 0; k < K; k++)
                acc += (int32_t)xq[(size_t)m * K + k] * wq[(size_t)n * K + k];
            double pre = (double)acc * ((double)sx * l->w_scales[n]) + (l->bias ? l->bias[n] : 0);
            double r = res ? res[(size_t)m * N + n] : 0.0, want = test_ref_act(l->act, pre) + r;
            double got = y[(size_t)m * N + n];
            ck_assert_msg(fabs(got - want) <= 4e-6 * (1.0 + fabs(pre) + fabs(r)),
                          "M=%d K=%d N=%d act %s: y[%d,%d] = %.9g, want %.9g", M, K, N,
                          act_name(l->act), m, n, got, want);
        }
    free(xq);
    free(wq);
}

/* One shape, act, bias and residual choice: AMX against the naive loop and against oneDNN. */
static void run_case(struct dnn_ctx *ctx, int M, int K, int N, enum act a, int bias, int add)
{
    struct err e = {0};
    float *x = test_rnd_array((size_t)M * K, -1, 1),
          *w = test_rnd_array((size_t)N * K, -0.5f, 0.5f);
    float *b = bias ? test_rnd_array((size_t)N, -1, 1) : NULL;
    float *y0 = test_rnd_array((size_t)M * N, -3, 3), *y1 = malloc((size_t)M * N * sizeof *y1),
          *y2 = malloc((size_t)M * N * sizeof *y2);
    ck_assert(y1 && y2);
    memcpy(y1, y0, (size_t)M * N * sizeof *y1);
    memcpy(y2, y0, (size_t)M * N * sizeof *y2);
    struct linear la, ld;
    int8_set_amx(1);
    ck_assert_msg(linear_init(&la, ctx, w, b, K, N, DTYPE_COMPUTE_INT8, a, &e) == 0, "%s", e.msg);
    ck_assert(int8_has_amx(&la));
    int8_set_amx(0);
    ck_assert_msg(linear_init(&ld, ctx, w, b, K, N, DTYPE_COMPUTE_INT8, a, &e) == 0, "%s", e.msg);
    ck_assert(!int8_has_amx(&ld));
    int8_set_amx(1);
    int rc =
        add ? linear_forward_add(&la, ctx, x, y1, M, &e) : linear_forward(&la, ctx, x, y1, M, &e);
    ck_assert_msg(rc == 0, "%s", e.msg);
    rc = add ? linear_forward_add(&ld, ctx, x, y2, M, &e) : linear_forward(&ld, ctx, x, y2, M, &e);
    ck_assert_msg(rc == 0, "%s", e.msg);
    check_naive(&la, w, x, add ? y0 : NULL, y1, M);
    ck_assert_msg(memcmp(y1, y2, (size_t)M * N * sizeof *y1) == 0,
                  "M=%d K=%d N=%d act %s: AMX and oneDNN paths differ", M, K, N, act_name(a));
    linear_fini(&la);
    linear_fini(&ld);
    free(x), free(w), free(b), free(y0), free(y1), free(y2);
}

static void run_all(int n_threads)
{
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(n_threads, &e);
    ck_assert_msg(ctx != NULL, "%s", e.msg);
    test_rng = 7;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int a = ACT_NONE; a < ACT_COUNT; a++)
            for (int v = 0; v < 4; v++)
                run_case(ctx, shapes[s][0], shapes[s][1], shapes[s][2], (enum act)a, v & 1, v >> 1);
    dnn_ctx_free(ctx);
    int8_set_amx(1);
}

START_TEST(amx_vs_naive_one_thread)
{
    if (!amx_int8_available())
        return;
    run_all(1);
}
END_TEST

START_TEST(amx_vs_naive_two_threads)
{
    if (!amx_int8_available())
        return;
    run_all(2);
}
END_TEST

/* The feed-forward pair (the first linear's max |y| hands the second its scale) and K not a
 * multiple of 64 (no AMX weights: oneDNN's path) give the same bits either way. */
START_TEST(amx_ffn_and_fallback)
{
    if (!amx_int8_available())
        return;
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(2, &e);
    ck_assert_msg(ctx != NULL, "%s", e.msg);
    test_rng = 11;
    int M = 77, H = 128, I = 320;
    float *x = test_rnd_array((size_t)M * H, -2, 2),
          *wu = test_rnd_array((size_t)I * H, -0.3f, 0.3f);
    float *wd = test_rnd_array((size_t)H * I, -0.3f, 0.3f), *bu = test_rnd_array((size_t)I, -1, 1);
    float *out[2], *inter = malloc((size_t)M * I * sizeof *inter);
    ck_assert_ptr_nonnull(inter);
    for (int amx = 0; amx < 2; amx++) {
        struct linear up, down;
        int8_set_amx(amx);
        ck_assert(linear_init(&up, ctx, wu, bu, H, I, DTYPE_COMPUTE_INT8, ACT_GELU_ERF, &e) == 0);
        ck_assert(linear_init(&down, ctx, wd, NULL, I, H, DTYPE_COMPUTE_INT8, ACT_NONE, &e) == 0);
        ck_assert_int_eq(int8_has_amx(&up), amx);
        out[amx] = malloc((size_t)M * H * sizeof *out[amx]);
        ck_assert_ptr_nonnull(out[amx]);
        memcpy(out[amx], x, (size_t)M * H * sizeof *x);
        ck_assert_msg(linear_ffn_forward(&up, &down, ctx, x, inter, out[amx], M, &e) == 0, "%s",
                      e.msg);
        linear_fini(&up);
        linear_fini(&down);
    }
    ck_assert(memcmp(out[0], out[1], (size_t)M * H * sizeof *x) == 0);
    struct linear odd;
    int8_set_amx(1);
    ck_assert(linear_init(&odd, ctx, wu, NULL, 96, 40, DTYPE_COMPUTE_INT8, ACT_NONE, &e) == 0);
    ck_assert(!int8_has_amx(&odd)); /* K = 96 */
    linear_fini(&odd);
    free(x), free(wu), free(wd), free(bu), free(inter), free(out[0]), free(out[1]);
    dnn_ctx_free(ctx);
}
END_TEST

/* An encoder's QKV projection written as bf16 heads (linear_forward_heads): the AMX kernel's
 * per-block heads and oneDNN's path give the same bits (B = 3, S = 27: M = 81, head_dim 64;
 * head_dim 48 is not a multiple of 32 and takes oneDNN's path, same bits too). */
START_TEST(amx_heads_match_onednn)
{
    if (!amx_int8_available())
        return;
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(2, &e);
    ck_assert_msg(ctx != NULL, "%s", e.msg);
    test_rng = 13;
    static const int dims[] = {64, 48};
    for (int di = 0; di < 2; di++) {
        int B = 3, S = 27, NH = 2, D = dims[di], H = NH * D, K = 128, M = B * S;
        struct attn_shape sh = {B, S, NH, D, 3 * H, H, 0};
        float *x = test_rnd_array((size_t)M * K, -2, 2),
              *w = test_rnd_array((size_t)3 * H * K, -0.3f, 0.3f);
        float *b = test_rnd_array((size_t)3 * H, -1, 1);
        uint16_t *heads[2];
        for (int amx = 0; amx < 2; amx++) {
            struct linear l;
            int8_set_amx(amx);
            ck_assert(linear_init(&l, ctx, w, b, K, 3 * H, DTYPE_COMPUTE_INT8, ACT_NONE, &e) == 0);
            ck_assert_int_eq(int8_has_amx(&l), amx);
            heads[amx] = calloc((size_t)3 * M * H, sizeof *heads[amx]);
            ck_assert_ptr_nonnull(heads[amx]);
            ck_assert_msg(linear_forward_heads(&l, ctx, x, &sh, heads[amx], &e) == 0, "%s", e.msg);
            linear_fini(&l);
        }
        ck_assert_msg(memcmp(heads[0], heads[1], (size_t)3 * M * H * sizeof *heads[0]) == 0,
                      "head_dim %d: AMX and oneDNN heads differ", D);
        free(x), free(w), free(b), free(heads[0]), free(heads[1]);
    }
    int8_set_amx(1);
    dnn_ctx_free(ctx);
}
END_TEST

Suite *suite_int8_amx(void)
{
    Suite *s = suite_create("int8_amx");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, amx_vs_naive_one_thread);
    tcase_add_test(tc, amx_vs_naive_two_threads);
    tcase_add_test(tc, amx_ffn_and_fallback);
    tcase_add_test(tc, amx_heads_match_onednn);
    suite_add_tcase(s, tc);
    return s;
}
