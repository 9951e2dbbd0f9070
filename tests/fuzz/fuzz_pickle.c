/* fuzz_pickle: the data.pkl of a pytorch_model.bin (loader/pickle.c), the restricted state-dict
 * reader: any opcodes, globals, memo indices and views. On success every tensor must name a
 * storage it has and stay inside it, as loader/torch_bin.c relies on when it reads the views
 * (the zip container around it is libzip's). */
#include "fuzz.h"
#include "loader/pickle.h"

static void check(const struct pickle_state_dict *sd)
{
    for (size_t i = 0; i < sd->n_tensors; i++) {
        const struct pickle_tensor *t = &sd->tensors[i];
        if (t->storage >= sd->n_storages || t->n_dims < 0 || t->n_dims > TENSOR_MAX_DIMS)
            abort();
        uint64_t last = t->offset;
        for (int d = 0; d < t->n_dims && t->n_elements; d++)
            last += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d];
        if (t->n_elements && last >= sd->storages[t->storage].numel)
            abort(); /* a view past its storage got through */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pickle_state_dict sd;
    struct err e = {0};
    if (fuzz_report(pickle_read_state_dict(data, size, "fuzz", &sd, &e), &e) == 0)
        check(&sd);
    pickle_state_dict_free(&sd);
    return 0;
}
