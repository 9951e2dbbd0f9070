/* matmul_q4: the INT4 weight kind of struct linear (ops/linear_kind.h): 4-bit weights with a
 * scale and an integer zero point per group of in_features, quantized here from f32 (round to
 * nearest, asymmetric) or taken pre-quantized (AWQ, GPTQ: models/q4_checkpoint.c), packed, and
 * multiplied: below Q4_GEMM_MIN_M tokens by matmul_q4_dot.c (activations to s8 per group,
 * integer dot products: AMX from 3 tokens, VNNI / AVX2 / plain), or with q4_set_exact(1) by
 * this file's exact weight-only kernel (each group of 32 weights widened to f32 in registers
 * and FMA'd with f32 x: AVX-512, AVX2 + FMA, a plain loop); from Q4_GEMM_MIN_M tokens on
 * (prefill) by matmul_q4_gemm.c (the weights widened to s8 and oneDNN's int8 matmul). oneDNN 2.6
 * has no 4-bit weights (docs/DECISIONS.md).
 *
 * Packed layout, per output row n (in / 2 bytes): blocks of 32 weights k0..k0+31, 16 bytes
 * each, byte j holding q[k0 + j] in its low nibble and q[k0 + 16 + j] in its high one; scales
 * (out, in / group) f32 and zero points (out, in / group) u8 beside it. Per weight: 4 bits +
 * 40 bits per group (0.54 bytes at group 128, int8's 1 byte). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu.h"
#include "ops/linear_kind.h"
#include "ops/ops.h"

#define Q4_BLOCK 32
#define ROWS_PER_TASK 16   /* output rows a thread takes at a time (their weights stay in L2) */
#define PAR_MIN_WORK 65536 /* M * N * K / 32 below which one thread does it all */
#define Q4_GEMM_MIN_M 32   /* tokens from which the s8 GEMM path beats the f32 kernel */

int q4_rows_alloc(struct q4_rows *r, int out, int in, int group, struct err *e)
{
    memset(r, 0, sizeof *r);
    if (out <= 0 || in <= 0 || group <= 0 || group % Q4_BLOCK != 0 || in % group != 0)
        return err_set(e, ERR_INVALID,
                       "4-bit weights (%d, %d) in groups of %d: the group size must be a multiple "
                       "of %d dividing in_features %d",
                       out, in, group, Q4_BLOCK, in);
    size_t n = (size_t)out * (size_t)in, ng = (size_t)out * (size_t)(in / group);
    r->out = out;
    r->in = in;
    r->group = group;
    r->q = malloc(n);
    r->scale = malloc(ng * sizeof *r->scale);
    r->zero = malloc(ng);
    if (!r->q || !r->scale || !r->zero) {
        q4_rows_fini(r);
        return err_set(e, ERR_NOMEM, "out of memory for 4-bit weights (%d, %d)", out, in);
    }
    return 0;
}

void q4_rows_fini(struct q4_rows *r)
{
    free(r->q);
    free(r->scale);
    free(r->zero);
    memset(r, 0, sizeof *r);
}

/* One group of n weights: scale, zero and q as q4_quantize says. */
static void quantize_group(const float *w, int n, uint8_t *q, float *scale, uint8_t *zero)
{
    float lo = 0.0f, hi = 0.0f;
    for (int k = 0; k < n; k++) {
        lo = fminf(lo, w[k]);
        hi = fmaxf(hi, w[k]);
    }
    float s = (hi - lo) / 15.0f;
    if (!(s > 0.0f)) {
        *scale = 1.0f;
        *zero = 8;
        memset(q, 8, (size_t)n);
        return;
    }
    float z = fminf(fmaxf(rintf(-lo / s), 0.0f), 15.0f);
    for (int k = 0; k < n; k++)
        q[k] = (uint8_t)fminf(fmaxf(rintf(w[k] / s) + z, 0.0f), 15.0f);
    *scale = s;
    *zero = (uint8_t)z;
}

void q4_quantize(const float *w, struct q4_rows *r)
{
    int ng = r->in / r->group;
    for (int n = 0; n < r->out; n++)
        for (int g = 0; g < ng; g++) {
            size_t at = (size_t)n * (size_t)r->in + (size_t)g * (size_t)r->group;
            size_t sg = (size_t)n * (size_t)ng + (size_t)g;
            quantize_group(w + at, r->group, r->q + at, r->scale + sg, r->zero + sg);
        }
}

void q4_dequantize(const struct q4_rows *r, float *w)
{
    int ng = r->in / r->group;
    for (int n = 0; n < r->out; n++)
        for (int k = 0; k < r->in; k++) {
            size_t at = (size_t)n * (size_t)r->in + (size_t)k;
            size_t sg = (size_t)n * (size_t)ng + (size_t)(k / r->group);
            w[at] = r->scale[sg] * (float)((int)r->q[at] - (int)r->zero[sg]);
        }
}

/* The largest of 128, 64, 32 dividing in (0: none does). */
static int group_for(int in)
{
    for (int g = Q4_GROUP; g >= Q4_BLOCK; g /= 2)
        if (in % g == 0)
            return g;
    return 0;
}

/* r into l's packed nibbles, scales and zeros (l's shape set, r's matching). */
static int pack(struct linear *l, const struct q4_rows *r, struct err *e)
{
    size_t n = (size_t)r->out * (size_t)r->in, ng = (size_t)r->out * (size_t)(r->in / r->group);
    for (size_t i = 0; i < n; i++)
        if (r->q[i] > 15)
            return err_set(e, ERR_FORMAT, "4-bit weight value %u at (%zu, %zu) is over 15",
                           (unsigned)r->q[i], i / (size_t)r->in, i % (size_t)r->in);
    for (size_t i = 0; i < ng; i++)
        if (r->zero[i] > 16 || !isfinite(r->scale[i]))
            return err_set(e, ERR_FORMAT, "4-bit group %zu: zero point %u or scale %g out of range",
                           i, (unsigned)r->zero[i], (double)r->scale[i]);
    l->group = r->group;
    l->w_packed = aligned_alloc(64, (n / 2 + 63) & ~(size_t)63);
    l->w_scales = malloc(ng * sizeof *l->w_scales);
    l->w_zeros = malloc(ng);
    if (!l->w_packed || !l->w_scales || !l->w_zeros)
        return err_set(e, ERR_NOMEM, "out of memory for 4-bit weights (%d, %d)", r->out, r->in);
    uint8_t *p = l->w_packed;
    for (size_t b = 0; b < n / Q4_BLOCK; b++) {
        const uint8_t *q = r->q + b * Q4_BLOCK;
        for (int j = 0; j < Q4_BLOCK / 2; j++)
            p[b * (Q4_BLOCK / 2) + (size_t)j] = (uint8_t)(q[j] | q[j + Q4_BLOCK / 2] << 4);
    }
    memcpy(l->w_scales, r->scale, ng * sizeof *l->w_scales);
    memcpy(l->w_zeros, r->zero, ng);
    return 0;
}

static int q4_init(struct linear *l, struct dnn_ctx *ctx, const float *w, struct err *e)
{
    (void)ctx;
    int group = group_for(l->in_features);
    if (!group)
        return err_set(e, ERR_INVALID,
                       "int4: in_features %d of a (%d, %d) linear is not a multiple of %d",
                       l->in_features, l->out_features, l->in_features, Q4_BLOCK);
    struct q4_rows r;
    int rc = q4_rows_alloc(&r, l->out_features, l->in_features, group, e);
    if (rc != 0)
        return rc;
    q4_quantize(w, &r);
    rc = pack(l, &r, e);
    q4_rows_fini(&r);
    return rc;
}

int linear_init_q4(struct linear *l, const struct q4_rows *r, const float *b, enum act act,
                   struct err *e)
{
    int rc = linear_begin(l, b, r->in, r->out, DTYPE_COMPUTE_INT4, act, e);
    if (rc == 0 && (r->group <= 0 || r->group % Q4_BLOCK != 0 || r->in % r->group != 0))
        rc = err_set(e, ERR_INVALID, "4-bit weights (%d, %d): group size %d", r->out, r->in,
                     r->group);
    if (rc == 0)
        rc = pack(l, r, e);
    if (rc != 0)
        linear_fini(l);
    return rc;
}

/* ---- the kernel: y[m, n] for rows m of x and output rows [n0, n1) ---- */

/* One block of 32 packed weights as floats minus the zero point, w[0..31] (plain loop). */
static void unpack_block(const uint8_t *p, float z, float *w)
{
    for (int j = 0; j < Q4_BLOCK / 2; j++) {
        w[j] = (float)(p[j] & 15) - z;
        w[j + Q4_BLOCK / 2] = (float)(p[j] >> 4) - z;
    }
}

static void rows_plain(const struct linear *l, const float *x, const float *xs, float *y, int M,
                       int n0, int n1)
{
    (void)xs;
    int K = l->in_features, N = l->out_features, G = l->group, ng = K / G;
    float w[Q4_BLOCK];
    for (int n = n0; n < n1; n++) {
        const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)n * (size_t)(K / 2);
        for (int m = 0; m < M; m++) {
            const float *xm = x + (size_t)m * (size_t)K;
            float acc = 0.0f;
            for (int g = 0; g < ng; g++) {
                float z = (float)l->w_zeros[(size_t)n * (size_t)ng + (size_t)g], ga = 0.0f;
                for (int b = g * G; b < (g + 1) * G; b += Q4_BLOCK) {
                    unpack_block(qr + b / 2, z, w);
                    for (int j = 0; j < Q4_BLOCK; j++)
                        ga += xm[b + j] * w[j];
                }
                acc += l->w_scales[(size_t)n * (size_t)ng + (size_t)g] * ga;
            }
            y[(size_t)m * (size_t)N + (size_t)n] = acc;
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "ops/simd.h"

#define AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

/* Row n against MB (1 or 2) rows of x at xm (stride K): four accumulators per x row within a
 * group (independent FMA chains), scaled into acc at the group's end. */
AVX2 void dot_avx2(const struct linear *l, int n, const float *xm, float *out, const int MB)
{
    int K = l->in_features, G = l->group, ng = K / G;
    const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)n * (size_t)(K / 2);
    const float *sc = l->w_scales + (size_t)n * (size_t)ng;
    const uint8_t *zr = l->w_zeros + (size_t)n * (size_t)ng;
    const __m128i mask = _mm_set1_epi8(15);
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int g = 0; g < ng; g++) {
        const __m256 z = _mm256_set1_ps((float)zr[g]);
        __m256 a[2][4];
        for (int m = 0; m < MB; m++)
            for (int j = 0; j < 4; j++)
                a[m][j] = _mm256_setzero_ps();
        for (int b = g * G; b < (g + 1) * G; b += Q4_BLOCK) {
            __m128i raw = _mm_loadu_si128((const __m128i *)(qr + b / 2));
            __m128i lo = _mm_and_si128(raw, mask), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), mask);
            __m256 w[4] = {
                _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), z),
                _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), z),
                _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), z),
                _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), z),
            };
            for (int m = 0; m < MB; m++)
                for (int j = 0; j < 4; j++)
                    a[m][j] = _mm256_fmadd_ps(
                        _mm256_loadu_ps(xm + (size_t)m * (size_t)K + b + 8 * j), w[j], a[m][j]);
        }
        const __m256 s = _mm256_set1_ps(sc[g]);
        for (int m = 0; m < MB; m++)
            acc[m] = _mm256_fmadd_ps(
                s, _mm256_add_ps(_mm256_add_ps(a[m][0], a[m][1]), _mm256_add_ps(a[m][2], a[m][3])),
                acc[m]);
    }
    for (int m = 0; m < MB; m++)
        out[m] = hsum_avx2(acc[m]);
}

__attribute__((target("avx2,fma"))) static void
rows_avx2(const struct linear *l, const float *x, const float *xs, float *y, int M, int n0, int n1)
{
    (void)xs;
    int K = l->in_features, N = l->out_features;
    float out[2] = {0.0f, 0.0f};
    for (int m = 0; m < M; m += 2) {
        const float *xm = x + (size_t)m * (size_t)K;
        for (int n = n0; n < n1; n++) {
            if (M - m >= 2)
                dot_avx2(l, n, xm, out, 2);
            else
                dot_avx2(l, n, xm, out, 1);
            for (int i = 0; i < 2 && m + i < M; i++)
                y[(size_t)(m + i) * (size_t)N + (size_t)n] = out[i];
        }
    }
}

/* The AVX-512 kernel takes the zero point out of the inner loop: per group,
 * sum_k x_k s (q_k - z) = s (sum_k x_k q_k - z sum_k x_k), with the sums of x per group (xs,
 * (M, K / group)) made once per call. 16 codes become 16 floats in one widening and one
 * conversion: half the instructions per weight of the AVX2 loop, which is bound by them, not
 * by memory, at one or two tokens. */
#define AVX512 __attribute__((target("avx512f"), always_inline)) static inline

/* Row n against MB (1 or 2) rows of x at xm (stride K), group sums at xsm (stride ng). */
AVX512 void dot_avx512(const struct linear *l, int n, const float *xm, const float *xsm, float *out,
                       const int MB)
{
    int K = l->in_features, G = l->group, ng = K / G;
    const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)n * (size_t)(K / 2);
    const float *sc = l->w_scales + (size_t)n * (size_t)ng;
    const uint8_t *zr = l->w_zeros + (size_t)n * (size_t)ng;
    const __m128i mask = _mm_set1_epi8(15);
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    float corr[2] = {0.0f, 0.0f}; /* sum over groups of s z sum(x) */
    for (int g = 0; g < ng; g++) {
        __m512 a[2][2] = {{_mm512_setzero_ps(), _mm512_setzero_ps()},
                          {_mm512_setzero_ps(), _mm512_setzero_ps()}};
        for (int b = g * G; b < (g + 1) * G; b += Q4_BLOCK) {
            __m128i raw = _mm_loadu_si128((const __m128i *)(qr + b / 2));
            __m128i lo = _mm_and_si128(raw, mask), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), mask);
            __m512 wl = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)); /* q[b .. b+15] */
            __m512 wh = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)); /* q[b+16 .. b+31] */
            for (int m = 0; m < MB; m++) {
                const float *xr = xm + (size_t)m * (size_t)K + b;
                a[m][0] = _mm512_fmadd_ps(_mm512_loadu_ps(xr), wl, a[m][0]);
                a[m][1] = _mm512_fmadd_ps(_mm512_loadu_ps(xr + 16), wh, a[m][1]);
            }
        }
        const __m512 s = _mm512_set1_ps(sc[g]);
        for (int m = 0; m < MB; m++) {
            acc[m] = _mm512_fmadd_ps(s, _mm512_add_ps(a[m][0], a[m][1]), acc[m]);
            corr[m] += sc[g] * (float)zr[g] * xsm[(size_t)m * (size_t)ng + (size_t)g];
        }
    }
    for (int m = 0; m < MB; m++)
        out[m] = _mm512_reduce_add_ps(acc[m]) - corr[m];
}

__attribute__((target("avx512f"))) static void rows_avx512(const struct linear *l, const float *x,
                                                           const float *xs, float *y, int M, int n0,
                                                           int n1)
{
    int K = l->in_features, N = l->out_features, ng = K / l->group;
    float out[2] = {0.0f, 0.0f};
    for (int m = 0; m < M; m += 2) {
        const float *xm = x + (size_t)m * (size_t)K, *xsm = xs + (size_t)m * (size_t)ng;
        for (int n = n0; n < n1; n++) {
            if (M - m >= 2)
                dot_avx512(l, n, xm, xsm, out, 2);
            else
                dot_avx512(l, n, xm, xsm, out, 1);
            for (int i = 0; i < 2 && m + i < M; i++)
                y[(size_t)(m + i) * (size_t)N + (size_t)n] = out[i];
        }
    }
}

#endif

/* Forces the plain loop (tests compare the two). */
static int plain_only;
/* Whether many-token calls take the s8 GEMM path (the perplexity tool turns it off to score
 * the weight-only arithmetic). */
static int gemm_on = 1;

void q4_set_plain(int on)
{
    plain_only = on;
}

void q4_set_gemm(int on)
{
    gemm_on = on;
}

static int gemm_min_m = Q4_GEMM_MIN_M;

void q4_set_gemm_min(int m)
{
    gemm_min_m = m;
}

/* Whether few-token calls keep the f32 weight-only kernel (exact "dequantize then f32") instead
 * of matmul_q4_dot.c's s8 activations. */
static int exact_on;

void q4_set_exact(int on)
{
    exact_on = on;
}

/* xs (M, K / group): the sums of x over each group, for the AVX-512 kernel. */
static void group_sums(const struct linear *l, const float *x, float *xs, int M)
{
    int K = l->in_features, G = l->group, ng = K / G;
    for (int m = 0; m < M; m++)
        for (int g = 0; g < ng; g++) {
            const float *xg = x + (size_t)m * (size_t)K + (size_t)g * (size_t)G;
            float sum = 0.0f;
            for (int k = 0; k < G; k++)
                sum += xg[k];
            xs[(size_t)m * (size_t)ng + (size_t)g] = sum;
        }
}

typedef void (*rows_fn)(const struct linear *l, const float *x, const float *xs, float *y, int M,
                        int n0, int n1);

/* matmul_q4_dot.c's rows: xs is its scratch (q4_dot_quantize made it from x). */
static void rows_dot(const struct linear *l, const float *x, const float *xs, float *y, int M,
                     int n0, int n1)
{
    (void)x;
    q4_dot_rows(l, xs, M, y, n0, n1);
}

/* The kernel this CPU runs (plain when the tests ask for it); *sums: it needs group_sums. */
static rows_fn pick_rows(int *sums)
{
    *sums = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (!plain_only && cpu_avx512f()) {
        *sums = 1;
        return rows_avx512;
    }
    if (!plain_only && cpu_avx2_fma())
        return rows_avx2;
#endif
    return rows_plain;
}

/* y (M, N) = x (M, K) W^T, output rows split over the context's OpenMP threads; xs as
 * group_sums made it when the kernel needs it. */
static void q4_matmul(const struct linear *l, rows_fn rows, const float *x, const float *xs,
                      float *y, int M)
{
    int N = l->out_features;
    int n_tasks = (N + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    double work = (double)M * N * (l->in_features / Q4_BLOCK);
    /* the s8 kernel is near the memory bound at one token: both threads' bandwidth helps from
     * the smallest of a decoder's linears on */
    int par = rows == rows_dot ? N >= 2 * ROWS_PER_TASK && work >= PAR_MIN_WORK / 8
                               : work >= PAR_MIN_WORK;
    /* one contiguous run of tasks per thread, in one call (the AMX kernel configures its
     * tiles once a call) */
#pragma omp parallel if (par)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int t0 = n_tasks * id / nt, t1 = n_tasks * (id + 1) / nt;
        int n1 = t1 * ROWS_PER_TASK < N ? t1 * ROWS_PER_TASK : N;
        if (t1 > t0)
            rows(l, x, xs, y, M, t0 * ROWS_PER_TASK, n1);
    }
}

static int q4_forward(const struct linear *l, struct dnn_ctx *ctx, const float *x, float *y, int M,
                      int add, struct err *e)
{
    if (gemm_on && !plain_only && M >= gemm_min_m)
        return q4_gemm_forward(l, ctx, x, y, M, add, e);
    size_t n = (size_t)M * (size_t)l->out_features;
    size_t n_out = add ? (n + 15) & ~(size_t)15 : 0,
           n_xs = (size_t)M * (size_t)(l->in_features / l->group);
    int sums = 0, dot = !exact_on;
    rows_fn rows = dot ? rows_dot : pick_rows(&sums);
    size_t n_aux = dot    ? (q4_dot_scratch(l, M) + sizeof(float) - 1) / sizeof(float)
                   : sums ? n_xs
                          : 0;
    float *buf = NULL; /* (n_out) the product before the residual add, then (M, ng) group sums
                          or the s8 kernel's scratch */
    if ((n_out || n_aux) && !(buf = dnn_scratch(ctx, (n_out + n_aux) * sizeof *buf, e)))
        return e ? e->kind : ERR_NOMEM;
    float *out = add ? buf : y, *xs = n_aux ? buf + n_out : NULL;
    if (dot)
        q4_dot_quantize(l, x, M, xs);
    else if (xs)
        group_sums(l, x, xs, M);
    q4_matmul(l, rows, x, xs, out, M);
    if (l->bias)
        for (size_t i = 0; i < n; i++)
            out[i] += l->bias[i % (size_t)l->out_features];
    if (l->act != ACT_NONE) {
        int rc = act_forward(ctx, l->act, out, n, e);
        if (rc != 0)
            return rc;
    }
    if (add)
        for (size_t i = 0; i < n; i++)
            y[i] += out[i];
    return 0;
}

const struct linear_kind linear_kind_q4 = {q4_init, q4_forward};
