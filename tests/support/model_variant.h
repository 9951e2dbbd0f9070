/* model_variant: model directories made from a fixture model, for tests of architecture
 * variants and of bad models: its config.json with keys changed, its weights linked or written
 * anew with tensors left out, renamed, added or scaled. */
#ifndef INFERD_TEST_MODEL_VARIANT_H
#define INFERD_TEST_MODEL_VARIANT_H

#include <stdint.h>

/* A tensor to add, F32 of shape (rows), or (rows, cols) when cols is not 0; data NULL: zeros. */
struct extra_tensor {
    const char *name;
    int64_t rows, cols;
    const float *data;
};

/* How the variant differs from its source model. */
struct model_variant {
    const char *patch;     /* a JSON object merged into config.json; a null value removes the key */
    const char *drop;      /* leave out the tensors whose name contains this */
    const char *from, *to; /* in tensor names, the substring from replaced by to */
    const struct extra_tensor *extra; /* tensors added, n_extra of them */
    int n_extra;
    float scale_matrices; /* not 0: every 2-D F32 tensor multiplied by it (a tamer model) */
};

/* A fresh directory (temp_dir) with src's config.json patched, src's tokenizer.json and
 * tokenizer_config.json linked (when src has them) and model.safetensors: src's linked, or
 * written anew when v drops, renames, adds or scales tensors. Fails the test on any error. */
const char *model_variant_dir(const char *src, const struct model_variant *v);

#endif
