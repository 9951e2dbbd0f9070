/* random_weights: see random_weights.h. */
#include "random_weights.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void add(struct model_spec *m, const char *name, int64_t rows, int64_t cols, enum fill fill)
{
    if (m->n >= MAX_TENSORS) {
        fprintf(stderr, "random_weights: more than %d tensors\n", MAX_TENSORS);
        abort();
    }
    struct tensor_spec *t = &m->t[m->n++];
    snprintf(t->name, sizeof t->name, "%.120s", name);
    t->rows = rows;
    t->cols = cols;
    t->fill = fill;
}

size_t n_elements(const struct tensor_spec *t)
{
    return (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
}

/* ---- PRNG: splitmix64, Box-Muller ---- */

static uint64_t rng_state = 0x5eed0000u;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform01(void) /* (0, 1] */
{
    return ((double)(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static void fill_normal(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(uniform01())), a = 6.283185307179586 * uniform01();
        x[i] = (float)(r * cos(a)) * scale;
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(a)) * scale;
    }
}

/* ---- writing ---- */

int write_safetensors(const char *dir, const struct model_spec *m, const char *prog)
{
    size_t cap = 64 + (size_t)m->n * 200, len = 0, off = 0;
    char *hdr = malloc(cap);
    if (!hdr)
        return 1;
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < m->n; i++) {
        const struct tensor_spec *t = &m->t[i];
        size_t bytes = n_elements(t) * 4;
        char shape[64];
        if (t->cols)
            snprintf(shape, sizeof shape, "%" PRId64 ",%" PRId64, t->rows, t->cols);
        else
            snprintf(shape, sizeof shape, "%" PRId64, t->rows);
        len += (size_t)snprintf(hdr + len, cap - len,
                                ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],"
                                "\"data_offsets\":[%zu,%zu]}",
                                t->name, shape, off, off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8 != 0)
        hdr[len++] = ' ';

    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.part", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s: %s\n", prog, tmp, strerror(errno));
        free(hdr);
        return 1;
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)len >> (8 * i));
    int rc = fwrite(le, 1, 8, f) != 8 || fwrite(hdr, 1, len, f) != len;
    free(hdr);
    float *buf = NULL;
    for (int i = 0; i < m->n && rc == 0; i++) {
        const struct tensor_spec *t = &m->t[i];
        size_t n = n_elements(t);
        float *nb = realloc(buf, n * sizeof *nb);
        if (!nb) {
            rc = 1;
            break;
        }
        buf = nb;
        if (t->fill == FILL_NORMAL)
            fill_normal(buf, n, 0.02f);
        else
            for (size_t k = 0; k < n; k++)
                buf[k] = t->fill == FILL_ONES ? 1.0f : 0.0f;
        rc = fwrite(buf, sizeof *buf, n, f) != n;
    }
    free(buf);
    if (fclose(f) != 0)
        rc = 1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = 1;
    if (rc) {
        fprintf(stderr, "%s: writing %s failed\n", prog, path);
        remove(tmp);
    }
    return rc;
}
