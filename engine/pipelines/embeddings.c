/* embeddings: sentence-transformers pooling for feature-extraction / sentence-similarity:
 * reads modules.json and the Pooling config (both the old pooling_mode_* booleans and the
 * newer "pooling_mode"), pools the last hidden state (cls, max, mean, mean_sqrt_len_tokens,
 * weightedmean, lasttoken) over the attention mask, and L2-normalizes when a Normalize
 * module follows. Also the model's prompts (config_sentence_transformers.json) and the one a
 * request picks, as SentenceTransformer.encode does. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline.h"

static const struct {
    unsigned mode;
    const char *name; /* "pooling_mode" value */
    const char *flag; /* old boolean key */
} modes[] = {
    {POOL_CLS, "cls", "pooling_mode_cls_token"},
    {POOL_MAX, "max", "pooling_mode_max_tokens"},
    {POOL_MEAN, "mean", "pooling_mode_mean_tokens"},
    {POOL_MEAN_SQRT_LEN, "mean_sqrt_len_tokens", "pooling_mode_mean_sqrt_len_tokens"},
    {POOL_WEIGHTED_MEAN, "weightedmean", "pooling_mode_weightedmean_tokens"},
    {POOL_LASTTOKEN, "lasttoken", "pooling_mode_lasttoken"},
};
#define N_MODES (sizeof modes / sizeof modes[0])

size_t embeddings_pooling_name(const struct pooling_config *cfg, char *buf, size_t size)
{
    size_t n = 0;
    if (size)
        buf[0] = '\0';
    for (size_t i = 0; i < N_MODES; i++) {
        if (!(cfg->modes & modes[i].mode))
            continue;
        int k = snprintf(buf + n, size > n ? size - n : 0, "%s%s", n ? "+" : "", modes[i].name);
        n += k > 0 ? (size_t)k : 0;
        if (n >= size)
            return size ? size - 1 : 0;
    }
    return n;
}

static int mode_by_name(const json_t *v, unsigned *bits, const char *path, struct err *e)
{
    for (size_t i = 0; json_is_string(v) && i < N_MODES; i++)
        if (strcmp(json_string_value(v), modes[i].name) == 0) {
            *bits |= modes[i].mode;
            return 0;
        }
    return err_set(e, ERR_FORMAT, "%s: field 'pooling_mode': unknown mode", path);
}

static int load_pooling(const char *path, struct pooling_config *cfg, struct err *e)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return err_set(e, ERR_FORMAT, "%s: %s", path, je.text);
    int rc = 0;
    const json_t *pm = json_object_get(j, "pooling_mode");
    if (json_is_string(pm)) {
        rc = mode_by_name(pm, &cfg->modes, path, e);
    } else if (json_is_array(pm)) {
        for (size_t i = 0; rc == 0 && i < json_array_size(pm); i++)
            rc = mode_by_name(json_array_get(pm, i), &cfg->modes, path, e);
    } else {
        for (size_t i = 0; i < N_MODES; i++)
            if (json_is_true(json_object_get(j, modes[i].flag)))
                cfg->modes |= modes[i].mode;
    }
    const json_t *dim = json_object_get(j, "word_embedding_dimension");
    if (!dim)
        dim = json_object_get(j, "embedding_dimension");
    if (json_is_integer(dim) && json_integer_value(dim) > 0)
        cfg->dimension = (size_t)json_integer_value(dim);
    if (rc == 0 && cfg->modes == 0)
        rc = err_set(e, ERR_FORMAT, "%s: no pooling mode is set", path);
    json_decref(j);
    return rc;
}

int embeddings_load_config(const char *dir, struct pooling_config *cfg, struct err *e)
{
    *cfg = (struct pooling_config){0};
    char path[4096];
    snprintf(path, sizeof path, "%s/modules.json", dir);
    json_error_t je;
    json_t *mods = json_load_file(path, 0, &je);
    if (!mods)
        return err_set(e, ERR_NOT_FOUND, "%s: %s", path, je.text);
    int rc = 0;
    bool pooling = false;
    if (!json_is_array(mods))
        rc = err_set(e, ERR_FORMAT, "%s: must be a list of modules", path);
    for (size_t i = 0; rc == 0 && i < json_array_size(mods); i++) {
        const json_t *m = json_array_get(mods, i);
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *sub = json_string_value(json_object_get(m, "path"));
        if (!type || !sub) {
            rc = err_set(e, ERR_FORMAT, "%s: module %zu lacks 'type' or 'path'", path, i);
            break;
        }
        const char *cls = strrchr(type, '.') ? strrchr(type, '.') + 1 : type;
        if (strcmp(cls, "Transformer") == 0)
            continue;
        if (strcmp(cls, "Normalize") == 0) {
            cfg->normalize = true;
        } else if (strcmp(cls, "Pooling") == 0 && !pooling) {
            char pc[4096 + 64];
            snprintf(pc, sizeof pc, "%s/%s/config.json", dir, sub);
            rc = load_pooling(pc, cfg, e);
            pooling = true;
        } else {
            rc = err_set(e, ERR_FORMAT, "%s: module '%s' (%s) is not supported", path, sub, type);
        }
    }
    if (rc == 0 && !pooling)
        rc = err_set(e, ERR_FORMAT, "%s: no Pooling module", path);
    json_decref(mods);
    return rc;
}

size_t embeddings_dim(const struct pooling_config *cfg, size_t hidden_size)
{
    size_t n = 0;
    for (size_t i = 0; i < N_MODES; i++)
        n += (cfg->modes & modes[i].mode) ? hidden_size : 0;
    return n;
}

/* One pooling mode over (n, h) token embeddings into out (h). */
static void pool_one(unsigned mode, const float *x, const uint8_t *mask, size_t n, size_t h,
                     float *out)
{
    if (mode == POOL_CLS || mode == POOL_LASTTOKEN) {
        size_t t = 0; /* lasttoken: the last attended position, 0 when none */
        for (size_t i = 0; mode == POOL_LASTTOKEN && i < n; i++)
            if (mask[i])
                t = i;
        memcpy(out, x + t * h, h * sizeof *out);
        return;
    }
    for (size_t d = 0; d < h; d++) {
        double acc = mode == POOL_MAX ? -INFINITY : 0.0, weight = 0.0;
        for (size_t i = 0; i < n; i++) {
            double v = x[i * h + d];
            if (mode == POOL_MAX) {
                v = mask[i] ? v : -1e9; /* masked positions as sentence-transformers */
                acc = v > acc ? v : acc;
            } else {
                double w = mask[i] ? (mode == POOL_WEIGHTED_MEAN ? (double)(i + 1) : 1.0) : 0.0;
                acc += v * w;
                weight += w;
            }
        }
        if (weight < 1e-9)
            weight = 1e-9;
        if (mode == POOL_MEAN || mode == POOL_WEIGHTED_MEAN)
            acc /= weight;
        else if (mode == POOL_MEAN_SQRT_LEN)
            acc /= sqrt(weight);
        out[d] = (float)(n ? acc : 0.0);
    }
}

int embeddings_pool(const struct pooling_config *cfg, const float *hidden, const uint8_t *attention,
                    size_t n_tokens, size_t hidden_size, float *out, struct err *e)
{
    if (cfg->dimension && cfg->dimension != hidden_size)
        return err_set(e, ERR_INTERNAL,
                       "embeddings: the pooling config expects %zu dimensions, the model gives %zu",
                       cfg->dimension, hidden_size);
    if (n_tokens == 0)
        return err_set(e, ERR_INPUT, "embeddings: empty input");
    size_t at = 0;
    for (size_t i = 0; i < N_MODES; i++)
        if (cfg->modes & modes[i].mode) {
            pool_one(modes[i].mode, hidden, attention, n_tokens, hidden_size, out + at);
            at += hidden_size;
        }
    if (cfg->normalize) { /* torch.nn.functional.normalize: x / max(||x||, 1e-12) */
        double ss = 0.0;
        for (size_t i = 0; i < at; i++)
            ss += (double)out[i] * out[i];
        double norm = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
        for (size_t i = 0; i < at; i++)
            out[i] = (float)(out[i] / norm);
    }
    return 0;
}

/* ---- prompts ---- */

int embeddings_load_prompts(const char *dir, struct prompts *out, struct err *e)
{
    *out = (struct prompts){0};
    char path[4096];
    snprintf(path, sizeof path, "%s/config_sentence_transformers.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return 0; /* no file (or none readable): no prompts, as sentence-transformers */
    const json_t *prompts = json_object_get(j, "prompts");
    const json_t *def = json_object_get(j, "default_prompt_name");
    int rc = 0;
    const char *key;
    const json_t *v;
    if (prompts && !json_is_null(prompts) && !json_is_object(prompts))
        rc = err_set(e, ERR_FORMAT, "%s: 'prompts' must be an object of strings", path);
    json_object_foreach((json_t *)prompts, key, v)
        if (rc == 0 && !json_is_string(v))
            rc = err_set(e, ERR_FORMAT, "%s: prompt '%s' is not a string", path, key);
    if (rc == 0 && def && !json_is_null(def) && !json_is_string(def))
        rc = err_set(e, ERR_FORMAT, "%s: 'default_prompt_name' must be a string or null", path);
    if (rc == 0 && json_is_object(prompts)) {
        out->by_name = json_incref((json_t *)prompts);
        out->default_name = json_string_value(def);
    }
    out->file = rc == 0 ? j : NULL;
    if (rc)
        json_decref(j);
    return rc;
}

void embeddings_prompts_fini(struct prompts *p)
{
    json_decref(p->by_name);
    json_decref(p->file);
    *p = (struct prompts){0};
}

int embeddings_pick_prompt(const struct prompts *p, const char *prompt_name, const char *prompt,
                           const char **out, struct err *e)
{
    *out = NULL;
    if (prompt) { /* a prompt given wins over a prompt_name */
        *out = prompt;
        return 0;
    }
    if (!prompt_name) {
        if (p->default_name)
            *out = json_string_value(json_object_get(p->by_name, p->default_name));
        return 0;
    }
    const json_t *v = json_object_get(p->by_name, prompt_name);
    if (v) {
        *out = json_string_value(v);
        return 0;
    }
    char keys[512] = "";
    const char *key;
    const json_t *any;
    json_object_foreach((json_t *)p->by_name, key, any) {
        size_t n = strlen(keys);
        snprintf(keys + n, sizeof keys - n, "%s'%s'", n ? ", " : "", key);
    }
    return err_set(e, ERR_INVALID,
                   "Prompt name '%.100s' not found in the configured prompts dictionary with keys "
                   "[%s]",
                   prompt_name, keys);
}

json_t *embeddings_to_json(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

void embeddings_truncate_json(json_t *vec, size_t dims, bool normalize)
{
    while (json_array_size(vec) > dims)
        json_array_remove(vec, json_array_size(vec) - 1);
    if (!normalize)
        return;
    double sum = 0;
    for (size_t i = 0; i < dims; i++) {
        double x = json_number_value(json_array_get(vec, i));
        sum += x * x;
    }
    double norm = sqrt(sum) > 1e-12 ? sqrt(sum) : 1e-12;
    for (size_t i = 0; i < dims; i++)
        json_array_set_new(vec, i, json_real(json_number_value(json_array_get(vec, i)) / norm));
}
