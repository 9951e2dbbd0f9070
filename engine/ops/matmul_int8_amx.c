/* matmul_int8_amx: INT8 linears on Intel AMX (tdpbssd, s8 x s8 -> s32) with the epilogue on
 * each 32 x 32 block of accumulators while it is in L1, instead of oneDNN's matmul followed by
 * matmul_int8.c's pass over the whole (M, N) s32 matrix. The kernel reads the weights oneDNN
 * packed for its own matmul (one copy): on AMX, oneDNN 2.6's brgemm lays an s8 (K, N) weight
 * out as BA16a64b4a, blocks of 64 k by 64 columns (column blocks outer), each 16 rows of
 * (64 columns x 4 k): 16 columns of a block at one k block are an AMX B tile as they lie,
 * rows 256 bytes apart. int8_amx_layout_ok checks the packed layout is exactly that (and K a
 * multiple of 64); else oneDNN's path runs. Activations are matmul_int8.c's s8 rows (stride
 * K), M padded with zero rows to a multiple of 32 by the caller. Tiles: 0-3 the 2 x 2
 * accumulators (32 rows by 32 columns), 4-5 A (rows 0-15, 16-31), 6-7 B (columns 0-15,
 * 16-31). */
#include <omp.h>
#include <stdlib.h>

#include "ops/amx.h"
#include "ops/bf16.h"
#include "ops/linear_kind.h"
#include "ops/ops.h"

#define BLK 32                  /* rows and columns of one accumulator block */
#define KSTEP 64                /* bytes of k per tile row */
#define KBLK_BYTES 4096         /* one oneDNN block: 64 k by 64 columns */
#define B_STRIDE 256            /* bytes between a B tile's rows inside a block */
#define CHUNK_BYTES (512 << 10) /* packed weights a thread walks per pass over its rows (L2) */

static size_t pad32(int n)
{
    return ((size_t)n + BLK - 1) / BLK * BLK;
}

size_t int8_amx_rows(int M)
{
    return pad32(M);
}

int int8_amx_heads_ok(const struct attn_shape *sh)
{
    return sh->head_dim % BLK == 0;
}

int int8_amx_layout_ok(const dnnl_memory_desc_t *md, int K, int N)
{
    if (K <= 0 || N <= 0 || K % KSTEP != 0 || !amx_int8_available())
        return 0;
    dnnl_memory_desc_t want;
    dnnl_dims_t dims = {K, N};
    return dnnl_memory_desc_init_by_tag(&want, 2, dims, dnnl_s8, dnnl_BA16a64b4a) == dnnl_success &&
           dnnl_memory_desc_equal(&want, md);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define AMX __attribute__((target("avx512f,amx-tile,amx-int8")))

/* c (32, 32) = tiles 0-3. */
AMX static inline void store(int32_t *c)
{
    _tile_stored(0, c, BLK * 4);
    _tile_stored(1, c + 16, BLK * 4);
    _tile_stored(2, c + 16 * BLK, BLK * 4);
    _tile_stored(3, c + 16 * BLK + 16, BLK * 4);
}

struct part {
    const struct linear *l;
    int M, add;
    float sx, *y;
    const struct attn_shape *sh; /* with heads: bf16 heads instead of y */
    uint16_t *heads;
};

/* The block's f32 values (int8_block_out's, so the bits of matmul_int8.c's row_bf16) rounded
 * to bf16 into the attention's heads: q, k, v parts of (B, NH, S, D) each; the block's 32
 * columns lie in one head (head_dim a multiple of 32, int8_amx_heads_ok). */
static void finish_heads(const struct part *p, const int32_t *c, int m0, int rows, size_t n0,
                         int cols)
{
    const struct linear *l = p->l;
    size_t D = (size_t)p->sh->head_dim, ch = n0 / D;
    _Alignas(64) float t[BLK * BLK];
    int8_block_out(c, BLK, rows, cols, l->w_scales + n0, l->bias ? l->bias + n0 : NULL, p->sx,
                   l->act, t, BLK, 0);
    for (int i = 0; i < rows; i++) /* the block's columns lie in one head: n0 % D on */
        bf16_from_f32(t + i * BLK, int8_head_row(p->sh, p->heads, (size_t)(m0 + i), ch) + n0 % D,
                      (size_t)cols);
}

/* Rows [r0, r1) of the block at rows m0, column block b, in c: their epilogue (f32 rows or
 * bf16 heads); returns max |y| (0 for heads). */
static float finish(const struct part *p, const int32_t *c, int m0, int b, int r0, int r1)
{
    size_t N = (size_t)p->l->out_features, n0 = (size_t)b * BLK;
    int rows = p->M - m0 < r1 ? p->M - m0 - r0 : r1 - r0, cols = N - n0 < BLK ? (int)(N - n0) : BLK;
    if (rows <= 0)
        return 0.0f;
    c += (size_t)r0 * BLK;
    m0 += r0;
    if (p->heads) {
        finish_heads(p, c, m0, rows, n0, cols);
        return 0.0f;
    }
    const struct linear *l = p->l;
    return int8_block_out(c, BLK, rows, cols, l->w_scales + n0, l->bias ? l->bias + n0 : NULL,
                          p->sx, l->act, p->y + (size_t)m0 * N + n0, N, p->add);
}

/* Tiles 0-3 = xq rows m0 .. m0 + 31 times packed column blocks w0, w1 (16 columns each);
 * meanwhile, a few rows per k step, the epilogue of the previous block (rows pm, column block
 * pb, in c; pm < 0: none): its vector work interleaved with the tile instructions, so that
 * neither waits for the other to retire. */
AMX static inline float block(const int8_t *xq, size_t K, size_t m0, const int8_t *w0,
                              const int8_t *w1, size_t nk, const struct part *p, const int32_t *c,
                              int pm, int pb)
{
    const int8_t *a = xq + m0 * K;
    /* the epilogue in up to 16 pieces of 2+ rows, spread evenly over the k steps */
    size_t pieces = nk < 16 ? nk : 16, every = nk / pieces;
    int step = (int)((BLK + pieces - 1) / pieces);
    float mx = 0.0f;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (size_t k = 0; k < nk; k++) {
        _tile_loadd(4, a + k * KSTEP, K);
        _tile_loadd(5, a + 16 * K + k * KSTEP, K);
        _tile_loadd(6, w0 + k * KBLK_BYTES, B_STRIDE);
        _tile_loadd(7, w1 + k * KBLK_BYTES, B_STRIDE);
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
        int r0 = (int)(k / every) * step;
        if (pm >= 0 && k % every == 0 && r0 < BLK) {
            float bm = finish(p, c, pm, pb, r0, r0 + step < BLK ? r0 + step : BLK);
            mx = bm > mx ? bm : mx;
        }
    }
    return mx;
}

/* Column blocks [b0, b1) (32 columns each) for every row block: per chunk of column blocks
 * (packed weights that stay in L2), every row block. Software-pipelined: a block's tile
 * products are issued before the previous block's epilogue, or carry it in their k loop
 * (block) when it is a long one. */
AMX static float thread_part(const struct part *p, const int8_t *xq, int b0, int b1)
{
    size_t K = (size_t)p->l->in_features, nk = K / KSTEP;
    size_t blk_bytes = nk * KBLK_BYTES / 2; /* a column block's half of its 64 columns */
    int per_chunk = (int)(CHUNK_BYTES / blk_bytes) > 0 ? (int)(CHUNK_BYTES / blk_bytes) : 1;
    _Alignas(64) int32_t c[BLK * BLK];
    float mx = 0.0f;
    int pm = -1, pb = -1; /* the block waiting in c */
    /* GELU's and SiLU's epilogues go inside the next block's k loop, the cheap ones after it
     * (bench-ops int8-ab, M = 256, 3 rounds: GELU 768 -> 3072 1.02-1.05 ms inside against
     * 1.10-1.15 after; without activation after was as fast or faster) */
    enum act a = p->l->act;
    int inter = a == ACT_GELU_ERF || a == ACT_GELU_TANH || a == ACT_SILU;
    _tile_loadconfig(&amx_cfg_16x64);
    for (int cb = b0; cb < b1; cb += per_chunk) {
        int ce = cb + per_chunk < b1 ? cb + per_chunk : b1;
        for (int m0 = 0; m0 < p->M; m0 += BLK)
            for (int b = cb; b < ce; b++) {
                const int8_t *w0 = (const int8_t *)p->l->w_packed +
                                   (size_t)(b / 2) * nk * KBLK_BYTES + (size_t)(b % 2) * 128;
                float bm = block(xq, K, (size_t)m0, w0, w0 + 64, nk, p, c, inter ? pm : -1, pb);
                if (!inter && pm >= 0) {
                    float t = finish(p, c, pm, pb, 0, BLK);
                    bm = t > bm ? t : bm;
                }
                mx = bm > mx ? bm : mx;
                store(c);
                pm = m0, pb = b;
            }
    }
    _tile_release();
    if (pm >= 0) {
        float bm = finish(p, c, pm, pb, 0, BLK);
        mx = bm > mx ? bm : mx;
    }
    return mx;
}

float int8_amx_forward(const struct linear *l, const int8_t *xq, int M, float sx, float *y, int add,
                       const struct attn_shape *sh, uint16_t *heads)
{
    int n_blk = (int)(pad32(l->out_features) / BLK);
    int par = (double)M * l->out_features * l->in_features >= 4.0e6 && n_blk >= 2;
    float mx = 0.0f;
#pragma omp parallel reduction(max : mx) if (par)
    {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int b0 = n_blk * id / nt, b1 = n_blk * (id + 1) / nt;
        if (b1 > b0) {
            struct part p = {l, M, add, sx, y, sh, heads};
            float t = thread_part(&p, xq, b0, b1);
            mx = t > mx ? t : mx;
        }
    }
    return mx;
}
#else
float int8_amx_forward(const struct linear *l, const int8_t *xq, int M, float sx, float *y, int add,
                       const struct attn_shape *sh, uint16_t *heads)
{
    (void)l, (void)xq, (void)M, (void)sx, (void)y, (void)add, (void)sh, (void)heads;
    return 0.0f; /* never called: int8_amx_layout_ok is 0 off x86-64 */
}
#endif
