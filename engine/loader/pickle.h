/* pickle: a restricted reader of the data.pkl that torch.save(state_dict) writes into a
 * pytorch_model.bin. It is not an unpickler: nothing is executed, imported or called. It knows
 * exactly the opcodes protocol 2 uses for a state dict (PROTO, EMPTY_DICT, EMPTY_TUPLE, MARK,
 * BINUNICODE, BININT/BININT1/BININT2/LONG1, NONE, NEWTRUE/NEWFALSE, TUPLE/TUPLE1..3, BINPERSID,
 * GLOBAL, REDUCE, BUILD (the OrderedDict's _metadata, ignored), SETITEM/SETITEMS,
 * BINPUT/LONG_BINPUT/BINGET/LONG_BINGET, STOP) and a fixed table of globals, each with a known
 * meaning rather than a callable:
 *   collections.OrderedDict                 REDUCE with () makes an empty dict
 *   torch._utils._rebuild_tensor_v2         (storage, offset, size, stride, requires_grad,
 *                                            hooks[, metadata]) makes a tensor view
 *   torch._utils._rebuild_parameter         (tensor, requires_grad[, hooks]) is the tensor
 *   torch.FloatStorage, HalfStorage, BFloat16Storage, LongStorage ... and torch.float32,
 *   torch.float16, torch.bfloat16, torch.int64 ...   storage element types, only inside a
 *                                            persistent id ('storage', TYPE, key, location, numel)
 * Any other opcode or global, a REDUCE of anything else, a wrong argument shape, a view that
 * reaches past its storage, or a top-level object that is not a dict of name -> tensor is
 * ERR_FORMAT with a message naming the opcode (and its offset) or the global. Memory and
 * stack depth are bounded by the input's size. */
#ifndef INFERD_PICKLE_H
#define INFERD_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "loader/tensor.h"

/* One storage named by a persistent id: its zip entry is data/KEY. */
struct pickle_storage {
    char *key;
    enum dtype dtype;
    uint64_t numel; /* elements of dtype */
};

/* One state-dict entry: a view of storages[storage]. Checked: every element it reaches,
 * offset + sum((shape[i] - 1) * stride[i]), lies inside the storage. */
struct pickle_tensor {
    char *name;
    size_t storage;
    uint64_t offset; /* in elements */
    int n_dims;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t stride[TENSOR_MAX_DIMS]; /* in elements */
    size_t n_elements;
};

struct pickle_state_dict {
    struct pickle_storage *storages;
    size_t n_storages;
    struct pickle_tensor *tensors; /* in the pickle's order */
    size_t n_tensors;
};

/* Reads data[0..size) into *out (zeroed first; free it with pickle_state_dict_free, also
 * after a failure). what names the input in messages ("DIR/pytorch_model.bin"). */
int pickle_read_state_dict(const void *data, size_t size, const char *what,
                           struct pickle_state_dict *out, struct err *e);

void pickle_state_dict_free(struct pickle_state_dict *sd);

#endif
