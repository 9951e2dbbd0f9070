/* matmul_q4_dot: INT4's few-token forward (below Q4_GEMM_MIN_M tokens a step, i.e. decoding),
 * llama.cpp's arithmetic: each row of x quantized to s8 per group of the weight's group size
 * (sx = max |x| / 127 over the group, xq = rint(x * 127 / max |x|)), the group's sum of xq kept
 * for the zero-point term, then per output row integer dot products of the u4 codes with xq
 * (AVX512-VNNI vpdpbusd; AVX2 vpmaddubsw + vpmaddwd without VNNI; a plain loop elsewhere and in
 * the tests; from Q4_AMX_MIN_M rows of x on, AMX tdpbusd tiles of 16 output rows by 16 rows of
 * x, groups of multiples of 128), each group's s32 sums scaled by scale_w * sx into an f32
 * accumulator:
 *   y[m, n] = sum_g scale_w[n, g] sx[m, g] (sum_{k in g} q[n, k] xq[m, k] - z[n, g] sum_{k in g}
 * xq[m, k]). The M rows of x share each load of the codes (one row of x: four rows of codes share
 * each load of x). The f32 weight-only kernel (matmul_q4.c) stays for q4_set_exact(1) (the oracle
 * tests against transformers).
 *
 * The codes' layout (matmul_q4.c): per 32 weights 16 bytes, byte j holding q[j] low and q[16 + j]
 * high. The kernels take 128 weights (64 bytes) a chunk: the low nibbles are the 4 blocks' first
 * halves, the high ones their second halves, so x is permuted once per call to match: per chunk
 * 64 bytes of xq for the low nibbles (block j's x[0..15] at j * 16), then 64 for the high ones.
 * Every 128-bit lane of a vpdpbusd result then holds one block's partial sums, scaled by that
 * block's scale_w * sx (sxv: sx expanded per lane, made once per call). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops/amx.h"
#include "ops/cpu.h"
#include "ops/linear_kind.h"
#include "ops/ops.h"

#define CHUNK 128 /* weights per kernel step: 64 bytes of codes */
#define MB 4      /* rows of x per pass over a weight row */
#define PF_ROWS 8 /* rows of codes the M = 1 kernel prefetches ahead (bench-q4: 10-20% faster) */

/* The per-call scratch, carved from one 64-byte aligned buffer. */
struct xq {
    int M, K, G, ng, nch;
    float *sxv;  /* (M, nch, 16): sx of the block each 32-bit lane of a chunk's result holds */
    float *sx;   /* (M, ng) */
    float *xz;   /* (M, ng): sx * the group's sum of xq (the zero point's term) */
    int32_t *sq; /* (M, ng): the group's sum of xq */
    int8_t *xp;  /* (M, nch * 128): xq permuted as the codes are packed */
    int8_t *xb;  /* the AMX kernel's B tiles: (mblk, nch, 2, 16, 64), see amx_layout */
    float *sxt;  /* (mblk, ng, 16): sx with the 16 rows of a block of x side by side */
    float *xzt;  /* (mblk, ng, 16): xz likewise */
};

static size_t align64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

size_t q4_dot_scratch(const struct linear *l, int M)
{
    size_t nch = (size_t)(l->in_features + CHUNK - 1) / CHUNK,
           ng = (size_t)(l->in_features / l->group);
    return align64((size_t)M * nch * 16 * sizeof(float)) + 3 * align64((size_t)M * ng * 4) +
           align64((size_t)M * nch * CHUNK) + (size_t)(M + 15) / 16 * (nch * 2048 + ng * 128) + 64;
}

static void carve(struct xq *q, const struct linear *l, int M, void *scratch)
{
    q->M = M;
    q->K = l->in_features;
    q->G = l->group;
    q->ng = q->K / q->G;
    q->nch = (q->K + CHUNK - 1) / CHUNK;
    char *p = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    q->sxv = (float *)p;
    p += align64((size_t)M * (size_t)q->nch * 16 * sizeof(float));
    q->sx = (float *)p;
    p += align64((size_t)M * (size_t)q->ng * 4);
    q->xz = (float *)p;
    p += align64((size_t)M * (size_t)q->ng * 4);
    q->sq = (int32_t *)p;
    p += align64((size_t)M * (size_t)q->ng * 4);
    q->xp = (int8_t *)p;
    p += align64((size_t)M * (size_t)q->nch * CHUNK);
    size_t mblk = (size_t)(M + 15) / 16;
    q->xb = (int8_t *)p;
    p += mblk * (size_t)q->nch * 2048;
    q->sxt = (float *)p;
    p += mblk * (size_t)q->ng * 64;
    q->xzt = (float *)p;
}

/* Where x[k] of a row goes in its permuted row. */
static size_t perm_at(int k)
{
    int c = k / CHUNK, r = k % CHUNK, j = r / 32, t = r % 32;
    return (size_t)c * CHUNK + (size_t)(t < 16 ? j * 16 + t : 64 + j * 16 + t - 16);
}

/* One group of G values of x: its xq at their permuted places (row xp), sx and the sum of xq.
 * A group holding an inf or NaN gets xq = 0 and sx = NaN, so its outputs are NaN (as the f32
 * product's would be inf or NaN) and no NaN meets an int conversion. */
static void quantize_group(const float *x, int k0, int G, int8_t *xp, float *sx, int32_t *sq)
{
    float amax = 0.0f;
    int finite = 1;
    for (int k = 0; k < G; k++) {
        finite &= isfinite(x[k0 + k]) ? 1 : 0;
        amax = fmaxf(amax, fabsf(x[k0 + k]));
    }
    float inv = finite && amax > 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int k = 0; k < G; k++) {
        float v = finite ? rintf(x[k0 + k] * inv) : 0.0f;
        int qv = v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v;
        xp[perm_at(k0 + k)] = (int8_t)qv;
        sum += qv;
    }
    *sx = finite ? amax / 127.0f : NAN;
    *sq = sum;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* quantize_group with AVX-512, 16 values a step (G a multiple of 32, so each run of 16 lands
 * contiguous in the permuted row): the same xq, sx and sum bit for bit (vcvtps2dq rounds to
 * nearest even as rintf does in the default rounding mode). */
__attribute__((target("avx512f"))) static void
quantize_group_avx512(const float *x, int k0, int G, int8_t *xp, float *sx, int32_t *sq)
{
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
    const __m512 inf = _mm512_set1_ps(INFINITY);
    __m512 amax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int k = 0; k < G; k += 16) {
        __m512 a = _mm512_castsi512_ps(
            _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + k0 + k)), absmask));
        bad |= _mm512_cmp_ps_mask(a, inf, _CMP_NLT_UQ); /* inf or NaN */
        amax = _mm512_max_ps(amax, a);
    }
    float am = _mm512_reduce_max_ps(amax);
    if (bad) {
        for (int k = 0; k < G; k += 16)
            _mm_storeu_si128((__m128i *)(xp + perm_at(k0 + k)), _mm_setzero_si128());
        *sx = NAN;
        *sq = 0;
        return;
    }
    const __m512 inv = _mm512_set1_ps(am > 0.0f ? 127.0f / am : 0.0f);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    __m512i sum = _mm512_setzero_si512();
    for (int k = 0; k < G; k += 16) {
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k0 + k), inv));
        q = _mm512_min_epi32(_mm512_max_epi32(q, lo), hi);
        sum = _mm512_add_epi32(sum, q);
        _mm_storeu_si128((__m128i *)(xp + perm_at(k0 + k)), _mm512_cvtepi32_epi8(q));
    }
    *sx = am / 127.0f;
    *sq = _mm512_reduce_add_epi32(sum);
}
#endif

/* The AMX kernel's B operands from xp: per block of 16 rows of x and per chunk, the 64 values of
 * x meeting the low nibbles and the 64 meeting the high ones, each as a B tile of 16 rows of 4
 * consecutive k (byte r * 64 + mm * 4 + i: row mm of the block, k = 4 r + i of that half), so
 * that one tdpbusd with 16 rows of codes as A gives C[n][mm]; sx and xz likewise with the 16
 * rows of a block side by side. Rows past M are zero. */
static void amx_layout(const struct xq *q)
{
    size_t mblk = (size_t)(q->M + 15) / 16, kp = (size_t)q->nch * CHUNK, nch = (size_t)q->nch;
    size_t ng = (size_t)q->ng;
    memset(q->xb, 0, mblk * nch * 2048);
    memset(q->sxt, 0, mblk * ng * 16 * sizeof *q->sxt);
    memset(q->xzt, 0, mblk * ng * 16 * sizeof *q->xzt);
    for (int m = 0; m < q->M; m++) {
        size_t b = (size_t)m / 16, mm = (size_t)m % 16;
        const int8_t *xr = q->xp + (size_t)m * kp;
        for (size_t c = 0; c < nch; c++)
            for (size_t h = 0; h < 2; h++) {
                int8_t *t = q->xb + ((b * nch + c) * 2 + h) * 1024 + mm * 4;
                const int8_t *src = xr + c * CHUNK + h * 64;
                for (size_t r = 0; r < 16; r++)
                    memcpy(t + r * 64, src + 4 * r, 4);
            }
        for (size_t g = 0; g < ng; g++) {
            q->sxt[(b * ng + g) * 16 + mm] = q->sx[(size_t)m * ng + g];
            q->xzt[(b * ng + g) * 16 + mm] = q->xz[(size_t)m * ng + g];
        }
    }
}

static int uses_amx(const struct linear *l, int M);

void q4_dot_quantize(const struct linear *l, const float *x, int M, void *scratch)
{
    struct xq q;
    carve(&q, l, M, scratch);
    size_t kp = (size_t)q.nch * CHUNK;
    memset(q.xp, 0, (size_t)M * kp); /* the last chunk's tail past K */
    for (int m = 0; m < M; m++) {
        const float *xm = x + (size_t)m * (size_t)q.K;
        float *sx = q.sx + (size_t)m * (size_t)q.ng;
        for (int g = 0; g < q.ng; g++) {
            size_t i = (size_t)m * (size_t)q.ng + (size_t)g;
#if defined(__x86_64__) && defined(__GNUC__)
            if (cpu_avx512f())
                quantize_group_avx512(xm, g * q.G, q.G, q.xp + (size_t)m * kp, sx + g, q.sq + i);
            else
#endif
                quantize_group(xm, g * q.G, q.G, q.xp + (size_t)m * kp, sx + g, q.sq + i);
            q.xz[i] = sx[g] * (float)q.sq[i];
        }
        for (int c = 0; c < q.nch; c++)
            for (int lane = 0; lane < 16; lane++) {
                int blk = c * 4 + lane / 4;
                q.sxv[((size_t)m * (size_t)q.nch + (size_t)c) * 16 + (size_t)lane] =
                    blk * 32 < q.K ? sx[blk * 32 / q.G] : 0.0f;
            }
    }
    if (uses_amx(l, M))
        amx_layout(&q);
}

/* sum over groups of scale_w z sx sum(xq), for row n and x row m. */
static float zero_term(const struct linear *l, const struct xq *q, int n, int m)
{
    const float *sw = l->w_scales + (size_t)n * (size_t)q->ng,
                *xz = q->xz + (size_t)m * (size_t)q->ng;
    const uint8_t *zr = l->w_zeros + (size_t)n * (size_t)q->ng;
    float corr = 0.0f;
    for (int g = 0; g < q->ng; g++)
        corr += sw[g] * (float)zr[g] * xz[g];
    return corr;
}

static void rows_plain(const struct linear *l, const struct xq *q, float *y, int n0, int n1)
{
    int K = q->K, G = q->G, ng = q->ng, N = l->out_features;
    size_t kp = (size_t)q->nch * CHUNK;
    for (int n = n0; n < n1; n++) {
        const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)n * (size_t)(K / 2);
        const float *sw = l->w_scales + (size_t)n * (size_t)ng;
        for (int m = 0; m < q->M; m++) {
            const int8_t *xp = q->xp + (size_t)m * kp;
            float acc = 0.0f;
            for (int g = 0; g < ng; g++) {
                int32_t dot = 0;
                for (int k = g * G; k < (g + 1) * G; k++) {
                    int b = k / 32, t = k % 32;
                    uint8_t byte = qr[b * 16 + t % 16];
                    dot += (t < 16 ? byte & 15 : byte >> 4) * xp[perm_at(k)];
                }
                acc += sw[g] * q->sx[(size_t)m * (size_t)ng + (size_t)g] * (float)dot;
            }
            y[(size_t)m * (size_t)N + (size_t)n] = acc - zero_term(l, q, n, m);
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "ops/simd.h"

/* ---- AVX2: vpmaddubsw (u8 x s8 -> s16 pairs, at most 2 * 15 * 127: no saturation) ---- */

#define AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline

/* Row n against rows m0 .. m0 + mb - 1 of x. */
AVX2 void dot_avx2(const struct linear *l, const struct xq *q, int n, int m0, float *out,
                   const int mb)
{
    int K = q->K, G = q->G, nb = K / 32;
    size_t kp = (size_t)q->nch * CHUNK;
    const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)n * (size_t)(K / 2);
    const float *sw = l->w_scales + (size_t)n * (size_t)q->ng;
    const __m256i mask = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256 acc[MB];
    for (int m = 0; m < mb; m++)
        acc[m] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b += 2) { /* two blocks: 32 bytes of codes */
        __m256i raw = b + 1 < nb
                          ? _mm256_loadu_si256((const __m256i *)(qr + b * 16))
                          : _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(qr + b * 16)));
        __m256i lo = _mm256_and_si256(raw, mask),
                hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask);
        int ga = b * 32 / G, gb = b + 1 < nb ? (b + 1) * 32 / G : ga;
        __m256 swv = _mm256_set_m128(_mm_set1_ps(sw[gb]), _mm_set1_ps(sw[ga]));
        size_t at =
            (size_t)(b / 4) * CHUNK + (size_t)(b % 4) * 16; /* b is even: 0 or 2 in its chunk */
        size_t sat = (size_t)(b / 4) * 16 + (size_t)(b % 4) * 4;
        for (int m = 0; m < mb; m++) {
            const int8_t *xp = q->xp + (size_t)(m0 + m) * kp + at;
            __m256i s16 = _mm256_add_epi16(
                _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)xp)),
                _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xp + 64))));
            __m256 d = _mm256_mul_ps(
                swv, _mm256_loadu_ps(q->sxv + (size_t)(m0 + m) * (size_t)q->nch * 16 + sat));
            acc[m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s16, ones)), d, acc[m]);
        }
    }
    for (int m = 0; m < mb; m++)
        out[m] = hsum_avx2(acc[m]);
}

__attribute__((target("avx2,fma"))) static void
rows_avx2(const struct linear *l, const struct xq *q, float *y, int n0, int n1)
{
    int N = l->out_features;
    float out[MB];
    for (int m0 = 0; m0 < q->M; m0 += MB) {
        int mb = q->M - m0 < MB ? q->M - m0 : MB;
        for (int n = n0; n < n1; n++) {
            switch (mb) { /* constant mb: the accumulators stay in registers */
            case 1: dot_avx2(l, q, n, m0, out, 1); break;
            case 2: dot_avx2(l, q, n, m0, out, 2); break;
            case 3: dot_avx2(l, q, n, m0, out, 3); break;
            default: dot_avx2(l, q, n, m0, out, 4); break;
            }
            for (int i = 0; i < mb; i++)
                y[(size_t)(m0 + i) * (size_t)N + (size_t)n] = out[i] - zero_term(l, q, n, m0 + i);
        }
    }
}

/* ---- AVX512-VNNI: vpdpbusd, 128 weights per step ---- */

#define VNNI                                                                                       \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"), always_inline)) static inline

/* The scale_w of each 32-bit lane of chunk c's result (sw: one output row's scales). */
VNNI __m512 chunk_scales(const float *sw, int c, int G, int ng, __m512i idx)
{
    const int gpc = G < CHUNK ? CHUNK / G : 1;
    if (gpc == 1)
        return _mm512_set1_ps(sw[(size_t)c * CHUNK / (size_t)G]);
    int cnt = ng - c * gpc < gpc ? ng - c * gpc : gpc;
    __m128 s4 = _mm_maskz_loadu_ps((__mmask8)((1u << cnt) - 1), sw + (size_t)c * (size_t)gpc);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s4));
}

VNNI __m512i chunk_index(int G)
{
    return G == 32   ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
           : G == 64 ? _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)
                     : _mm512_setzero_si512();
}

/* One row of x (M = 1) against output rows n .. n + 3: the loads of x and sx shared by four
 * rows of codes, four independent accumulators. */
VNNI void dot_vnni_n4(const struct linear *l, const struct xq *q, int n, float *out)
{
    int K = q->K, G = q->G, ng = q->ng, nch = q->nch;
    size_t rb = (size_t)(K / 2);
    const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)n * rb;
    const float *sw = l->w_scales + (size_t)n * (size_t)ng;
    const __m512i mask = _mm512_set1_epi8(15), idx = chunk_index(G);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (int c = 0; c < nch; c++) {
        int bytes = (K - c * CHUNK) / 2;
        __mmask64 km = bytes >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << bytes) - 1;
        __m512i x0 = _mm512_load_si512(q->xp + (size_t)c * CHUNK);
        __m512i x1 = _mm512_load_si512(q->xp + (size_t)c * CHUNK + 64);
        __m512 sx = _mm512_load_ps(q->sxv + (size_t)c * 16);
        for (int r = 0; r < 4; r++) {
            /* PF_ROWS rows ahead (past the last row the hint reads nothing: no fault, and the
             * address is made as an integer, not a pointer past the weights) */
            uintptr_t ahead = (uintptr_t)qr + (size_t)(r + PF_ROWS) * rb + (size_t)c * 64;
            _mm_prefetch((const char *)ahead, _MM_HINT_T0);
            __m512i raw = _mm512_maskz_loadu_epi8(km, qr + (size_t)r * rb + (size_t)c * 64);
            __m512i lo = _mm512_and_si512(raw, mask);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
            __m512i sd = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, x0);
            sd = _mm512_dpbusd_epi32(sd, hi, x1);
            __m512 d = _mm512_mul_ps(chunk_scales(sw + (size_t)r * (size_t)ng, c, G, ng, idx), sx);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sd), d, acc[r]);
        }
    }
    const uint8_t *zr = l->w_zeros + (size_t)n * (size_t)ng;
    for (int g = 0; g < ng; g += 16) {
        __mmask16 k = ng - g >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (ng - g)) - 1);
        __m512 xz = _mm512_maskz_loadu_ps(k, q->xz + (size_t)g);
        for (int r = 0; r < 4; r++) {
            size_t at = (size_t)r * (size_t)ng + (size_t)g;
            __m512 z = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, zr + at)));
            __m512 swz = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, sw + at), z);
            acc[r] = _mm512_fnmadd_ps(swz, xz, acc[r]);
        }
    }
    for (int r = 0; r < 4; r++)
        out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* Row n against rows m0 .. m0 + mb - 1 of x, the zero points' term included; G 32 or 64 (a chunk
 * holds 4 or 2 groups: idx spreads their scales over the lanes) or a multiple of 128 (one group a
 * chunk). */
VNNI void dot_vnni(const struct linear *l, const struct xq *q, int n, int m0, float *out,
                   const int mb)
{
    int K = q->K, G = q->G, ng = q->ng, nch = q->nch;
    size_t kp = (size_t)nch * CHUNK;
    const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)n * (size_t)(K / 2);
    const float *sw = l->w_scales + (size_t)n * (size_t)ng;
    const __m512i mask = _mm512_set1_epi8(15);
    const __m512i idx = chunk_index(G);
    __m512 acc[MB];
    for (int m = 0; m < mb; m++)
        acc[m] = _mm512_setzero_ps();
    for (int c = 0; c < nch; c++) {
        int bytes = (K - c * CHUNK) / 2;
        __m512i raw =
            bytes >= 64 ? _mm512_loadu_si512(qr + (size_t)c * 64)
                        : _mm512_maskz_loadu_epi8(((__mmask64)1 << bytes) - 1, qr + (size_t)c * 64);
        __m512i lo = _mm512_and_si512(raw, mask),
                hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask);
        __m512 swv = chunk_scales(sw, c, G, ng, idx);
        for (int m = 0; m < mb; m++) {
            const int8_t *xp = q->xp + (size_t)(m0 + m) * kp + (size_t)c * CHUNK;
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(xp));
            s = _mm512_dpbusd_epi32(s, hi, _mm512_load_si512(xp + 64));
            __m512 d = _mm512_mul_ps(
                swv, _mm512_load_ps(q->sxv + ((size_t)(m0 + m) * (size_t)nch + (size_t)c) * 16));
            acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), d, acc[m]);
        }
    }
    /* the zero points' term, 16 groups a step, into the same accumulators */
    const uint8_t *zr = l->w_zeros + (size_t)n * (size_t)ng;
    for (int g = 0; g < ng; g += 16) {
        __mmask16 k = ng - g >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (ng - g)) - 1);
        __m512 swz = _mm512_mul_ps(
            _mm512_maskz_loadu_ps(k, sw + g),
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, zr + g))));
        for (int m = 0; m < mb; m++)
            acc[m] = _mm512_fnmadd_ps(
                swz, _mm512_maskz_loadu_ps(k, q->xz + (size_t)(m0 + m) * (size_t)ng + (size_t)g),
                acc[m]);
    }
    for (int m = 0; m < mb; m++)
        out[m] = _mm512_reduce_add_ps(acc[m]);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void
rows_vnni(const struct linear *l, const struct xq *q, float *y, int n0, int n1)
{
    int N = l->out_features;
    float out[MB];
    if (q->M == 1) { /* four output rows a pass */
        int n = n0;
        for (; n + 4 <= n1; n += 4)
            dot_vnni_n4(l, q, n, y + n);
        for (; n < n1; n++)
            dot_vnni(l, q, n, 0, y + n, 1);
        return;
    }
    for (int m0 = 0; m0 < q->M; m0 += MB) {
        int mb = q->M - m0 < MB ? q->M - m0 : MB;
        for (int n = n0; n < n1; n++) {
            switch (mb) {
            case 1: dot_vnni(l, q, n, m0, out, 1); break;
            case 2: dot_vnni(l, q, n, m0, out, 2); break;
            case 3: dot_vnni(l, q, n, m0, out, 3); break;
            default: dot_vnni(l, q, n, m0, out, 4); break;
            }
            for (int i = 0; i < mb; i++)
                y[(size_t)(m0 + i) * (size_t)N + (size_t)n] = out[i];
        }
    }
}

/* ---- AMX: tdpbusd, 16 output rows by up to 32 rows of x by 128 weights per step ---- */

/* The codes are tdpbusd's unsigned operand, so they are A (rows: output rows n, 64 bytes of k
 * each: no transpose, only the nibbles split), x is B (amx_layout) and C[n][m] the s32 sum of
 * one chunk's half: per group the two halves of its chunks accumulate in C, then each row of C
 * (16 rows of x side by side) is scaled in f32: acc[n] += scale_w (sx cvt(C) - z xz). Groups of
 * multiples of 128 only (a chunk then holds one group). Tiles: 0, 1 A (low, high nibbles); 2, 3
 * B for rows 0..15 of x, 5, 6 for rows 16..31; 4, 7 C. */
#define AMX __attribute__((target("avx512f,avx512bw,avx512vl,amx-tile,amx-int8")))

/* Rows nt .. nt + rows - 1 of the codes, chunk ch, into a (low nibbles) and a + 1024 (high). */
AMX static inline void amx_unpack(const uint8_t *qr, size_t row_bytes, int rows, int ch, uint8_t *a)
{
    const __m512i mask = _mm512_set1_epi8(15);
    for (int i = 0; i < rows; i++) {
        __m512i raw = _mm512_loadu_si512(qr + (size_t)i * row_bytes + (size_t)ch * 64);
        _mm512_store_si512(a + i * 64, _mm512_and_si512(raw, mask));
        _mm512_store_si512(a + 1024 + i * 64, _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask));
    }
}

/* acc[i] += scale_w[n, g] (sxt cvt(c[i]) - z[n, g] xzt) for the rows of one C tile. */
AMX static inline void amx_scale(const struct linear *l, const struct xq *q, int nt, int rows,
                                 int g, int b, const int32_t *c, __m512 *acc)
{
    size_t at = ((size_t)b * (size_t)q->ng + (size_t)g) * 16;
    __m512 sx = _mm512_load_ps(q->sxt + at), xz = _mm512_load_ps(q->xzt + at);
    for (int i = 0; i < rows; i++) {
        size_t sg = (size_t)(nt + i) * (size_t)q->ng + (size_t)g;
        __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + i * 16)), sx);
        t = _mm512_fnmadd_ps(_mm512_set1_ps((float)l->w_zeros[sg]), xz, t);
        acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(l->w_scales[sg]), t, acc[i]);
    }
}

AMX static inline void amx_config(void)
{
    _tile_loadconfig(&amx_cfg_16x64);
}

/* y[m][nt + i] = acc[i][m] for the rows of one C tile (rows of x b * 16 ..). */
AMX static inline void amx_store(const struct xq *q, const __m512 *acc, int rows, int b, int nt,
                                 float *y, int N)
{
    _Alignas(64) float out[16][16];
    for (int i = 0; i < rows; i++)
        _mm512_store_ps(out[i], acc[i]);
    for (int mm = 0; mm < 16 && b * 16 + mm < q->M; mm++)
        for (int i = 0; i < rows; i++)
            y[(size_t)(b * 16 + mm) * (size_t)N + (size_t)(nt + i)] = out[i][mm];
}

/* The bytes of the next block of `step` rows of codes after row nt (0: none before n1). */
static inline size_t next_block(int nt, int n1, int step, size_t row_bytes)
{
    int rows = n1 - nt - step < step ? n1 - nt - step : step;
    return rows > 0 ? (size_t)rows * row_bytes : 0;
}

/* Group g's share of prefetching the `bytes` at p (the next block's codes, read next pass). */
AMX static inline void prefetch_share(const uint8_t *p, size_t bytes, int g, int ng)
{
    size_t lines = bytes / 64, per_g = (lines + (size_t)ng - 1) / (size_t)ng;
    for (size_t li = (size_t)g * per_g; li < (size_t)(g + 1) * per_g && li < lines; li++)
        _mm_prefetch((const char *)(p + li * 64), _MM_HINT_T0);
}

/* Up to 16 rows of x: two tiles of 16 output rows a pass share the B tiles (0-1 and 2-3 the
 * two A tiles' low and high nibbles, 4-5 B, 6-7 C), and the codes are unpacked into buffers
 * alternating by group, so that one group's tile stores and f32 scaling overlap the next
 * group's unpacking and tdpbusd. */
AMX static void rows_amx16(const struct linear *l, const struct xq *q, float *y, int n0, int n1)
{
    int N = l->out_features, cpg = q->G / CHUNK;
    size_t row_bytes = (size_t)q->K / 2;
    amx_config();
    _Alignas(64) uint8_t a[2][2][2048];
    _Alignas(64) int32_t c[2][2][256];
    __m512 acc[2][16];
    for (int nt = n0; nt < n1; nt += 32) {
        int r0 = n1 - nt < 16 ? n1 - nt : 16, r1 = n1 - nt - 16 < 16 ? n1 - nt - 16 : 16;
        r1 = r1 < 0 ? 0 : r1;
        const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)nt * row_bytes;
        if (r0 < 16 || r1 < 16)
            memset(a, 0, sizeof a);
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < 16; i++)
                acc[t][i] = _mm512_setzero_ps();
        /* the next pair of tiles' codes (32 rows, contiguous), a share per group: the 32
         * strided rows read here are not a pattern the hardware prefetcher follows */
        size_t next = next_block(nt, n1, 32, row_bytes);
        for (int g = 0; g < q->ng; g++) {
            uint8_t(*ab)[2048] = a[g & 1];
            int32_t(*cb)[256] = c[g & 1];
            prefetch_share(qr + (next ? 32 * row_bytes : 0), next, g, q->ng);
            _tile_zero(6);
            _tile_zero(7);
            for (int ch = g * cpg; ch < (g + 1) * cpg; ch++) {
                amx_unpack(qr, row_bytes, r0, ch, ab[0]);
                if (r1 > 0) /* (no pointer past the weights' last row) */
                    amx_unpack(qr + 16 * row_bytes, row_bytes, r1, ch, ab[1]);
                const int8_t *xb = q->xb + (size_t)ch * 2048;
                _tile_loadd(4, xb, 64);
                _tile_loadd(5, xb + 1024, 64);
                _tile_loadd(0, ab[0], 64);
                _tile_loadd(1, ab[0] + 1024, 64);
                _tile_loadd(2, ab[1], 64);
                _tile_loadd(3, ab[1] + 1024, 64);
                _tile_dpbusd(6, 0, 4);
                _tile_dpbusd(7, 2, 4);
                _tile_dpbusd(6, 1, 5);
                _tile_dpbusd(7, 3, 5);
            }
            _tile_stored(6, cb[0], 64);
            _tile_stored(7, cb[1], 64);
            amx_scale(l, q, nt, r0, g, 0, cb[0], acc[0]);
            amx_scale(l, q, nt + 16, r1, g, 0, cb[1], acc[1]);
        }
        amx_store(q, acc[0], r0, 0, nt, y, N);
        amx_store(q, acc[1], r1, 0, nt + 16, y, N);
    }
    _tile_release();
}

AMX static void rows_amx32(const struct linear *l, const struct xq *q, float *y, int n0, int n1)
{
    int N = l->out_features, nch = q->nch, cpg = q->G / CHUNK, two = q->M > 16;
    size_t row_bytes = (size_t)q->K / 2;
    amx_config();
    _Alignas(64) uint8_t a[2048];
    _Alignas(64) int32_t c[2][256];
    __m512 acc[2][16];
    for (int nt = n0; nt < n1; nt += 16) {
        int rows = n1 - nt < 16 ? n1 - nt : 16;
        const uint8_t *qr = (const uint8_t *)l->w_packed + (size_t)nt * row_bytes;
        if (rows < 16)
            memset(a, 0, sizeof a);
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 16; i++)
                acc[b][i] = _mm512_setzero_ps();
        size_t next = next_block(nt, n1, 16, row_bytes);
        for (int g = 0; g < q->ng; g++) {
            prefetch_share(qr + (next ? 16 * row_bytes : 0), next, g, q->ng);
            _tile_zero(4);
            _tile_zero(7);
            for (int ch = g * cpg; ch < (g + 1) * cpg; ch++) {
                amx_unpack(qr, row_bytes, rows, ch, a);
                const int8_t *xb = q->xb + (size_t)ch * 2048;
                _tile_loadd(0, a, 64);
                _tile_loadd(1, a + 1024, 64);
                _tile_loadd(2, xb, 64);
                _tile_loadd(3, xb + 1024, 64);
                _tile_dpbusd(4, 0, 2);
                _tile_dpbusd(4, 1, 3);
                if (two) {
                    xb += (size_t)nch * 2048;
                    _tile_loadd(5, xb, 64);
                    _tile_loadd(6, xb + 1024, 64);
                    _tile_dpbusd(7, 0, 5);
                    _tile_dpbusd(7, 1, 6);
                }
            }
            _tile_stored(4, c[0], 64);
            amx_scale(l, q, nt, rows, g, 0, c[0], acc[0]);
            if (two) {
                _tile_stored(7, c[1], 64);
                amx_scale(l, q, nt, rows, g, 1, c[1], acc[1]);
            }
        }
        for (int b = 0; b <= two; b++)
            amx_store(q, acc[b], rows, b, nt, y, N);
    }
    _tile_release();
}

/* The AMX kernel's CPU: VNNI (its activation quantization) and AMX (ops/amx.h). */
static int have_amx(void)
{
    return cpu_avx512_vnni() && amx_int8_available();
}
#endif

/* The highest kernel the tests allow (q4_dot_set_isa): 0 plain, 1 AVX2, 2 VNNI, 3 AMX. */
static int isa_cap = 3;

void q4_dot_set_isa(int cap)
{
    isa_cap = cap;
}

/* Tokens a step from which the AMX kernel takes a call (q4_dot_set_amx_min). */
static int amx_min_m = Q4_AMX_MIN_M;

void q4_dot_set_amx_min(int m)
{
    amx_min_m = m;
}

static int uses_amx(const struct linear *l, int M)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return isa_cap >= 3 && M >= amx_min_m && M <= 32 && l->group % CHUNK == 0 && have_amx();
#else
    (void)l;
    (void)M;
    return 0;
#endif
}

typedef void (*rows_fn)(const struct linear *l, const struct xq *q, float *y, int n0, int n1);

static rows_fn pick(const struct linear *l, int M)
{
#if defined(__x86_64__) && defined(__GNUC__)
    int g = l->group;
    if (uses_amx(l, M))
        return M <= 16 ? rows_amx16 : rows_amx32;
    if (isa_cap >= 2 && cpu_avx512_vnni() && (g == 32 || g == 64 || g % CHUNK == 0))
        return rows_vnni;
    if (isa_cap >= 1 && cpu_avx2_fma())
        return rows_avx2;
#else
    (void)l;
    (void)M;
#endif
    return rows_plain;
}

void q4_dot_rows(const struct linear *l, const void *scratch, int M, float *y, int n0, int n1)
{
    struct xq q;
    carve(&q, l, M, (void *)scratch);
    pick(l, M)(l, &q, y, n0, n1);
}
