/* bench_ops: throughput of the engine's oneDNN ops at BERT-base shapes, to compare with
 * shared/anchors/gemm_peak.c (the matmul ceiling of this CPU as oneDNN reaches it).
 * usage: bench-ops [threads=2] [M=1024] [seconds-per-case=1]
 * Prints one JSON line per case: linear_forward for f32, bf16 and int8 at (M, 768) x 768,
 * (M, 768) x 3072 with GELU and (M, 3072) x 768 (GFLOP/s = 2*M*K*N per call; bf16 and int8
 * include converting/quantizing the f32 activations); layer norm (M, 768); attention over
 * (M/128, 128) tokens with 12 heads of 64 (GFLOP/s = 4*B*H*S*S*D). Median of samples.
 * bench-ops THREADS M SECONDS int8-ab [ROUNDS=5]: INT8 linears only, the AMX kernel against
 * oneDNN's matmul + epilogue (matmul_int8_amx.c), interleaved per round: per shape and round the
 * median wall and process CPU time per call of each path and the ratios oneDNN / AMX. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"
#include "ops/ops.h"

/* One timed case: calls run(arg) repeatedly; returns the median seconds per call. */
struct bench_case {
    int (*run)(struct bench_case *c);
    struct dnn_ctx *ctx;
    struct linear *l;
    float *x, *y;
    int M;
    struct attn_shape shape;
    int32_t *mask;
    float *gamma, *beta;
};

static int run_linear(struct bench_case *c)
{
    return linear_forward(c->l, c->ctx, c->x, c->y, c->M, NULL);
}

static int run_linear_add(struct bench_case *c)
{
    return linear_forward_add(c->l, c->ctx, c->x, c->y, c->M, NULL);
}

static int run_layernorm(struct bench_case *c)
{
    return layernorm_forward(c->ctx, c->x, NULL, c->y, c->gamma, c->beta, 1e-12f, c->M, 768, NULL);
}

static int run_attention(struct bench_case *c)
{
    int hd = c->shape.n_heads * c->shape.head_dim;
    return attention_forward(c->ctx, &c->shape, c->x, c->x + hd, c->x + 2 * hd, c->mask, c->y,
                             NULL);
}

static double time_case(struct bench_case *c, double seconds)
{
    double t0 = bench_now_s();
    int warm = 0;
    while (bench_now_s() - t0 < seconds / 5 || warm < 3) {
        if (c->run(c) != 0)
            return -1;
        warm++;
    }
    double per_call = (bench_now_s() - t0) / warm;
    int reps = per_call > 0.05 ? 1 : (int)(0.05 / per_call) + 1;
    double samples[256];
    int n = 0;
    double start = bench_now_s();
    while (n < 256 && (n < 5 || bench_now_s() - start < seconds * 4 / 5)) {
        double s = bench_now_s();
        for (int r = 0; r < reps; r++)
            c->run(c);
        samples[n++] = (bench_now_s() - s) / reps;
    }
    qsort(samples, (size_t)n, sizeof *samples, bench_cmp_double);
    return samples[n / 2];
}

static float *filled(size_t n, float v)
{
    float *a = malloc(n * sizeof *a);
    for (size_t i = 0; a && i < n; i++)
        a[i] = v * (float)((i * 7919) % 13) / 13.0f - v / 2;
    return a;
}

static float *filled(size_t n, float v);

/* Median wall and CPU seconds per call of c over about `seconds`. */
static void time_both(struct bench_case *c, double seconds, double *wall, double *cpu)
{
    for (int i = 0; i < 3; i++)
        c->run(c);
    double w[64], u[64];
    int n = 0;
    double start = bench_now_s();
    while (n < 64 && (n < 7 || bench_now_s() - start < seconds)) {
        double s = bench_now_s(), p = bench_own_cpu_s();
        c->run(c);
        u[n] = bench_own_cpu_s() - p;
        w[n++] = bench_now_s() - s;
    }
    qsort(w, (size_t)n, sizeof *w, bench_cmp_double);
    qsort(u, (size_t)n, sizeof *u, bench_cmp_double);
    *wall = w[n / 2];
    *cpu = u[n / 2];
}

static int int8_ab(struct dnn_ctx *ctx, int M, double seconds, int rounds)
{
    static const int shapes[][4] = {/* K, N, act, residual */
                                    {768, 2304, ACT_NONE, 0},
                                    {768, 768, ACT_NONE, 1},
                                    {768, 3072, ACT_GELU_ERF, 0},
                                    {3072, 768, ACT_NONE, 1},
                                    {768, 3072, ACT_NONE, 0}};
    struct err e = {0};
    float *x = filled((size_t)M * 3072, 2.0f), *y = filled((size_t)M * 3072, 1.0f);
    float *w = filled((size_t)3072 * 2304, 0.1f), *b = filled(3072, 0.1f);
    for (int s = 0; s < 5; s++) {
        struct linear l[2]; /* 0 oneDNN, 1 AMX */
        for (int p = 0; p < 2; p++) {
            int8_set_amx(p);
            if (linear_init(&l[p], ctx, w, b, shapes[s][0], shapes[s][1], DTYPE_COMPUTE_INT8,
                            (enum act)shapes[s][2], &e) != 0) {
                fprintf(stderr, "bench-ops: %s\n", e.msg);
                return 1;
            }
        }
        if (!int8_has_amx(&l[1]))
            fprintf(stderr, "bench-ops: no AMX path on this CPU\n");
        for (int r = 0; r < rounds; r++) {
            double wall[2], cpu[2];
            for (int i = 0; i < 2; i++) {
                int p = (r + i) % 2; /* the order alternates per round */
                int8_set_amx(p);
                struct bench_case c = {.run = shapes[s][3] ? run_linear_add : run_linear,
                                       .ctx = ctx,
                                       .l = &l[p],
                                       .x = x,
                                       .y = y,
                                       .M = M};
                time_both(&c, seconds, &wall[p], &cpu[p]);
            }
            printf("{\"op\":\"int8_ab\",\"M\":%d,\"K\":%d,\"N\":%d,\"act\":\"%s\","
                   "\"residual\":%d,\"round\":%d,\"onednn_ms\":%.3f,\"amx_ms\":%.3f,"
                   "\"onednn_cpu_ms\":%.3f,\"amx_cpu_ms\":%.3f,\"wall_ratio\":%.3f,"
                   "\"cpu_ratio\":%.3f,\"amx_gflops\":%.1f}\n",
                   M, shapes[s][0], shapes[s][1], act_name((enum act)shapes[s][2]), shapes[s][3], r,
                   wall[0] * 1e3, wall[1] * 1e3, cpu[0] * 1e3, cpu[1] * 1e3, wall[0] / wall[1],
                   cpu[0] / cpu[1], 2.0 * M * shapes[s][0] * shapes[s][1] / wall[1] / 1e9);
            fflush(stdout);
        }
        linear_fini(&l[0]);
        linear_fini(&l[1]);
    }
    int8_set_amx(1);
    free(x), free(y), free(w), free(b);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int M = argc > 2 ? atoi(argv[2]) : 1024;
    double seconds = argc > 3 ? atof(argv[3]) : 1.0;
    if (threads < 1 || M < 1 || seconds <= 0) {
        fprintf(stderr, "usage: bench-ops [threads=2] [M=1024] [seconds-per-case=1]\n");
        return 2;
    }
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(threads, &e);
    if (!ctx) {
        fprintf(stderr, "bench-ops: %s\n", e.msg);
        return 1;
    }
    printf("{\"onednn\":\"%s\",\"threads\":%d}\n", dnn_describe(), threads);
    if (argc > 4 && strcmp(argv[4], "int8-ab") == 0) {
        int rc = int8_ab(ctx, M, seconds, argc > 5 ? atoi(argv[5]) : 5);
        dnn_ctx_free(ctx);
        return rc;
    }
    static const char *dt_names[] = {"f32", "bf16", "int8"};
    static const int shapes[][3] = {
        {768, 768, ACT_NONE}, {768, 3072, ACT_GELU_ERF}, {3072, 768, ACT_NONE}};
    float *x = filled((size_t)M * 3072, 2.0f), *y = filled((size_t)M * 3072, 1.0f);
    float *w = filled((size_t)3072 * 768, 0.1f), *b = filled(3072, 0.1f);
    int failed = 0;
    for (int dt = 0; dt < DTYPE_COMPUTE_COUNT; dt++) {
        for (int s = 0; s < 3; s++) {
            int K = shapes[s][0], N = shapes[s][1];
            struct linear l;
            if (linear_init(&l, ctx, w, b, K, N, (enum dtype_compute)dt, (enum act)shapes[s][2],
                            &e) != 0) {
                fprintf(stderr, "bench-ops: %s\n", e.msg);
                failed = 1;
                continue;
            }
            struct bench_case c = {.run = run_linear, .ctx = ctx, .l = &l, .x = x, .y = y, .M = M};
            double t = time_case(&c, seconds);
            printf("{\"op\":\"linear\",\"type\":\"%s\",\"M\":%d,\"K\":%d,\"N\":%d,\"act\":\"%s\","
                   "\"ms\":%.3f,\"gflops\":%.1f}\n",
                   dt_names[dt], M, K, N, act_name(l.act), t * 1e3, 2.0 * M * K * N / t / 1e9);
            fflush(stdout);
            linear_fini(&l);
        }
    }
    float *gamma = filled(768, 1.0f), *beta = filled(768, 0.1f);
    struct bench_case ln = {
        .run = run_layernorm, .ctx = ctx, .x = x, .y = y, .M = M, .gamma = gamma, .beta = beta};
    double t = time_case(&ln, seconds);
    printf("{\"op\":\"layernorm\",\"M\":%d,\"N\":768,\"ms\":%.3f,\"gbps\":%.1f}\n", M, t * 1e3,
           2.0 * M * 768 * 4 / t / 1e9);
    int S = M < 128 ? M : 128, B = M / S;
    float *qkv = filled((size_t)B * S * 3 * 768, 1.0f);
    int32_t *mask = malloc((size_t)B * S * sizeof *mask);
    for (int i = 0; i < B * S; i++)
        mask[i] = i % S < S - (i / S) % 16; /* a little right padding per sequence */
    struct bench_case at = {.run = run_attention,
                            .ctx = ctx,
                            .x = qkv,
                            .y = y,
                            .mask = mask,
                            .shape = {B, S, 12, 64, 3 * 768, 768}};
    t = time_case(&at, seconds);
    printf("{\"op\":\"attention\",\"batch\":%d,\"seq\":%d,\"heads\":12,\"head_dim\":64,"
           "\"ms\":%.3f,\"gflops\":%.1f}\n",
           B, S, t * 1e3, 4.0 * B * 12 * S * S * 64 / t / 1e9);
    free(qkv);
    free(mask);
    free(gamma);
    free(beta);
    free(x);
    free(y);
    free(w);
    free(b);
    dnn_ctx_free(ctx);
    return failed;
}
