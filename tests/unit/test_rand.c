/* test_rand: see test_rand.h. */
#include "test_rand.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

uint64_t test_rng;

float test_rnd(float lo, float hi)
{
    test_rng = test_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    double u = (double)(test_rng >> 11) / 9007199254740992.0;
    return (float)(lo + (hi - lo) * u);
}

float *test_rnd_array(size_t n, float lo, float hi)
{
    float *a = malloc(n * sizeof *a);
    ck_assert_ptr_nonnull(a);
    for (size_t i = 0; i < n; i++)
        a[i] = test_rnd(lo, hi);
    return a;
}

double test_ref_act(enum act a, double x)
{
    switch (a) {
    case ACT_GELU_ERF: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case ACT_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_SILU: return x / (1.0 + exp(-x));
    default: return x;
    }
}
