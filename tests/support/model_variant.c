/* model_variant: see model_variant.h. */
#include "support/model_variant.h"

#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader/safetensors.h"
#include "loader/tensor.h"
#include "support/support.h"

static bool dropped(const struct model_variant *v, const char *name)
{
    return v->drop && strstr(name, v->drop);
}

/* name with v's renaming applied (its first occurrence of from), in out. */
static void renamed(const struct model_variant *v, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s", name);
    char *at = v->from ? strstr(out, v->from) : NULL;
    if (at) {
        char rest[256];
        snprintf(rest, sizeof rest, "%s", at + strlen(v->from));
        snprintf(at, size - (size_t)(at - out), "%s%s", v->to, rest);
    }
}

/* DIR/model.safetensors: src_dir's tensors as v changes them, then v's extras. */
static void write_weights(const char *dir, const char *src_dir, const struct model_variant *v)
{
    struct err e = {0};
    struct safetensors *st;
    ck_assert_msg(safetensors_open(src_dir, &st, &e) == 0, "%s", e.msg);
    json_t *hdr = json_object();
    size_t off = 0, n = safetensors_count(st);
    for (size_t i = 0; i < n + (size_t)v->n_extra; i++) {
        const struct tensor *t = i < n ? safetensors_at(st, i) : NULL;
        const struct extra_tensor *x = t ? NULL : &v->extra[i - n];
        if (t && dropped(v, t->name))
            continue;
        char name[256];
        renamed(v, t ? t->name : x->name, name, sizeof name);
        json_t *shape = json_array();
        size_t bytes;
        if (t) {
            for (int k = 0; k < t->n_dims; k++)
                json_array_append_new(shape, json_integer(t->shape[k]));
            bytes = t->size_bytes;
        } else {
            json_array_append_new(shape, json_integer(x->rows));
            if (x->cols)
                json_array_append_new(shape, json_integer(x->cols));
            bytes = (size_t)(x->rows * (x->cols ? x->cols : 1)) * 4;
        }
        json_object_set_new(hdr, name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype",
                                      t ? dtype_name(t->dtype) : "F32", "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + bytes)));
        off += bytes;
    }
    char *text = json_dumps(hdr, JSON_COMPACT);
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    uint64_t len = strlen(text);
    fwrite(&len, 8, 1, fp);
    fwrite(text, 1, len, fp);
    /* data in the order of the header's offsets: the kept tensors, then the extras */
    for (size_t i = 0; i < n; i++) {
        const struct tensor *t = safetensors_at(st, i);
        if (dropped(v, t->name))
            continue;
        if (!v->scale_matrices || t->n_dims != 2 || t->dtype != DTYPE_F32) {
            fwrite(t->data, 1, t->size_bytes, fp);
            continue;
        }
        for (size_t k = 0; k < t->size_bytes / 4; k++) {
            float x;
            memcpy(&x, (const char *)t->data + 4 * k, 4);
            x *= v->scale_matrices;
            fwrite(&x, 4, 1, fp);
        }
    }
    for (int i = 0; i < v->n_extra; i++) {
        const struct extra_tensor *x = &v->extra[i];
        size_t count = (size_t)(x->rows * (x->cols ? x->cols : 1));
        for (size_t k = 0; k < count; k++)
            fwrite(x->data ? &x->data[k] : &(float){0.0f}, 4, 1, fp);
    }
    fclose(fp);
    free(text);
    json_decref(hdr);
    safetensors_close(st);
}

const char *model_variant_dir(const char *src, const struct model_variant *v)
{
    const char *dir = temp_dir();
    json_t *cfg = fixture_json(src, "config.json");
    json_error_t je;
    json_t *p = json_loads(v->patch ? v->patch : "{}", 0, &je);
    ck_assert_msg(p != NULL, "%s", je.text);
    const char *key;
    json_t *val;
    json_object_foreach(p, key, val)
    {
        if (json_is_null(val))
            json_object_del(cfg, key);
        else
            json_object_set(cfg, key, val);
    }
    char path[1024], target[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    ck_assert_int_eq(json_dump_file(cfg, path, JSON_INDENT(2)), 0);
    json_decref(cfg);
    json_decref(p);
    bool rewrite = v->drop || v->from || v->n_extra > 0 || v->scale_matrices;
    /* the tokenizer files when src has them, the weights unless written anew */
    static const char *const linked[] = {"tokenizer.json", "tokenizer_config.json",
                                         "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, linked[i]);
        snprintf(target, sizeof target, "%s/%s", src, linked[i]);
        bool weights = i == 2;
        if (weights ? rewrite : access(target, F_OK) != 0)
            continue;
        ck_assert_int_eq(symlink(target, path), 0);
    }
    if (rewrite)
        write_weights(dir, src, v);
    return dir;
}
