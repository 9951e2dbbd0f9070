/* test_ops: every op of engine/ops against a naive double-precision loop on random data:
 * linear (f32, bf16, int8; each activation; bias; fused residual; int8's plain loops and its
 * activations over a wide range), the feed-forward pair, layer and RMS norm, the bf16
 * attention of int8 encoders (to the int8 tolerance),
 * activations, softmax, masked attention (padding, fused QKV strides, batch chunking; a scale
 * and a shared or per-sequence score bias), the primitive cache, two contexts on two threads
 * sharing one struct linear, error paths, and embedding tables in each dtype (f32 kept
 * bit for bit, bf16 rounded to nearest even, int8 models' rows bf16 too).
 * Tolerances: an output o with reference r passes when |o - r| <= tol * scale, where scale is
 * the magnitude of the terms that produced it (sum |x_k w_k| + |b| + |residual| for a linear,
 * max(1, |r|) elsewhere): tol 1e-5 for f32, 1e-2 for bf16, 3e-2 for int8. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops/bf16.h"
#include "ops/emb_table.h"
#include "ops/ops.h"
#include "suites.h"
#include "test_rand.h"

#define TOL_F32 1e-5
#define TOL_BF16 1e-2
#define TOL_INT8 3e-2

static struct dnn_ctx *ctx_new(int n_threads)
{
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(n_threads, &e);
    ck_assert_msg(ctx != NULL, "%s", e.msg);
    return ctx;
}

/* Checks y (M, N) = act(x W^T + b) + residual against doubles; w is (N, K) as HF stores it. */
static void check_linear(const float *x, const float *w, const float *b, const float *residual,
                         const float *y, int M, int K, int N, enum act a, double tol,
                         const char *what)
{
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double acc = b ? b[n] : 0, mag = b ? fabs(b[n]) : 0;
            for (int k = 0; k < K; k++) {
                double t = (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
                acc += t;
                mag += fabs(t);
            }
            double want = test_ref_act(a, acc);
            if (residual) {
                want += residual[(size_t)m * N + n];
                mag += fabs(residual[(size_t)m * N + n]);
            }
            double d = fabs(y[(size_t)m * N + n] - want) / fmax(mag, 1e-30);
            ck_assert_msg(d <= tol, "%s: M=%d K=%d N=%d act %s: y[%d,%d] = %.9g, want %.9g", what,
                          M, K, N, act_name(a), m, n, (double)y[(size_t)m * N + n], want);
        }
    }
}

static const int shapes[][3] = {
    /* M, K (in), N (out): fixture sizes (hidden 32, intermediate 37), M = 1 and 7 */
    {1, 32, 37}, {7, 32, 37}, {7, 37, 32}, {5, 32, 32}, {33, 64, 96}, {128, 96, 200},
};

static void run_linear_case(enum dtype_compute dt, double tol, const char *what)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    test_rng = 42;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int M = shapes[si][0], K = shapes[si][1], N = shapes[si][2];
        for (int a = ACT_NONE; a < ACT_COUNT; a++) {
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                float *x = test_rnd_array((size_t)M * K, -1, 1),
                      *w = test_rnd_array((size_t)N * K, -1, 1);
                float *b = with_bias ? test_rnd_array((size_t)N, -1, 1) : NULL;
                float *y = test_rnd_array((size_t)M * N, -5, 5);
                struct linear l;
                ck_assert_msg(linear_init(&l, ctx, w, b, K, N, dt, (enum act)a, &e) == 0, "%s",
                              e.msg);
                ck_assert_msg(linear_forward(&l, ctx, x, y, M, &e) == 0, "%s", e.msg);
                check_linear(x, w, b, NULL, y, M, K, N, (enum act)a, tol, what);
                linear_fini(&l);
                free(x);
                free(w);
                free(b);
                free(y);
            }
        }
    }
    dnn_ctx_free(ctx);
}

START_TEST(linear_f32)
{
    run_linear_case(DTYPE_COMPUTE_F32, TOL_F32, "f32");
}
END_TEST

START_TEST(linear_bf16)
{
    run_linear_case(DTYPE_COMPUTE_BF16, TOL_BF16, "bf16");
}
END_TEST

START_TEST(linear_int8)
{
    run_linear_case(DTYPE_COMPUTE_INT8, TOL_INT8, "int8");
}
END_TEST

/* INT8 through the plain C quantize and epilogue (CPUs without AVX-512) instead of AVX-512. */
START_TEST(linear_int8_plain)
{
    int8_set_plain(1);
    run_linear_case(DTYPE_COMPUTE_INT8, TOL_INT8, "int8 plain");
    int8_set_plain(0);
}
END_TEST

/* INT8's own activations over a wide range: x = (m - 127) c with max |x| = 127 c and one
 * weight of 1 quantize exactly, so y = act(x + b) up to rounding, checked against doubles for
 * pre-activations in [-203, 203] (GELU's tails, where a careless exp goes denormal), AVX-512
 * and plain. */
START_TEST(linear_int8_act_range)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    int M = 255, N = 2;
    float x[255], w[2] = {1.0f, -1.0f}, b[2] = {0.0f, 0.25f}, y[255 * 2];
    float c = 1.6f;
    for (int m = 0; m < M; m++)
        x[m] = (float)(m - 127) * c;
    for (int plain = 0; plain < 2; plain++) {
        int8_set_plain(plain);
        for (int a = ACT_NONE; a < ACT_COUNT; a++) {
            struct linear l;
            ck_assert_msg(linear_init(&l, ctx, w, b, 1, N, DTYPE_COMPUTE_INT8, (enum act)a, &e) ==
                              0,
                          "%s", e.msg);
            ck_assert_msg(linear_forward(&l, ctx, x, y, M, &e) == 0, "%s", e.msg);
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double want = test_ref_act((enum act)a, (double)x[m] * w[n] + b[n]);
                    double got = y[m * N + n];
                    ck_assert_msg(fabs(got - want) <= 2e-6 * fmax(1.0, fabs(want)),
                                  "act %s plain %d: x %g -> %.9g, want %.9g", act_name((enum act)a),
                                  plain, (double)x[m] * w[n] + b[n], got, want);
                }
            linear_fini(&l);
        }
    }
    int8_set_plain(0);
    dnn_ctx_free(ctx);
}
END_TEST

/* One linear_ffn_case: up's activation, and its weights scaled by w_scale with shift added to
 * its bias (moving the pre-activations where GELU's negative side decides INT8's scale). */
struct ffn_case {
    enum act act;
    float w_scale, shift;
};

static void ffn_case(struct dnn_ctx *ctx, enum dtype_compute d, struct ffn_case c)
{
    struct err e = {0};
    int M = 33, H = 64, I = 96;
    float *x = test_rnd_array((size_t)M * H, -1, 1), *r = test_rnd_array((size_t)M * H, -3, 3);
    float *w1 = test_rnd_array((size_t)I * H, -1, 1), *b1 = test_rnd_array((size_t)I, -1, 1);
    float *w2 = test_rnd_array((size_t)H * I, -1, 1), *b2 = test_rnd_array((size_t)H, -1, 1);
    for (int i = 0; i < I * H; i++)
        w1[i] *= c.w_scale;
    for (int i = 0; i < I; i++)
        b1[i] = b1[i] * c.w_scale + c.shift;
    float *inter = malloc((size_t)M * I * sizeof *inter);
    float *y1 = malloc((size_t)M * H * sizeof *y1), *y2 = malloc((size_t)M * H * sizeof *y2);
    memcpy(y1, r, (size_t)M * H * sizeof *y1);
    memcpy(y2, r, (size_t)M * H * sizeof *y2);
    struct linear up, down;
    ck_assert_msg(linear_init(&up, ctx, w1, b1, H, I, d, c.act, &e) == 0, "%s", e.msg);
    ck_assert_msg(linear_init(&down, ctx, w2, b2, I, H, d, ACT_NONE, &e) == 0, "%s", e.msg);
    ck_assert_msg(linear_forward(&up, ctx, x, inter, M, &e) == 0, "%s", e.msg);
    ck_assert_msg(linear_forward_add(&down, ctx, inter, y1, M, &e) == 0, "%s", e.msg);
    ck_assert_msg(linear_ffn_forward(&up, &down, ctx, x, inter, y2, M, &e) == 0, "%s", e.msg);
    ck_assert_msg(memcmp(y1, y2, (size_t)M * H * sizeof *y1) == 0,
                  "dtype %d act %s shift %g: ffn differs", (int)d, act_name(c.act),
                  (double)c.shift);
    ck_assert_msg(memcmp(y1, r, (size_t)M * H * sizeof *y1) != 0, "dtype %d: y unchanged", (int)d);
    linear_fini(&up);
    linear_fini(&down);
    free(x);
    free(r);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    free(inter);
    free(y1);
    free(y2);
}

/* linear_ffn_forward gives exactly linear_forward(up) then linear_forward_add(down), for each
 * compute type and changes y. INT8's fused path writes the intermediate in s8 directly, its
 * scale from the range of the pre-activations: checked for the activations it takes (GELU with
 * pre-activations spanning zero, all in (-0.75, 0) and all below -0.75, ReLU, none), one it
 * leaves to two calls (GELU-tanh), with the AVX-512 and the plain loops. */
START_TEST(linear_ffn_matches_two_calls)
{
    static const struct ffn_case cases[] = {
        {ACT_GELU_ERF, 1.0f, 0.0f}, {ACT_GELU_ERF, 0.002f, -0.4f}, {ACT_GELU_ERF, 0.002f, -2.0f},
        {ACT_RELU, 1.0f, 0.0f},     {ACT_NONE, 1.0f, 0.0f},        {ACT_GELU_TANH, 1.0f, 0.0f},
    };
    struct dnn_ctx *ctx = ctx_new(0);
    test_rng = 11;
    for (int dt = 0; dt <= DTYPE_COMPUTE_INT8; dt++) {
        for (int plain = 0; plain < (dt == DTYPE_COMPUTE_INT8 ? 2 : 1); plain++) {
            int8_set_plain(plain);
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
                ffn_case(ctx, (enum dtype_compute)dt, cases[i]);
        }
    }
    int8_set_plain(0);
    dnn_ctx_free(ctx);
}
END_TEST

/* y += act(x W^T + b) with the residual already in y, for each compute type. */
START_TEST(linear_residual_add)
{
    static const double tols[] = {TOL_F32, TOL_BF16, TOL_INT8};
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    test_rng = 7;
    int M = 7, K = 37, N = 32;
    for (int dt = 0; dt <= DTYPE_COMPUTE_INT8; dt++) { /* INT4: test_q4 */
        for (int a = ACT_NONE; a <= ACT_GELU_ERF; a++) {
            float *x = test_rnd_array((size_t)M * K, -1, 1),
                  *w = test_rnd_array((size_t)N * K, -1, 1);
            float *b = test_rnd_array((size_t)N, -1, 1), *r = test_rnd_array((size_t)M * N, -3, 3);
            float *y = malloc((size_t)M * N * sizeof *y);
            memcpy(y, r, (size_t)M * N * sizeof *y);
            struct linear l;
            ck_assert_msg(
                linear_init(&l, ctx, w, b, K, N, (enum dtype_compute)dt, (enum act)a, &e) == 0,
                "%s", e.msg);
            ck_assert_msg(linear_forward_add(&l, ctx, x, y, M, &e) == 0, "%s", e.msg);
            check_linear(x, w, b, r, y, M, K, N, (enum act)a, tols[dt], "residual add");
            linear_fini(&l);
            free(x);
            free(w);
            free(b);
            free(r);
            free(y);
        }
    }
    dnn_ctx_free(ctx);
}
END_TEST

/* Same shape twice: the primitive is reused (no new one) and the output is bit-identical;
 * another M builds one more primitive and is right too. */
START_TEST(linear_cache_reuse)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    test_rng = 9;
    int K = 64, N = 48;
    float *w = test_rnd_array((size_t)N * K, -1, 1), *b = test_rnd_array((size_t)N, -1, 1);
    float *x = test_rnd_array((size_t)9 * K, -1, 1);
    float *y1 = calloc((size_t)9 * N, sizeof *y1), *y2 = calloc((size_t)9 * N, sizeof *y2);
    struct linear l;
    ck_assert_int_eq(linear_init(&l, ctx, w, b, K, N, DTYPE_COMPUTE_F32, ACT_GELU_ERF, &e), 0);
    ck_assert_int_eq(linear_forward(&l, ctx, x, y1, 5, &e), 0);
    long created = dnn_cache_created(ctx);
    int cached = dnn_cache_size(ctx);
    ck_assert_int_eq(linear_forward(&l, ctx, x, y2, 5, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), created);
    ck_assert_int_eq(dnn_cache_size(ctx), cached);
    ck_assert_mem_eq(y1, y2, (size_t)5 * N * sizeof *y1);
    ck_assert_int_eq(linear_forward(&l, ctx, x, y2, 9, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), created + 1);
    check_linear(x, w, b, NULL, y2, 9, K, N, ACT_GELU_ERF, TOL_F32, "M=9 after M=5");
    /* A second linear of the same shape shares the cached primitive. */
    struct linear l2;
    ck_assert_int_eq(linear_init(&l2, ctx, w, b, K, N, DTYPE_COMPUTE_F32, ACT_GELU_ERF, &e), 0);
    ck_assert_int_eq(linear_forward(&l2, ctx, x, y2, 5, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), created + 1);
    ck_assert_mem_eq(y1, y2, (size_t)5 * N * sizeof *y1);
    linear_fini(&l);
    linear_fini(&l2);
    free(w);
    free(b);
    free(x);
    free(y1);
    free(y2);
    dnn_ctx_free(ctx);
}
END_TEST

/* Two threads, each with its own context, run the same struct linear at once. */
struct worker_arg {
    const struct linear *l;
    const float *x, *w, *b;
    int M, K, N, n_iter, ok;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    float *y = malloc((size_t)a->M * a->N * sizeof *y);
    a->ok = ctx != NULL && y != NULL;
    for (int i = 0; i < a->n_iter && a->ok; i++) {
        int M = i % 2 ? a->M : a->M / 2 + 1; /* two shapes per context */
        a->ok = linear_forward(a->l, ctx, a->x, y, M, &e) == 0;
        for (int m = 0; m < M && a->ok; m++) {
            for (int n = 0; n < a->N && a->ok; n++) {
                double acc = a->b[n], mag = fabs(a->b[n]);
                for (int k = 0; k < a->K; k++) {
                    double t = (double)a->x[(size_t)m * a->K + k] * a->w[(size_t)n * a->K + k];
                    acc += t;
                    mag += fabs(t);
                }
                a->ok =
                    fabs(y[(size_t)m * a->N + n] - test_ref_act(ACT_RELU, acc)) <= TOL_BF16 * mag;
            }
        }
    }
    free(y);
    dnn_ctx_free(ctx);
    return NULL;
}

START_TEST(linear_two_threads_share_weights)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    test_rng = 11;
    int M = 16, K = 37, N = 40; /* N padded in the packed layout: padding is shared too */
    float *w = test_rnd_array((size_t)N * K, -1, 1), *b = test_rnd_array((size_t)N, -1, 1);
    float *x = test_rnd_array((size_t)M * K, -1, 1);
    for (int dt = 0; dt <= DTYPE_COMPUTE_INT8; dt++) { /* INT4: test_q4 */
        struct linear l;
        ck_assert_int_eq(linear_init(&l, ctx, w, b, K, N, (enum dtype_compute)dt, ACT_RELU, &e), 0);
        struct worker_arg args[2];
        pthread_t th[2];
        for (int t = 0; t < 2; t++) {
            args[t] = (struct worker_arg){&l, x, w, b, M, K, N, 40, 0};
            ck_assert_int_eq(pthread_create(&th[t], NULL, worker, &args[t]), 0);
        }
        for (int t = 0; t < 2; t++) {
            pthread_join(th[t], NULL);
            ck_assert_msg(args[t].ok, "thread %d, dtype %d", t, dt);
        }
        linear_fini(&l);
    }
    free(w);
    free(b);
    free(x);
    dnn_ctx_free(ctx);
}
END_TEST

static void ref_layernorm(const double *x, const float *g, const float *bt, double eps, int N,
                          double *out)
{
    double mean = 0, var = 0;
    for (int i = 0; i < N; i++)
        mean += x[i];
    mean /= N;
    for (int i = 0; i < N; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= N;
    for (int i = 0; i < N; i++)
        out[i] = (x[i] - mean) / sqrt(var + eps) * g[i] + bt[i];
}

START_TEST(layernorm_vs_naive)
{
    static const int ln_shapes[][2] = {{1, 32}, {7, 37}, {5, 768}, {64, 1024}};
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    test_rng = 5;
    for (size_t si = 0; si < sizeof ln_shapes / sizeof ln_shapes[0]; si++) {
        int M = ln_shapes[si][0], N = ln_shapes[si][1];
        for (int variant = 0; variant < 3; variant++) { /* out of place, residual, in place */
            float *x = test_rnd_array((size_t)M * N, -2, 3),
                  *r = test_rnd_array((size_t)M * N, -1, 1);
            float *g = test_rnd_array((size_t)N, 0.5f, 1.5f),
                  *bt = test_rnd_array((size_t)N, -1, 1);
            float *y = calloc((size_t)M * N, sizeof *y);
            double *row = malloc((size_t)N * sizeof *row), *want = malloc((size_t)N * sizeof *want);
            const float *res = variant == 1 ? r : NULL;
            float *out = variant == 2 ? x : y;
            float *x_copy = malloc((size_t)M * N * sizeof *x_copy);
            memcpy(x_copy, x, (size_t)M * N * sizeof *x);
            ck_assert_msg(layernorm_forward(ctx, x, res, out, g, bt, 1e-12f, M, N, &e) == 0, "%s",
                          e.msg);
            for (int m = 0; m < M; m++) {
                for (int i = 0; i < N; i++)
                    row[i] = (double)x_copy[(size_t)m * N + i] + (res ? res[(size_t)m * N + i] : 0);
                ref_layernorm(row, g, bt, 1e-12, N, want);
                for (int i = 0; i < N; i++)
                    ck_assert_msg(fabs(out[(size_t)m * N + i] - want[i]) <=
                                      TOL_F32 * fmax(1, fabs(want[i])),
                                  "layernorm (%d, %d) variant %d [%d,%d]: %.9g want %.9g", M, N,
                                  variant, m, i, (double)out[(size_t)m * N + i], want[i]);
            }
            free(x);
            free(r);
            free(g);
            free(bt);
            free(y);
            free(row);
            free(want);
            free(x_copy);
        }
    }
    dnn_ctx_free(ctx);
}
END_TEST

START_TEST(rmsnorm_vs_naive)
{
    struct err e = {0};
    test_rng = 6;
    int M = 3, N = 37;
    float *x = test_rnd_array((size_t)M * N, -2, 2), *w = test_rnd_array((size_t)N, 0.5f, 1.5f);
    float *y = calloc((size_t)M * N, sizeof *y);
    ck_assert_int_eq(rmsnorm_forward(x, y, w, 1e-6f, M, N, &e), 0);
    for (int m = 0; m < M; m++) {
        double ss = 0;
        for (int i = 0; i < N; i++)
            ss += (double)x[m * N + i] * x[m * N + i];
        double r = 1 / sqrt(ss / N + 1e-6);
        for (int i = 0; i < N; i++) {
            double want = x[m * N + i] * r * w[i];
            ck_assert(fabs(y[m * N + i] - want) <= TOL_F32 * fmax(1, fabs(want)));
        }
    }
    free(x);
    free(w);
    free(y);
}
END_TEST

START_TEST(activations_vs_naive)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    size_t n = 1001;
    float *x = malloc(n * sizeof *x);
    for (int a = ACT_GELU_ERF; a < ACT_COUNT; a++) {
        for (size_t i = 0; i < n; i++)
            x[i] = -8.0f + 16.0f * (float)i / (float)(n - 1);
        ck_assert_msg(act_forward(ctx, (enum act)a, x, n, &e) == 0, "%s", e.msg);
        for (size_t i = 0; i < n; i++) {
            double want =
                test_ref_act((enum act)a, (double)(-8.0f + 16.0f * (float)i / (float)(n - 1)));
            ck_assert_msg(fabs(x[i] - want) <= TOL_F32 * fmax(1, fabs(want)),
                          "%s(%g) = %.9g want %.9g", act_name((enum act)a),
                          -8.0 + 16.0 * (double)i / (double)(n - 1), (double)x[i], want);
        }
    }
    free(x);
    dnn_ctx_free(ctx);
}
END_TEST

START_TEST(act_parse_names)
{
    static const struct {
        const char *name;
        enum act act;
    } cases[] = {{"gelu", ACT_GELU_ERF},
                 {"gelu_new", ACT_GELU_TANH},
                 {"gelu_pytorch_tanh", ACT_GELU_TANH},
                 {"relu", ACT_RELU},
                 {"silu", ACT_SILU}};
    enum act a;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(act_parse(cases[i].name, &a, NULL), 0);
        ck_assert_int_eq(a, cases[i].act);
    }
    struct err e = {0};
    ck_assert_int_eq(act_parse("mish", &a, &e), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "mish"));
}
END_TEST

START_TEST(softmax_vs_naive)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    test_rng = 3;
    int rows = 13, cols = 37;
    float *x = test_rnd_array((size_t)rows * cols, -10, 10);
    float *x0 = malloc((size_t)rows * cols * sizeof *x0);
    memcpy(x0, x, (size_t)rows * cols * sizeof *x);
    ck_assert_int_eq(softmax_forward(ctx, x, rows, cols, &e), 0);
    for (int r = 0; r < rows; r++) {
        double mx = -INFINITY, sum = 0;
        for (int c = 0; c < cols; c++)
            mx = fmax(mx, x0[r * cols + c]);
        for (int c = 0; c < cols; c++)
            sum += exp(x0[r * cols + c] - mx);
        for (int c = 0; c < cols; c++) {
            double want = exp(x0[r * cols + c] - mx) / sum;
            ck_assert(fabs(x[r * cols + c] - want) <= TOL_F32 * fmax(1e-3, want));
        }
    }
    free(x);
    free(x0);
    dnn_ctx_free(ctx);
}
END_TEST

/* Naive attention in doubles with HF's additive mask ((1 - mask) * float32 min), also on keys
 * farther than s->window from the query when it is set, and ab's scale and score bias (ab may
 * be NULL). */
static void ref_attention(const struct attn_shape *s, const float *q, const float *k,
                          const float *v, const int32_t *mask, const struct attn_bias *ab,
                          double *out /* (B,S,H*D) */)
{
    int S = s->seq, D = s->head_dim, HD = s->n_heads * D;
    double scale = ab && ab->scale > 0 ? ab->scale : 1.0 / sqrt(D);
    double *p = malloc((size_t)S * sizeof *p);
    for (int b = 0; b < s->batch; b++) {
        for (int h = 0; h < s->n_heads; h++) {
            for (int i = 0; i < S; i++) {
                const float *qi = q + ((size_t)b * S + i) * s->ld_qkv + h * D;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < S; j++) {
                    const float *kj = k + ((size_t)b * S + j) * s->ld_qkv + h * D;
                    double dot = 0;
                    for (int d = 0; d < D; d++)
                        dot += (double)qi[d] * kj[d];
                    bool far = s->window > 0 && abs(i - j) > s->window;
                    p[j] = dot * scale + ((mask && !mask[b * S + j]) || far ? -FLT_MAX : 0.0);
                    if (ab && ab->add)
                        p[j] +=
                            ab->add[(((size_t)(ab->per_seq ? b : 0) * s->n_heads + h) * S + i) * S +
                                    j];
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j < S; j++) {
                    p[j] = exp(p[j] - mx);
                    sum += p[j];
                }
                for (int d = 0; d < D; d++) {
                    double acc = 0;
                    for (int j = 0; j < S; j++)
                        acc += p[j] / sum * v[((size_t)b * S + j) * s->ld_qkv + h * D + d];
                    out[((size_t)b * S + i) * HD + h * D + d] = acc;
                }
            }
        }
    }
    free(p);
}

/* Q, K, V interleaved in one (B, S, 3*H*D) buffer as a fused QKV projection writes them;
 * output with a wider row stride than H*D; right padding, left padding and a full row; a local
 * window of window keys on either side (0: none; then only the rows of kept tokens are
 * compared: a padded query may see no key at all); ab: a scale and score bias, or NULL. */
/* 1: run_attention_case runs attention_forward_bf16 (INT8 encoders' attention) instead, to
 * the INT8 tolerance. */
static int attn_bf16;

static void run_attention_case(int B, int S, int H, int D, int with_mask, int window,
                               const struct attn_bias *ab)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    int HD = H * D;
    struct attn_shape s = {B, S, H, D, 3 * HD, HD + 5, window};
    float *qkv = test_rnd_array((size_t)B * S * 3 * HD, -2, 2);
    float *out = calloc((size_t)B * S * s.ld_out, sizeof *out);
    double *want = malloc((size_t)B * S * HD * sizeof *want);
    int32_t *mask = malloc((size_t)B * S * sizeof *mask);
    for (int b = 0; b < B; b++) {
        int len = S - (b * 3) % S; /* b = 0 is unpadded */
        for (int j = 0; j < S; j++)
            mask[b * S + j] = b % 3 == 2 ? j >= S - len : j < len; /* every third left-padded */
    }
    const int32_t *m = with_mask ? mask : NULL;
    int rc = ab ? attention_forward_biased(ctx, &s, qkv, qkv + HD, qkv + 2 * HD, m, ab, out, &e)
             : attn_bf16 ? attention_forward_bf16(ctx, &s, qkv, qkv + HD, qkv + 2 * HD, m, out, &e)
                         : attention_forward(ctx, &s, qkv, qkv + HD, qkv + 2 * HD, m, out, &e);
    double tol = attn_bf16 ? TOL_INT8 : TOL_F32;
    ck_assert_msg(rc == 0, "%s", e.msg);
    ref_attention(&s, qkv, qkv + HD, qkv + 2 * HD, m, ab, want);
    for (int t = 0; t < B * S; t++)
        for (int c = 0; c < HD && !(window && m && !m[t]); c++)
            ck_assert_msg(fabs(out[(size_t)t * s.ld_out + c] - want[(size_t)t * HD + c]) <=
                              tol * fmax(1, fabs(want[(size_t)t * HD + c])),
                          "attention B%d S%d H%d D%d token %d col %d: %.9g want %.9g", B, S, H, D,
                          t, c, (double)out[(size_t)t * s.ld_out + c], want[(size_t)t * HD + c]);
    free(qkv);
    free(out);
    free(want);
    free(mask);
    dnn_ctx_free(ctx);
}

static void run_attention(int B, int S, int H, int D, int with_mask)
{
    run_attention_case(B, S, H, D, with_mask, 0, NULL);
}

/* A score bias shared by the sequences or one per sequence, with another scale (MPNet's and
 * DeBERTa's relative positions), in one chunk and across chunks. */
static void run_attention_bias(int B, int S, int H, int D, bool per_seq, float scale)
{
    float *add = test_rnd_array((size_t)(per_seq ? B : 1) * H * S * S, -3, 3);
    struct attn_bias ab = {scale, add, per_seq};
    run_attention_case(B, S, H, D, 1, 0, &ab);
    free(add);
}

START_TEST(attention_score_bias)
{
    test_rng = 19;
    run_attention_bias(3, 7, 2, 16, false, 0.0f);
    run_attention_bias(3, 7, 2, 16, true, 0.1f);
    run_attention_bias(5, 300, 12, 8, true, 0.2f); /* chunks of 3 and 2 sequences */
}
END_TEST

START_TEST(attention_padded_mask)
{
    test_rng = 13;
    run_attention(3, 7, 2, 16, 1); /* hidden 32 like the fixtures */
    run_attention(1, 1, 2, 16, 1);
    run_attention(4, 9, 3, 8, 0);
}
END_TEST

START_TEST(attention_chunks_batches)
{
    test_rng = 17;
    run_attention(5, 300, 12, 8, 1); /* 4.3 MB of scores per sequence: chunks of 3 and 2 */
}
END_TEST

/* ModernBERT's local layers: keys within the window on either side, padding still hidden;
 * a window as long as the sequence changes nothing; chunked batches build their own bias. */
START_TEST(attention_local_window)
{
    test_rng = 19;
    run_attention_case(3, 20, 2, 16, 1, 4, NULL);
    run_attention_case(2, 9, 3, 8, 0, 2, NULL);
    run_attention_case(2, 9, 3, 8, 1, 8, NULL);
    run_attention_case(5, 300, 12, 8, 1, 64, NULL);
}
END_TEST

/* The bf16 attention of INT8 encoders: padding, one token, no mask, chunked batches; a local
 * window goes to the f32 attention. */
START_TEST(attention_bf16_vs_naive)
{
    test_rng = 23;
    attn_bf16 = 1;
    run_attention(3, 7, 2, 16, 1);
    run_attention(1, 1, 2, 16, 1);
    run_attention(4, 9, 3, 8, 0);
    run_attention(2, 128, 12, 64, 1); /* BERT-base heads */
    run_attention(5, 300, 12, 8, 1);
    run_attention_case(3, 20, 2, 16, 1, 4, NULL);
    attn_bf16 = 0;
}
END_TEST

/* An INT8 QKV linear written straight into bf16 heads, then attention on them, gives exactly
 * linear_forward then attention_forward_bf16 (which gathers the same heads from f32 rows), for
 * shapes with and without a mask, more sequences than one scores chunk holds, a head_dim not a
 * multiple of 16, AVX-512 and plain loops; another linear is refused. */
static void heads_case(struct dnn_ctx *ctx, int B, int S, int NH, int D, int masked)
{
    struct err e = {0};
    int K = 48, HD = NH * D, M = B * S;
    float *x = test_rnd_array((size_t)M * K, -1, 1), *w = test_rnd_array((size_t)3 * HD * K, -1, 1);
    float *b = test_rnd_array((size_t)3 * HD, -1, 1),
          *qkv = malloc((size_t)M * 3 * HD * sizeof *qkv);
    float *o1 = malloc((size_t)M * HD * sizeof *o1), *o2 = malloc((size_t)M * HD * sizeof *o2);
    uint16_t *heads = malloc((size_t)M * 3 * HD * sizeof *heads);
    int32_t *mask = malloc((size_t)M * sizeof *mask);
    for (int i = 0; i < M; i++)
        mask[i] = !masked || i % S < S - (i / S) % 3;
    struct linear l;
    struct attn_shape s = {B, S, NH, D, 3 * HD, HD, 0};
    ck_assert_int_eq(linear_init(&l, ctx, w, b, K, 3 * HD, DTYPE_COMPUTE_INT8, ACT_NONE, &e), 0);
    ck_assert_int_eq(linear_forward(&l, ctx, x, qkv, M, &e), 0);
    ck_assert_int_eq(attention_forward_bf16(ctx, &s, qkv, qkv + HD, qkv + 2 * HD, mask, o1, &e), 0);
    ck_assert_int_eq(linear_forward_heads(&l, ctx, x, &s, heads, &e), 0);
    ck_assert_int_eq(attention_forward_heads(ctx, &s, heads, mask, o2, &e), 0);
    ck_assert_msg(memcmp(o1, o2, (size_t)M * HD * sizeof *o1) == 0,
                  "B=%d S=%d heads %d x %d: heads path differs", B, S, NH, D);
    struct attn_shape wrong = s;
    wrong.head_dim = D + 1;
    ck_assert_int_eq(linear_forward_heads(&l, ctx, x, &wrong, heads, &e), ERR_INVALID);
    linear_fini(&l);
    free(x);
    free(w);
    free(b);
    free(qkv);
    free(o1);
    free(o2);
    free(heads);
    free(mask);
}

START_TEST(attention_heads_match_gathered)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct attn_shape probe = {1, 1, 1, 16, 48, 16, 0};
    if (!attention_bf16_native(&probe)) { /* no native bf16: nothing to compare here */
        dnn_ctx_free(ctx);
        return;
    }
    test_rng = 31;
    for (int plain = 0; plain < 2; plain++) {
        int8_set_plain(plain);
        heads_case(ctx, 3, 7, 2, 16, 1);
        heads_case(ctx, 2, 9, 3, 8, 0);
        heads_case(ctx, 2, 5, 2, 20, 1);
        heads_case(ctx, 4, 300, 12, 8, 1); /* 12 x 300 x 300 scores per sequence: chunks of 3 */
    }
    int8_set_plain(0);
    dnn_ctx_free(ctx);
}
END_TEST

START_TEST(errors_are_reported)
{
    struct dnn_ctx *ctx = ctx_new(0);
    struct err e = {0};
    float w[4] = {1, 2, 3, 4}, x[2] = {1, 1}, y[2];
    struct linear l;
    ck_assert_int_eq(linear_init(&l, ctx, w, NULL, 0, 2, DTYPE_COMPUTE_F32, ACT_NONE, &e),
                     ERR_INVALID);
    ck_assert_int_eq(linear_init(&l, ctx, w, NULL, 2, 2, DTYPE_COMPUTE_F32, ACT_NONE, &e), 0);
    ck_assert_int_eq(linear_forward(&l, ctx, x, y, 0, &e), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "M = 0"));
    ck_assert_int_eq(linear_forward(&l, ctx, x, y, 1, &e), 0);
    ck_assert(y[0] == 3.0f && y[1] == 7.0f);
    linear_fini(&l);
    linear_fini(&l); /* fini twice is harmless */
    struct attn_shape s = {1, 2, 2, 4, 7, 8, 0};
    ck_assert_int_eq(attention_forward(ctx, &s, x, x, x, NULL, y, &e), ERR_INVALID);
    ck_assert_int_eq(layernorm_forward(ctx, x, NULL, y, x, x, 0.0f, 1, 2, &e), ERR_INVALID);
    ck_assert_int_eq(softmax_forward(ctx, x, 0, 2, &e), ERR_INVALID);
    dnn_ctx_free(ctx);
    dnn_ctx_free(NULL);
}
END_TEST

/* A table of 37 rows x 50 cols in dt, with a zero row and rows of exact bf16 ties. */
static struct emb_table table_of(enum dtype_compute dt, float **copy)
{
    size_t R = 37, C = 50;
    float *w = test_rnd_array(R * C, -3.0f, 3.0f);
    memset(w + 5 * C, 0, C * sizeof *w); /* row 5: zeros */
    w[7 * C + 0] = 1.0f + 0x1p-8f;       /* ties: to even (1.0), to even (1 + 2^-6) */
    w[7 * C + 1] = 1.0f + 3 * 0x1p-8f;
    *copy = malloc(R * C * sizeof **copy);
    ck_assert_ptr_nonnull(*copy);
    memcpy(*copy, w, R * C * sizeof *w);
    struct emb_table t;
    emb_table_take(&t, w, (int64_t)R, (int64_t)C);
    struct err e = {0};
    ck_assert_int_eq(emb_table_compact(&t, dt, &e), 0);
    return t;
}

START_TEST(emb_table_f32_bf16)
{
    test_rng = 77;
    float *src, row[50];
    struct emb_table t = table_of(DTYPE_COMPUTE_F32, &src);
    ck_assert_ptr_eq(emb_table_f32(&t), t.f32);
    for (int r = 0; r < 37; r++) {
        emb_table_row(&t, r, row);
        ck_assert_int_eq(memcmp(row, src + r * 50, sizeof row), 0);
    }
    ck_assert_uint_eq(emb_table_bytes(&t), 37 * 50 * sizeof(float));
    emb_table_fini(&t);
    free(src);

    t = table_of(DTYPE_COMPUTE_BF16, &src);
    ck_assert_ptr_null(emb_table_f32(&t));
    ck_assert_uint_eq(emb_table_bytes(&t), 37 * 50 * 2);
    for (int r = 0; r < 37; r++) {
        emb_table_row(&t, r, row);
        for (int c = 0; c < 50; c++) {
            uint32_t u;
            memcpy(&u, &row[c], sizeof u);
            ck_assert_uint_eq(u & 0xffffu, 0); /* a bf16 value */
            ck_assert(fabsf(row[c] - src[r * 50 + c]) <= 0x1p-8f * fabsf(src[r * 50 + c]));
        }
    }
    emb_table_row(&t, 7, row);
    ck_assert(row[0] == 1.0f && row[1] == 1.0f + 0x1p-6f);
    emb_table_fini(&t);
    free(src);
}
END_TEST

/* INT8 and INT4 tables: s8 rows with an f32 scale each, read back as q * scale (the dequantized
 * reference): every value within half a step of the source, the step
 * at most max |row| / 120 and at least max |row| / 127 with |q| <= 127; the zero row stays zero;
 * a row on a grid coarser than max / 127 (multiples of 0.5 up to 2, as the issue-14 fixtures
 * hold) comes back exactly, where max / 127 would move each 0.5 by 0.8%. */
START_TEST(emb_table_s8_rows)
{
    test_rng = 78;
    for (int dt = DTYPE_COMPUTE_INT8; dt <= DTYPE_COMPUTE_INT4; dt++) {
        float *src, row[50];
        struct emb_table t = table_of((enum dtype_compute)dt, &src);
        ck_assert_int_eq(t.dt, DTYPE_COMPUTE_INT8);
        ck_assert_ptr_null(emb_table_f32(&t));
        ck_assert_uint_eq(emb_table_bytes(&t), 37 * 50 + 37 * sizeof(float));
        for (int r = 0; r < 37; r++) {
            const float *x = src + r * 50;
            float mx = 0.0f;
            for (int c = 0; c < 50; c++)
                mx = fmaxf(mx, fabsf(x[c]));
            float sc = t.s8_scale[r];
            if (mx > 0.0f)
                ck_assert_msg(sc >= mx / 127.0f * (1 - 1e-6f) && sc <= mx / 120.0f * (1 + 1e-6f),
                              "row %d: scale %g for max %g", r, (double)sc, (double)mx);
            emb_table_row(&t, r, row);
            for (int c = 0; c < 50; c++) {
                int q = t.s8[r * 50 + c];
                ck_assert(q >= -127 && q <= 127);
                ck_assert(row[c] == (float)q * sc);
                ck_assert_msg(fabs((double)row[c] - x[c]) <= 0.5 * sc * (1 + 1e-5),
                              "row %d col %d: %g for %g", r, c, (double)row[c], (double)x[c]);
            }
        }
        emb_table_row(&t, 5, row);
        for (int c = 0; c < 50; c++)
            ck_assert(row[c] == 0.0f);
        emb_table_fini(&t);
        free(src);
    }
    float *grid = malloc(3 * 16 * sizeof *grid);
    ck_assert_ptr_nonnull(grid);
    for (int i = 0; i < 3 * 16; i++)
        grid[i] = 0.5f * (float)((i * 7) % 9 - 4); /* -2 .. 2 in steps of 0.5 */
    grid[0] = 2.0f;
    grid[16] = -2.0f;
    grid[32] = 1.0f; /* row 2: max 1.5 or less */
    float want[3 * 16], row[16];
    memcpy(want, grid, sizeof want);
    struct emb_table t;
    emb_table_take(&t, grid, 3, 16);
    struct err e = {0};
    ck_assert_int_eq(emb_table_compact(&t, DTYPE_COMPUTE_INT8, &e), 0);
    for (int r = 0; r < 3; r++) {
        emb_table_row(&t, r, row);
        for (int c = 0; c < 16; c++)
            ck_assert_msg(row[c] == want[r * 16 + c], "grid row %d col %d: %.9g, not %g", r, c,
                          (double)row[c], (double)want[r * 16 + c]);
    }
    emb_table_fini(&t);
}
END_TEST

/* A table tied to a linear (an lm_head packed from its rows) at FP32, BF16 and INT8 keeps no
 * rows of its own (emb_table_share): every row read back from the packed weights, through
 * oneDNN's blocked layout (shapes not multiples of its blocks, and one that is), equals bit for
 * bit the row a table compacted on its own holds (itself checked against the source above).
 * INT4 falls back to compacting (s8 rows); linear_row_offsets refuses INT4. */
START_TEST(emb_table_shares_tied_linear)
{
    static const int shapes[][2] = {{37, 96}, {300, 128}}; /* int4: inputs a multiple of 32 */
    struct dnn_ctx *ctx = ctx_new(2);
    struct err e = {0};
    test_rng = 79;
    for (int si = 0; si < 2; si++)
        for (int dt = DTYPE_COMPUTE_F32; dt <= DTYPE_COMPUTE_INT4; dt++) {
            int R = shapes[si][0], C = shapes[si][1];
            float *w = test_rnd_array((size_t)R * C, -3.0f, 3.0f);
            float *w2 = malloc((size_t)R * C * sizeof *w2);
            float *got = malloc((size_t)C * sizeof *got), *want = malloc((size_t)C * sizeof *want);
            ck_assert(w2 && got && want);
            memcpy(w2, w, (size_t)R * C * sizeof *w);
            struct emb_table t, ref;
            emb_table_take(&t, w, R, C);
            emb_table_take(&ref, w2, R, C);
            ck_assert_int_eq(emb_table_compact(&ref, (enum dtype_compute)dt, &e), 0);
            struct linear l;
            ck_assert_msg(linear_init(&l, ctx, emb_table_f32(&t), NULL, C, R,
                                      (enum dtype_compute)dt, ACT_NONE, &e) == 0,
                          "%s", e.msg);
            ck_assert_int_eq(emb_table_share(&t, &l, (enum dtype_compute)dt, &e), 0);
            ck_assert_ptr_null(emb_table_f32(&t));
            if (dt == DTYPE_COMPUTE_INT4) {
                ck_assert_ptr_null(t.shared);
                ck_assert_int_eq(t.dt, DTYPE_COMPUTE_INT8);
                size_t off[128];
                ck_assert_int_eq(linear_row_offsets(&l, off, &e), ERR_INVALID);
            } else {
                ck_assert_ptr_eq(t.shared, &l);
                ck_assert_uint_eq(emb_table_bytes(&t), 0);
            }
            for (int r = 0; r < R; r++) {
                emb_table_row(&t, r, got);
                emb_table_row(&ref, r, want);
                ck_assert_msg(memcmp(got, want, (size_t)C * sizeof *got) == 0,
                              "dtype %d, %d x %d: row %d differs from the compacted table's", dt, R,
                              C, r);
            }
            emb_table_fini(&t);
            emb_table_fini(&ref);
            linear_fini(&l);
            free(got);
            free(want);
        }
    dnn_ctx_free(ctx);
}
END_TEST

/* oneDNN's own f32 -> bf16 reorder of x (n), the conversion the bf16 matmul used to run. */
static void onednn_bf16(const float *x, uint16_t *y, size_t n)
{
    dnnl_engine_t eng;
    dnnl_stream_t st;
    dnnl_memory_desc_t f_md, b_md;
    dnnl_dims_t dims = {(dnnl_dim_t)n};
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    dnnl_memory_t src, dst;
    ck_assert_int_eq(dnnl_engine_create(&eng, dnnl_cpu, 0), dnnl_success);
    ck_assert_int_eq(dnnl_stream_create(&st, eng, dnnl_stream_default_flags), dnnl_success);
    ck_assert_int_eq(dnnl_memory_desc_init_by_tag(&f_md, 1, dims, dnnl_f32, dnnl_a), dnnl_success);
    ck_assert_int_eq(dnnl_memory_desc_init_by_tag(&b_md, 1, dims, dnnl_bf16, dnnl_a), dnnl_success);
    ck_assert_int_eq(dnnl_reorder_primitive_desc_create(&pd, &f_md, eng, &b_md, eng, NULL),
                     dnnl_success);
    ck_assert_int_eq(dnnl_primitive_create(&p, pd), dnnl_success);
    ck_assert_int_eq(dnnl_memory_create(&src, &f_md, eng, (void *)x), dnnl_success);
    ck_assert_int_eq(dnnl_memory_create(&dst, &b_md, eng, y), dnnl_success);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    ck_assert_int_eq(dnnl_primitive_execute(p, st, 2, args), dnnl_success);
    ck_assert_int_eq(dnnl_stream_wait(st), dnnl_success);
    dnnl_memory_destroy(dst);
    dnnl_memory_destroy(src);
    dnnl_primitive_destroy(p);
    dnnl_primitive_desc_destroy(pd);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* bf16_from_f32 gives oneDNN's reorder bit for bit (NaN: a NaN), on the vector path and its
 * masked tail, the plain rule, the threaded split (n past 64K), ties, infinities, subnormals. */
START_TEST(bf16_matches_onednn_reorder)
{
    static const uint32_t special[] = {
        0x3f808000u,                           /* 1 + 2^-8: a tie, rounds down to the even 1.0 */
        0x3f818000u,                           /* a tie rounding up to even */
        0x3f80c000u, 0x3f807fffu, 0x7f7fffffu, /* FLT_MAX rounds to inf */
        0x7f800000u, 0xff800000u, 0x00000001u, 0x80000001u, 0x007fffffu,
        0x80000000u, 0,           0x7fc00000u, 0xffc00001u, 0x7f800001u, /* NaNs, one signalling */
    };
    size_t sizes[] = {37, 1000, 70001};
    test_rng = 99;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        float *x = malloc(n * sizeof *x);
        uint16_t *got = malloc(n * 2), *want = malloc(n * 2);
        ck_assert(x && got && want);
        for (size_t i = 0; i < n; i++) {
            test_rng = test_rng * 6364136223846793005ULL + 1442695040888963407ULL;
            x[i] = from_bits((uint32_t)(test_rng >> 32)); /* every exponent and sign */
        }
        for (size_t i = 0; i < sizeof special / sizeof special[0] && i < n; i++)
            x[i * 3 % n] = from_bits(special[i]);
        bf16_from_f32(x, got, n);
        onednn_bf16(x, want, n);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_eq(bf16_round(x[i]), got[i]);
            if (isnan(x[i]))
                ck_assert_msg((got[i] & 0x7fffu) > 0x7f80u && (want[i] & 0x7fffu) > 0x7f80u,
                              "NaN -> %04x / %04x", (unsigned)got[i], (unsigned)want[i]);
            else
                ck_assert_msg(got[i] == want[i], "n %zu, x[%zu] = %a: %04x, oneDNN %04x", n, i,
                              (double)x[i], (unsigned)got[i], (unsigned)want[i]);
        }
        free(x);
        free(got);
        free(want);
    }
    ck_assert_uint_eq(bf16_round(from_bits(0x3f808000u)), 0x3f80u);
    ck_assert_uint_eq(bf16_round(from_bits(0x3f818000u)), 0x3f82u);
}
END_TEST

/* The primitive cache past its capacity (512): the least recently used shape goes, the others
 * are still found (no new primitive), and an evicted shape is created again when it returns. */
START_TEST(primitive_cache_evicts_lru)
{
    struct dnn_ctx *ctx = ctx_new(1);
    struct err e = {0};
    enum { N = 8, MAX_M = 600 };
    float *x = test_rnd_array((size_t)MAX_M * N, -1, 1), *y = malloc((size_t)MAX_M * N * sizeof *y);
    float g[N], b[N];
    for (int i = 0; i < N; i++) {
        g[i] = 1.0f;
        b[i] = 0.0f;
    }
    for (int M = 1; M <= MAX_M; M++) /* one layer-norm primitive per M */
        ck_assert_int_eq(layernorm_forward(ctx, x, NULL, y, g, b, 1e-5f, M, N, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), MAX_M);
    ck_assert_int_eq(dnn_cache_size(ctx), 512);
    for (int M = MAX_M; M > MAX_M - 512; M--) /* the last 512 are all still there */
        ck_assert_int_eq(layernorm_forward(ctx, x, NULL, y, g, b, 1e-5f, M, N, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), MAX_M);
    ck_assert_int_eq(layernorm_forward(ctx, x, NULL, y, g, b, 1e-5f, 1, N, &e), 0); /* evicted */
    ck_assert_int_eq(dnn_cache_created(ctx), MAX_M + 1);
    ck_assert_int_eq(dnn_cache_size(ctx), 512);
    /* the loop above went downwards, so M = 1 took the place of M = MAX_M, used least
     * recently; M = MAX_M - 1 stays */
    ck_assert_int_eq(layernorm_forward(ctx, x, NULL, y, g, b, 1e-5f, MAX_M - 1, N, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), MAX_M + 1);
    ck_assert_int_eq(layernorm_forward(ctx, x, NULL, y, g, b, 1e-5f, MAX_M, N, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), MAX_M + 2);
    free(x);
    free(y);
    dnn_ctx_free(ctx);
}
END_TEST

/* dnn_serial_begin: one thread until dnn_serial_end, which restores the count; a primitive
 * made under one count is not reused under another (oneDNN may size per-thread scratch when
 * it creates one); an op too large for it (a 64 x 1024 layer norm) leaves the count alone. */
START_TEST(serial_small_ops)
{
    int orig = omp_get_max_threads();
    dnn_set_threads(2);
    struct dnn_ctx *ctx = ctx_new(2);
    struct err e = {0};
    test_rng = 5;
    int M = 5, K = 64, N = 48;
    float *w = test_rnd_array((size_t)N * K, -1, 1), *x = test_rnd_array((size_t)M * K, -1, 1);
    float *y = malloc((size_t)M * N * sizeof *y);
    struct linear l;
    ck_assert_int_eq(linear_init(&l, ctx, w, NULL, K, N, DTYPE_COMPUTE_F32, ACT_NONE, &e), 0);

    int saved = dnn_serial_begin(false);
    ck_assert_int_eq(saved, 0);
    dnn_serial_end(saved);
    ck_assert_int_eq(omp_get_max_threads(), 2);
    ck_assert_int_eq(linear_forward(&l, ctx, x, y, M, &e), 0);
    long created = dnn_cache_created(ctx);

    saved = dnn_serial_begin(true);
    ck_assert_int_eq(saved, 2);
    ck_assert_int_eq(omp_get_max_threads(), 1);
    ck_assert_int_eq(linear_forward(&l, ctx, x, y, M, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), created + 1); /* its own one-thread primitive */
    check_linear(x, w, NULL, NULL, y, M, K, N, ACT_NONE, TOL_F32, "one thread");
    dnn_serial_end(saved);
    ck_assert_int_eq(omp_get_max_threads(), 2);
    ck_assert_int_eq(linear_forward(&l, ctx, x, y, M, &e), 0);
    ck_assert_int_eq(dnn_cache_created(ctx), created + 1); /* the two-thread one, found */
    check_linear(x, w, NULL, NULL, y, M, K, N, ACT_NONE, TOL_F32, "two threads");

    enum { LM = 64, LN = 1024 };
    float *big = test_rnd_array((size_t)LM * LN, -1, 1),
          *out = malloc((size_t)LM * LN * sizeof *out);
    float *g = test_rnd_array(LN, 1, 1.5f), *b = test_rnd_array(LN, -1, 1);
    ck_assert_int_eq(layernorm_forward(ctx, big, NULL, out, g, b, 1e-5f, LM, LN, &e), 0);
    ck_assert_int_eq(omp_get_max_threads(), 2);
    ck_assert_int_eq(layernorm_forward(ctx, big, NULL, out, g, b, 1e-5f, 2, 16, &e), 0);
    ck_assert_int_eq(omp_get_max_threads(), 2); /* a small one restores the count */
    linear_fini(&l);
    free(w);
    free(x);
    free(y);
    free(big);
    free(out);
    free(g);
    free(b);
    dnn_ctx_free(ctx);
    dnn_set_threads(orig);
}
END_TEST

START_TEST(runtime_is_reported)
{
    ck_assert_str_eq(dnn_runtime_name(), "OpenMP");
    ck_assert_ptr_nonnull(strstr(dnn_describe(), "OpenMP"));
}
END_TEST

Suite *suite_ops(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, linear_f32);
    tcase_add_test(tc, linear_bf16);
    tcase_add_test(tc, linear_int8);
    tcase_add_test(tc, linear_int8_plain);
    tcase_add_test(tc, linear_int8_act_range);
    tcase_add_test(tc, linear_ffn_matches_two_calls);
    tcase_add_test(tc, attention_heads_match_gathered);
    tcase_add_test(tc, linear_residual_add);
    tcase_add_test(tc, linear_cache_reuse);
    tcase_add_test(tc, linear_two_threads_share_weights);
    tcase_add_test(tc, layernorm_vs_naive);
    tcase_add_test(tc, rmsnorm_vs_naive);
    tcase_add_test(tc, activations_vs_naive);
    tcase_add_test(tc, act_parse_names);
    tcase_add_test(tc, softmax_vs_naive);
    tcase_add_test(tc, attention_padded_mask);
    tcase_add_test(tc, attention_chunks_batches);
    tcase_add_test(tc, attention_local_window);
    tcase_add_test(tc, attention_score_bias);
    tcase_add_test(tc, attention_bf16_vs_naive);
    tcase_add_test(tc, errors_are_reported);
    tcase_add_test(tc, runtime_is_reported);
    tcase_add_test(tc, emb_table_f32_bf16);
    tcase_add_test(tc, emb_table_s8_rows);
    tcase_add_test(tc, emb_table_shares_tied_linear);
    tcase_add_test(tc, bf16_matches_onednn_reorder);
    tcase_add_test(tc, primitive_cache_evicts_lru);
    tcase_add_test(tc, serial_small_ops);
    suite_add_tcase(s, tc);
    return s;
}
