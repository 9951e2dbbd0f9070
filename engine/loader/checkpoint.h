/* checkpoint: a model directory's weights whatever their format on disk, so the model loaders
 * (through models/weights.h) never know which one it was. A table row per format, tried in
 * order, the first whose file (or shard index) is present winning:
 *   safetensors   model.safetensors | model.safetensors.index.json        (safetensors.h)
 *   pytorch       pytorch_model.bin | pytorch_model.bin.index.json        (torch_bin.h)
 * Both hand out the same read-only struct tensor views (tensor.h), alive until
 * checkpoint_close; lookups from many threads at once are safe. */
#ifndef INFERD_CHECKPOINT_H
#define INFERD_CHECKPOINT_H

#include <stddef.h>

#include "err.h"
#include "loader/tensor.h"

struct checkpoint;

/* Opens dir's weights in the first format present. None present: ERR_NOT_FOUND naming the
 * files looked for; unreadable: ERR_IO; invalid: ERR_FORMAT (the format's message). */
int checkpoint_open(const char *dir, struct checkpoint **out, struct err *e);

/* Frees everything; every view handed out dies with it. NULL is a no-op. */
void checkpoint_close(struct checkpoint *ck);

/* The tensor called name, or NULL. */
const struct tensor *checkpoint_get(const struct checkpoint *ck, const char *name);

/* All tensors, sorted by name: index 0 .. checkpoint_count() - 1. */
size_t checkpoint_count(const struct checkpoint *ck);
const struct tensor *checkpoint_at(const struct checkpoint *ck, size_t i);

/* The format's name: "safetensors" or "pytorch". */
const char *checkpoint_format(const struct checkpoint *ck);

#endif
