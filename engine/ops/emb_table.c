/* emb_table: see emb_table.h. */
#include "ops/emb_table.h"

#include <stdlib.h>
#include <string.h>

void emb_table_take(struct emb_table *t, float *w, int64_t rows, int64_t cols)
{
    *t = (struct emb_table){.rows = rows, .cols = cols, .dt = DTYPE_COMPUTE_F32, .f32 = w};
}

const float *emb_table_f32(const struct emb_table *t)
{
    return t->f32;
}

/* f32 -> bf16, round to nearest even (NaN kept a NaN), as torch's .to(torch.bfloat16). */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static int compact_bf16(struct emb_table *t, struct err *e)
{
    size_t n = (size_t)t->rows * (size_t)t->cols;
    uint16_t *b = malloc(n * sizeof *b + 1);
    if (!b)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        b[i] = to_bf16(t->f32[i]);
    t->bf16 = b;
    return 0;
}

int emb_table_compact(struct emb_table *t, enum dtype_compute dt, struct err *e)
{
    if (dt == DTYPE_COMPUTE_F32 || t->dt != DTYPE_COMPUTE_F32 || !t->f32)
        return 0;
    int rc = compact_bf16(t, e);
    if (rc)
        return rc;
    free(t->f32);
    t->f32 = NULL;
    t->dt = DTYPE_COMPUTE_BF16;
    return 0;
}

void emb_table_row(const struct emb_table *t, int64_t r, float *dst)
{
    size_t off = (size_t)r * (size_t)t->cols, n = (size_t)t->cols;
    if (t->f32) {
        memcpy(dst, t->f32 + off, n * sizeof *dst);
        return;
    }
    const uint16_t *b = t->bf16 + off;
    for (size_t k = 0; k < n; k++) {
        uint32_t u = (uint32_t)b[k] << 16;
        memcpy(&dst[k], &u, sizeof u);
    }
}

size_t emb_table_bytes(const struct emb_table *t)
{
    size_t n = (size_t)t->rows * (size_t)t->cols;
    if (t->f32)
        return n * sizeof(float);
    return t->bf16 ? n * sizeof(uint16_t) : 0;
}

void emb_table_fini(struct emb_table *t)
{
    free(t->f32);
    free(t->bf16);
    *t = (struct emb_table){0};
}
