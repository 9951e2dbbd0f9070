/* bench_q4: INT4's few-token paths against INT8 on the linears of the random 124M LLaMA
 * (bench/make_random_decoder.c: hidden 768, qkv 768 -> 1280, o 768 -> 768, gate+up 768 -> 4096,
 * down 2048 -> 768, lm_head 768 -> 32000), at M tokens a call: what sets where each path takes
 * over (matmul_q4_dot.c's VNNI and AMX rows, matmul_q4_gemm.c's s8-widened oneDNN matmul).
 * usage: bench-q4 [threads=2] [seconds-per-case=0.3] [rounds=3] [M,M,...=1,2,4,8,16,24,32]
 * Each shape is held in enough copies (about 24 MB of 4-bit weights) that a call reads its
 * weights from beyond L2, as a decode step does; calls rotate through the copies. Per round the
 * four paths (int8; int4 on the VNNI rows, on the AMX rows, on the s8 gemm) are timed back to
 * back at each shape and M, and one JSON line per case gives the median microseconds a call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"
#include "ops/ops.h"

#define MAX_COPIES 64

struct set {
    struct linear l[MAX_COPIES];
    int n;
};

/* Median seconds per call over about `seconds`, the calls rotating through s's copies. */
static double time_set(struct set *s, struct dnn_ctx *ctx, const float *x, float *y, int M,
                       double seconds)
{
    for (int i = 0; i < s->n; i++) /* warm-up: primitives created, scratch grown */
        if (linear_forward(&s->l[i], ctx, x, y, M, NULL) != 0)
            return -1;
    double samples[512];
    int n = 0, at = 0;
    double start = bench_now_s();
    while (n < 512 && (n < 9 || bench_now_s() - start < seconds)) {
        double t = bench_now_s();
        linear_forward(&s->l[at], ctx, x, y, M, NULL);
        samples[n++] = bench_now_s() - t;
        at = (at + 1) % s->n;
    }
    qsort(samples, (size_t)n, sizeof *samples, bench_cmp_double);
    return samples[n / 2];
}

static int parse_ms(const char *arg, int *ms, int max)
{
    int n = 0;
    for (const char *p = arg; *p && n < max;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 64)
            return -1;
        ms[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2, rounds = argc > 3 ? atoi(argv[3]) : 3;
    double seconds = argc > 2 ? atof(argv[2]) : 0.3;
    int ms[16] = {1, 2, 4, 8, 16, 24, 32}, n_m = 7;
    if (argc > 4)
        n_m = parse_ms(argv[4], ms, 16);
    if (threads < 1 || seconds <= 0 || rounds < 1 || n_m < 1) {
        fprintf(stderr, "usage: bench-q4 [threads=2] [seconds=0.3] [rounds=3] [M,M,...]\n");
        return 2;
    }
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(threads, &e);
    if (!ctx) {
        fprintf(stderr, "bench-q4: %s\n", e.msg);
        return 1;
    }
    printf("{\"onednn\":\"%s\",\"threads\":%d}\n", dnn_describe(), threads);
    static const struct {
        const char *name;
        int K, N;
    } shapes[] = {{"qkv", 768, 1280},
                  {"o", 768, 768},
                  {"gate_up", 768, 4096},
                  {"down", 2048, 768},
                  {"lm_head", 768, 32000}};
    enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };
    size_t wmax = (size_t)32000 * 768;
    float *w = malloc(wmax * sizeof *w), *x = malloc((size_t)64 * 2048 * sizeof *x);
    float *y = malloc((size_t)64 * 32000 * sizeof *y);
    if (!w || !x || !y)
        return 1;
    srand(18);
    for (size_t i = 0; i < wmax; i++)
        w[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * 0.1f;
    for (size_t i = 0; i < (size_t)64 * 2048; i++)
        x[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * 2.0f;
    static struct set i8[N_SHAPES], i4[N_SHAPES];
    for (int s = 0; s < N_SHAPES; s++) {
        size_t q4_bytes = (size_t)shapes[s].K * (size_t)shapes[s].N / 2;
        int copies = (int)((24u << 20) / q4_bytes);
        copies = copies < 1 ? 1 : copies > MAX_COPIES ? MAX_COPIES : copies;
        for (int c = 0; c < copies; c++) {
            if (linear_init(&i8[s].l[c], ctx, w, NULL, shapes[s].K, shapes[s].N, DTYPE_COMPUTE_INT8,
                            ACT_NONE, &e) != 0 ||
                linear_init(&i4[s].l[c], ctx, w, NULL, shapes[s].K, shapes[s].N, DTYPE_COMPUTE_INT4,
                            ACT_NONE, &e) != 0) {
                fprintf(stderr, "bench-q4: %s\n", e.msg);
                return 1;
            }
            i8[s].n = i4[s].n = c + 1;
        }
    }
    static const char *paths[] = {"int8", "int4_vnni", "int4_amx", "int4_gemm"};
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < N_SHAPES; s++)
            for (int i = 0; i < n_m; i++)
                for (int p = 0; p < 4; p++) {
                    q4_set_gemm_min(p == 3 ? 1 : 1 << 30);
                    q4_dot_set_amx_min(p == 2 ? 1 : 1 << 30);
                    double t = time_set(p == 0 ? &i8[s] : &i4[s], ctx, x, y, ms[i], seconds);
                    printf("{\"round\":%d,\"shape\":\"%s\",\"K\":%d,\"N\":%d,\"M\":%d,"
                           "\"path\":\"%s\",\"us\":%.1f}\n",
                           r, shapes[s].name, shapes[s].K, shapes[s].N, ms[i], paths[p], t * 1e6);
                    fflush(stdout);
                }
    for (int s = 0; s < N_SHAPES; s++)
        for (int c = 0; c < i8[s].n; c++) {
            linear_fini(&i8[s].l[c]);
            linear_fini(&i4[s].l[c]);
        }
    free(w);
    free(x);
    free(y);
    dnn_ctx_free(ctx);
    return 0;
}
