/* filters_seq: Jinja2's built-in filters on sequences and mappings, as Python runs them:
 * length, list, first, last, reverse, join, items, sort and dictsort (stable, case-insensitive
 * by default), select/reject/selectattr/rejectattr, map, unique, batch, min, max, sum. Like
 * Jinja, select, map, unique, batch, items and reverse give generators (tpl.h TL_GENERATOR).
 * Attribute arguments ("function.name", "0") follow Jinja's make_attrgetter. */
#include <stdlib.h>
#include <string.h>

#include "chat/tpl.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define BIND(what, names, out) tpl_bind(c, what, a, names, N_OF(names), out)

/* ---- attribute getters (Jinja's make_attrgetter) ---------------------------------------- */

/* item["a"]["b"] for attribute "a.b" (digits index lists), or default when undefined. */
static struct tv get_attribute(struct rctx *c, struct tv item, struct tv attribute, struct tv dflt)
{
    if (attribute.t == TV_INT) {
        item = tpl_getitem(c, item, attribute);
    } else {
        const struct tstr *path = tpl_want_str(c, attribute, "attribute");
        size_t start = 0;
        while (start <= path->len) {
            const char *dot = memchr(path->s + start, '.', path->len - start);
            size_t end = dot ? (size_t)(dot - path->s) : path->len;
            struct tv key = tv_str(tstr_new(&c->job, path->s + start, end - start));
            bool digits = end > start;
            for (size_t i = start; i < end; i++)
                digits = digits && path->s[i] >= '0' && path->s[i] <= '9';
            if (digits)
                key = tv_int(strtoll(key.u.s->s, NULL, 10));
            item = tpl_getitem(c, item, key);
            start = end + 1;
        }
    }
    if (item.t == TV_UNDEF && tpl_given(dflt))
        return dflt;
    return item;
}

/* For case-insensitive sorting and comparing: strings lowered. */
static struct tv fold(struct rctx *c, struct tv v, bool case_sensitive)
{
    return !case_sensitive && v.t == TV_STR ? tv_str(py_case(&c->job, v.u.s, 0)) : v;
}

/* ---- sorting (stable, like Python's sorted) -------------------------------------------- */

struct sort_item {
    struct tv key, value;
};

static void merge_sort(struct rctx *c, struct sort_item *v, struct sort_item *tmp, size_t n,
                       bool reverse)
{
    if (n < 2)
        return;
    tpl_steps(&c->job, n); /* n log n steps in all */
    size_t half = n / 2;
    merge_sort(c, v, tmp, half, reverse);
    merge_sort(c, v + half, tmp, n - half, reverse);
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n) {
        int cmp = tv_cmp(&c->job, v[j].key, v[i].key, "<");
        /* take the right item only when it sorts strictly before the left one */
        if (reverse ? cmp > 0 : cmp < 0)
            tmp[k++] = v[j++];
        else
            tmp[k++] = v[i++];
    }
    while (i < half)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static struct tlist *sorted(struct rctx *c, struct sort_item *items, size_t n, bool reverse)
{
    struct sort_item *tmp = tpl_alloc(&c->job, (n + 1) * sizeof *tmp);
    merge_sort(c, items, tmp, n, reverse);
    struct tlist *l = tlist_new(&c->job, n);
    for (size_t i = 0; i < n; i++)
        l->v[l->n++] = items[i].value;
    return l;
}

static struct tv f_sort(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"reverse", "case_sensitive", "attribute"};
    struct tv p[3];
    BIND("sort", names, p);
    const struct tlist *items = tpl_iterate(c, v);
    struct sort_item *s = tpl_alloc(&c->job, (items->n + 1) * sizeof *s);
    struct tv none = {.t = TV_MISSING};
    for (size_t i = 0; i < items->n; i++) {
        struct tv key = tpl_given(p[2]) ? get_attribute(c, items->v[i], p[2], none) : items->v[i];
        s[i].key = fold(c, key, tv_truthy(p[1]));
        s[i].value = items->v[i];
    }
    return tv_list(sorted(c, s, items->n, tv_truthy(p[0])));
}

static struct tv f_dictsort(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"case_sensitive", "by", "reverse"};
    struct tv p[3];
    BIND("dictsort", names, p);
    if (v.t != TV_DICT)
        tpl_fail(&c->job, ERR_INVALID, "dictsort needs a mapping, not %s", tv_type_name(v));
    bool by_value = tpl_given(p[1]) && p[1].t == TV_STR && !strcmp(p[1].u.s->s, "value");
    if (tpl_given(p[1]) && !by_value && !(p[1].t == TV_STR && !strcmp(p[1].u.s->s, "key")))
        tpl_fail(&c->job, ERR_INVALID, "You can only sort by either \"key\" or \"value\"");
    struct sort_item *s = tpl_alloc(&c->job, (v.u.d->n + 1) * sizeof *s);
    for (size_t i = 0; i < v.u.d->n; i++) {
        struct tlist *pair = tlist_new(&c->job, 2);
        pair->tuple = true;
        pair->v[0] = v.u.d->k[i];
        pair->v[1] = v.u.d->v[i];
        pair->n = 2;
        s[i].key = fold(c, by_value ? v.u.d->v[i] : v.u.d->k[i], tv_truthy(p[0]));
        s[i].value = tv_list(pair);
    }
    return tv_list(sorted(c, s, v.u.d->n, tv_truthy(p[2])));
}

/* ---- sequence filters ------------------------------------------------------------------- */

static struct tv f_length(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "length", a, NULL, 0, NULL);
    switch (v.t) {
    case TV_UNDEF: return tv_int(0);
    case TV_STR: return tv_int((int64_t)tstr_cp_len(v.u.s));
    case TV_LIST:
        if (v.u.l->view != TL_GENERATOR)
            return tv_int((int64_t)v.u.l->n);
        break;
    case TV_DICT: return tv_int((int64_t)v.u.d->n);
    default: break;
    }
    tpl_fail(&c->job, ERR_INVALID, "object of type '%s' has no len()", tv_type_name(v));
}

static struct tv f_list(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "list", a, NULL, 0, NULL);
    const struct tlist *items = tpl_iterate(c, v);
    struct tlist *l = tlist_new(&c->job, items->n);
    if (items->n)
        memcpy(l->v, items->v, items->n * sizeof *l->v);
    l->n = items->n;
    return tv_list(l);
}

static struct tv f_first(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "first", a, NULL, 0, NULL);
    const struct tlist *items = tpl_iterate(c, v);
    return items->n ? items->v[0] : tv_undef("No first item, sequence was empty.");
}

static struct tv f_last(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "last", a, NULL, 0, NULL);
    if (v.t == TV_LIST && v.u.l->view == TL_GENERATOR)
        tpl_fail(&c->job, ERR_INVALID, "'generator' object is not reversible");
    const struct tlist *items = tpl_iterate(c, v);
    return items->n ? items->v[items->n - 1] : tv_undef("No last item, sequence was empty.");
}

static struct tv f_reverse(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "reverse", a, NULL, 0, NULL);
    const struct tlist *items = tpl_iterate(c, v);
    if (v.t == TV_STR) {
        struct sbuf b;
        sb_init(&b, &c->job, v.u.s->len);
        for (size_t i = items->n; i-- > 0;)
            sb_put(&b, items->v[i].u.s->s, items->v[i].u.s->len);
        return tv_str(sb_done(&b));
    }
    struct tlist *l = tlist_new(&c->job, items->n);
    for (size_t i = items->n; i-- > 0;)
        l->v[l->n++] = items->v[i];
    l->view = TL_GENERATOR; /* reversed(): an iterator */
    return tv_list(l);
}

static struct tv f_join(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"d", "attribute"};
    struct tv p[2];
    BIND("join", names, p);
    const struct tstr *sep = tpl_given(p[0]) ? tv_to_str(&c->job, p[0]) : &tstr_empty;
    const struct tlist *items = tpl_iterate(c, v);
    struct tv none = {.t = TV_MISSING};
    struct sbuf b;
    sb_init(&b, &c->job, 64);
    for (size_t i = 0; i < items->n; i++) {
        if (i)
            sb_put(&b, sep->s, sep->len);
        struct tv item = tpl_given(p[1]) ? get_attribute(c, items->v[i], p[1], none) : items->v[i];
        tv_str_into(&c->job, &b, item);
    }
    return tv_str(sb_done(&b));
}

static struct tv f_items(struct rctx *c, struct tv v, const struct targs *a)
{
    tpl_bind(c, "items", a, NULL, 0, NULL);
    if (v.t == TV_UNDEF)
        return tv_list(tlist_new(&c->job, 0));
    if (v.t != TV_DICT)
        tpl_fail(&c->job, ERR_INVALID, "Can only get item pairs from a mapping.");
    struct tv items = tpl_call(c, tpl_getattr(c, v, "items"), a);
    items.u.l->view = TL_GENERATOR;
    return items;
}

/* select / reject / selectattr / rejectattr: keep the items whose test result is `keep`. */
static struct tv select_items(struct rctx *c, struct tv v, const struct targs *a, bool keep,
                              bool by_attr, const char *what)
{
    size_t first = by_attr ? 1 : 0;
    if (by_attr && a->n < 1)
        tpl_fail(&c->job, ERR_INVALID, "%s needs an attribute name", what);
    if (a->n_kw)
        tpl_fail(&c->job, ERR_INVALID, "%s takes no keyword arguments", what);
    const char *test = NULL;
    if (a->n > first)
        test = tpl_want_str(c, a->pos[first], "test name")->s;
    struct targs rest = {.n = a->n > first + 1 ? a->n - first - 1 : 0,
                         .pos = a->n > first + 1 ? a->pos + first + 1 : NULL};
    const struct tlist *items = tpl_iterate(c, v);
    struct tlist *l = tlist_new(&c->job, items->n);
    struct tv none = {.t = TV_MISSING};
    for (size_t i = 0; i < items->n; i++) {
        struct tv x = by_attr ? get_attribute(c, items->v[i], a->pos[0], none) : items->v[i];
        bool ok = test ? tpl_apply_test(c, test, x, &rest) : tv_truthy(x);
        if (ok == keep)
            l->v[l->n++] = items->v[i];
    }
    l->view = TL_GENERATOR;
    return tv_list(l);
}

static struct tv f_select(struct rctx *c, struct tv v, const struct targs *a)
{
    return select_items(c, v, a, true, false, "select");
}

static struct tv f_reject(struct rctx *c, struct tv v, const struct targs *a)
{
    return select_items(c, v, a, false, false, "reject");
}

static struct tv f_selectattr(struct rctx *c, struct tv v, const struct targs *a)
{
    return select_items(c, v, a, true, true, "selectattr");
}

static struct tv f_rejectattr(struct rctx *c, struct tv v, const struct targs *a)
{
    return select_items(c, v, a, false, true, "rejectattr");
}

static struct tv f_map(struct rctx *c, struct tv v, const struct targs *a)
{
    const struct tlist *items = tpl_iterate(c, v);
    struct tlist *l = tlist_new(&c->job, items->n);
    struct tv attribute = {.t = TV_MISSING}, dflt = {.t = TV_MISSING};
    for (size_t k = 0; k < a->n_kw; k++) {
        if (!strcmp(a->kw_names[k], "attribute"))
            attribute = a->kw[k];
        else if (!strcmp(a->kw_names[k], "default"))
            dflt = a->kw[k];
    }
    if (tpl_given(attribute)) {
        if (a->n)
            tpl_fail(&c->job, ERR_INVALID, "map with attribute= takes no positional arguments");
        for (size_t i = 0; i < items->n; i++)
            l->v[l->n++] = get_attribute(c, items->v[i], attribute, dflt);
        l->view = TL_GENERATOR;
        return tv_list(l);
    }
    if (a->n < 1)
        tpl_fail(&c->job, ERR_INVALID, "map needs a filter name or attribute=");
    const char *filter = tpl_want_str(c, a->pos[0], "filter name")->s;
    struct targs rest = {
        .n = a->n - 1, .pos = a->pos + 1, .n_kw = a->n_kw, .kw_names = a->kw_names, .kw = a->kw};
    for (size_t i = 0; i < items->n; i++)
        l->v[l->n++] = tpl_apply_filter(c, filter, items->v[i], &rest);
    l->view = TL_GENERATOR;
    return tv_list(l);
}

/* batch(linecount, fill_with=None): lists of linecount items, the last one padded. */
static struct tv f_batch(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"linecount", "fill_with"};
    struct tv p[2];
    BIND("batch", names, p);
    int64_t count = tpl_want_int(c, p[0], "linecount");
    if (count <= 0)
        tpl_fail(&c->job, ERR_INVALID, "batch needs a positive linecount");
    const struct tlist *items = tpl_iterate(c, v);
    struct tlist *out = tlist_new(&c->job, 0), *cur = NULL;
    for (size_t i = 0; i < items->n; i++) {
        if (!cur || cur->n == (size_t)count) {
            cur = tlist_new(&c->job, (size_t)count);
            tlist_push(&c->job, out, tv_list(cur));
        }
        cur->v[cur->n++] = items->v[i];
    }
    while (cur && tpl_given(p[1]) && cur->n < (size_t)count)
        cur->v[cur->n++] = p[1];
    out->view = TL_GENERATOR;
    return tv_list(out);
}

static struct tv f_unique(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"case_sensitive", "attribute"};
    struct tv p[2];
    BIND("unique", names, p);
    const struct tlist *items = tpl_iterate(c, v);
    struct tlist *l = tlist_new(&c->job, items->n), *seen = tlist_new(&c->job, items->n);
    struct tv none = {.t = TV_MISSING};
    for (size_t i = 0; i < items->n; i++) {
        struct tv key = tpl_given(p[1]) ? get_attribute(c, items->v[i], p[1], none) : items->v[i];
        key = fold(c, key, tv_truthy(p[0]));
        bool dup = false;
        for (size_t k = 0; k < seen->n && !dup; k++)
            dup = tv_eq(&c->job, seen->v[k], key);
        if (!dup) {
            seen->v[seen->n++] = key;
            l->v[l->n++] = items->v[i];
        }
    }
    l->view = TL_GENERATOR;
    return tv_list(l);
}

static struct tv min_max(struct rctx *c, struct tv v, const struct targs *a, int sign)
{
    static const char *const names[] = {"case_sensitive", "attribute"};
    struct tv p[2];
    BIND(sign < 0 ? "min" : "max", names, p);
    const struct tlist *items = tpl_iterate(c, v);
    if (!items->n)
        return tv_undef("No aggregated item, sequence was empty.");
    struct tv none = {.t = TV_MISSING}, best = items->v[0], best_key = tv_none();
    for (size_t i = 0; i < items->n; i++) {
        struct tv key = tpl_given(p[1]) ? get_attribute(c, items->v[i], p[1], none) : items->v[i];
        key = fold(c, key, tv_truthy(p[0]));
        if (i == 0 || tv_cmp(&c->job, key, best_key, "<") * sign > 0) {
            best = items->v[i];
            best_key = key;
        }
    }
    return best;
}

static struct tv f_min(struct rctx *c, struct tv v, const struct targs *a)
{
    return min_max(c, v, a, -1);
}

static struct tv f_max(struct rctx *c, struct tv v, const struct targs *a)
{
    return min_max(c, v, a, 1);
}

static struct tv f_sum(struct rctx *c, struct tv v, const struct targs *a)
{
    static const char *const names[] = {"attribute", "start"};
    struct tv p[2];
    BIND("sum", names, p);
    const struct tlist *items = tpl_iterate(c, v);
    struct tv none = {.t = TV_MISSING}, total = tpl_given(p[1]) ? p[1] : tv_int(0);
    for (size_t i = 0; i < items->n; i++) {
        struct tv x = tpl_given(p[0]) ? get_attribute(c, items->v[i], p[0], none) : items->v[i];
        total = tpl_arith(c, OP_ADD, total, x);
    }
    return total;
}

const struct tpl_builtin tpl_seq_filters[] = {
    {"batch", f_batch},
    {"count", f_length},
    {"dictsort", f_dictsort},
    {"first", f_first},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"reverse", f_reverse},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"sum", f_sum},
    {"unique", f_unique},
};
const size_t tpl_n_seq_filters = N_OF(tpl_seq_filters);
