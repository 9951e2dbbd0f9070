/* grow: see grow.h. */
#include "models/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int grow_array(void *pp, size_t *cap, size_t n, size_t elem_size, struct err *e)
{
    if (n <= *cap)
        return 0;
    void *old, *grown = NULL;
    memcpy(&old, pp, sizeof old); /* *pp, read as the object pointer it is */
    if (n <= SIZE_MAX / elem_size)
        grown = realloc(old, n * elem_size);
    if (!grown)
        return err_set(e, ERR_NOMEM, "out of memory for %zu elements of %zu bytes", n, elem_size);
    memcpy(pp, &grown, sizeof grown);
    *cap = n;
    return 0;
}

float **layer_bufs_new(int n_layers)
{
    return calloc((size_t)n_layers, sizeof(float *));
}

void layer_bufs_free(float **bufs, int n_layers)
{
    for (int l = 0; bufs && l < n_layers; l++)
        free(bufs[l]);
    free(bufs);
}

int layer_bufs_grow(float **bufs, int n_layers, size_t n, size_t zero_from, struct err *e)
{
    for (int l = 0; l < n_layers; l++) {
        float *b = n <= SIZE_MAX / sizeof *b ? realloc(bufs[l], n * sizeof *b) : NULL;
        if (!b)
            return err_set(e, ERR_NOMEM, "out of memory for %d layers of %zu floats", n_layers, n);
        bufs[l] = b;
        if (zero_from < n)
            memset(b + zero_from, 0, (n - zero_from) * sizeof *b);
    }
    return 0;
}
