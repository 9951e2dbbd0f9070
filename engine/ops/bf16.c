/* bf16: f32 -> bf16 rounding (see ops/bf16.h): AVX512-BF16's vcvtneps2bf16 where the CPU has
 * it, else the same rule in plain C; blocks spread over the OpenMP team only when large. */
#include "ops/bf16.h"
#include "ops/cpu.h"

#include <string.h>

/* Element counts below this run on the calling thread alone (an OpenMP fork costs more than
 * converting 64K values); blocks of BLOCK elements otherwise. */
#define PAR_MIN_ELEMS 65536
#define BLOCK 16384

uint16_t bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep the sign and top bits, make it quiet */
        return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) /* zero or subnormal: signed zero, as vcvtneps2bf16 and oneDNN */
        return (uint16_t)((u >> 16) & 0x8000u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static void convert_plain(const float *x, uint16_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = bf16_round(x[i]);
}

#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 10
#include <immintrin.h>
#define HAVE_BF16_PATH 1

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void
convert_avx512bf16(const float *x, uint16_t *y, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        _mm256_storeu_si256((__m256i *)(void *)(y + i), (__m256i)v);
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, x + i));
        _mm256_mask_storeu_epi16(y + i, k, (__m256i)v);
    }
}

#endif

static void convert_block(const float *x, uint16_t *y, size_t n, int simd)
{
#ifdef HAVE_BF16_PATH
    if (simd) {
        convert_avx512bf16(x, y, n);
        return;
    }
#else
    (void)simd;
#endif
    convert_plain(x, y, n);
}

void bf16_from_f32(const float *x, uint16_t *y, size_t n)
{
#ifdef HAVE_BF16_PATH
    int simd = cpu_avx512_bf16();
#else
    int simd = 0;
#endif
    if (n < PAR_MIN_ELEMS) {
        convert_block(x, y, n, simd);
        return;
    }
    size_t n_blocks = (n + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < n_blocks; b++) {
        size_t off = b * BLOCK;
        convert_block(x + off, y + off, n - off < BLOCK ? n - off : BLOCK, simd);
    }
}
