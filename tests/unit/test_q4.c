/* test_q4: the INT4 weight kind (ops/matmul_q4.c): the quantizer's round trip (every weight
 * within half a step of its group's scale, zero exact), the AVX2 kernel and the plain loop
 * against a naive double loop over the dequantized weights (shapes with M 1..5, groups of 32,
 * 64 and 128, bias, activation, fused residual), pre-quantized weights taken as given, the
 * many-token s8 GEMM path (matmul_q4_gemm.c) within the bound its two roundings allow and the
 * f32 kernel at the same M when that path is off, the few-token s8-activation kernel
 * (matmul_q4_dot.c, AVX512-VNNI / AVX2 / plain) against a naive loop of its own arithmetic with
 * exact integer sums, and bad input (group sizes, K not a multiple
 * of 32, codes over 15). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "suites.h"
#include "test_rand.h"

START_TEST(quantize_round_trip)
{
    test_rng = 7;
    int out = 9, in = 256, group = 64, ng = in / group;
    float *w = test_rnd_array((size_t)out * in, -0.3f, 0.8f), *back = malloc((size_t)out * in * 4);
    ck_assert_ptr_nonnull(back);
    for (int k = 0; k < group; k++)
        w[k] = 0.0f; /* an all-zero group */
    w[200] = 0.0f;
    struct q4_rows r;
    struct err e = {0};
    ck_assert_int_eq(q4_rows_alloc(&r, out, in, group, &e), 0);
    q4_quantize(w, &r);
    q4_dequantize(&r, back);
    for (int n = 0; n < out; n++)
        for (int k = 0; k < in; k++) {
            size_t i = (size_t)n * in + k;
            float s = r.scale[n * ng + k / group];
            ck_assert_uint_le(r.q[i], 15);
            ck_assert_msg(fabsf(back[i] - w[i]) <= 0.5f * s * (1 + 1e-5f) + 1e-7f,
                          "(%d, %d): %g -> %g (scale %g)", n, k, w[i], back[i], s);
        }
    ck_assert_float_eq(back[0], 0.0f);
    ck_assert_float_eq(back[200], 0.0f);
    /* a group's range is its min..max (0 included): the extremes land on codes 0 and 15 */
    uint8_t lo = 15, hi = 0;
    for (int k = group; k < 2 * group; k++) {
        lo = r.q[k] < lo ? r.q[k] : lo;
        hi = r.q[k] > hi ? r.q[k] : hi;
    }
    ck_assert_uint_eq(lo, 0);
    ck_assert_uint_eq(hi, 15);
    q4_rows_fini(&r);
    free(w);
    free(back);
}
END_TEST

/* y = act(x dequant(W)^T + b) (+ residual) in double. */
static void naive(const float *x, const float *wd, const float *b, int M, int K, int N, enum act a,
                  const float *res, double *y)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = b ? b[n] : 0.0;
            for (int k = 0; k < K; k++)
                s += (double)x[(size_t)m * K + k] * wd[(size_t)n * K + k];
            if (a == ACT_SILU)
                s = s / (1.0 + exp(-s));
            else if (a == ACT_GELU_ERF)
                s = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
            y[(size_t)m * N + n] = s + (res ? res[(size_t)m * N + n] : 0.0);
        }
}

/* One kernel case: M tokens of K inputs to N outputs, the weights' group size, the fused
 * activation, bias and residual on or off. */
struct q4_shape {
    int M, K, N, group;
    enum act act;
    int bias, add;
};

static const struct q4_shape shapes[] = {
    {1, 32, 1, 32, ACT_NONE, 0, 0},        {1, 256, 40, 128, ACT_NONE, 0, 0},
    {2, 192, 17, 64, ACT_SILU, 1, 0},      {3, 128, 33, 32, ACT_NONE, 1, 1},
    {5, 384, 70, 128, ACT_GELU_ERF, 0, 0}, {4, 1024, 96, 128, ACT_NONE, 0, 1},
};

/* Pre-quantized random codes (so the kernel is tested on weights exactly as given), both
 * paths against the naive loop within 1e-5 of the terms' magnitude. */
/* The end of a kernel case: its linear, context, codes and six buffers. */
static void case_fini(struct linear *l, struct dnn_ctx *ctx, struct q4_rows *r, void *bufs[6])
{
    linear_fini(l);
    dnn_ctx_free(ctx);
    q4_rows_fini(r);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
}

START_TEST(kernel_vs_naive)
{
    test_rng = 100 + (uint64_t)_i;
    int M = shapes[_i].M, K = shapes[_i].K, N = shapes[_i].N, G = shapes[_i].group;
    struct q4_rows r;
    struct err e = {0};
    ck_assert_int_eq(q4_rows_alloc(&r, N, K, G, &e), 0);
    for (size_t i = 0; i < (size_t)N * K; i++)
        r.q[i] = (uint8_t)((int)test_rnd(0, 16) & 15);
    for (size_t i = 0; i < (size_t)N * (K / G); i++) {
        r.scale[i] = test_rnd(0.001f, 0.05f);
        r.zero[i] = (uint8_t)(int)test_rnd(0, 16.99f);
    }
    float *wd = malloc((size_t)N * K * sizeof *wd);
    float *x = test_rnd_array((size_t)M * K, -2, 2),
          *b = shapes[_i].bias ? test_rnd_array(N, -1, 1) : NULL;
    float *res = shapes[_i].add ? test_rnd_array((size_t)M * N, -1, 1) : NULL;
    float *y = malloc((size_t)M * N * sizeof *y);
    double *ref = malloc((size_t)M * N * sizeof *ref);
    ck_assert(wd && y && ref);
    q4_dequantize(&r, wd);
    naive(x, wd, b, M, K, N, shapes[_i].act, res, ref);
    struct linear l;
    ck_assert_msg(linear_init_q4(&l, &r, b, shapes[_i].act, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(l.dt, DTYPE_COMPUTE_INT4);
    struct dnn_ctx *ctx = dnn_ctx_new(2, &e);
    ck_assert_ptr_nonnull(ctx);
    q4_set_exact(1);
    for (int plain = 0; plain < 2; plain++) {
        q4_set_plain(plain);
        if (res)
            memcpy(y, res, (size_t)M * N * sizeof *y);
        int rc =
            res ? linear_forward_add(&l, ctx, x, y, M, &e) : linear_forward(&l, ctx, x, y, M, &e);
        ck_assert_msg(rc == 0, "%s", e.msg);
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double mag = 1.0;
                for (int k = 0; k < K; k++)
                    mag += fabs((double)x[(size_t)m * K + k] * wd[(size_t)n * K + k]);
                size_t i = (size_t)m * N + n;
                ck_assert_msg(fabs(y[i] - ref[i]) <= 1e-5 * mag,
                              "shape %d %s (%d, %d): %.7g vs %.7g", _i, plain ? "plain" : "simd", m,
                              n, y[i], ref[i]);
            }
    }
    q4_set_plain(0);
    q4_set_exact(0);
    case_fini(&l, ctx, &r, (void *[]){wd, x, b, res, y, ref});
}
END_TEST

/* Random codes, scales and zeros for (N, K) in groups of G, and their dequantized weights. */
static void random_codes(struct q4_rows *r, float *wd, int N, int K, int G)
{
    struct err e = {0};
    ck_assert_int_eq(q4_rows_alloc(r, N, K, G, &e), 0);
    for (size_t i = 0; i < (size_t)N * K; i++)
        r->q[i] = (uint8_t)((int)test_rnd(0, 16) & 15);
    for (size_t i = 0; i < (size_t)N * (K / G); i++) {
        r->scale[i] = test_rnd(0.001f, 0.05f);
        r->zero[i] = (uint8_t)(int)test_rnd(0, 16.99f);
    }
    q4_dequantize(r, wd);
}

static const struct q4_shape gemm_shapes[] = {
    {32, 256, 64, 128, ACT_NONE, 0, 0},
    {40, 192, 70, 64, ACT_SILU, 1, 0},
    {33, 128, 17, 32, ACT_NONE, 1, 1},
    {64, 1024, 96, 128, ACT_NONE, 0, 1},
};

/* From 32 tokens on, the s8 path: x rounded per token to sx = max |x_m| / 127 and the weights
 * per row to s_n = max_g scale * max(z, 15 - z) / 127 move each term by a rounding error
 * uniform in +-sx / 2 times |w^| (<= |w| + s_n / 2) plus |x| times one in +-s_n / 2; their sum
 * over K has variance sum (sx^2 |w^|^2 + x^2 s_n^2) / 12, and the output must stay within 6 of
 * its standard deviations (times 1.1 for SiLU's slope) of the naive loop (measured: at most
 * 4.6; the table truncating instead of rounding: 5.9 and a failure). A wrong layout misses it
 * by far. With the path off (q4_set_gemm(0)) the same M runs
 * the f32 kernel: within 1e-5 of the terms' magnitude. */
START_TEST(gemm_path_within_rounding)
{
    test_rng = 200 + (uint64_t)_i;
    int M = gemm_shapes[_i].M, K = gemm_shapes[_i].K, N = gemm_shapes[_i].N;
    int G = gemm_shapes[_i].group, ng = K / G;
    struct q4_rows r;
    float *wd = malloc((size_t)N * K * sizeof *wd);
    ck_assert_ptr_nonnull(wd);
    random_codes(&r, wd, N, K, G);
    float *x = test_rnd_array((size_t)M * K, -2, 2);
    float *b = gemm_shapes[_i].bias ? test_rnd_array(N, -1, 1) : NULL;
    float *res = gemm_shapes[_i].add ? test_rnd_array((size_t)M * N, -1, 1) : NULL;
    float *y = malloc((size_t)M * N * sizeof *y);
    double *ref = malloc((size_t)M * N * sizeof *ref);
    ck_assert(y && ref);
    naive(x, wd, b, M, K, N, gemm_shapes[_i].act, res, ref);
    struct err e = {0};
    struct linear l;
    ck_assert_msg(linear_init_q4(&l, &r, b, gemm_shapes[_i].act, &e) == 0, "%s", e.msg);
    struct dnn_ctx *ctx = dnn_ctx_new(2, &e);
    ck_assert_ptr_nonnull(ctx);
    for (int gemm = 1; gemm >= 0; gemm--) {
        q4_set_gemm(gemm);
        q4_set_exact(!gemm);
        if (res)
            memcpy(y, res, (size_t)M * N * sizeof *y);
        int rc =
            res ? linear_forward_add(&l, ctx, x, y, M, &e) : linear_forward(&l, ctx, x, y, M, &e);
        ck_assert_msg(rc == 0, "%s", e.msg);
        for (int m = 0; m < M; m++) {
            double sx = 0.0;
            for (int k = 0; k < K; k++)
                sx = fmax(sx, fabs(x[(size_t)m * K + k]));
            sx /= 127.0;
            for (int n = 0; n < N; n++) {
                double sn = 0.0, mag = 1.0, var = 0.0;
                for (int g = 0; g < ng; g++) {
                    int z = r.zero[(size_t)n * ng + g];
                    sn = fmax(sn, r.scale[(size_t)n * ng + g] * (z > 15 - z ? z : 15 - z));
                }
                sn /= 127.0;
                for (int k = 0; k < K; k++) {
                    double xk = fabs(x[(size_t)m * K + k]), wk = fabs(wd[(size_t)n * K + k]);
                    mag += xk * wk;
                    var += sx * sx / 12 * (wk + sn / 2) * (wk + sn / 2) + xk * xk * sn * sn / 12;
                }
                double tol = gemm ? 1.1 * 6 * sqrt(var) + 1e-5 * mag : 1e-5 * mag;
                size_t i = (size_t)m * N + n;
                ck_assert_msg(fabs(y[i] - ref[i]) <= tol, "shape %d gemm %d (%d, %d): %.7g vs %.7g",
                              _i, gemm, m, n, y[i], ref[i]);
            }
        }
    }
    q4_set_gemm(1);
    q4_set_exact(0);
    case_fini(&l, ctx, &r, (void *[]){wd, x, b, res, y, ref});
}
END_TEST

/* The s8-activation kernel (matmul_q4_dot.c, calls under 32 tokens by default) against a
 * naive loop of the same arithmetic: x quantized per group (sx = max |x| / 127, xq =
 * rint(x * 127 / max |x|)), exact s32 sums of q xq and of xq per group, then in double
 * sum_g scale sx (sum q xq - z sum xq), bias, activation, residual. What is left is the
 * kernel's f32 accumulation: within 1e-5 of the terms' magnitude. Every kernel this CPU has
 * (plain, AVX2, AVX512-VNNI, AMX at every M), groups of 32, 64, 96 (not a divisor of the kernels'
 * 128-weight step), 128 and 256, K not a multiple of 128, M 1..31 (the kernels take 4 rows of x a
 * pass), and an all-zero row of x. */
static const struct q4_shape dot_shapes[] = {
    {1, 32, 1, 32, ACT_NONE, 0, 0},
    {1, 768, 40, 128, ACT_NONE, 0, 0},
    {2, 192, 17, 64, ACT_SILU, 1, 0},
    {3, 160, 33, 32, ACT_NONE, 1, 1},
    {5, 288, 20, 96, ACT_GELU_ERF, 0, 0},
    {7, 1024, 24, 256, ACT_NONE, 0, 1},
    {31, 320, 9, 64, ACT_NONE, 1, 0},
    {16, 2048, 19, 128, ACT_SILU, 0, 0},
    {2, 1280, 11, 32, ACT_NONE, 0, 0}, /* 40 groups: the zero points' term 16 groups a step */
    /* the AMX kernel (groups of multiples of 128): rows of x past 16 (a second C tile), output
     * rows not a multiple of its 16 */
    {24, 768, 40, 128, ACT_SILU, 1, 1},
    {17, 384, 16, 128, ACT_NONE, 0, 0},
    {31, 512, 33, 256, ACT_NONE, 1, 0},
    /* one row of x: the VNNI kernel takes four output rows a pass (groups of 32 and 64, the
     * last chunk partial, output rows not a multiple of four) */
    {1, 160, 9, 32, ACT_NONE, 0, 0},
    {1, 192, 13, 64, ACT_NONE, 1, 1},
};

static void naive_s8(const struct q4_rows *r, const float *x, const float *b, int M, enum act a,
                     const float *res, double *y, double *mag)
{
    int K = r->in, N = r->out, G = r->group, ng = K / G;
    int *xq = malloc((size_t)K * sizeof *xq);
    double *sx = malloc((size_t)ng * sizeof *sx);
    ck_assert(xq && sx);
    for (int m = 0; m < M; m++) {
        const float *xm = x + (size_t)m * K;
        for (int g = 0; g < ng; g++) {
            float amax = 0.0f;
            for (int k = g * G; k < (g + 1) * G; k++)
                amax = fmaxf(amax, fabsf(xm[k]));
            float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
            for (int k = g * G; k < (g + 1) * G; k++)
                xq[k] = (int)rintf(xm[k] * inv);
            sx[g] = amax / 127.0f;
        }
        for (int n = 0; n < N; n++) {
            double s = b ? b[n] : 0.0, t = 1.0;
            for (int g = 0; g < ng; g++) {
                int32_t dot = 0, sum = 0;
                for (int k = g * G; k < (g + 1) * G; k++) {
                    dot += r->q[(size_t)n * K + k] * xq[k];
                    sum += xq[k];
                }
                double d = (double)r->scale[(size_t)n * ng + g] * sx[g];
                int z = r->zero[(size_t)n * ng + g];
                s += d * (dot - z * sum);
                t += fabs(d) * (abs(dot) + z * abs(sum));
            }
            if (a == ACT_SILU)
                s = s / (1.0 + exp(-s));
            else if (a == ACT_GELU_ERF)
                s = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
            y[(size_t)m * N + n] = s + (res ? res[(size_t)m * N + n] : 0.0);
            mag[(size_t)m * N + n] = t;
        }
    }
    free(xq);
    free(sx);
}

START_TEST(dot_vs_naive)
{
    test_rng = 300 + (uint64_t)_i;
    int M = dot_shapes[_i].M, K = dot_shapes[_i].K, N = dot_shapes[_i].N, G = dot_shapes[_i].group;
    struct q4_rows r;
    float *wd = malloc((size_t)N * K * sizeof *wd);
    ck_assert_ptr_nonnull(wd);
    random_codes(&r, wd, N, K, G);
    float *x = test_rnd_array((size_t)M * K, -2, 2),
          *b = dot_shapes[_i].bias ? test_rnd_array(N, -1, 1) : NULL;
    if (M > 2)
        memset(x + K, 0, (size_t)K * sizeof *x); /* row 1: zero */
    float *res = dot_shapes[_i].add ? test_rnd_array((size_t)M * N, -1, 1) : NULL;
    float *y = malloc((size_t)M * N * sizeof *y);
    double *ref = malloc((size_t)M * N * sizeof *ref), *mag = malloc((size_t)M * N * sizeof *mag),
           *exact = malloc((size_t)M * N * sizeof *exact);
    ck_assert(y && ref && mag && exact);
    naive_s8(&r, x, b, M, dot_shapes[_i].act, res, ref, mag);
    naive(x, wd, b, M, K, N, dot_shapes[_i].act, res, exact);
    struct err e = {0};
    struct linear l;
    ck_assert_msg(linear_init_q4(&l, &r, b, dot_shapes[_i].act, &e) == 0, "%s", e.msg);
    struct dnn_ctx *ctx = dnn_ctx_new(2, &e);
    ck_assert_ptr_nonnull(ctx);
    for (int isa = 3; isa >= 0; isa--) {
        q4_dot_set_isa(isa);
        q4_dot_set_amx_min(1); /* at isa 3 the AMX kernel (where the CPU has it) at any M */
        if (res)
            memcpy(y, res, (size_t)M * N * sizeof *y);
        int rc =
            res ? linear_forward_add(&l, ctx, x, y, M, &e) : linear_forward(&l, ctx, x, y, M, &e);
        ck_assert_msg(rc == 0, "%s", e.msg);
        double worst = 0.0;
        for (size_t i = 0; i < (size_t)M * N; i++) {
            ck_assert_msg(fabs(y[i] - ref[i]) <= 1e-5 * mag[i],
                          "shape %d isa %d (%zu, %zu): %.7g vs %.7g", _i, isa, i / N, i % N, y[i],
                          ref[i]);
            worst = fmax(worst, fabs(y[i] - exact[i]));
        }
        /* and it is not the exact kernel: the s8 rounding of x shows (a test that cannot tell
         * them apart would pass on the f32 kernel too) */
        ck_assert_msg(worst > 1e-6, "shape %d isa %d: the s8 kernel matches f32 exactly", _i, isa);
    }
    q4_dot_set_isa(3);
    q4_dot_set_amx_min(Q4_AMX_MIN_M);
    case_fini(&l, ctx, &r, (void *[]){wd, x, b, res, y, ref});
    free(mag);
    free(exact);
}
END_TEST

/* linear_init at INT4 quantizes f32 weights in groups of 128 (or the largest of 64, 32 that
 * divides in) and computes with the dequantized weights. */
START_TEST(linear_init_quantizes)
{
    test_rng = 3;
    int M = 3, K = 192, N = 24; /* 192: groups of 64 */
    float *w = test_rnd_array((size_t)N * K, -0.5f, 0.5f),
          *x = test_rnd_array((size_t)M * K, -1, 1);
    float *y = malloc((size_t)M * N * sizeof *y), *wd = malloc((size_t)N * K * sizeof *wd);
    double *ref = malloc((size_t)M * N * sizeof *ref);
    ck_assert(y && wd && ref);
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    struct linear l;
    ck_assert_msg(linear_init(&l, ctx, w, NULL, K, N, DTYPE_COMPUTE_INT4, ACT_NONE, &e) == 0, "%s",
                  e.msg);
    ck_assert_int_eq(l.group, 64);
    struct q4_rows r;
    ck_assert_int_eq(q4_rows_alloc(&r, N, K, 64, &e), 0);
    q4_quantize(w, &r);
    q4_dequantize(&r, wd);
    naive(x, wd, NULL, M, K, N, ACT_NONE, NULL, ref);
    q4_set_exact(1);
    ck_assert_int_eq(linear_forward(&l, ctx, x, y, M, &e), 0);
    q4_set_exact(0);
    for (size_t i = 0; i < (size_t)M * N; i++)
        ck_assert_msg(fabs(y[i] - ref[i]) <= 1e-4, "%zu: %g vs %g", i, y[i], ref[i]);
    q4_rows_fini(&r);
    linear_fini(&l);
    dnn_ctx_free(ctx);
    free(w);
    free(x);
    free(y);
    free(wd);
    free(ref);
}
END_TEST

START_TEST(bad_input_is_refused)
{
    struct err e = {0};
    struct q4_rows r;
    ck_assert_int_eq(q4_rows_alloc(&r, 4, 96, 64, &e), ERR_INVALID); /* 64 does not divide 96 */
    ck_assert_ptr_nonnull(strstr(e.msg, "dividing in_features 96"));
    ck_assert_int_eq(q4_rows_alloc(&r, 4, 96, 48, &e), ERR_INVALID); /* not a multiple of 32 */
    ck_assert_ptr_null(r.q);
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    float w[4 * 40] = {0};
    struct linear l;
    ck_assert_int_eq(linear_init(&l, ctx, w, NULL, 40, 4, DTYPE_COMPUTE_INT4, ACT_NONE, &e),
                     ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "in_features 40"));
    ck_assert_ptr_null(l.w_packed);
    ck_assert_int_eq(q4_rows_alloc(&r, 2, 32, 32, &e), 0);
    memset(r.q, 3, 64);
    memset(r.zero, 8, 2);
    r.scale[0] = r.scale[1] = 1.0f;
    r.q[37] = 16;
    ck_assert_int_eq(linear_init_q4(&l, &r, NULL, ACT_NONE, &e), ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "(1, 5) is over 15"));
    r.q[37] = 1;
    r.zero[1] = 17;
    ck_assert_int_eq(linear_init_q4(&l, &r, NULL, ACT_NONE, &e), ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "zero point 17"));
    q4_rows_fini(&r);
    dnn_ctx_free(ctx);
}
END_TEST

Suite *suite_q4(void)
{
    Suite *s = suite_create("q4");
    TCase *tc = tcase_create("q4");
    tcase_add_test(tc, quantize_round_trip);
    tcase_add_loop_test(tc, kernel_vs_naive, 0, (int)(sizeof shapes / sizeof shapes[0]));
    tcase_add_loop_test(tc, gemm_path_within_rounding, 0,
                        (int)(sizeof gemm_shapes / sizeof gemm_shapes[0]));
    tcase_add_loop_test(tc, dot_vs_naive, 0, (int)(sizeof dot_shapes / sizeof dot_shapes[0]));
    tcase_add_test(tc, linear_init_quantizes);
    tcase_add_test(tc, bad_input_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
