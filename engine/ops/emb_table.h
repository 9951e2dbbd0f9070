/* emb_table: an embedding table (rows x cols) kept at most as wide as the model's compute
 * dtype, read back one row at a time as f32. A loader takes the table in f32
 * (emb_table_take), packs whatever is tied to it (an lm_head, an MLM decoder) from
 * emb_table_f32, then compacts it once (emb_table_compact): FP32 keeps the f32 rows; BF16
 * rounds them to bf16 (round to nearest even, as torch's .to(torch.bfloat16)); INT8 and INT4
 * keep s8 rows, symmetric, an f32 scale per row chosen for the least squared error among
 * max |row| / k, k in 120..127 (max / 127 alone broke the int8 tolerance of two issue-14 fixtures
 * whose embeddings are multiples of 0.5: it moved every one of them the same way;
 * docs/DECISIONS.md, issue 18). The f32 copy beside packed weights is what goes, and a table
 * tied to a packed linear (emb_table_share) keeps no rows at all: they are read back from the
 * linear's packed weights. A served model's memory is its weights at the serving dtype, its
 * embeddings at 4 bytes (FP32), 2 (BF16) or 1 (INT8, INT4), once.
 * Read-only after compaction: any thread may read rows. */
#ifndef INFERD_EMB_TABLE_H
#define INFERD_EMB_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "err.h"

struct linear;

struct emb_table {
    int64_t rows;
    int64_t cols;
    enum dtype_compute dt; /* the storage: FP32 until compacted, then FP32, BF16 or INT8 */
    float *f32;            /* FP32 storage, or the taken rows before compaction; owned */
    uint16_t *bf16;        /* BF16 storage; owned */
    int8_t *s8;            /* INT8 storage: (rows, cols) s8, row r = s8 * s8_scale[r]; owned */
    float *s8_scale;       /* (rows) */
    const struct linear *shared; /* emb_table_share: rows read from this tied linear */
    size_t *share_off;           /* (cols) its linear_row_offsets; owned */
};

/* t takes ownership of w (rows x cols f32, malloc'd); FP32 storage until compacted. */
void emb_table_take(struct emb_table *t, float *w, int64_t rows, int64_t cols);
/* The f32 rows before compaction (NULL after it unless dt was FP32). */
const float *emb_table_f32(const struct emb_table *t);
/* For any dt but FP32, converts the rows to bf16 (BF16) or s8 (INT8, INT4) and frees the f32
 * ones. ERR_NOMEM leaves t unchanged. A table never taken (rows 0) stays empty. */
int emb_table_compact(struct emb_table *t, enum dtype_compute dt, struct err *e);
/* For a table tied to linear l (packed from emb_table_f32, (cols -> rows)) at FP32, BF16 or
 * INT8: frees the f32 rows and reads rows back from l's packed weights (linear_read_row:
 * the same values a compacted table would hold, as INT8 linears quantize on
 * s8_row_quantize's scales), so the model holds its embeddings once. Otherwise (INT4, or l
 * not of the table's shape and dtype) emb_table_compact(t, dt). l must outlive t. */
int emb_table_share(struct emb_table *t, const struct linear *l, enum dtype_compute dt,
                    struct err *e);
/* Row x (n) to s8 q on one scale: max |x| / k for the k in 120..127 with the least squared
 * error (emb_table.c); INT8 linears' weights use it per output channel too (matmul.c). */
void s8_row_quantize(const float *x, int64_t n, int8_t *q, float *scale);
/* dst[0..cols) = row r as f32. */
void emb_table_row(const struct emb_table *t, int64_t r, float *dst);
/* Storage bytes. */
size_t emb_table_bytes(const struct emb_table *t);
void emb_table_fini(struct emb_table *t);

#endif
