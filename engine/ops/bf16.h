/* bf16: f32 -> bf16 conversion of activations before a bf16 matmul, on the calling thread (or
 * its OpenMP team when large), rounded to nearest even as oneDNN's reorder does, so the bf16
 * matmul sees the same inputs without a reorder primitive (an execution and a thread fork per
 * linear layer). For engine/ops/ only; it owns no memory. */
#ifndef INFERD_OPS_BF16_H
#define INFERD_OPS_BF16_H

#include <stddef.h>
#include <stdint.h>

/* y (n) = bf16(x (n)): round to nearest, ties to even; a NaN stays a (quiet) NaN and a
 * subnormal becomes a signed zero (what vcvtneps2bf16 and oneDNN's reorder both do). */
void bf16_from_f32(const float *x, uint16_t *y, size_t n);

/* One value, the plain-C rule the vector path must match (tests). */
uint16_t bf16_round(float x);

#endif
