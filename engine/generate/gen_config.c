/* gen_config: a model's generation_config.json -> struct gen_config (the sampling defaults,
 * eos_token_id as an integer or a list, max_length, special ids), keeping only what the file
 * sets, so that each API dialect (server/params_*.c) can decide which defaults it takes. A
 * model file, not a request (check-layers.sh lets it include jansson for that). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate/params.h"

/* Where values come from and where errors go. */
struct reader {
    const json_t *root;
    const char *what; /* file path for messages */
    struct err *e;
};

void gen_config_init(struct gen_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->bos_token_id = -1;
    cfg->pad_token_id = -1;
    cfg->decoder_start_token_id = -1;
    cfg->forced_bos_token_id = -1;
    cfg->forced_eos_token_id = -1;
}

/* ---- typed getters: absent or null leaves *found false ---- */

static int get_num(const struct reader *r, const char *key, double *out, bool *found)
{
    const json_t *v = json_object_get(r->root, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be a number", r->what, key);
    *out = json_number_value(v);
    *found = true;
    return 0;
}

static int get_int(const struct reader *r, const char *key, int64_t *out, bool *found)
{
    const json_t *v = json_object_get(r->root, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be an integer", r->what, key);
    *out = json_integer_value(v);
    *found = true;
    return 0;
}

/* A special token id: -1 when absent; a list keeps its first element (as hf_config does). */
static int get_id(const struct reader *r, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(r->root, key);
    if (v && json_is_array(v))
        v = json_array_get(v, 0);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return err_set(r->e, ERR_FORMAT, "%s: '%s' must be a token id", r->what, key);
    *out = json_integer_value(v);
    return 0;
}

/* eos_token_id: an integer or a list of integers. */
static int get_eos(const struct reader *r, struct gen_config *cfg)
{
    const json_t *v = json_object_get(r->root, "eos_token_id");
    if (!v || json_is_null(v))
        return 0;
    cfg->n_eos_token_ids = 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return err_set(r->e, ERR_FORMAT, "%s: 'eos_token_id' must be a token id", r->what);
        cfg->eos_token_ids[cfg->n_eos_token_ids++] = (int32_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_array(v))
        return err_set(r->e, ERR_FORMAT, "%s: 'eos_token_id' must be an integer or a list",
                       r->what);
    if (json_array_size(v) > GEN_MAX_EOS)
        return err_set(r->e, ERR_FORMAT, "%s: 'eos_token_id' has more than %d ids", r->what,
                       GEN_MAX_EOS);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
            return err_set(r->e, ERR_FORMAT, "%s: 'eos_token_id'[%zu] must be a token id", r->what,
                           i);
        cfg->eos_token_ids[cfg->n_eos_token_ids++] = (int32_t)json_integer_value(x);
    }
    return 0;
}

/* early_stopping: true, false or "never". */
static int get_early_stopping(const struct reader *r, struct gen_config *cfg)
{
    const json_t *v = json_object_get(r->root, "early_stopping");
    if (!v || json_is_null(v))
        return 0;
    if (json_is_boolean(v))
        cfg->early_stopping = json_is_true(v) ? GEN_EARLY_STOP_TRUE : GEN_EARLY_STOP_FALSE;
    else if (json_is_string(v) && strcmp(json_string_value(v), "never") == 0)
        cfg->early_stopping = GEN_EARLY_STOP_NEVER;
    else
        return err_set(r->e, ERR_FORMAT, "%s: 'early_stopping' must be true, false or \"never\"",
                       r->what);
    cfg->has_early_stopping = true;
    return 0;
}

/* Beam search and the length processors. */
static int read_beam(const struct reader *r, struct gen_config *cfg)
{
    int rc = get_int(r, "num_beams", &cfg->num_beams, &cfg->has_num_beams);
    if (!rc)
        rc = get_int(r, "num_return_sequences", &cfg->num_return_sequences,
                     &cfg->has_num_return_sequences);
    if (!rc)
        rc = get_num(r, "length_penalty", &cfg->length_penalty, &cfg->has_length_penalty);
    if (!rc)
        rc = get_int(r, "no_repeat_ngram_size", &cfg->no_repeat_ngram_size,
                     &cfg->has_no_repeat_ngram_size);
    if (!rc)
        rc = get_int(r, "min_length", &cfg->min_length, &cfg->has_min_length);
    if (!rc)
        rc = get_int(r, "min_new_tokens", &cfg->min_new_tokens, &cfg->has_min_new_tokens);
    if (!rc)
        rc = get_early_stopping(r, cfg);
    if (!rc)
        rc = get_id(r, "forced_bos_token_id", &cfg->forced_bos_token_id);
    if (!rc)
        rc = get_id(r, "forced_eos_token_id", &cfg->forced_eos_token_id);
    if (rc)
        return rc;
    if (cfg->has_num_beams && (cfg->num_beams < 1 || cfg->num_beams > 1024))
        return err_set(r->e, ERR_FORMAT, "%s: 'num_beams' must be in [1, 1024]", r->what);
    if (cfg->has_num_return_sequences &&
        (cfg->num_return_sequences < 1 || cfg->num_return_sequences > 1024))
        return err_set(r->e, ERR_FORMAT, "%s: 'num_return_sequences' must be in [1, 1024]",
                       r->what);
    if ((cfg->has_no_repeat_ngram_size && cfg->no_repeat_ngram_size < 0) ||
        (cfg->has_min_length && cfg->min_length < 0) ||
        (cfg->has_min_new_tokens && cfg->min_new_tokens < 0))
        return err_set(r->e, ERR_FORMAT,
                       "%s: 'no_repeat_ngram_size', 'min_length' and 'min_new_tokens' must not "
                       "be negative",
                       r->what);
    return 0;
}

static int read_all(const struct reader *r, struct gen_config *cfg)
{
    const json_t *ds = json_object_get(r->root, "do_sample");
    if (ds && !json_is_null(ds)) {
        if (!json_is_boolean(ds))
            return err_set(r->e, ERR_FORMAT, "%s: 'do_sample' must be true or false", r->what);
        cfg->has_do_sample = true;
        cfg->do_sample = json_is_true(ds);
    }
    int rc = get_num(r, "temperature", &cfg->temperature, &cfg->has_temperature);
    if (!rc)
        rc = get_num(r, "top_p", &cfg->top_p, &cfg->has_top_p);
    if (!rc)
        rc = get_num(r, "typical_p", &cfg->typical_p, &cfg->has_typical_p);
    if (!rc)
        rc = get_num(r, "repetition_penalty", &cfg->repetition_penalty,
                     &cfg->has_repetition_penalty);
    if (!rc)
        rc = get_int(r, "top_k", &cfg->top_k, &cfg->has_top_k);
    if (!rc)
        rc = get_int(r, "max_length", &cfg->max_length, &cfg->has_max_length);
    if (!rc)
        rc = get_int(r, "max_new_tokens", &cfg->max_new_tokens, &cfg->has_max_new_tokens);
    if (!rc)
        rc = get_eos(r, cfg);
    if (!rc)
        rc = get_id(r, "bos_token_id", &cfg->bos_token_id);
    if (!rc)
        rc = get_id(r, "pad_token_id", &cfg->pad_token_id);
    if (!rc)
        rc = get_id(r, "decoder_start_token_id", &cfg->decoder_start_token_id);
    if (!rc)
        rc = read_beam(r, cfg);
    if (rc)
        return rc;
    /* values generate() itself would refuse are refused at load, naming the file */
    if (cfg->has_top_k && cfg->top_k < 0)
        return err_set(r->e, ERR_FORMAT, "%s: 'top_k' must not be negative", r->what);
    if (cfg->has_max_length && cfg->max_length < 0)
        return err_set(r->e, ERR_FORMAT, "%s: 'max_length' must not be negative", r->what);
    if (cfg->has_max_new_tokens && cfg->max_new_tokens <= 0)
        return err_set(r->e, ERR_FORMAT, "%s: 'max_new_tokens' must be positive", r->what);
    if (cfg->has_temperature && cfg->temperature < 0)
        return err_set(r->e, ERR_FORMAT, "%s: 'temperature' must not be negative", r->what);
    if (cfg->has_repetition_penalty && cfg->repetition_penalty <= 0)
        return err_set(r->e, ERR_FORMAT, "%s: 'repetition_penalty' must be positive", r->what);
    return 0;
}

int gen_config_parse(const char *json, size_t len, const char *what, struct gen_config *cfg,
                     struct err *e)
{
    gen_config_init(cfg);
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root)
        return err_set(e, ERR_FORMAT, "%s:%d:%d: %s", what, je.line, je.column, je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = err_set(e, ERR_FORMAT, "%s: not a JSON object", what);
    } else {
        struct reader r = {root, what, e};
        rc = read_all(&r, cfg);
    }
    json_decref(root);
    if (rc)
        gen_config_init(cfg);
    return rc;
}

int gen_config_update(struct gen_config *cfg, const json_t *obj, const char *what,
                      struct err *e)
{
    if (!json_is_object(obj))
        return err_set(e, ERR_FORMAT, "%s: not a JSON object", what);
    struct gen_config next = *cfg;
    struct reader r = {obj, what, e};
    int rc = read_all(&r, &next);
    if (rc == 0)
        *cfg = next;
    return rc;
}

/* DIR/NAME into cfg; *missing when there is no such file. */
static int load_file(const char *dir, const char *name, struct gen_config *cfg, bool *missing,
                     struct err *e)
{
    char path[4096];
    *missing = false;
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return err_set(e, ERR_IO, "%s: path too long", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = errno == ENOENT;
        return *missing ? 0 : err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len + 4096 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = err_set(e, ERR_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!rc)
        rc = gen_config_parse(buf, len, path, cfg, e);
    free(buf);
    return rc;
}

int gen_config_load(const char *dir, struct gen_config *cfg, struct err *e)
{
    gen_config_init(cfg);
    bool missing;
    int rc = load_file(dir, "generation_config.json", cfg, &missing, e);
    if (rc || !missing)
        return rc;
    /* transformers builds the generation config from config.json's generation keys */
    rc = load_file(dir, "config.json", cfg, &missing, e);
    if (rc || missing)
        gen_config_init(cfg);
    return missing ? 0 : rc;
}

void gen_config_fallback_eos(struct gen_config *cfg, const int64_t *ids, size_t n)
{
    if (cfg->n_eos_token_ids > 0)
        return;
    for (size_t i = 0; i < n && cfg->n_eos_token_ids < GEN_MAX_EOS; i++)
        if (ids[i] >= 0 && ids[i] <= INT32_MAX)
            cfg->eos_token_ids[cfg->n_eos_token_ids++] = (int32_t)ids[i];
}
