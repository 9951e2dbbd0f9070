/* cpu: the instruction-set question engine/ops' own AVX-512 kernels ask before dispatching
 * (matmul_int8.c, matmul_q4.c, attention_bf16.c), asked of libgcc's CPU model, which is filled
 * once at start: a read, no cache of our own. 0 off x86-64 or without GCC/clang. */
#ifndef INFERD_OPS_CPU_H
#define INFERD_OPS_CPU_H

static inline int cpu_avx512f(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}

#endif
