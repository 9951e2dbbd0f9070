/* hf_config_read: the config.json reader shared by loader/hf_config.c (the generic sizes,
 * labels, encoder and T5 fields) and loader/hf_config_decoder.c (the decoder fields). Not for
 * use outside engine/loader/hf_config*.c; the public API is loader/hf_config.h.
 *
 * Every getter leaves *found false and returns 0 for a key that is absent or null, and returns
 * ERR_FORMAT naming config.json and the key for a value of the wrong JSON type. */
#ifndef INFERD_HF_CONFIG_READ_H
#define INFERD_HF_CONFIG_READ_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "loader/hf_config.h"

/* Where values come from and where errors go. */
struct reader {
    const json_t *root;
    const char *what; /* config.json path for messages */
    struct err *e;
    const struct hf_accept *accept; /* NULL: every family */
};

/* Sizes above this are surely corrupt and would overflow int arithmetic downstream. */
#define SIZE_LIMIT INT32_MAX
/* The most layers a stack may have (the largest published models have ~130): a config asking for
 * more is refused before anything is sized by it. */
#define LAYER_LIMIT 1024

int get_int_in(const struct reader *r, const json_t *obj, const char *key, int64_t *out,
               bool *found);
/* The first of keys (NULL-terminated) that is present. */
int get_int_any(const struct reader *r, const char *const *keys, int64_t *out, bool *found);
int get_num_in(const struct reader *r, const json_t *obj, const char *key, double *out,
               bool *found);
int get_str_in(const struct reader *r, const json_t *obj, const char *key, char *buf, size_t size,
               bool *found);
/* A top-level boolean; absent or null leaves *out as it was. */
int get_bool(const struct reader *r, const char *key, bool *out);
/* A positive size under any of keys (the first names it in messages); required: absent fails. */
int get_size(const struct reader *r, const char *const *keys, int64_t *out, bool required);
/* get_size for a layer count: at most LAYER_LIMIT. */
int get_layers(const struct reader *r, const char *const *keys, int64_t *out, bool required);

/* The decoder fields (rope, sliding window, tied head, biases, soft-capping, ...) with the
 * defaults of c->model_type's config class: loader/hf_config_decoder.c. */
int hf_config_read_decoder(const struct reader *r, struct hf_config *c);

/* The BART-like encoder-decoders' fields (decoder sizes, scale_embedding, Marian's shared
 * decoder embeddings) with each config class's defaults: loader/hf_config_seq2seq.c; nothing
 * for other model_types. */
int hf_config_read_seq2seq(const struct reader *r, struct hf_config *c);

#endif
