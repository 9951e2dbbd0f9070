/* checkpoint: the table of weight formats; see checkpoint.h. */
#include "loader/checkpoint.h"
#include "loader/safetensors.h"
#include "loader/torch_bin.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* One format: the files that announce it and its operations on an opaque handle. */
struct ck_format {
    const char *name, *single, *index;
    int (*open)(const char *dir, void **out, struct err *e);
    void (*close)(void *h);
    const struct tensor *(*get)(const void *h, const char *name);
    size_t (*count)(const void *h);
    const struct tensor *(*at)(const void *h, size_t i);
};

struct checkpoint {
    const struct ck_format *fmt;
    void *h;
};

/* ---- the rows' adapters ---- */

static int st_open(const char *dir, void **out, struct err *e)
{
    struct safetensors *st = NULL;
    int rc = safetensors_open(dir, &st, e);
    *out = st;
    return rc;
}
static void st_close(void *h) { safetensors_close(h); }
static const struct tensor *st_get(const void *h, const char *n) { return safetensors_get(h, n); }
static size_t st_count(const void *h) { return safetensors_count(h); }
static const struct tensor *st_at(const void *h, size_t i) { return safetensors_at(h, i); }

static int tb_open(const char *dir, void **out, struct err *e)
{
    struct torch_bin *tb = NULL;
    int rc = torch_bin_open(dir, &tb, e);
    *out = tb;
    return rc;
}
static void tb_close(void *h) { torch_bin_close(h); }
static const struct tensor *tb_get(const void *h, const char *n) { return torch_bin_get(h, n); }
static size_t tb_count(const void *h) { return torch_bin_count(h); }
static const struct tensor *tb_at(const void *h, size_t i) { return torch_bin_at(h, i); }

static const struct ck_format formats[] = {
    {"safetensors", "model.safetensors", "model.safetensors.index.json", st_open, st_close,
     st_get, st_count, st_at},
    {"pytorch", "pytorch_model.bin", "pytorch_model.bin.index.json", tb_open, tb_close, tb_get,
     tb_count, tb_at},
};
#define N_FORMATS (sizeof formats / sizeof *formats)

static int exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

int checkpoint_open(const char *dir, struct checkpoint **out, struct err *e)
{
    for (size_t i = 0; i < N_FORMATS; i++) {
        const struct ck_format *f = &formats[i];
        if (!exists(dir, f->single) && !exists(dir, f->index))
            continue;
        struct checkpoint *ck = calloc(1, sizeof *ck);
        if (!ck)
            return err_set(e, ERR_NOMEM, "out of memory");
        ck->fmt = f;
        int rc = f->open(dir, &ck->h, e);
        if (rc) {
            free(ck);
            return rc;
        }
        *out = ck;
        return 0;
    }
    return err_set(e, ERR_NOT_FOUND,
                   "%s: no model.safetensors or model.safetensors.index.json (nor "
                   "pytorch_model.bin or pytorch_model.bin.index.json)", dir);
}

void checkpoint_close(struct checkpoint *ck)
{
    if (!ck)
        return;
    ck->fmt->close(ck->h);
    free(ck);
}

const struct tensor *checkpoint_get(const struct checkpoint *ck, const char *name)
{
    return ck->fmt->get(ck->h, name);
}

size_t checkpoint_count(const struct checkpoint *ck)
{
    return ck->fmt->count(ck->h);
}

const struct tensor *checkpoint_at(const struct checkpoint *ck, size_t i)
{
    return ck->fmt->at(ck->h, i);
}

const char *checkpoint_format(const struct checkpoint *ck)
{
    return ck->fmt->name;
}
