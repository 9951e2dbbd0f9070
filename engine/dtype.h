/* dtype: the arithmetic the engine computes in, a model's `dtype` as the engine knows it (the
 * config's names map onto it in server/dtypes.h). Part of the engine's public face (engine.h):
 * ops/dnnl.h defines the oneDNN side of each. */
#ifndef INFERD_DTYPE_H
#define INFERD_DTYPE_H

/* The arithmetic a prepacked op runs in. Activations stay f32 at op boundaries:
 * BF16 converts them to bf16 on the fly, INT8 quantizes them per call (per tensor), INT4
 * keeps them f32 and reads 4-bit weights with a scale and zero point per group (weight-only,
 * ops/matmul_q4.c). */
enum dtype_compute {
    DTYPE_COMPUTE_F32,
    DTYPE_COMPUTE_BF16,
    DTYPE_COMPUTE_INT8,
    DTYPE_COMPUTE_INT4,
    DTYPE_COMPUTE_COUNT
};

#endif
