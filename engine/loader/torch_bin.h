/* torch_bin: opens a model's PyTorch checkpoint (pytorch_model.bin, or the shards named by
 * pytorch_model.bin.index.json) as written by torch.save(state_dict) since torch 1.6: a zip
 * archive (read with libzip) holding ARCHIVE/data.pkl, the pickled dict of name -> tensor
 * (read by loader/pickle.c, which executes nothing), ARCHIVE/byteorder ("little" when present)
 * and one entry ARCHIVE/data/KEY per storage. Owns the mmaps, the copies and the name ->
 * tensor table; hands out the same read-only tensor views as safetensors.
 *
 * A storage entry stored uncompressed (torch writes them so, aligned to 64 bytes) is used in
 * place inside the file's mmap, after libzip has read it once and it compared equal (so its
 * CRC was checked); a compressed one is decompressed into memory. A tensor that is a
 * contiguous view of its storage points into it; a strided one (a transpose, a slice with
 * steps) is copied into a contiguous array. Storages shared by several tensors (tied
 * embeddings, views of one buffer) are read once.
 *
 * Checked at open, each failure ERR_FORMAT naming the file: the zip (libzip's consistency
 * checks), exactly one ARCHIVE/data.pkl, the pickle (pickle.h), every storage entry present
 * with exactly numel * element size bytes, stored entries not overlapping each other in the
 * file, a compressed entry not expanding more than deflate can, no name twice; for a sharded
 * index as for safetensors: a non-empty weight_map, shard names without '/', every tensor
 * where the index says and no tensor outside it. Pre-1.6 (non-zip) checkpoints are refused. */
#ifndef INFERD_TORCH_BIN_H
#define INFERD_TORCH_BIN_H

#include <stddef.h>

#include "err.h"
#include "loader/tensor.h"

struct torch_bin;

/* Opens DIR/pytorch_model.bin if present, else DIR/pytorch_model.bin.index.json and its
 * shards. Neither present: ERR_NOT_FOUND. Unreadable: ERR_IO. Invalid: ERR_FORMAT. */
int torch_bin_open(const char *dir, struct torch_bin **out, struct err *e);

/* Opens one torch.save zip file, by path. */
int torch_bin_open_file(const char *path, struct torch_bin **out, struct err *e);

/* Frees everything; every view handed out dies with it. NULL is a no-op. */
void torch_bin_close(struct torch_bin *tb);

/* The tensor called name, or NULL. */
const struct tensor *torch_bin_get(const struct torch_bin *tb, const char *name);

/* All tensors, sorted by name. */
size_t torch_bin_count(const struct torch_bin *tb);
const struct tensor *torch_bin_at(const struct torch_bin *tb, size_t i);

#endif
