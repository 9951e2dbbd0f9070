/* common: helpers shared by the task pipelines: typed reads of request parameters that
 * name the parameter when it is wrong, a numpy-like softmax, special-token lookup. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

int pipeline_check_parameters(const json_t *parameters, struct err *e)
{
    if (!parameters || json_is_null(parameters) || json_is_object(parameters))
        return 0;
    return err_set(e, ERR_INVALID, "'parameters' must be an object");
}

/* The value of key, or NULL when parameters has no such key or holds null there. */
static const json_t *param(const json_t *parameters, const char *key)
{
    if (!parameters || !json_is_object(parameters))
        return NULL;
    const json_t *v = json_object_get(parameters, key);
    return v && !json_is_null(v) ? v : NULL;
}

int pipeline_param_positive(const json_t *parameters, const char *key, bool null_ok, size_t *out,
                            bool *is_null, struct err *e)
{
    const json_t *raw =
        parameters && json_is_object(parameters) ? json_object_get(parameters, key) : NULL;
    if (is_null)
        *is_null = raw && json_is_null(raw);
    const json_t *v = param(parameters, key);
    if (!v)
        return 0;
    /* A float with an integral value (2.0) is what some JSON encoders send for 2. */
    double d = json_is_integer(v) ? (double)json_integer_value(v)
               : json_is_real(v)  ? json_real_value(v)
                                  : -1.0;
    if (d < 1.0 || d != floor(d) || d > 1e9)
        return err_set(e, ERR_INVALID, "parameter '%s' must be a positive integer%s", key,
                       null_ok ? " or null" : "");
    *out = (size_t)d;
    return 0;
}

int pipeline_param_bool(const json_t *parameters, const char *key, bool *out, struct err *e)
{
    const json_t *v = param(parameters, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return err_set(e, ERR_INVALID, "parameter '%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

int pipeline_param_string(const json_t *parameters, const char *key, const char **out,
                          struct err *e)
{
    const json_t *v = param(parameters, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID, "parameter '%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

void pipeline_softmax(double *x, size_t n)
{
    if (n == 0)
        return;
    double max = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        x[i] = exp(x[i] - max);
        sum += x[i];
    }
    for (size_t i = 0; i < n; i++)
        x[i] /= sum;
}

int32_t pipeline_special_id(const struct tokenizer *tk, const char *key)
{
    const char *tok = tokenizer_config_str(tk, key);
    return tok ? tokenizer_token_to_id(tk, tok) : -1;
}

size_t *pipeline_cp_index(const char *text, size_t len, size_t *n_cp)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)text[i] & 0xC0) != 0x80;
    size_t *at = malloc((n + 1) * sizeof *at);
    if (!at)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80)
            at[k++] = i;
    at[k] = len;
    *n_cp = n;
    return at;
}

size_t pipeline_cp_count(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}
