/* test_rand: what the op tests (test_ops, test_q4, test_int8_amx) share to make inputs and
 * expected values: a fixed-seed LCG each test seeds (test_rng) for reproducible random data,
 * and the activations in double as transformers defines them. */
#ifndef INFERD_TEST_RAND_H
#define INFERD_TEST_RAND_H

#include <stddef.h>
#include <stdint.h>

#include "ops/ops.h"

/* The generator's state: a test sets it before drawing. */
extern uint64_t test_rng;

/* Uniform in [lo, hi). */
float test_rnd(float lo, float hi);
/* n values uniform in [lo, hi), malloc'd (the test frees them; asserts on no memory). */
float *test_rnd_array(size_t n, float lo, float hi);
/* act(x) in double: GELU (erf, tanh), ReLU, SiLU; x for ACT_NONE. */
double test_ref_act(enum act a, double x);

#endif
