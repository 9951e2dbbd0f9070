/* json_check: see json_check.h. */
#include "support/json_check.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

static bool no(char *why, size_t n, const char *what, const char *detail)
{
    if (why && n)
        snprintf(why, n, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
    return false;
}

static bool search(const char *re, const char *s, size_t len)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off,
                                     NULL);
    if (!code)
        return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    int rc = pcre2_match(code, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return rc >= 0;
}

static size_t code_points(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static bool is_type(const json_t *v, const char *t)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "integer") == 0)
        return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(t, "null") == 0)
        return json_is_null(v);
    return false;
}

static bool check(const json_t *root, const json_t *s, const json_t *v, char *why, size_t n,
                  int depth);

static bool check_type(const json_t *s, const json_t *v, char *why, size_t n)
{
    const json_t *t = json_object_get(s, "type");
    if (!t)
        return true;
    if (json_is_string(t))
        return is_type(v, json_string_value(t)) || no(why, n, "type", json_string_value(t));
    for (size_t i = 0; i < json_array_size(t); i++)
        if (is_type(v, json_string_value(json_array_get(t, i))))
            return true;
    return no(why, n, "type", "none of the list");
}

static bool check_enum(const json_t *s, const json_t *v, char *why, size_t n)
{
    const json_t *c = json_object_get(s, "const"), *en = json_object_get(s, "enum");
    if (c && !json_equal(c, v))
        return no(why, n, "const", NULL);
    if (!en)
        return true;
    for (size_t i = 0; i < json_array_size(en); i++)
        if (json_equal(json_array_get(en, i), v))
            return true;
    return no(why, n, "enum", NULL);
}

static const struct {
    const char *name, *re;
} formats[] = {
    {"date", "^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$"},
    {"time", "^([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d+)?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)$"},
    {"date-time", "^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])T([01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(\\.\\d+)?(Z|[+-]([01]\\d|2[0-3]):[0-5]\\d)$"},
    {"uuid", "^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"},
};

static bool check_string(const json_t *s, const json_t *v, char *why, size_t n)
{
    if (!json_is_string(v))
        return true;
    const char *str = json_string_value(v);
    size_t len = json_string_length(v), cp = code_points(str, len);
    const json_t *x;
    if ((x = json_object_get(s, "minLength")) && cp < (size_t)json_integer_value(x))
        return no(why, n, "minLength", str);
    if ((x = json_object_get(s, "maxLength")) && cp > (size_t)json_integer_value(x))
        return no(why, n, "maxLength", str);
    if ((x = json_object_get(s, "pattern")) && !search(json_string_value(x), str, len))
        return no(why, n, "pattern", str);
    if ((x = json_object_get(s, "format")))
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
            if (strcmp(formats[i].name, json_string_value(x)) == 0 &&
                !search(formats[i].re, str, len))
                return no(why, n, "format", str);
    return true;
}

static bool check_number(const json_t *s, const json_t *v, char *why, size_t n)
{
    if (!json_is_number(v))
        return true;
    double d = json_number_value(v);
    const json_t *x;
    if ((x = json_object_get(s, "minimum")) && d < json_number_value(x))
        return no(why, n, "minimum", NULL);
    if ((x = json_object_get(s, "maximum")) && d > json_number_value(x))
        return no(why, n, "maximum", NULL);
    if ((x = json_object_get(s, "exclusiveMinimum")) && d <= json_number_value(x))
        return no(why, n, "exclusiveMinimum", NULL);
    if ((x = json_object_get(s, "exclusiveMaximum")) && d >= json_number_value(x))
        return no(why, n, "exclusiveMaximum", NULL);
    return true;
}

static bool check_object(const json_t *root, const json_t *s, const json_t *v, char *why,
                         size_t n, int depth)
{
    if (!json_is_object(v))
        return true;
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *add = json_object_get(s, "additionalProperties");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (!json_object_get(v, json_string_value(json_array_get(req, i))))
            return no(why, n, "required", json_string_value(json_array_get(req, i)));
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        const json_t *ps = json_object_get(props, k);
        if (ps && !check(root, ps, x, why, n, depth + 1))
            return false;
        if (!ps && json_is_false(add))
            return no(why, n, "additionalProperties", k);
        if (!ps && json_is_object(add) && !check(root, add, x, why, n, depth + 1))
            return false;
    }
    return true;
}

static bool check_array(const json_t *root, const json_t *s, const json_t *v, char *why,
                        size_t n, int depth)
{
    if (!json_is_array(v))
        return true;
    const json_t *x;
    if ((x = json_object_get(s, "minItems")) && json_array_size(v) < (size_t)json_integer_value(x))
        return no(why, n, "minItems", NULL);
    if ((x = json_object_get(s, "maxItems")) && json_array_size(v) > (size_t)json_integer_value(x))
        return no(why, n, "maxItems", NULL);
    const json_t *items = json_object_get(s, "items");
    for (size_t i = 0; items && i < json_array_size(v); i++)
        if (!check(root, items, json_array_get(v, i), why, n, depth + 1))
            return false;
    return true;
}

static bool check_combinators(const json_t *root, const json_t *s, const json_t *v, char *why,
                              size_t n, int depth)
{
    const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf"),
                 *all = json_object_get(s, "allOf");
    size_t hits = 0;
    for (size_t i = 0; i < json_array_size(any); i++)
        hits += check(root, json_array_get(any, i), v, NULL, 0, depth + 1);
    if (any && hits == 0)
        return no(why, n, "anyOf", NULL);
    hits = 0;
    for (size_t i = 0; i < json_array_size(one); i++)
        hits += check(root, json_array_get(one, i), v, NULL, 0, depth + 1);
    if (one && hits != 1)
        return no(why, n, "oneOf", NULL);
    for (size_t i = 0; i < json_array_size(all); i++)
        if (!check(root, json_array_get(all, i), v, why, n, depth + 1))
            return false;
    return true;
}

static const json_t *deref(const json_t *root, const char *ref)
{
    if (strcmp(ref, "#") == 0)
        return root;
    if (strncmp(ref, "#/$defs/", 8) == 0)
        return json_object_get(json_object_get(root, "$defs"), ref + 8);
    if (strncmp(ref, "#/definitions/", 14) == 0)
        return json_object_get(json_object_get(root, "definitions"), ref + 14);
    return NULL;
}

static bool check(const json_t *root, const json_t *s, const json_t *v, char *why, size_t n,
                  int depth)
{
    if (depth > 64)
        return no(why, n, "too deep", NULL);
    if (json_is_true(s))
        return true;
    if (json_is_false(s))
        return no(why, n, "false schema", NULL);
    const json_t *ref = json_object_get(s, "$ref");
    if (ref) {
        const json_t *t = deref(root, json_string_value(ref));
        if (!t || !check(root, t, v, why, n, depth + 1))
            return t ? false : no(why, n, "$ref", json_string_value(ref));
    }
    return check_type(s, v, why, n) && check_enum(s, v, why, n) && check_string(s, v, why, n) &&
           check_number(s, v, why, n) && check_object(root, s, v, why, n, depth) &&
           check_array(root, s, v, why, n, depth) && check_combinators(root, s, v, why, n, depth);
}

bool json_check(const json_t *root, const json_t *schema, const json_t *instance, char *why,
                size_t why_size)
{
    return check(root, schema, instance, why, why_size, 0);
}
