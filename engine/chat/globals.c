/* globals: Jinja2's tests (`x is defined`, `is string`, `is none`, ...) and the global
 * functions of transformers' chat template environment: range, dict, namespace (Jinja's
 * defaults) and raise_exception, strftime_now (added by transformers). raise_exception fails
 * the render with exactly the template's message (ERR_INVALID). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "chat/tpl.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static struct tv arg0(struct rctx *c, const char *test, const struct targs *a)
{
    if (a->n + a->n_kw != 1)
        tpl_fail(&c->job, ERR_INVALID, "test '%s' takes one argument", test);
    return a->n ? a->pos[0] : a->kw[0];
}

static void no_args(struct rctx *c, const char *test, const struct targs *a)
{
    if (a->n || a->n_kw)
        tpl_fail(&c->job, ERR_INVALID, "test '%s' takes no arguments", test);
}

/* Each test returns TV_BOOL. Names after Jinja's tests.py. */
#define SIMPLE_TEST(fname, expr)                                                                   \
    static struct tv fname(struct rctx *c, struct tv v, const struct targs *a)                     \
    {                                                                                              \
        no_args(c, #fname + 2, a);                                                                 \
        return tv_bool(expr);                                                                      \
    }

SIMPLE_TEST(t_defined, v.t != TV_UNDEF)
SIMPLE_TEST(t_undefined, v.t == TV_UNDEF)
SIMPLE_TEST(t_none, v.t == TV_NONE)
SIMPLE_TEST(t_boolean, v.t == TV_BOOL)
SIMPLE_TEST(t_false, v.t == TV_BOOL && !v.u.b)
SIMPLE_TEST(t_true, v.t == TV_BOOL && v.u.b)
SIMPLE_TEST(t_integer, v.t == TV_INT)
SIMPLE_TEST(t_float, v.t == TV_FLOAT)
SIMPLE_TEST(t_number, tv_is_number(v))
SIMPLE_TEST(t_string, v.t == TV_STR)
SIMPLE_TEST(t_mapping, v.t == TV_DICT)
SIMPLE_TEST(t_iterable, v.t == TV_STR || v.t == TV_LIST || v.t == TV_DICT || v.t == TV_UNDEF)
SIMPLE_TEST(t_sequence, v.t == TV_STR || v.t == TV_LIST || v.t == TV_DICT || v.t == TV_UNDEF)
SIMPLE_TEST(t_callable, v.t == TV_FUNC || v.t == TV_METHOD || v.t == TV_MACRO || v.t == TV_UNDEF ||
                            v.t == TV_LOOP)
SIMPLE_TEST(t_escaped, ((void)v, false))

static struct tv t_odd(struct rctx *c, struct tv v, const struct targs *a)
{
    no_args(c, "odd", a);
    if (v.t != TV_INT && v.t != TV_BOOL)
        tpl_fail(&c->job, ERR_INVALID, "test 'odd' needs an integer, not %s", tv_type_name(v));
    return tv_bool(((v.t == TV_INT ? v.u.i : v.u.b) & 1) != 0);
}

static struct tv t_even(struct rctx *c, struct tv v, const struct targs *a)
{
    return tv_bool(!t_odd(c, v, a).u.b);
}

static struct tv t_divisibleby(struct rctx *c, struct tv v, const struct targs *a)
{
    struct tv n = arg0(c, "divisibleby", a);
    struct tv zero = tv_int(0);
    if (!tv_is_number(v) || !tv_is_number(n))
        tpl_fail(&c->job, ERR_INVALID, "test 'divisibleby' needs numbers");
    if (tv_eq(&c->job, n, zero))
        tpl_fail(&c->job, ERR_INVALID, "integer division or modulo by zero");
    return tv_bool(fmod(tv_as_double(v), tv_as_double(n)) == 0);
}

/* str.islower() / str.isupper(): some cased character, and all of them in that case. */
static bool case_test(const struct tstr *s, bool upper)
{
    bool cased = false;
    for (size_t i = 0; i < s->len;) {
        utf8proc_int32_t cp = (utf8proc_int32_t)utf8_next(s->s, s->len, &i);
        bool is_upper = utf8proc_isupper(cp), is_lower = utf8proc_islower(cp);
        if (upper ? is_lower : is_upper)
            return false;
        cased = cased || is_upper || is_lower;
    }
    return cased;
}

static struct tv t_lower(struct rctx *c, struct tv v, const struct targs *a)
{
    no_args(c, "lower", a);
    return tv_bool(v.t == TV_STR && case_test(v.u.s, false));
}

static struct tv t_upper(struct rctx *c, struct tv v, const struct targs *a)
{
    no_args(c, "upper", a);
    return tv_bool(v.t == TV_STR && case_test(v.u.s, true));
}

static struct tv t_sameas(struct rctx *c, struct tv v, const struct targs *a)
{
    struct tv o = arg0(c, "sameas", a);
    if (v.t != o.t)
        return tv_bool(false);
    switch (v.t) {
    case TV_NONE:
    case TV_UNDEF: return tv_bool(true);
    case TV_BOOL: return tv_bool(v.u.b == o.u.b);
    case TV_INT: return tv_bool(v.u.i == o.u.i);
    case TV_STR: return tv_bool(v.u.s == o.u.s);
    case TV_LIST: return tv_bool(v.u.l == o.u.l);
    case TV_DICT:
    case TV_NS: return tv_bool(v.u.d == o.u.d);
    default: return tv_bool(tv_eq(&c->job, v, o));
    }
}

static struct tv t_in(struct rctx *c, struct tv v, const struct targs *a)
{
    struct tv seq = arg0(c, "in", a);
    return tv_bool(tpl_compare(c, CMP_IN, v, seq));
}

#define CMP_TEST(fname, op)                                                                        \
    static struct tv fname(struct rctx *c, struct tv v, const struct targs *a)                     \
    {                                                                                              \
        struct tv o = arg0(c, #fname + 2, a);                                                      \
        return tv_bool(tpl_compare(c, op, v, o));                                                  \
    }

CMP_TEST(t_eq, OP_EQ)
CMP_TEST(t_ne, OP_NE)
CMP_TEST(t_gt, OP_GT)
CMP_TEST(t_ge, OP_GTEQ)
CMP_TEST(t_lt, OP_LT)
CMP_TEST(t_le, OP_LTEQ)

static struct tv t_filter(struct rctx *c, struct tv v, const struct targs *a)
{
    no_args(c, "filter", a);
    return tv_bool(v.t == TV_STR && tpl_find_filter(v.u.s->s));
}

static struct tv t_test(struct rctx *c, struct tv v, const struct targs *a)
{
    no_args(c, "test", a);
    return tv_bool(v.t == TV_STR && tpl_find_test(v.u.s->s));
}

static const struct tpl_builtin tests[] = {
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"filter", t_filter},
    {"test", t_test},
    {"none", t_none},
    {"boolean", t_boolean},
    {"false", t_false},
    {"true", t_true},
    {"integer", t_integer},
    {"float", t_float},
    {"lower", t_lower},
    {"upper", t_upper},
    {"string", t_string},
    {"mapping", t_mapping},
    {"number", t_number},
    {"sequence", t_sequence},
    {"iterable", t_iterable},
    {"callable", t_callable},
    {"sameas", t_sameas},
    {"escaped", t_escaped},
    {"in", t_in},
    {"==", t_eq},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"!=", t_ne},
    {"ne", t_ne},
    {">", t_gt},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"<", t_lt},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<=", t_le},
    {"le", t_le},
};

const struct tpl_builtin *tpl_find_test(const char *name)
{
    for (size_t i = 0; i < N_OF(tests); i++)
        if (!strcmp(tests[i].name, name))
            return &tests[i];
    return NULL;
}

bool tpl_apply_test(struct rctx *c, const char *name, struct tv v, const struct targs *a)
{
    const struct tpl_builtin *t = tpl_find_test(name);
    if (!t)
        tpl_fail(&c->job, ERR_INVALID, "No test named '%s' found.", name);
    return t->fn(c, v, a).u.b;
}

/* ---- global functions ------------------------------------------------------------------- */

enum { MAX_RANGE = 100000 }; /* Jinja's sandbox refuses larger ranges */

static struct tv g_range(struct rctx *c, struct tv self, const struct targs *a)
{
    (void)self;
    if (a->n_kw || a->n < 1 || a->n > 3)
        tpl_fail(&c->job, ERR_INVALID, "range expects 1 to 3 integer arguments");
    int64_t v[3];
    for (size_t i = 0; i < a->n; i++) {
        if (a->pos[i].t != TV_INT && a->pos[i].t != TV_BOOL)
            tpl_fail(&c->job, ERR_INVALID, "'%s' object cannot be interpreted as an integer",
                     tv_type_name(a->pos[i]));
        v[i] = a->pos[i].t == TV_INT ? a->pos[i].u.i : a->pos[i].u.b;
    }
    int64_t start = a->n > 1 ? v[0] : 0, stop = a->n > 1 ? v[1] : v[0], step = a->n > 2 ? v[2] : 1;
    if (step == 0)
        tpl_fail(&c->job, ERR_INVALID, "range() arg 3 must not be zero");
    /* the count, exactly: the distance fits in uint64_t, and so does |step| */
    uint64_t count = 0;
    if (step > 0 && start < stop)
        count = ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1;
    else if (step < 0 && start > stop)
        count = ((uint64_t)start - (uint64_t)stop - 1) / (0 - (uint64_t)step) + 1;
    if (count > MAX_RANGE)
        tpl_fail(&c->job, ERR_TOO_LARGE,
                 "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", MAX_RANGE);
    tpl_steps(&c->job, count);
    struct tlist *l = tlist_new(&c->job, (size_t)count);
    /* start + k * step stays between start and stop: no overflow */
    for (uint64_t k = 0; k < count; k++)
        l->v[l->n++] = tv_int((int64_t)((uint64_t)start + k * (uint64_t)step));
    return tv_list(l);
}

/* dict(mapping or pairs, **kwargs) into d. */
static void fill_dict(struct rctx *c, struct tdict *d, const struct targs *a, const char *what)
{
    if (a->n > 1)
        tpl_fail(&c->job, ERR_INVALID, "%s expected at most 1 positional argument", what);
    if (a->n == 1) {
        struct tv src = a->pos[0];
        tpl_check_defined(c, src); /* dict(Undefined) reads its .keys and fails */
        if (src.t == TV_DICT || src.t == TV_NS) {
            for (size_t i = 0; i < src.u.d->n; i++)
                tdict_set(&c->job, d, src.u.d->k[i], src.u.d->v[i]);
        } else {
            const struct tlist *pairs = tpl_iterate(c, src);
            for (size_t i = 0; i < pairs->n; i++) {
                const struct tlist *kv = tpl_iterate(c, pairs->v[i]);
                if (kv->n != 2)
                    tpl_fail(&c->job, ERR_INVALID, "%s needs (key, value) pairs", what);
                tdict_set(&c->job, d, kv->v[0], kv->v[1]);
            }
        }
    }
    for (size_t k = 0; k < a->n_kw; k++)
        tdict_set(&c->job, d, tv_str(tstr_cstr(&c->job, a->kw_names[k])), a->kw[k]);
}

static struct tv g_dict(struct rctx *c, struct tv self, const struct targs *a)
{
    (void)self;
    struct tdict *d = tdict_new(&c->job, a->n_kw);
    fill_dict(c, d, a, "dict");
    return tv_dict(d);
}

static struct tv g_namespace(struct rctx *c, struct tv self, const struct targs *a)
{
    (void)self;
    struct tdict *d = tdict_new(&c->job, a->n_kw);
    fill_dict(c, d, a, "namespace");
    struct tv v = {.t = TV_NS, .u.d = d};
    return v;
}

static struct tv g_raise_exception(struct rctx *c, struct tv self, const struct targs *a)
{
    (void)self;
    struct tv msg = a->n ? a->pos[0] : a->n_kw ? a->kw[0] : tv_str(&tstr_empty);
    tpl_fail_raw(&c->job, ERR_INVALID, tv_to_str(&c->job, msg)->s);
}

static struct tv g_strftime_now(struct rctx *c, struct tv self, const struct targs *a)
{
    (void)self;
    if (a->n != 1 || a->n_kw || a->pos[0].t != TV_STR)
        tpl_fail(&c->job, ERR_INVALID, "strftime_now takes one format string");
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char buf[256];
    size_t n = a->pos[0].u.s->len ? strftime(buf, sizeof buf, a->pos[0].u.s->s, &tm) : 0;
    return tv_str(tstr_new(&c->job, buf, n));
}

static const struct tpl_builtin globals[] = {
    {"range", g_range},
    {"dict", g_dict},
    {"namespace", g_namespace},
    {"raise_exception", g_raise_exception},
    {"strftime_now", g_strftime_now},
};

const struct tpl_builtin *tpl_find_global(const char *name)
{
    for (size_t i = 0; i < N_OF(globals); i++)
        if (!strcmp(globals[i].name, name))
            return &globals[i];
    return NULL;
}
