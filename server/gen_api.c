/* gen_api: what the dialect files share: the steps of gen_api_parse, the typed JSON readers with
 * their messages, the refused-keys tables' walk, the server limits and their checks; see
 * gen_api.h. The rules of each dialect are in its own file (params_tgi.c, params_openai.c,
 * params_pipeline.c). */
#include "gen_api.h"

#include <math.h>

struct gen_limits gen_limits_default(void)
{
    struct gen_limits l = {
        .max_stop_sequences = 4,
        .max_top_n_tokens = 5,
        .max_best_of = 2,
        .max_input_tokens = 0,
        .max_n = 8,
    };
    return l;
}

/* ---- the dialect's steps ---- */

void gen_api_init(const struct gen_api *a, struct gen_params *p, const struct gen_config *cfg)
{
    gen_params_init(p, cfg);
    a->init(p, cfg);
}

int gen_api_unsupported(const struct gen_api *a, const json_t *obj, const char **key, struct err *e)
{
    return a->unsupported(obj, key, e);
}

int gen_api_parse(const struct gen_api *a, const json_t *obj, const struct gen_config *cfg,
                  const struct gen_limits *lim, struct gen_params *out, struct err *e)
{
    struct gen_limits dl = gen_limits_default();
    gen_api_init(a, out, cfg);
    if (a->unsupported(obj, NULL, e) != 0)
        return ERR_INVALID;
    return a->read(obj, lim ? lim : &dl, out, e);
}

int gen_api_resolve_length(const struct gen_api *a, struct gen_params *p, size_t n_input,
                           size_t max_input_tokens, size_t max_total_tokens, struct err *e)
{
    return a->resolve_length(p, n_input, max_input_tokens, max_total_tokens, e);
}

const char *gen_api_finish(const struct gen_api *a, enum gen_finish f)
{
    return (unsigned)f <= GEN_FINISH_STOP ? a->finish[f] : NULL;
}

/* ---- typed getters ---- */

int params_num(const json_t *obj, const char *key, double *out, bool *found, struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return err_set(e, ERR_INVALID, "`%s` must be a number", key);
    *out = json_number_value(v);
    if (!isfinite(*out))
        return err_set(e, ERR_INVALID, "`%s` must be a finite number", key);
    *found = true;
    return 0;
}

int params_int(const json_t *obj, const char *key, int64_t *out, bool *found, struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return err_set(e, ERR_INVALID, "`%s` must be an integer", key);
    *out = json_integer_value(v);
    *found = true;
    return 0;
}

int params_bool(const json_t *obj, const char *key, bool *out, struct err *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return err_set(e, ERR_INVALID, "`%s` must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

int params_stop(const json_t *obj, bool one_ok, const struct gen_limits *lim, struct gen_params *p,
                struct err *e)
{
    const json_t *v = json_object_get(obj, "stop");
    if (!v || json_is_null(v))
        return 0;
    if (one_ok && json_is_string(v))
        return gen_params_add_stop(p, json_string_value(v), json_string_length(v), e);
    if (!json_is_array(v))
        return err_set(e, ERR_INVALID,
                       one_ok ? "`stop` must be a string or a list of strings"
                              : "`stop` must be a list of strings");
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *s = json_array_get(v, i);
        if (!json_is_string(s))
            return err_set(e, ERR_INVALID, "`stop`[%zu] must be a string", i);
        if (i >= GEN_MAX_STOP)
            return err_set(e, ERR_INVALID, "`stop` supports up to %u stop sequences. Given: %zu",
                           lim->max_stop_sequences, json_array_size(v));
        int rc = gen_params_add_stop(p, json_string_value(s), json_string_length(s), e);
        if (rc)
            return rc;
    }
    return 0;
}

int params_stop_count(const struct gen_params *p, const struct gen_limits *lim, struct err *e)
{
    if (p->n_stop > lim->max_stop_sequences)
        return err_set(e, ERR_INVALID, "`stop` supports up to %u stop sequences. Given: %zu",
                       lim->max_stop_sequences, p->n_stop);
    return 0;
}

int params_penalty_range(const char *key, double v, struct err *e)
{
    if (v < -2.0 || v > 2.0)
        return err_set(e, ERR_INVALID, "`%s` must be >= -2.0 and <= 2.0", key);
    return 0;
}

int params_check_limits(const struct gen_params *p, size_t n_input, size_t max_input,
                        size_t max_total, struct err *e)
{
    if (max_total && n_input + p->max_new_tokens > max_total)
        return err_set(e, ERR_INVALID,
                       "`inputs` tokens + `max_new_tokens` must be <= %zu. Given: %zu `inputs` "
                       "tokens and %u `max_new_tokens`",
                       max_total, n_input, p->max_new_tokens);
    if (max_input && n_input > max_input)
        return err_set(e, ERR_INVALID, "`inputs` must have less than %zu tokens. Given: %zu",
                       max_input, n_input);
    return 0;
}

/* ---- keys a dialect defines and inferd does not implement ---- */

int params_refuse(const struct params_refused *t, size_t n, const json_t *obj, const char **key,
                  struct err *e)
{
    if (key)
        *key = NULL;
    if (!json_is_object(obj))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(obj, t[i].key);
        if (!v || json_is_null(v) || (t[i].neutral && t[i].neutral(v, obj)))
            continue;
        if (key)
            *key = t[i].key;
        return err_set(e, ERR_INVALID, "`%s` is not supported: inferd does not implement %s",
                       t[i].key, t[i].what);
    }
    return 0;
}

bool params_is_false(const json_t *v, const json_t *obj)
{
    (void)obj;
    return json_is_false(v);
}

bool params_is_zero(const json_t *v, const json_t *obj)
{
    (void)obj;
    return json_is_number(v) && json_number_value(v) == 0;
}

bool params_is_empty(const json_t *v, const json_t *obj)
{
    (void)obj;
    return (json_is_object(v) && json_object_size(v) == 0) ||
           (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_string(v) && json_string_length(v) == 0);
}
