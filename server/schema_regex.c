/* schema_regex: a JSON Schema (the subset structured output needs) -> the regular expression
 * of the JSON texts that validate against it, for the engine's grammar compiler
 * (engine/generate/grammar.h). The engine knows regexes only; what a schema means is here.
 *
 * Supported: type (one or a list), enum, const, object (properties, required,
 * additionalProperties), array (items, minItems, maxItems), string (minLength, maxLength,
 * pattern, format date / time / date-time / uuid), integer (minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum), number (minimum / maximum when they are whole numbers
 * >= 0), boolean, null, anyOf, oneOf, allOf of one schema, $ref into the document ("#",
 * "#/$defs/NAME", "#/definitions/NAME") with $defs / definitions, nesting; annotations (title,
 * description, default, examples, $schema, $id, $comment, deprecated, readOnly, writeOnly) are
 * ignored, as validators ignore them. Any other keyword is an error naming it: it is never
 * silently dropped.
 *
 * What is generated (a subset of what validates, never more):
 *   - compact JSON: no whitespace but one optional space after ':' and ','; properties in the
 *     order the schema lists them, optional ones possibly left out; no properties beyond
 *     `properties` (an object without `properties` is a map of string keys to the
 *     additionalProperties schema, any value when absent);
 *   - numbers: at most 16 integer digits, 16 fraction digits and 2 exponent digits (what a
 *     double holds);
 *   - strings: any character but controls (escaped ones: \" \\ \/ \b \f \n \r \t and \uXXXX
 *     outside the surrogates), at most 1000 characters when maxLength is larger;
 *   - a recursive $ref is expanded 3 deep; below that, what needs it more is left out (an
 *     optional property, an empty array, another anyOf branch), or the schema is refused;
 *   - a value of any type ({}, true, items or additionalProperties absent): objects and arrays
 *     nested at most 3 deep;
 *   - oneOf is generated as anyOf (its branches should not overlap). */
#include "schema_regex.h"

#include "engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANY_DEPTH 3      /* nesting of a value of any type */
#define REF_REPEATS 3    /* expansions of one $ref on the stack */
#define MAX_REF_STACK 64 /* $refs being expanded */
#define STR_MAX 1000     /* longest generated string (REP_MAX of the regex syntax) */
#define INT_DIGITS 16

/* one JSON string character */
#define CHAR_RE "(?:[^\"\\\\\\x00-\\x1f]|\\\\[\"\\\\/bfnrt]|\\\\u(?:[0-9a-cA-CefEF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))"
#define INT_RE "-?(?:0|[1-9][0-9]{0,15})"
#define NUM_RE INT_RE "(?:\\.[0-9]{1,16})?(?:[eE][-+]?[0-9]{1,2})?"
#define COMMA ", ?"
#define COLON ": ?"

/* A regex in the making: a malloc'ed string, or UNSAT (nothing can match), or NULL (error). */
static char unsat_mark;
#define UNSAT (&unsat_mark)

struct ctx {
    const json_t *root;
    struct err *e;
    int rc;
    const char *refs[MAX_REF_STACK];
    int n_refs;
};

static char *fmt(struct ctx *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
static char *fmt(struct ctx *c, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s && !c->rc)
        c->rc = err_set(c->e, ERR_NOMEM, "out of memory");
    if (s && strlen(s) > GRAMMAR_MAX_REGEX) { /* nested objects multiply: stop early */
        free(s);
        s = NULL;
        if (!c->rc)
            c->rc = err_set(c->e, ERR_INVALID, "JSON schema too complex (its regex is over %zu "
                                               "bytes)", GRAMMAR_MAX_REGEX);
    }
    return s;
}

static char *oom(struct ctx *c)
{
    if (!c->rc)
        c->rc = err_set(c->e, ERR_NOMEM, "out of memory");
    return NULL;
}

static void drop(char *s)
{
    if (s != UNSAT)
        free(s);
}

static char *fail(struct ctx *c, const char *f, ...) __attribute__((format(printf, 2, 3)));
static char *fail(struct ctx *c, const char *f, ...)
{
    if (!c->rc) {
        va_list ap;
        va_start(ap, f);
        char msg[ERR_MSG_SIZE];
        vsnprintf(msg, sizeof msg, f, ap);
        va_end(ap);
        c->rc = err_set(c->e, ERR_INVALID, "%s", msg);
    }
    return NULL;
}

/* s with the regex metacharacters escaped. */
static char *quote(struct ctx *c, const char *s, size_t n)
{
    char *q = malloc(2 * n + 1);
    if (!q)
        return oom(c);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", s[i]) && s[i])
            q[k++] = '\\';
        q[k++] = s[i];
    }
    q[k] = '\0';
    return q;
}

/* A JSON value as its compact text, quoted for a regex. */
static char *literal(struct ctx *c, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!t) {
        c->rc = err_set(c->e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    char *q = quote(c, t, strlen(t));
    free(t);
    return q;
}

/* (?:a|b|...) of the satisfiable parts (freed); UNSAT when none is. */
static char *alt(struct ctx *c, char **parts, size_t n)
{
    size_t len = 8;
    for (size_t i = 0; i < n; i++)
        if (parts[i] && parts[i] != UNSAT)
            len += strlen(parts[i]) + 1;
    char *out = c->rc ? NULL : malloc(len);
    bool any = false;
    if (out) {
        strcpy(out, "(?:");
        for (size_t i = 0; i < n; i++)
            if (parts[i] && parts[i] != UNSAT) {
                if (any)
                    strcat(out, "|");
                strcat(out, parts[i]);
                any = true;
            }
        strcat(out, ")");
    } else if (!c->rc) {
        c->rc = err_set(c->e, ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        drop(parts[i]);
    if (out && !any) {
        free(out);
        return UNSAT;
    }
    if (out && strlen(out) > GRAMMAR_MAX_REGEX) {
        free(out);
        if (!c->rc)
            c->rc = err_set(c->e, ERR_INVALID, "JSON schema too complex (its regex is over %zu "
                                               "bytes)", GRAMMAR_MAX_REGEX);
        return NULL;
    }
    return out;
}

static char *schema(struct ctx *c, const json_t *s, int depth);

/* ---- keywords ---- */

static const char *const annotations[] = {"title",       "description", "default", "examples",
                                          "$schema",     "$id",         "$comment", "deprecated",
                                          "readOnly",    "writeOnly",   "$defs",   "definitions"};
static const char *const supported[] = {
    "type",      "enum",      "const",     "properties", "required", "additionalProperties",
    "items",     "minItems",  "maxItems",  "minLength",  "maxLength", "pattern",
    "format",    "minimum",   "maximum",   "exclusiveMinimum", "exclusiveMaximum",
    "anyOf",     "oneOf",     "allOf",     "$ref"};

static bool in_list(const char *k, const char *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k, l[i]) == 0)
            return true;
    return false;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool check_keywords(struct ctx *c, const json_t *s)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (!in_list(k, annotations, N_OF(annotations)) && !in_list(k, supported, N_OF(supported))) {
            fail(c, "JSON schema keyword `%s` is not supported", k);
            return false;
        }
    }
    return true;
}

static bool get_count(struct ctx *c, const json_t *s, const char *key, long long *out)
{
    const json_t *v = json_object_get(s, key);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        fail(c, "JSON schema `%s` must be a non-negative integer", key);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* ---- strings ---- */

/* \d \w \s \D \W \S outside a class, as classes that leave out what a JSON string escapes. */
static const char *pattern_escape(char l)
{
    switch (l) {
    case 'd': return "[0-9]";
    case 'w': return "[0-9A-Za-z_]";
    case 's': return "[ ]";
    case 'D': return "[^0-9\"\\\\\\x00-\\x1f]";
    case 'W': return "[^0-9A-Za-z_\"\\\\\\x00-\\x1f]";
    case 'S': return "[^ \\t\\n\\r\\f\\v\"\\\\\\x00-\\x1f]";
    }
    return NULL;
}

/* A schema `pattern` (ECMA-262, searched in the string's value) as a regex of the JSON string's
 * content: `.` and negated classes leave out '"', '\' and the controls (which the text would
 * have to escape); a pattern that needs one of them is refused. Unanchored ends become any
 * characters. */
static char *pattern_re(struct ctx *c, const char *p)
{
    size_t n = strlen(p), k = 0;
    bool head = n > 0 && p[0] == '^', tail = n > 1 && p[n - 1] == '$' && p[n - 2] != '\\';
    char *out = malloc(32 * n + 2 * sizeof CHAR_RE + 16);
    if (!out)
        return oom(c);
    if (!head)
        k += (size_t)sprintf(out + k, "%s*", CHAR_RE);
    out[k++] = '(';
    out[k++] = '?';
    out[k++] = ':';
    bool in_class = false;
    for (size_t i = head; i < n - tail; i++) {
        char ch = p[i];
        if ((unsigned char)ch < 0x20 || ch == '"') {
            free(out);
            return fail(c, "JSON schema `pattern` matching '\"' or a control character is not "
                           "supported");
        }
        if (ch == '\\' && i + 1 < n - tail) {
            char l = p[++i];
            const char *cls = pattern_escape(l);
            if (l == '\\' || l == 'b' || l == 'B' || (l >= '1' && l <= '9')) {
                free(out);
                return fail(c, "JSON schema `pattern` escape `\\%c` is not supported", l);
            }
            if (cls && !in_class) {
                k += (size_t)sprintf(out + k, "%s", cls);
            } else if (cls && l >= 'a') {
                k += (size_t)sprintf(out + k, "%s", l == 'd' ? "0-9" : l == 'w' ? "0-9A-Za-z_" : " ");
            } else if (cls) {
                free(out);
                return fail(c, "JSON schema `pattern`: `\\%c` inside a class is not supported", l);
            } else {
                out[k++] = '\\';
                out[k++] = l;
            }
            continue;
        }
        if (!in_class && ch == '.') {
            k += (size_t)sprintf(out + k, "[^\"\\\\\\x00-\\x1f]");
        } else if (!in_class && ch == '[') {
            in_class = true;
            out[k++] = '[';
            if (i + 1 < n - tail && p[i + 1] == '^') {
                k += (size_t)sprintf(out + k, "^\"\\\\\\x00-\\x1f");
                i++;
            }
        } else if (in_class && ch == ']') {
            in_class = false;
            out[k++] = ']';
        } else if (!in_class && (ch == '^' || ch == '$')) {
            free(out);
            return fail(c, "JSON schema `pattern`: anchors other than at its ends are not supported");
        } else if (!in_class && ch == '(' && i + 2 < n && p[i + 1] == '?' && p[i + 2] != ':') {
            free(out);
            return fail(c, "JSON schema `pattern`: lookaround is not supported");
        } else {
            out[k++] = ch;
        }
    }
    out[k++] = ')';
    if (!tail)
        k += (size_t)sprintf(out + k, "%s*", CHAR_RE);
    out[k] = '\0';
    return out;
}

static const struct {
    const char *name, *re;
} formats[] = {
    {"date", "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"},
    {"time", "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"},
    {"date-time", "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"},
    {"uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"},
};

static char *string_re(struct ctx *c, const json_t *s)
{
    long long min = 0, max = -1;
    if (!get_count(c, s, "minLength", &min) || !get_count(c, s, "maxLength", &max))
        return NULL;
    const json_t *pat = json_object_get(s, "pattern"), *f = json_object_get(s, "format");
    if ((pat || f) && (json_object_get(s, "minLength") || json_object_get(s, "maxLength")))
        return fail(c, "JSON schema `minLength` / `maxLength` with `pattern` or `format` is not "
                       "supported");
    if (pat && f)
        return fail(c, "JSON schema `pattern` with `format` is not supported");
    if (pat) {
        if (!json_is_string(pat))
            return fail(c, "JSON schema `pattern` must be a string");
        char *body = pattern_re(c, json_string_value(pat));
        char *r = body ? fmt(c, "\"%s\"", body) : NULL;
        free(body);
        return r;
    }
    if (f) {
        const char *name = json_string_value(f);
        for (size_t i = 0; name && i < N_OF(formats); i++)
            if (strcmp(name, formats[i].name) == 0)
                return fmt(c, "\"%s\"", formats[i].re);
        return fail(c, "JSON schema `format` \"%s\" is not supported (date, time, date-time, uuid "
                       "are)", name ? name : "?");
    }
    if (max >= 0 && max < min)
        return UNSAT;
    if (min > STR_MAX)
        return fail(c, "JSON schema `minLength` over %d is not supported", STR_MAX);
    if (max > STR_MAX)
        max = STR_MAX;
    if (max < 0)
        return min == 0 ? fmt(c, "\"%s*\"", CHAR_RE) : fmt(c, "\"%s{%lld,}\"", CHAR_RE, min);
    return fmt(c, "\"%s{%lld,%lld}\"", CHAR_RE, min, max);
}

/* ---- numbers ---- */

/* The digit strings a..b of the same length (a <= b), as a regex. */
static char *same_len(struct ctx *c, const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n == 0)
        return fmt(c, "%s", "");
    if (n == 1)
        return a[0] == b[0] ? fmt(c, "%c", a[0]) : fmt(c, "[%c-%c]", a[0], b[0]);
    if (a[0] == b[0]) {
        char *rest = same_len(c, a + 1, b + 1);
        char *r = rest ? fmt(c, "%c%s", a[0], rest) : NULL;
        free(rest);
        return r;
    }
    /* a = x00..0 and b = y99..9 take their first digits whole: [x-y][0-9]{n-1} */
    bool a_low = strspn(a + 1, "0") == n - 1, b_high = strspn(b + 1, "9") == n - 1;
    char first = a_low ? a[0] : (char)(a[0] + 1), last = b_high ? b[0] : (char)(b[0] - 1);
    char nines[32], zeros[32];
    memset(nines, '9', n - 1);
    memset(zeros, '0', n - 1);
    nines[n - 1] = zeros[n - 1] = '\0';
    char *parts[3] = {NULL, NULL, NULL};
    if (!a_low) {
        char *lo = same_len(c, a + 1, nines);
        parts[0] = lo ? fmt(c, "%c%s", a[0], lo) : NULL;
        free(lo);
    }
    if (first <= last)
        parts[1] = first == last ? fmt(c, "%c[0-9]{%zu}", first, n - 1)
                                 : fmt(c, "[%c-%c][0-9]{%zu}", first, last, n - 1);
    if (!b_high) {
        char *hi = same_len(c, zeros, b + 1);
        parts[2] = hi ? fmt(c, "%c%s", b[0], hi) : NULL;
        free(hi);
    }
    return alt(c, parts, 3);
}

/* The integers lo..hi (0 <= lo <= hi), without leading zeros. */
static char *nonneg_range(struct ctx *c, long long lo, long long hi)
{
    char *parts[INT_DIGITS + 2] = {NULL};
    size_t np = 0;
    long long p10 = 1;
    for (int d = 1; d <= INT_DIGITS + 1 && lo <= hi; d++, p10 *= 10) {
        long long top = p10 * 10 - 1, bot = d == 1 ? 0 : p10;
        if (lo > top)
            continue;
        long long a = lo > bot ? lo : bot, b = hi < top ? hi : top;
        char sa[32], sb[32];
        snprintf(sa, sizeof sa, "%lld", a);
        snprintf(sb, sizeof sb, "%lld", b);
        parts[np++] = same_len(c, sa, sb);
        lo = b + 1;
    }
    return alt(c, parts, np);
}

static bool get_bound(struct ctx *c, const json_t *s, const char *key, double *v, bool *has)
{
    const json_t *x = json_object_get(s, key);
    *has = x != NULL;
    if (x && !json_is_number(x)) {
        fail(c, "JSON schema `%s` must be a number", key);
        return false;
    }
    if (x)
        *v = json_number_value(x);
    return true;
}

#define INT_LIMIT 1e16 /* past the largest integer generated */
#define INT_MAX_LL 9999999999999999LL /* INT_DIGITS nines */

/* v in [-INT_MAX_LL, INT_MAX_LL] (v whole). */
static long long clamp_ll(double v)
{
    return v >= INT_LIMIT ? INT_MAX_LL : v <= -INT_LIMIT ? -INT_MAX_LL : (long long)v;
}

static char *integer_re(struct ctx *c, const json_t *s)
{
    double mn = -INT_LIMIT, mx = INT_LIMIT, xmn = 0, xmx = 0;
    bool h1, h2, h3, h4;
    if (!get_bound(c, s, "minimum", &mn, &h1) || !get_bound(c, s, "maximum", &mx, &h2) ||
        !get_bound(c, s, "exclusiveMinimum", &xmn, &h3) ||
        !get_bound(c, s, "exclusiveMaximum", &xmx, &h4))
        return NULL;
    if (!h1 && !h2 && !h3 && !h4)
        return fmt(c, "%s", INT_RE);
    double lo = h1 ? ceil(mn) : -INT_LIMIT, hi = h2 ? floor(mx) : INT_LIMIT;
    if (h3 && floor(xmn) + 1 > lo)
        lo = floor(xmn) + 1;
    if (h4 && ceil(xmx) - 1 < hi)
        hi = ceil(xmx) - 1;
    long long l = clamp_ll(lo), h = clamp_ll(hi);
    if (l > h)
        return UNSAT;
    char *parts[2] = {NULL, NULL};
    if (l < 0) {
        char *r = nonneg_range(c, h < 0 ? -h : 1, -l);
        parts[0] = r && r != UNSAT ? fmt(c, "-%s", r) : r;
        drop(r == UNSAT ? NULL : r);
    }
    if (h >= 0)
        parts[1] = nonneg_range(c, l > 0 ? l : 0, h);
    return alt(c, parts, 2);
}

/* minimum / maximum of a number: whole bounds >= 0 only (lo..hi: integer part lo..hi-1 with any
 * fraction, or hi with a zero one). */
static char *number_re(struct ctx *c, const json_t *s)
{
    double mn = 0, mx = (double)INT_MAX_LL, x;
    bool h1, h2, h3, h4;
    if (!get_bound(c, s, "minimum", &mn, &h1) || !get_bound(c, s, "maximum", &mx, &h2) ||
        !get_bound(c, s, "exclusiveMinimum", &x, &h3) ||
        !get_bound(c, s, "exclusiveMaximum", &x, &h4))
        return NULL;
    if (h3 || h4)
        return fail(c, "JSON schema `exclusiveMinimum` / `exclusiveMaximum` on a number is not "
                       "supported (on an integer it is)");
    if (!h1 && !h2)
        return fmt(c, "%s", NUM_RE);
    if (!h1 || mn < 0 || mn != floor(mn) || mx != floor(mx) || mx >= INT_LIMIT || mn >= INT_LIMIT)
        return fail(c, "JSON schema `minimum` / `maximum` on a number: only whole bounds with "
                       "minimum >= 0 are supported");
    if (mn > mx)
        return UNSAT;
    char *parts[2] = {NULL, NULL};
    if (mx > mn) {
        char *ip = nonneg_range(c, (long long)mn, (long long)mx - 1);
        parts[0] = ip && ip != UNSAT ? fmt(c, "%s(?:\\.[0-9]{1,16})?", ip) : NULL;
        drop(ip);
    }
    parts[1] = fmt(c, "%lld(?:\\.0{1,16})?", (long long)mx);
    return alt(c, parts, 2);
}

/* ---- containers ---- */

/* A value of any type, objects and arrays nested `depth` more. */
static char *any_re(struct ctx *c, int depth)
{
    char *parts[7] = {
        fmt(c, "\"%s*\"", CHAR_RE), fmt(c, "%s", NUM_RE), fmt(c, "true"), fmt(c, "false"),
        fmt(c, "null"), NULL, NULL};
    if (depth > 0) {
        char *v = any_re(c, depth - 1);
        if (v && v != UNSAT) {
            parts[5] = fmt(c, "\\{(?:\"%s*\"" COLON "%s(?:" COMMA "\"%s*\"" COLON "%s)*)?\\}",
                           CHAR_RE, v, CHAR_RE, v);
            parts[6] = fmt(c, "\\[(?:%s(?:" COMMA "%s)*)?\\]", v, v);
        }
        drop(v);
    }
    return alt(c, parts, 7);
}

/* items from minItems to maxItems. */
static char *array_re(struct ctx *c, const json_t *s, int depth)
{
    long long min = 0, max = -1;
    if (!get_count(c, s, "minItems", &min) || !get_count(c, s, "maxItems", &max))
        return NULL;
    const json_t *items = json_object_get(s, "items");
    if (items && !json_is_object(items) && !json_is_boolean(items))
        return fail(c, "JSON schema `items` must be a schema (tuples are not supported)");
    if ((max >= 0 && max < min) || min > 1000)
        return max >= 0 && max < min ? UNSAT : fail(c, "JSON schema `minItems` over 1000");
    if (max > 1000)
        max = 1000;
    if (max == 0)
        return fmt(c, "\\[\\]");
    char *v = items ? schema(c, items, depth) : any_re(c, ANY_DEPTH - 1);
    if (!v || v == UNSAT)
        return !v ? NULL : min == 0 ? fmt(c, "\\[\\]") : UNSAT;
    char rep[48];
    if (max < 0)
        snprintf(rep, sizeof rep, "{%lld,}", min > 0 ? min - 1 : 0);
    else
        snprintf(rep, sizeof rep, "{%lld,%lld}", min > 0 ? min - 1 : 0, max - 1);
    char *r = fmt(c, min > 0 ? "\\[%s(?:" COMMA "%s)%s\\]" : "\\[(?:%s(?:" COMMA "%s)%s)?\\]", v,
                  v, rep);
    free(v);
    return r;
}

struct prop {
    char *re; /* "key": ?value, or UNSAT */
    bool required;
};

/* Properties i.. when none has been written yet: the first present one, then the rest each
 * after a comma. */
static char *props_from(struct ctx *c, struct prop *p, size_t n, size_t i)
{
    if (i == n)
        return fmt(c, "%s", "");
    size_t len = 1;
    for (size_t j = i + 1; j < n; j++)
        len += p[j].re != UNSAT ? strlen(p[j].re) + 16 : 0;
    char *rest = malloc(len);
    if (!rest)
        return oom(c);
    rest[0] = '\0';
    for (size_t j = i + 1; j < n; j++) {
        if (p[j].re == UNSAT)
            continue;
        strcat(rest, p[j].required ? COMMA : "(?:" COMMA);
        strcat(rest, p[j].re);
        if (!p[j].required)
            strcat(rest, ")?");
    }
    char *here = p[i].re == UNSAT ? UNSAT : fmt(c, "%s%s", p[i].re, rest);
    free(rest);
    if (p[i].required)
        return here;
    char *parts[2] = {here, props_from(c, p, n, i + 1)};
    return alt(c, parts, 2);
}

static bool is_required(const json_t *req, const char *key)
{
    for (size_t i = 0; i < json_array_size(req); i++)
        if (json_is_string(json_array_get(req, i)) &&
            strcmp(json_string_value(json_array_get(req, i)), key) == 0)
            return true;
    return false;
}

static char *object_re(struct ctx *c, const json_t *s, int depth)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *add = json_object_get(s, "additionalProperties");
    if ((props && !json_is_object(props)) || (req && !json_is_array(req)))
        return fail(c, "JSON schema `properties` must be an object and `required` a list");
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *k = json_string_value(json_array_get(req, i));
        if (!k || !json_object_get(props, k))
            return fail(c, "JSON schema: required property `%s` is not in `properties`",
                        k ? k : "?");
    }
    if (!props || json_object_size(props) == 0) { /* a map */
        if (json_is_false(add))
            return fmt(c, "\\{\\}");
        char *v = add && json_is_object(add) ? schema(c, add, depth) : any_re(c, ANY_DEPTH - 1);
        if (!v || v == UNSAT)
            return !v ? NULL : fmt(c, "\\{\\}");
        char *r = fmt(c, "\\{(?:\"%s*\"" COLON "%s(?:" COMMA "\"%s*\"" COLON "%s)*)?\\}", CHAR_RE,
                      v, CHAR_RE, v);
        free(v);
        return r;
    }
    size_t n = json_object_size(props), i = 0;
    struct prop *p = calloc(n, sizeof *p);
    if (!p)
        return oom(c);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)props, k, v) {
        p[i].required = is_required(req, k);
        char *vr = schema(c, v, depth);
        char *kq = quote(c, k, strlen(k));
        char *kj = NULL;
        if (kq) { /* the key as JSON text */
            json_t *js = json_string(k);
            char *t = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
            json_decref(js);
            kj = t ? quote(c, t, strlen(t)) : NULL;
            free(t);
        }
        p[i].re = !vr || !kj ? NULL : vr == UNSAT ? UNSAT : fmt(c, "%s" COLON "%s", kj, vr);
        free(kq);
        free(kj);
        drop(vr);
        if (!p[i].re || (p[i].re == UNSAT && p[i].required))
            break;
        i++;
    }
    char *body = i == n ? props_from(c, p, n, 0) : (c->rc ? NULL : UNSAT);
    for (size_t j = 0; j < n; j++)
        drop(p[j].re);
    free(p);
    if (!body || body == UNSAT)
        return body;
    char *r = fmt(c, "\\{%s\\}", body);
    free(body);
    return r;
}

/* ---- a schema ---- */

static const json_t *resolve_ref(struct ctx *c, const char *ref)
{
    if (strcmp(ref, "#") == 0)
        return c->root;
    static const char *const prefixes[] = {"#/$defs/", "#/definitions/"};
    for (size_t i = 0; i < N_OF(prefixes); i++) {
        size_t l = strlen(prefixes[i]);
        if (strncmp(ref, prefixes[i], l) == 0 && !strchr(ref + l, '/')) {
            const json_t *defs = json_object_get(c->root, i == 0 ? "$defs" : "definitions");
            const json_t *t = json_object_get(defs, ref + l);
            if (t)
                return t;
        }
    }
    fail(c, "JSON schema `$ref` \"%s\" does not name a definition of this schema (\"#\", "
            "\"#/$defs/NAME\" or \"#/definitions/NAME\")", ref);
    return NULL;
}

static char *ref_re(struct ctx *c, const char *ref, int depth)
{
    int seen = 0;
    for (int i = 0; i < c->n_refs; i++)
        seen += strcmp(c->refs[i], ref) == 0;
    if (seen >= REF_REPEATS)
        return UNSAT; /* recursion cut here */
    if (c->n_refs == MAX_REF_STACK)
        return fail(c, "JSON schema `$ref`s nested too deeply");
    const json_t *t = resolve_ref(c, ref);
    if (!t)
        return NULL;
    c->refs[c->n_refs++] = ref;
    char *r = schema(c, t, depth);
    c->n_refs--;
    return r;
}

/* anyOf / oneOf: each branch. */
static char *branches_re(struct ctx *c, const json_t *list, const char *key, int depth)
{
    if (!json_is_array(list) || json_array_size(list) == 0)
        return fail(c, "JSON schema `%s` must be a non-empty list of schemas", key);
    size_t n = json_array_size(list);
    char **parts = calloc(n, sizeof *parts);
    if (!parts)
        return oom(c);
    for (size_t i = 0; i < n && !c->rc; i++)
        parts[i] = schema(c, json_array_get(list, i), depth);
    char *r = alt(c, parts, n);
    free(parts);
    if (c->rc) {
        drop(r);
        return NULL;
    }
    return r;
}

static char *type_re(struct ctx *c, const char *t, const json_t *s, int depth);

/* The type a schema without `type` has by its keywords (NULL: any). */
static const char *implied_type(const json_t *s)
{
    static const struct {
        const char *key, *type;
    } rows[] = {{"properties", "object"}, {"required", "object"}, {"additionalProperties", "object"},
                {"items", "array"},       {"minItems", "array"},  {"maxItems", "array"},
                {"minLength", "string"},  {"maxLength", "string"}, {"pattern", "string"},
                {"format", "string"},     {"minimum", "number"},  {"maximum", "number"},
                {"exclusiveMinimum", "number"}, {"exclusiveMaximum", "number"}};
    for (size_t i = 0; i < N_OF(rows); i++)
        if (json_object_get(s, rows[i].key))
            return rows[i].type;
    return NULL;
}

static char *typed_re(struct ctx *c, const json_t *s, int depth)
{
    const json_t *t = json_object_get(s, "type");
    if (!t) {
        const char *it = implied_type(s);
        return it ? type_re(c, it, s, depth) : any_re(c, ANY_DEPTH);
    }
    if (json_is_string(t))
        return type_re(c, json_string_value(t), s, depth);
    if (!json_is_array(t) || json_array_size(t) == 0)
        return fail(c, "JSON schema `type` must be a type name or a list of them");
    size_t n = json_array_size(t);
    char **parts = calloc(n, sizeof *parts);
    if (!parts)
        return oom(c);
    for (size_t i = 0; i < n && !c->rc; i++) {
        const char *name = json_string_value(json_array_get(t, i));
        parts[i] = name ? type_re(c, name, s, depth) : fail(c, "JSON schema `type` list: a name");
    }
    char *r = alt(c, parts, n);
    free(parts);
    return c->rc ? (drop(r), NULL) : r;
}

static char *schema(struct ctx *c, const json_t *s, int depth)
{
    if (c->rc)
        return NULL;
    if (json_is_true(s))
        return any_re(c, ANY_DEPTH);
    if (json_is_false(s))
        return UNSAT;
    if (!json_is_object(s))
        return fail(c, "a JSON schema must be an object or a boolean");
    if (!check_keywords(c, s))
        return NULL;
    const json_t *v;
    if ((v = json_object_get(s, "const")) != NULL)
        return literal(c, v);
    if ((v = json_object_get(s, "enum")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) == 0)
            return fail(c, "JSON schema `enum` must be a non-empty list");
        size_t n = json_array_size(v);
        char **parts = calloc(n, sizeof *parts);
        if (!parts)
            return oom(c);
        for (size_t i = 0; i < n; i++)
            parts[i] = literal(c, json_array_get(v, i));
        char *r = alt(c, parts, n);
        free(parts);
        return r;
    }
    if ((v = json_object_get(s, "$ref")) != NULL) {
        if (!json_is_string(v))
            return fail(c, "JSON schema `$ref` must be a string");
        if (json_object_size(s) > (size_t)1 + (json_object_get(s, "$defs") != NULL) +
                                      (json_object_get(s, "definitions") != NULL) +
                                      (json_object_get(s, "description") != NULL) +
                                      (json_object_get(s, "title") != NULL))
            return fail(c, "JSON schema `$ref` beside other keywords is not supported");
        return ref_re(c, json_string_value(v), depth);
    }
    if ((v = json_object_get(s, "anyOf")) != NULL)
        return branches_re(c, v, "anyOf", depth);
    if ((v = json_object_get(s, "oneOf")) != NULL)
        return branches_re(c, v, "oneOf", depth);
    if ((v = json_object_get(s, "allOf")) != NULL) {
        if (!json_is_array(v) || json_array_size(v) != 1)
            return fail(c, "JSON schema `allOf` is supported with one schema only");
        return schema(c, json_array_get(v, 0), depth);
    }
    return typed_re(c, s, depth);
}

static char *boolean_re(struct ctx *c, const json_t *s, int depth)
{
    (void)s, (void)depth;
    return fmt(c, "(?:true|false)");
}

static char *null_re(struct ctx *c, const json_t *s, int depth)
{
    (void)s, (void)depth;
    return fmt(c, "null");
}

static char *string_t(struct ctx *c, const json_t *s, int depth)
{
    (void)depth;
    return string_re(c, s);
}

static char *integer_t(struct ctx *c, const json_t *s, int depth)
{
    (void)depth;
    return integer_re(c, s);
}

static char *number_t(struct ctx *c, const json_t *s, int depth)
{
    (void)depth;
    return number_re(c, s);
}

static const struct {
    const char *name;
    char *(*make)(struct ctx *c, const json_t *s, int depth);
} types[] = {
    {"object", object_re}, {"array", array_re},   {"string", string_t}, {"integer", integer_t},
    {"number", number_t},  {"boolean", boolean_re}, {"null", null_re},
};

static char *type_re(struct ctx *c, const char *t, const json_t *s, int depth)
{
    for (size_t i = 0; i < N_OF(types); i++)
        if (strcmp(types[i].name, t) == 0)
            return types[i].make(c, s, depth + 1);
    return fail(c, "JSON schema `type` \"%s\" is not a JSON Schema type", t);
}

int schema_to_regex(const json_t *s, char **out, struct err *e)
{
    *out = NULL;
    struct ctx c = {.root = s, .e = e};
    char *r = schema(&c, s, 0);
    if (c.rc) {
        drop(r);
        return c.rc;
    }
    if (r == UNSAT)
        return err_set(e, ERR_INVALID, "JSON schema: no value can satisfy it (recursion cut at "
                                       "depth %d, or contradictory bounds)",
                       REF_REPEATS);
    *out = r;
    return 0;
}

int schema_any_object_regex(char **out, struct err *e)
{
    *out = NULL;
    json_t *s = json_pack("{s:s}", "type", "object");
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    int rc = schema_to_regex(s, out, e);
    json_decref(s);
    return rc;
}
