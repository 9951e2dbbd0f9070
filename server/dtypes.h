/* dtypes: a config's dtype (config.h, plain data: enum config_dtype and its names) as the
 * engine's compute type (engine.h: enum dtype_compute): the one place the two enums meet.
 * The loader's enum dtype is another thing: how a tensor is stored in a file. */
#ifndef INFERD_DTYPES_H
#define INFERD_DTYPES_H

#include <string.h>

#include "config.h"
#include "engine.h"

static inline enum dtype_compute dtype_of_config(enum config_dtype d)
{
    static const enum dtype_compute map[] = {
        [CONFIG_DTYPE_FP32] = DTYPE_COMPUTE_F32,
        [CONFIG_DTYPE_BF16] = DTYPE_COMPUTE_BF16,
        [CONFIG_DTYPE_INT8] = DTYPE_COMPUTE_INT8,
        [CONFIG_DTYPE_INT4] = DTYPE_COMPUTE_INT4,
    };
    return (unsigned)d < sizeof map / sizeof map[0] ? map[d] : DTYPE_COMPUTE_F32;
}

/* `run` and `bench`'s --dtype: a config dtype name, or "f32" (fp32's other spelling there).
 * 0, or -1 for any other value. */
static inline int dtype_option(const char *s, enum config_dtype *out)
{
    if (strcmp(s, "f32") == 0) {
        *out = CONFIG_DTYPE_FP32;
        return 0;
    }
    return config_dtype_by_name(s, out);
}

#endif
