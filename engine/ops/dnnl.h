/* dnnl: the per-worker oneDNN context (struct dnn_ctx): one CPU engine, one in-order stream,
 * a bounded cache of primitives keyed by (op kind, shape, flags), the oneDNN scratchpad every
 * primitive of the context shares, and a scratch buffer for the ops' own temporaries.
 * A context belongs to one thread (STYLE: primitives stay on the thread that created them);
 * weights prepacked by ops/matmul.c are plain buffers any context may read.
 * It does not own tensors, weights or the ops themselves (ops/matmul.c, norm.c, attention.c). */
#ifndef INFERD_OPS_DNNL_H
#define INFERD_OPS_DNNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <oneapi/dnnl/dnnl.h>

#include "dtype.h"
#include "err.h"

struct dnn_ctx;

/* Creates a context for the calling thread and sets that thread's intra-op thread count to
 * n_threads (0 keeps the runtime's default). Debian's oneDNN runs on OpenMP, whose thread
 * count is per calling thread: call this from the worker thread that will use the context. */
struct dnn_ctx *dnn_ctx_new(int n_threads, struct err *e);
void dnn_ctx_free(struct dnn_ctx *ctx);

/* Sets the calling thread's intra-op thread count (OpenMP: omp_set_num_threads). */
void dnn_set_threads(int n_threads);

/* For a tiny op (a few microseconds of work: a 16-token layer norm or attention), an OpenMP
 * fork and barrier cost as much as the op, and far more when another process holds a core:
 * dnn_serial_begin(true) makes oneDNN create and run the primitives that follow on the
 * calling thread alone, and returns what dnn_serial_end restores (false: nothing changes).
 * The op must decide from its shape, so one cached primitive always meets one thread count. */
int dnn_serial_begin(bool small);
void dnn_serial_end(int saved);

/* "OpenMP", "TBB", "threadpool" or "sequential": the CPU runtime oneDNN was built with. */
const char *dnn_runtime_name(void);

/* "2.6.3 OpenMP avx512_core_bf16": version, runtime and the ISA oneDNN dispatches to. */
const char *dnn_describe(void);

/* The ISA oneDNN dispatches to on this CPU ("avx512_core_bf16", "avx2", ...). */
const char *dnn_isa_name(void);
/* Whether this CPU runs dt with instructions of its own: fp32 always, bf16 with AVX512-BF16
 * or AMX, int8 with VNNI (AVX512 or AVX2); otherwise oneDNN emulates it, slower than fp32. */
bool dnn_dtype_native(enum dtype_compute dt);

/* Number of primitives currently cached in ctx, and how many were ever created (tests). */
int dnn_cache_size(const struct dnn_ctx *ctx);
long dnn_cache_created(const struct dnn_ctx *ctx);

/* ---- For the ops in engine/ops/ only ------------------------------------------------- */

/* A buffer for packed weights (free it with free()): 64-byte aligned; one of at least 2 MiB
 * starts on a 2 MiB boundary and its whole 2 MiB blocks are advised for transparent huge
 * pages (madvise, before the caller first touches them), so a forward pass that streams
 * every weight takes a TLB miss per 2 MiB instead of per 4 KiB. Costs no resident memory:
 * only blocks inside the buffer are advised. NULL when out of memory. */
void *dnn_weights_alloc(size_t size_bytes);

/* What a cached primitive is found by: the op kind and up to DNN_KEY_WORDS shape/flag words.
 * Unused words must be zero (build keys with designated initializers). */
#define DNN_KEY_WORDS 12
struct dnn_key {
    int kind; /* DNN_KIND_* */
    int64_t v[DNN_KEY_WORDS];
};

enum dnn_kind {
    DNN_KIND_MATMUL = 1,
    DNN_KIND_REORDER,
    DNN_KIND_LAYERNORM,
    DNN_KIND_ELTWISE,
    DNN_KIND_SOFTMAX,
    DNN_KIND_ATTN_SCORES,
    DNN_KIND_ATTN_CONTEXT,
};

/* A cached primitive and one memory object per execution argument, created from the
 * primitive descriptor's own memory descriptors with no buffer; dnn_exec points them at the
 * caller's buffers (in arg_ids order) for each call, so no allocation happens per call. */
#define DNN_MAX_ARGS 8
struct dnn_prim {
    struct dnn_key key;
    dnnl_primitive_t prim;
    int n_args;
    int arg_ids[DNN_MAX_ARGS];
    dnnl_memory_t mem[DNN_MAX_ARGS];
    dnnl_memory_t scratchpad; /* NULL when the primitive needs none */
    size_t scratchpad_bytes;
    uint64_t last_use; /* LRU stamp */
    int n_threads;     /* the calling thread's OpenMP thread count when it was created */
};

dnnl_engine_t dnn_engine(struct dnn_ctx *ctx);

/* The cached primitive for key created under the calling thread's current thread count (some
 * oneDNN implementations size per-thread scratch at creation; see dnn_serial_begin), or NULL. */
struct dnn_prim *dnn_cache_find(struct dnn_ctx *ctx, const struct dnn_key *key);

/* Creates the primitive of pd and caches it under key (evicting the least recently used one
 * when full). Takes pd in every case. arg_ids lists the execution arguments dnn_exec will be
 * given buffers for, in that order; their memory descriptors are queried from pd, except
 * where arg_mds (NULL, or n_args entries) gives a non-NULL one (runtime output scales, which
 * pd cannot describe). pd's attr must come from dnn_attr_new (the context's scratchpad). */
int dnn_cache_add(struct dnn_ctx *ctx, const struct dnn_key *key, dnnl_primitive_desc_t pd,
                  const int *arg_ids, const dnnl_memory_desc_t *const *arg_mds, int n_args,
                  struct dnn_prim **out, struct err *e);

/* A fresh attribute with the user scratchpad mode (the context owns the scratchpad). */
int dnn_attr_new(dnnl_primitive_attr_t *attr, struct err *e);

/* Runs p on the context's stream with buffers[i] for p->arg_ids[i], and waits for it.
 * Input buffers are only read (the casts away from const happen here). */
/* A primitive descriptor for desc with the common attributes (user scratchpad) and
 * no post-ops; `what` names it in errors ("layer norm primitive desc"). */
int dnn_pd_plain(struct dnn_ctx *ctx, const void *desc, const char *what, dnnl_primitive_desc_t *pd,
                 struct err *e);

int dnn_exec(struct dnn_ctx *ctx, struct dnn_prim *p, void *const *buffers, struct err *e);

/* The context's scratch for an op's temporaries: at least size_bytes, 64-byte aligned, valid
 * until the next dnn_scratch call on ctx. Grows (and keeps its size) as needed. */
void *dnn_scratch(struct dnn_ctx *ctx, size_t size_bytes, struct err *e);

/* Maps a failed oneDNN status to an ERR_* kind with a message naming what failed. */
int dnn_fail(dnnl_status_t s, struct err *e, const char *what);

/* Prints a memory descriptor's layout (dims, padded dims, strides, inner blocks) into buf. */
void dnn_md_str(const dnnl_memory_desc_t *md, char *buf, size_t size);

#endif
