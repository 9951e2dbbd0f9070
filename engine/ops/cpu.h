/* cpu: the instruction-set questions engine/ops' own kernels ask before dispatching
 * (matmul_int8.c, matmul_q4*.c, attention_bf16.c, bf16.c, emb_table.c, amx.c), asked of
 * libgcc's CPU model, which is filled once at start: a read, no cache of our own (so no flag
 * written by one thread while another reads it). 0 off x86-64 or without GCC/clang. */
#ifndef INFERD_OPS_CPU_H
#define INFERD_OPS_CPU_H

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_HAS(feature) __builtin_cpu_supports(feature)
#else
#define CPU_HAS(feature) 0
#endif

static inline int cpu_avx512f(void)
{
    return CPU_HAS("avx512f");
}

/* AVX2 with FMA (the int4 kernels' fallback). */
static inline int cpu_avx2_fma(void)
{
    return CPU_HAS("avx2") && CPU_HAS("fma");
}

/* AVX-512 with byte and word instructions. */
static inline int cpu_avx512bw(void)
{
    return CPU_HAS("avx512f") && CPU_HAS("avx512bw");
}

/* AVX512-VNNI with BW and VL (vpdpbusd on 512-bit and narrower vectors). */
static inline int cpu_avx512_vnni(void)
{
    return cpu_avx512bw() && CPU_HAS("avx512vl") && CPU_HAS("avx512vnni");
}

/* AVX512-BF16 with BW and VL. */
static inline int cpu_avx512_bf16(void)
{
    return CPU_HAS("avx512bf16") && CPU_HAS("avx512bw") && CPU_HAS("avx512vl");
}

#endif
