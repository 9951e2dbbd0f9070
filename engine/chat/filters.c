/* filters: Jinja2's built-in filters on strings and numbers (trim, replace, indent, int,
 * round, ...) with their Python behaviour, transformers' `tojson` (json.dumps with
 * ensure_ascii=False and no HTML escaping), default, and the filter registry (with
 * filters_seq.c's table). Filters Jinja has but chat templates do not need fail when used;
 * unknown names fail at compile time (parser.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/tpl.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define BIND(what, names, out) tpl_bind(c, what, a, names, N_OF(names), out)

void tpl_bind(struct rctx *c, const char *what, const struct targs *a, const char *const *names,
              size_t n_names, struct tv *out)
{
    for (size_t i = 0; i < n_names; i++)
        out[i].t = TV_MISSING;
    if (a->n > n_names)
        tpl_fail(&c->job, ERR_INVALID, "%s takes at most %zu argument(s) (%zu given)", what,
                 n_names, a->n);
    for (size_t i = 0; i < a->n; i++)
        out[i] = a->pos[i];
    for (size_t k = 0; k < a->n_kw; k++) {
        size_t i = 0;
        while (i < n_names && strcmp(names[i], a->kw_names[k]))
            i++;
        if (i == n_names)
            tpl_fail(&c->job, ERR_INVALID, "%s got an unexpected keyword argument '%s'", what,
                     a->kw_names[k]);
        if (out[i].t != TV_MISSING)
            tpl_fail(&c->job, ERR_INVALID, "%s got multiple values for argument '%s'", what,
                     names[i]);
        out[i] = a->kw[k];
    }
}

bool tpl_given(struct tv v)
{
    return v.t != TV_MISSING;
}

struct tstr *tpl_want_str(struct rctx *c, struct tv v, const char *what)
{
    if (v.t != TV_STR)
        tpl_fail(&c->job, ERR_INVALID, "%s must be a string, not %s", what, tv_type_name(v));
    return v.u.s;
}

int64_t tpl_want_int(struct rctx *c, struct tv v, const char *what)
{
    if (v.t != TV_INT && v.t != TV_BOOL)
        tpl_fail(&c->job, ERR_INVALID, "%s must be an integer, not %s", what, tv_type_name(v));
    return v.t == TV_INT ? v.u.i : v.u.b;
}

static struct tv str_of(struct rctx *c, struct tv v)
{
    return tv_str(tv_to_str(&c->job, v));
}

/* ---- string filters ---------------------------------------------------------------------- */

static struct tv f_trim(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"chars"};
    struct tv p[1];
    BIND("trim", names, p);
    const struct tstr *chars =
        tpl_given(p[0]) && p[0].t != TV_NONE ? tpl_want_str(c, p[0], "trim chars") : NULL;
    return tv_str(py_strip(&c->job, tv_to_str(&c->job, v), chars, true, true));
}

static struct tv f_lower(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "lower", a, NULL, 0, NULL);
    return tv_str(py_case(&c->job, tv_to_str(&c->job, v), 0));
}

static struct tv f_upper(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "upper", a, NULL, 0, NULL);
    return tv_str(py_case(&c->job, tv_to_str(&c->job, v), 1));
}

static struct tv f_capitalize(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "capitalize", a, NULL, 0, NULL);
    return tv_str(py_case(&c->job, tv_to_str(&c->job, v), 2));
}

static struct tv f_title(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "title", a, NULL, 0, NULL);
    /* Jinja: words begin after whitespace or one of "-([{<"; first letter upper, rest lower */
    const struct tstr *s = tv_to_str(&c->job, v);
    struct sbuf b;
    sb_init(&b, &c->job, s->len);
    bool word_start = true;
    for (size_t i = 0; i < s->len;) {
        size_t start = i;
        uint32_t cp = utf8_next(s->s, s->len, &i);
        bool sep = py_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
        struct tstr *one = tstr_new(&c->job, s->s + start, i - start);
        if (sep)
            sb_put(&b, one->s, one->len);
        else {
            one = py_case(&c->job, one, word_start ? 1 : 0);
            sb_put(&b, one->s, one->len);
        }
        word_start = sep;
    }
    return tv_str(sb_done(&b));
}

static struct tv f_replace(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"old", "new", "count"};
    struct tv p[3];
    BIND("replace", names, p);
    if (!tpl_given(p[0]) || !tpl_given(p[1]))
        tpl_fail(&c->job, ERR_INVALID, "replace needs the old and new strings");
    int64_t count = tpl_given(p[2]) && p[2].t != TV_NONE ? tpl_want_int(c, p[2], "count") : -1;
    return tv_str(py_replace(&c->job, tv_to_str(&c->job, v), tv_to_str(&c->job, p[0]),
                             tv_to_str(&c->job, p[1]), count));
}

static struct tv f_string(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "string", a, NULL, 0, NULL);
    return str_of(c, v);
}

static struct tv f_escape(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "escape", a, NULL, 0, NULL);
    const struct tstr *s = tv_to_str(&c->job, v);
    struct sbuf b;
    sb_init(&b, &c->job, s->len + 16);
    for (size_t i = 0; i < s->len; i++) {
        switch (s->s[i]) {
        case '&': sb_puts(&b, "&amp;"); break;
        case '<': sb_puts(&b, "&lt;"); break;
        case '>': sb_puts(&b, "&gt;"); break;
        case '"': sb_puts(&b, "&#34;"); break;
        case '\'': sb_puts(&b, "&#39;"); break;
        default: sb_putc(&b, s->s[i]);
        }
    }
    return tv_str(sb_done(&b));
}

/* Python's str.splitlines() boundaries. */
static size_t line_break_at(const struct tstr *s, size_t i, size_t *next)
{
    size_t j = i;
    uint32_t cp = utf8_next(s->s, s->len, &j);
    if (cp == '\r' && j < s->len && s->s[j] == '\n')
        j++;
    *next = j;
    return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || (cp >= 0x1C && cp <= 0x1E) ||
           cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

struct tlist *py_splitlines(struct tpl_job *j, const struct tstr *s, bool keepends)
{
    struct tlist *l = tlist_new(j, 0);
    size_t start = 0, i = 0;
    while (i < s->len) {
        size_t next;
        if (line_break_at(s, i, &next)) {
            tlist_push(j, l, tv_str(tstr_new(j, s->s + start, (keepends ? next : i) - start)));
            start = next;
        }
        i = next;
    }
    if (start < s->len)
        tlist_push(j, l, tv_str(tstr_new(j, s->s + start, s->len - start)));
    return l;
}

static struct tv f_indent(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"width", "first", "blank"};
    struct tv p[3];
    BIND("indent", names, p);
    struct tstr *ind;
    if (tpl_given(p[0]) && p[0].t == TV_STR) {
        ind = p[0].u.s;
    } else {
        int64_t w = tpl_given(p[0]) ? tpl_want_int(c, p[0], "width") : 4;
        struct sbuf sp;
        sb_init(&sp, &c->job, 8);
        for (int64_t i = 0; i < w; i++)
            sb_putc(&sp, ' ');
        ind = sb_done(&sp);
    }
    if (v.t != TV_STR)
        tpl_fail(&c->job, ERR_INVALID, "indent needs a string, not %s", tv_type_name(v));
    /* Jinja appends "\n" first, so that a trailing newline keeps its line */
    struct tstr *s = tstr_cat(&c->job, v.u.s, tstr_cstr(&c->job, "\n"));
    struct tlist *lines = py_splitlines(&c->job, s, false);
    struct sbuf b;
    sb_init(&b, &c->job, s->len * 2);
    if (tv_truthy(p[1]))
        sb_put(&b, ind->s, ind->len);
    for (size_t i = 0; i < lines->n; i++) {
        const struct tstr *line = lines->v[i].u.s;
        if (i > 0) {
            sb_putc(&b, '\n');
            if (line->len || tv_truthy(p[2]))
                sb_put(&b, ind->s, ind->len);
        }
        sb_put(&b, line->s, line->len);
    }
    return tv_str(sb_done(&b));
}

static struct tv f_tojson(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    struct tv p[4];
    BIND("tojson", names, p);
    struct json_opts o = {.ensure_ascii = tpl_given(p[0]) && tv_truthy(p[0]),
                          .sort_keys = tpl_given(p[3]) && tv_truthy(p[3])};
    if (tpl_given(p[1]) && p[1].t != TV_NONE) {
        if (p[1].t == TV_STR) {
            o.indent = p[1].u.s;
        } else {
            int64_t w = tpl_want_int(c, p[1], "indent");
            struct sbuf sp;
            sb_init(&sp, &c->job, 8);
            for (int64_t i = 0; i < w; i++)
                sb_putc(&sp, ' ');
            o.indent = sb_done(&sp);
        }
    }
    if (tpl_given(p[2]) && p[2].t != TV_NONE) {
        if (p[2].t != TV_LIST || p[2].u.l->n != 2)
            tpl_fail(&c->job, ERR_INVALID, "separators must be an (item, key) pair");
        o.item_sep = tpl_want_str(c, p[2].u.l->v[0], "separator");
        o.key_sep = tpl_want_str(c, p[2].u.l->v[1], "separator");
    }
    struct sbuf b;
    sb_init(&b, &c->job, 256);
    tv_dump_json(&c->job, &b, v, &o);
    return tv_str(sb_done(&b));
}

static struct tv f_default(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"default_value", "boolean"};
    struct tv p[2];
    BIND("default", names, p);
    bool use_default = v.t == TV_UNDEF || (tpl_given(p[1]) && tv_truthy(p[1]) && !tv_truthy(v));
    if (!use_default)
        return v;
    return tpl_given(p[0]) ? p[0] : tv_str(&tstr_empty);
}

/* ---- number filters ----------------------------------------------------------------------- */

static struct tv f_abs(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "abs", a, NULL, 0, NULL);
    tpl_check_defined(c, v);
    if (v.t == TV_FLOAT)
        return tv_float(fabs(v.u.f));
    int64_t i = tpl_want_int(c, v, "abs() argument");
    if (i == INT64_MIN)
        tpl_fail(&c->job, ERR_INVALID, "integer overflow");
    return tv_int(i < 0 ? -i : i);
}

/* Python's float(str): optional spaces and sign, digits, inf/nan; false when invalid. */
static bool parse_float(const struct tstr *s, double *out)
{
    char *end;
    const char *p = s->s;
    while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        p++;
    if (!*p)
        return false;
    *out = strtod(p, &end);
    if (end == p || (end - p > 1 && (p[1] == 'x' || p[1] == 'X' || p[2] == 'x' || p[2] == 'X')))
        return false;
    while (*end == ' ' || (*end >= '\t' && *end <= '\r'))
        end++;
    return *end == '\0';
}

static struct tv f_float(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"default"};
    struct tv p[1];
    BIND("float", names, p);
    tpl_check_defined(c, v);
    double f;
    if (tv_is_number(v))
        return tv_float(tv_as_double(v));
    if (v.t == TV_STR && parse_float(v.u.s, &f))
        return tv_float(f);
    return tpl_given(p[0]) ? p[0] : tv_float(0.0);
}

static struct tv f_int(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"default", "base"};
    struct tv p[2];
    BIND("int", names, p);
    tpl_check_defined(c, v);
    if (v.t == TV_INT || v.t == TV_BOOL)
        return tv_int(v.t == TV_INT ? v.u.i : v.u.b);
    if (v.t == TV_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18)
        return tv_int((int64_t)v.u.f);
    if (v.t == TV_STR) {
        int base = tpl_given(p[1]) ? (int)tpl_want_int(c, p[1], "base") : 10;
        char *end;
        const char *s = v.u.s->s;
        while (*s == ' ')
            s++;
        long long i = strtoll(s, &end, base);
        if (end != s && *end == '\0')
            return tv_int(i);
        double f;
        if (parse_float(v.u.s, &f) && isfinite(f) && fabs(f) < 9.2e18)
            return tv_int((int64_t)f);
    }
    return tpl_given(p[0]) ? p[0] : tv_int(0);
}

static struct tv f_round(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"precision", "method"};
    struct tv p[2];
    BIND("round", names, p);
    tpl_check_defined(c, v);
    int64_t precision = tpl_given(p[0]) ? tpl_want_int(c, p[0], "precision") : 0;
    const char *method = tpl_given(p[1]) ? tpl_want_str(c, p[1], "method")->s : "common";
    if (!tv_is_number(v))
        tpl_fail(&c->job, ERR_INVALID, "round needs a number, not %s", tv_type_name(v));
    double scale = pow(10.0, (double)precision), x = tv_as_double(v);
    if (!strcmp(method, "common")) {
        if (v.t != TV_FLOAT && precision >= 0)
            return tv_int(v.t == TV_INT ? v.u.i : v.u.b); /* round(int, n) stays an int */
        return tv_float(nearbyint(x * scale) / scale);
    }
    if (!strcmp(method, "floor"))
        return tv_float(floor(x * scale) / scale);
    if (!strcmp(method, "ceil"))
        return tv_float(ceil(x * scale) / scale);
    tpl_fail(&c->job, ERR_INVALID, "method must be common, ceil or floor");
}

static struct tv f_safe(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "safe", a, NULL, 0, NULL);
    return str_of(c, v);
}

static struct tv f_attr(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"name"};
    struct tv p[1];
    BIND("attr", names, p);
    return tpl_getattr(c, v, tpl_want_str(c, p[0], "attribute name")->s);
}

static struct tv f_wordcount(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "wordcount", a, NULL, 0, NULL);
    const struct tstr *s = tv_to_str(&c->job, v);
    int64_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i < s->len;) {
        uint32_t cp = utf8_next(s->s, s->len, &i);
        bool w = cp == '_' || (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
                 (cp >= 'A' && cp <= 'Z') || (cp >= 0x80 && !py_isspace(cp));
        n += w && !in_word;
        in_word = w;
    }
    return tv_int(n);
}

static const struct tpl_builtin filters[] = {
    {"abs", f_abs},       {"attr", f_attr},           {"capitalize", f_capitalize},
    {"d", f_default},     {"default", f_default},     {"e", f_escape},
    {"escape", f_escape}, {"float", f_float},         {"indent", f_indent},
    {"int", f_int},       {"lower", f_lower},         {"replace", f_replace},
    {"round", f_round},   {"safe", f_safe},           {"string", f_string},
    {"title", f_title},   {"tojson", f_tojson},       {"trim", f_trim},
    {"upper", f_upper},   {"wordcount", f_wordcount},
};

/* Jinja filters that exist but are not implemented: a template naming them compiles (as in
 * transformers) and fails only if it runs them. */
static const char *const other_jinja_filters[] = {
    "center", "filesizeformat", "forceescape", "format",    "groupby", "pprint",   "random",
    "slice",  "striptags",      "truncate",    "urlencode", "urlize",  "wordwrap", "xmlattr",
};

const struct tpl_builtin *tpl_find_filter(const char *name)
{
    for (size_t i = 0; i < N_OF(filters); i++)
        if (!strcmp(filters[i].name, name))
            return &filters[i];
    for (size_t i = 0; i < tpl_n_seq_filters; i++)
        if (!strcmp(tpl_seq_filters[i].name, name))
            return &tpl_seq_filters[i];
    return NULL;
}

bool tpl_filter_exists(const char *name)
{
    for (size_t i = 0; i < N_OF(other_jinja_filters); i++)
        if (!strcmp(other_jinja_filters[i], name))
            return true;
    return tpl_find_filter(name) != NULL;
}

struct tv tpl_apply_filter(struct rctx *c, const char *name, struct tv v, const struct targs *a)
{
    const struct tpl_builtin *f = tpl_find_filter(name);
    if (!f)
        tpl_fail(&c->job, ERR_INVALID,
                 tpl_filter_exists(name) ? "the '%s' filter is not supported"
                                         : "No filter named '%s' found.",
                 name);
    return f->fn(c, v, a);
}
