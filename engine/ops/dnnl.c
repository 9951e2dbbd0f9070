/* dnnl: the per-worker oneDNN context: engine, stream, primitive cache (LRU, keyed by op kind
 * and shape), the shared oneDNN scratchpad and the ops' scratch buffer. See ops/dnnl.h. */
#include "ops/dnnl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
#include <omp.h>
#endif

/* Enough for every (kind, shape) a BERT-family forward pass meets at a few dozen sequence
 * lengths; past it the least recently used primitive goes (oneDNN's own global primitive
 * cache usually makes re-creating it cheap). */
#define CACHE_CAP 512

struct dnn_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    struct dnn_prim *cache; /* (CACHE_CAP), the first n_cached in use */
    int n_cached;
    uint64_t clock;   /* LRU time, bumped per lookup hit or insert */
    long n_created;   /* primitives ever created, for tests */
    void *pad;        /* oneDNN scratchpad shared by all primitives of this context */
    size_t pad_bytes; /* its size: the largest any cached primitive asked for */
    void *scratch;    /* the ops' temporaries (dnn_scratch) */
    size_t scratch_bytes;
};

int dnn_fail(dnnl_status_t s, struct err *e, const char *what)
{
    int kind = ERR_INTERNAL;
    if (s == dnnl_out_of_memory)
        kind = ERR_NOMEM;
    else if (s == dnnl_unimplemented || s == dnnl_invalid_arguments)
        kind = ERR_INVALID;
    return err_set(e, kind, "oneDNN: %s failed (status %d)", what, (int)s);
}

void dnn_set_threads(int n_threads)
{
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
    if (n_threads > 0)
        omp_set_num_threads(n_threads);
#else
    (void)n_threads;
#endif
}

int dnn_serial_begin(bool small)
{
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
    int n = omp_get_max_threads();
    if (!small || n <= 1)
        return 0;
    omp_set_num_threads(1);
    return n;
#else
    (void)small;
    return 0;
#endif
}

void dnn_serial_end(int saved)
{
    dnn_set_threads(saved);
}

const char *dnn_runtime_name(void)
{
    switch (dnnl_version()->cpu_runtime) {
    case DNNL_RUNTIME_OMP: return "OpenMP";
    case DNNL_RUNTIME_TBB: return "TBB";
    case DNNL_RUNTIME_THREADPOOL: return "threadpool";
    case DNNL_RUNTIME_SEQ: return "sequential";
    default: return "unknown";
    }
}

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

const char *dnn_isa_name(void)
{
    return isa_name(dnnl_get_effective_cpu_isa());
}

/* The ISA bits (dnnl_cpu_isa_t is a bit set: each level includes the ones below it) that
 * give a compute type its own instructions: bf16 dot products (AVX512-BF16, AMX) and int8
 * ones (VNNI, in AVX512 or AVX2). */
static const struct {
    enum dtype_compute dt;
    unsigned bits[2]; /* any of them; 0 = unused */
} native_isa[] = {
    {DTYPE_COMPUTE_BF16, {dnnl_cpu_isa_avx512_core_bf16 & ~dnnl_cpu_isa_avx512_core_vnni, 0}},
    {DTYPE_COMPUTE_INT8,
     {dnnl_cpu_isa_avx512_core_vnni & ~dnnl_cpu_isa_avx512_core,
      dnnl_cpu_isa_avx2_vnni & ~dnnl_cpu_isa_avx2}},
    /* inferd's own 4-bit kernel (ops/matmul_q4.c): AVX2 + FMA, else a plain loop */
    {DTYPE_COMPUTE_INT4, {dnnl_cpu_isa_avx2 & ~dnnl_cpu_isa_avx, 0}},
};

bool dnn_dtype_native(enum dtype_compute dt)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    for (size_t i = 0; i < sizeof native_isa / sizeof native_isa[0]; i++)
        if (native_isa[i].dt == dt)
            return (native_isa[i].bits[0] && (isa & native_isa[i].bits[0])) ||
                   (native_isa[i].bits[1] && (isa & native_isa[i].bits[1]));
    return dt == DTYPE_COMPUTE_F32;
}

const char *dnn_describe(void)
{
    static _Thread_local char buf[96];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "%d.%d.%d %s %s", v->major, v->minor, v->patch, dnn_runtime_name(),
             isa_name(dnnl_get_effective_cpu_isa()));
    return buf;
}

struct dnn_ctx *dnn_ctx_new(int n_threads, struct err *e)
{
    struct dnn_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        err_set(e, ERR_NOMEM, "dnn_ctx_new: out of memory");
        return NULL;
    }
    dnn_set_threads(n_threads);
    dnnl_status_t s = dnnl_engine_create(&ctx->engine, dnnl_cpu, 0);
    if (s != dnnl_success) {
        dnn_fail(s, e, "engine create");
        goto free_ctx;
    }
    s = dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        dnn_fail(s, e, "stream create");
        goto free_engine;
    }
    ctx->cache = calloc(CACHE_CAP, sizeof *ctx->cache);
    if (!ctx->cache) {
        err_set(e, ERR_NOMEM, "dnn_ctx_new: out of memory for the primitive cache");
        goto free_stream;
    }
    return ctx;

free_stream:
    dnnl_stream_destroy(ctx->stream);
free_engine:
    dnnl_engine_destroy(ctx->engine);
free_ctx:
    free(ctx);
    return NULL;
}

static void prim_clear(struct dnn_prim *p)
{
    for (int i = 0; i < p->n_args; i++)
        dnnl_memory_destroy(p->mem[i]);
    if (p->scratchpad)
        dnnl_memory_destroy(p->scratchpad);
    if (p->prim)
        dnnl_primitive_destroy(p->prim);
    memset(p, 0, sizeof *p);
}

void dnn_ctx_free(struct dnn_ctx *ctx)
{
    if (!ctx)
        return;
    for (int i = 0; i < ctx->n_cached; i++)
        prim_clear(&ctx->cache[i]);
    free(ctx->cache);
    free(ctx->pad);
    free(ctx->scratch);
    dnnl_stream_destroy(ctx->stream);
    dnnl_engine_destroy(ctx->engine);
    free(ctx);
}

int dnn_cache_size(const struct dnn_ctx *ctx)
{
    return ctx->n_cached;
}

long dnn_cache_created(const struct dnn_ctx *ctx)
{
    return ctx->n_created;
}

dnnl_engine_t dnn_engine(struct dnn_ctx *ctx)
{
    return ctx->engine;
}

static int key_equal(const struct dnn_key *a, const struct dnn_key *b)
{
    if (a->kind != b->kind)
        return 0;
    for (int i = 0; i < DNN_KEY_WORDS; i++)
        if (a->v[i] != b->v[i])
            return 0;
    return 1;
}

/* The calling thread's intra-op thread count (1 without OpenMP). */
static int current_threads(void)
{
#if DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

struct dnn_prim *dnn_cache_find(struct dnn_ctx *ctx, const struct dnn_key *key)
{
    int n_threads = current_threads();
    for (int i = 0; i < ctx->n_cached; i++) {
        if (ctx->cache[i].n_threads == n_threads && key_equal(&ctx->cache[i].key, key)) {
            ctx->cache[i].last_use = ++ctx->clock;
            return &ctx->cache[i];
        }
    }
    return NULL;
}

int dnn_attr_new(dnnl_primitive_attr_t *attr, struct err *e)
{
    dnnl_status_t s = dnnl_primitive_attr_create(attr);
    if (s != dnnl_success)
        return dnn_fail(s, e, "attr create");
    s = dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
        return dnn_fail(s, e, "attr scratchpad mode");
    }
    return 0;
}

/* A free slot: the next unused one, or the least recently used one emptied. */
static struct dnn_prim *cache_slot(struct dnn_ctx *ctx)
{
    if (ctx->n_cached < CACHE_CAP)
        return &ctx->cache[ctx->n_cached++];
    struct dnn_prim *lru = &ctx->cache[0];
    for (int i = 1; i < CACHE_CAP; i++)
        if (ctx->cache[i].last_use < lru->last_use)
            lru = &ctx->cache[i];
    prim_clear(lru);
    return lru;
}

static int grow(void **buf, size_t *have, size_t want)
{
    if (want <= *have)
        return 0;
    size_t size = (want + 4095) & ~(size_t)4095;
    void *p = aligned_alloc(64, size);
    if (!p)
        return ERR_NOMEM;
    free(*buf);
    *buf = p;
    *have = size;
    return 0;
}

#define HUGE_PAGE ((size_t)2 << 20)

void *dnn_weights_alloc(size_t size_bytes)
{
    void *p = NULL;
    size_t align = size_bytes >= HUGE_PAGE ? HUGE_PAGE : 64;
    if (posix_memalign(&p, align, size_bytes ? size_bytes : 1) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    /* advice only: a kernel without transparent huge pages keeps 4 KiB pages */
    if (align == HUGE_PAGE)
        (void)madvise(p, size_bytes & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
    return p;
}

int dnn_cache_add(struct dnn_ctx *ctx, const struct dnn_key *key, dnnl_primitive_desc_t pd,
                  const int *arg_ids, const dnnl_memory_desc_t *const *arg_mds, int n_args,
                  struct dnn_prim **out, struct err *e)
{
    struct dnn_prim p = {.key = *key, .n_args = n_args, .n_threads = current_threads()};
    int rc = 0;
    dnnl_status_t s = dnnl_primitive_create(&p.prim, pd);
    if (s != dnnl_success) {
        rc = dnn_fail(s, e, "primitive create");
        goto fail;
    }
    for (int i = 0; i < n_args; i++) {
        const dnnl_memory_desc_t *md =
            arg_mds && arg_mds[i]
                ? arg_mds[i]
                : dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg_ids[i]);
        p.arg_ids[i] = arg_ids[i];
        s = md ? dnnl_memory_create(&p.mem[i], md, ctx->engine, DNNL_MEMORY_NONE)
               : dnnl_invalid_arguments;
        if (s != dnnl_success) {
            p.n_args = i;
            rc = dnn_fail(s, e, "argument memory create");
            goto fail;
        }
    }
    const dnnl_memory_desc_t *pad_md =
        dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    p.scratchpad_bytes = pad_md ? dnnl_memory_desc_get_size(pad_md) : 0;
    if (p.scratchpad_bytes > 0) {
        if (grow(&ctx->pad, &ctx->pad_bytes, p.scratchpad_bytes) != 0) {
            rc = err_set(e, ERR_NOMEM, "oneDNN scratchpad of %zu bytes", p.scratchpad_bytes);
            goto fail;
        }
        s = dnnl_memory_create(&p.scratchpad, pad_md, ctx->engine, DNNL_MEMORY_NONE);
        if (s != dnnl_success) {
            rc = dnn_fail(s, e, "scratchpad memory create");
            goto fail;
        }
    }
    dnnl_primitive_desc_destroy(pd);
    struct dnn_prim *slot = cache_slot(ctx);
    *slot = p;
    slot->last_use = ++ctx->clock;
    ctx->n_created++;
    *out = slot;
    return 0;

fail:
    prim_clear(&p);
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

int dnn_exec(struct dnn_ctx *ctx, struct dnn_prim *p, void *const *buffers, struct err *e)
{
    dnnl_exec_arg_t args[DNN_MAX_ARGS + 1];
    int n = 0;
    dnnl_status_t s;
    for (int i = 0; i < p->n_args; i++) {
        /* Plain activations have no padding, so this only swaps the pointer; packed weights
         * with padding get their (already zero) padding rewritten with zeros. */
        s = dnnl_memory_set_data_handle_v2(p->mem[i], buffers[i], ctx->stream);
        if (s != dnnl_success)
            return dnn_fail(s, e, "set data handle");
        args[n++] = (dnnl_exec_arg_t){p->arg_ids[i], p->mem[i]};
    }
    if (p->scratchpad) {
        s = dnnl_memory_set_data_handle_v2(p->scratchpad, ctx->pad, ctx->stream);
        if (s != dnnl_success)
            return dnn_fail(s, e, "set scratchpad handle");
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratchpad};
    }
    s = dnnl_primitive_execute(p->prim, ctx->stream, n, args);
    if (s != dnnl_success)
        return dnn_fail(s, e, "primitive execute");
    s = dnnl_stream_wait(ctx->stream);
    if (s != dnnl_success)
        return dnn_fail(s, e, "stream wait");
    return 0;
}

void *dnn_scratch(struct dnn_ctx *ctx, size_t size_bytes, struct err *e)
{
    if (grow(&ctx->scratch, &ctx->scratch_bytes, size_bytes) != 0) {
        err_set(e, ERR_NOMEM, "ops scratch of %zu bytes", size_bytes);
        return NULL;
    }
    return ctx->scratch;
}

void dnn_md_str(const dnnl_memory_desc_t *md, char *buf, size_t size)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "dims");
    for (int i = 0; i < md->ndims && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%c%ld", i ? 'x' : ' ', (long)md->dims[i]);
    if (md->format_kind != dnnl_blocked || n >= size)
        return;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    n += (size_t)snprintf(buf + n, size - n, " padded");
    for (int i = 0; i < md->ndims && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%c%ld", i ? 'x' : ' ', (long)md->padded_dims[i]);
    n += (size_t)snprintf(buf + n, size - n, " strides");
    for (int i = 0; i < md->ndims && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%c%ld", i ? ',' : ' ', (long)b->strides[i]);
    for (int i = 0; i < b->inner_nblks && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%ld%c", i ? "" : " inner ",
                              (long)b->inner_blks[i], 'a' + (int)b->inner_idxs[i]);
}

int dnn_pd_plain(struct dnn_ctx *ctx, const void *desc, const char *what, dnnl_primitive_desc_t *pd,
                 struct err *e)
{
    dnnl_primitive_attr_t attr;
    int rc = dnn_attr_new(&attr, e);
    if (rc != 0)
        return rc;
    dnnl_status_t s = dnnl_primitive_desc_create(pd, desc, attr, dnn_engine(ctx), NULL);
    dnnl_primitive_attr_destroy(attr);
    return s == dnnl_success ? 0 : dnn_fail(s, e, what);
}
