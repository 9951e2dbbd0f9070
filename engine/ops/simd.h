/* simd: the vector helpers more than one kernel of engine/ops/ needs: e^x over an AVX-512
 * vector on negative arguments (matmul_int8.c's GELU tail, attention_bf16.c's softmax) and an
 * AVX2 horizontal sum (the int4 kernels, matmul_q4.c and matmul_q4_dot.c). x86-64 with
 * GCC/clang only; include it where <immintrin.h> is. */
#ifndef INFERD_OPS_SIMD_H
#define INFERD_OPS_SIMD_H

#include <immintrin.h>

/* exp(x) for -87 <= x <= 0 (smaller x are taken as -87: results stay normal floats, as a
 * denormal costs a microcode assist per instruction): 2^n e^r with |r| <= ln2 / 2, e^r by its
 * degree-6 Taylor polynomial (relative error ~2e-7). */
__attribute__((target("avx512f"))) static inline __m512 exp_neg_avx512(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* The sum of v's eight lanes. */
__attribute__((target("avx2"), always_inline)) static inline float hsum_avx2(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif
