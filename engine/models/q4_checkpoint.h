/* q4_checkpoint: pre-quantized 4-bit checkpoints (AWQ, GPTQ; see q4_checkpoint.c for the
 * layouts): config.json's quantization_config read once per load, and one linear's packed
 * tensors unpacked into a struct q4_rows (ops.h). models/weights.c uses it for every linear
 * that has a `qweight`. */
#ifndef INFERD_Q4_CHECKPOINT_H
#define INFERD_Q4_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "models/weights.h"

/* quant_method -> how to read it: one row per format. */
struct q4_format {
    const char *name; /* quant_method, "awq" or "gptq" */
    int (*config)(const json_t *qc, struct q4_config *c, struct err *e);
    int (*take)(struct weights *w, const char *base, struct q4_rows *r, struct err *e);
};

/* Fills c from DIR/config.json's quantization_config (c->format NULL when there is none);
 * ERR_FORMAT naming the field for a method, bit width, group size or packing not read. */
int q4_config_read(const char *dir, struct q4_config *c, struct err *e);

/* Whether `base` is a pre-quantized linear of w's checkpoint (it has base.qweight). */
bool q4_is_quantized(const struct weights *w, const char *base);

/* Unpacks linear `base` (out, in) into r (allocated here; q4_rows_fini frees it) and counts its
 * tensors as used; errors name the directory, the tensor and what was expected. */
int q4_take(struct weights *w, const char *base, int64_t out, int64_t in, struct q4_rows *r,
            struct err *e);

#endif
