/* dtypes: a config's dtype (config.h, plain data) as the engine's compute type: the one place
 * the two enums meet. */
#ifndef INFERD_DTYPES_H
#define INFERD_DTYPES_H

#include "config.h"
#include "ops/dnnl.h"

static inline enum dtype_compute dtype_of_config(enum config_dtype d)
{
    static const enum dtype_compute map[] = {
        [CONFIG_DTYPE_FP32] = DTYPE_COMPUTE_F32,
        [CONFIG_DTYPE_BF16] = DTYPE_COMPUTE_BF16,
        [CONFIG_DTYPE_INT8] = DTYPE_COMPUTE_INT8,
    };
    return (unsigned)d < sizeof map / sizeof map[0] ? map[d] : DTYPE_COMPUTE_F32;
}

#endif
