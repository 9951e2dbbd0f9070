/* eval: expressions -> values, with Jinja2's runtime rules as transformers' immutable sandbox
 * applies them: attribute access tries the object's attribute (a method) before its key and
 * item access the key before the attribute; missing names, keys and attributes are Undefined,
 * which fails only when it is used as an operand, called, or looked into; arithmetic, slicing
 * and comparisons are Python's. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "chat/tpl.h"

static void at_node(struct rctx *c, const struct node *n)
{
    c->job.line = n->line;
    c->job.col = n->col;
}

void tpl_check_defined(struct rctx *c, struct tv v)
{
    if (v.t == TV_UNDEF)
        tpl_fail(&c->job, ERR_INVALID, "%s", v.u.hint ? v.u.hint : "value is undefined");
}

static const char *fmt_hint(struct rctx *c, const char *fmt, const char *a, const char *b)
{
    char buf[200];
    snprintf(buf, sizeof buf, fmt, a, b);
    return tpl_strndup(&c->job, buf, strlen(buf));
}

/* Jinja's object_type_repr: "dict object", "None". */
static void type_repr(struct tv v, char out[64])
{
    if (v.t == TV_NONE)
        snprintf(out, 64, "None");
    else
        snprintf(out, 64, "%s object", tv_type_name(v));
}

static struct tv no_attribute(struct rctx *c, struct tv obj, const char *name)
{
    char type[64];
    type_repr(obj, type);
    return tv_undef(fmt_hint(c, "'%s' has no attribute '%s'", type, name));
}

static struct tv method(struct rctx *c, struct tv self, const char *name)
{
    bool unsafe = false;
    const struct tpl_builtin *b = tpl_find_method(self, name, &unsafe);
    if (unsafe)
        return tv_undef(fmt_hint(c, "access to attribute '%s' of '%s' object is unsafe.", name,
                                 tv_type_name(self)));
    if (!b)
        return tv_undef(NULL);
    struct tmethod *m = tpl_alloc(&c->job, sizeof *m);
    m->self = self;
    m->name = b->name;
    struct tv v = {.t = TV_METHOD, .u.m = m};
    return v;
}

static struct tv loop_attr(struct rctx *c, const struct tloop *l, const char *name)
{
    size_t i = l->index0, n = l->length;
    if (!strcmp(name, "index"))
        return tv_int((int64_t)i + 1);
    if (!strcmp(name, "index0"))
        return tv_int((int64_t)i);
    if (!strcmp(name, "revindex"))
        return tv_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0"))
        return tv_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first"))
        return tv_bool(i == 0);
    if (!strcmp(name, "last"))
        return tv_bool(i + 1 == n);
    if (!strcmp(name, "length"))
        return tv_int((int64_t)n);
    if (!strcmp(name, "depth"))
        return tv_int(1);
    if (!strcmp(name, "depth0"))
        return tv_int(0);
    if (!strcmp(name, "previtem"))
        return i > 0 ? l->items->v[i - 1] : tv_undef("there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? l->items->v[i + 1] : tv_undef("there is no next item");
    (void)c;
    return tv_undef(NULL);
}

struct tv tpl_getattr(struct rctx *c, struct tv obj, const char *name)
{
    tpl_check_defined(c, obj);
    struct tv m = tv_undef(NULL);
    if (obj.t == TV_STR || obj.t == TV_DICT || obj.t == TV_LIST || obj.t == TV_LOOP) {
        m = method(c, obj, name);
        if (m.t != TV_UNDEF || m.u.hint)
            return m;
    }
    if (obj.t == TV_DICT || obj.t == TV_NS) {
        const struct tv *v = tdict_get_str(obj.u.d, name, strlen(name));
        if (v)
            return *v;
    } else if (obj.t == TV_LOOP) {
        struct tv v = loop_attr(c, obj.u.loop, name);
        if (v.t != TV_UNDEF)
            return v;
    }
    return no_attribute(c, obj, name);
}

static bool is_intlike(struct tv v)
{
    return v.t == TV_INT || v.t == TV_BOOL;
}

static int64_t intval(struct tv v)
{
    return v.t == TV_INT ? v.u.i : v.u.b;
}

/* Python's slice index adjustment for a sequence of n items. Jinja compiles a slice to a
 * plain Python subscript, so a bad index fails (where [key] gives Undefined). */
static void slice_bounds(struct rctx *c, const struct node *s, int64_t n, int64_t *start,
                         int64_t *stop, int64_t *step)
{
    struct tv parts[3] = {tv_none(), tv_none(), tv_none()};
    const struct node *nodes[3] = {s->a, s->b, s->c};
    for (int k = 0; k < 3; k++) {
        if (nodes[k])
            parts[k] = tpl_eval(c, nodes[k]);
        if (parts[k].t != TV_NONE && !is_intlike(parts[k])) {
            at_node(c, s);
            tpl_fail(&c->job, ERR_INVALID,
                     "slice indices must be integers or None or have an __index__ method");
        }
    }
    *step = parts[2].t == TV_NONE ? 1 : intval(parts[2]);
    if (*step == 0) {
        at_node(c, s);
        tpl_fail(&c->job, ERR_INVALID, "slice step cannot be zero");
    }
    int64_t lower = *step > 0 ? 0 : -1, upper = *step > 0 ? n : n - 1;
    int64_t *ends[2] = {start, stop};
    for (int k = 0; k < 2; k++) {
        if (parts[k].t == TV_NONE) {
            *ends[k] = (k == 0) == (*step > 0) ? lower : upper;
            continue;
        }
        int64_t v = intval(parts[k]);
        if (v < 0) {
            v += n;
            if (v < lower)
                v = lower;
        } else if (v > upper) {
            v = upper;
        }
        *ends[k] = v;
    }
}

static struct tv eval_slice(struct rctx *c, struct tv obj, const struct node *s)
{
    tpl_check_defined(c, obj);
    if (obj.t == TV_DICT) {
        at_node(c, s);
        tpl_fail(&c->job, ERR_INVALID, "unhashable type: 'slice'");
    }
    if ((obj.t != TV_STR && obj.t != TV_LIST) || (obj.t == TV_LIST && obj.u.l->view != TL_PLAIN)) {
        at_node(c, s);
        tpl_fail(&c->job, ERR_INVALID, "'%s' object is not subscriptable", tv_type_name(obj));
    }
    int64_t n, start, stop, step;
    if (obj.t == TV_LIST) {
        n = (int64_t)obj.u.l->n;
        slice_bounds(c, s, n, &start, &stop, &step);
        struct tlist *l = tlist_new(&c->job, 0);
        l->tuple = obj.u.l->tuple;
        for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
            tlist_push(&c->job, l, obj.u.l->v[i]);
            if (__builtin_add_overflow(i, step, &i))
                break;
        }
        return tv_list(l);
    }
    const struct tstr *str = obj.u.s;
    /* offs[i]: byte offset of code point i (offs[n] = len). */
    n = (int64_t)tstr_cp_len(str);
    size_t *offs = tpl_alloc(&c->job, ((size_t)n + 1) * sizeof *offs);
    for (size_t i = 0, k = 0; k <= (size_t)n; k++) {
        offs[k] = i;
        if (i < str->len)
            utf8_next(str->s, str->len, &i);
    }
    slice_bounds(c, s, n, &start, &stop, &step);
    struct sbuf b;
    sb_init(&b, &c->job, str->len);
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
        sb_put(&b, str->s + offs[i], offs[i + 1] - offs[i]);
        if (__builtin_add_overflow(i, step, &i))
            break;
    }
    return tv_str(sb_done(&b));
}

struct tv tpl_getitem(struct rctx *c, struct tv obj, struct tv key)
{
    tpl_check_defined(c, obj);
    if (obj.t == TV_DICT) {
        const struct tv *v = tdict_get(&c->job, obj.u.d, key);
        if (v)
            return *v;
    } else if (obj.t == TV_LIST && obj.u.l->view >= TL_ITEMS) {
        /* views and generators are not subscriptable: TypeError, so Undefined */
    } else if ((obj.t == TV_LIST || obj.t == TV_STR) && (key.t == TV_INT || key.t == TV_BOOL)) {
        int64_t i = key.t == TV_INT ? key.u.i : key.u.b;
        int64_t n = obj.t == TV_LIST ? (int64_t)obj.u.l->n : (int64_t)tstr_cp_len(obj.u.s);
        if (i < 0)
            i += n;
        if (i >= 0 && i < n) {
            if (obj.t == TV_LIST)
                return obj.u.l->v[i];
            size_t off = tstr_cp_offset(obj.u.s, (size_t)i), end = off;
            utf8_next(obj.u.s->s, obj.u.s->len, &end);
            return tv_str(tstr_new(&c->job, obj.u.s->s + off, end - off));
        }
    }
    if (key.t == TV_STR)
        return tpl_getattr(c, obj, key.u.s->s);
    struct tstr *k = tv_to_str(&c->job, key);
    char type[64];
    type_repr(obj, type);
    return tv_undef(fmt_hint(c, "%s has no element %s", type, k->s));
}

struct tv tpl_lookup(struct rctx *c, const char *name)
{
    for (const struct scope *s = c->cur; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (!strcmp(s->names[i], name))
                return s->vals[i];
    const struct tpl_builtin *g = tpl_find_global(name);
    if (g) {
        struct tv v = {.t = TV_FUNC, .u.fn = g};
        return v;
    }
    return tv_undef(fmt_hint(c, "'%s' is %s", name, "undefined"));
}

const struct tlist *tpl_iterate(struct rctx *c, struct tv v)
{
    static const struct tlist empty = {0};
    switch (v.t) {
    case TV_UNDEF: return &empty;
    case TV_LIST: tpl_steps(&c->job, v.u.l->n); return v.u.l;
    case TV_DICT: {
        tpl_steps(&c->job, v.u.d->n);
        struct tlist *l = tlist_new(&c->job, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++)
            l->v[l->n++] = v.u.d->k[i];
        return l;
    }
    case TV_STR: {
        tpl_steps(&c->job, v.u.s->len);
        struct tlist *l = tlist_new(&c->job, tstr_cp_len(v.u.s));
        for (size_t i = 0; i < v.u.s->len;) {
            size_t start = i;
            utf8_next(v.u.s->s, v.u.s->len, &i);
            l->v[l->n++] = tv_str(tstr_new(&c->job, v.u.s->s + start, i - start));
        }
        return l;
    }
    default: tpl_fail(&c->job, ERR_INVALID, "'%s' object is not iterable", tv_type_name(v));
    }
}

/* ---- operators ------------------------------------------------------------------------ */

static _Noreturn void overflow(struct rctx *c)
{
    tpl_fail(&c->job, ERR_INVALID, "integer overflow");
}

static struct tv int_arith(struct rctx *c, int op, int64_t a, int64_t b)
{
    int64_t r;
    switch (op) {
    case OP_ADD:
        if (__builtin_add_overflow(a, b, &r))
            overflow(c);
        return tv_int(r);
    case OP_SUB:
        if (__builtin_sub_overflow(a, b, &r))
            overflow(c);
        return tv_int(r);
    case OP_MUL:
        if (__builtin_mul_overflow(a, b, &r))
            overflow(c);
        return tv_int(r);
    case OP_FLOORDIV:
    case OP_MOD: {
        if (b == 0)
            tpl_fail(&c->job, ERR_INVALID, "integer division or modulo by zero");
        if (a == INT64_MIN && b == -1) {
            if (op == OP_MOD)
                return tv_int(0);
            overflow(c);
        }
        int64_t q = a / b, m = a % b;
        if (m != 0 && ((m < 0) != (b < 0))) {
            q -= 1;
            m += b;
        }
        return tv_int(op == OP_FLOORDIV ? q : m);
    }
    case OP_POW: {
        if (b < 0 && a == 0)
            tpl_fail(&c->job, ERR_INVALID, "0.0 cannot be raised to a negative power");
        if (b < 0)
            return tv_float(pow((double)a, (double)b));
        r = 1;
        for (int64_t base = a; b > 0; b >>= 1) {
            if ((b & 1) && __builtin_mul_overflow(r, base, &r))
                overflow(c);
            if (b > 1 && __builtin_mul_overflow(base, base, &base))
                overflow(c);
        }
        return tv_int(r);
    }
    default: return tv_float((double)a / (double)b);
    }
}

static struct tv float_arith(struct rctx *c, int op, double a, double b)
{
    switch (op) {
    case OP_ADD: return tv_float(a + b);
    case OP_SUB: return tv_float(a - b);
    case OP_MUL: return tv_float(a * b);
    case OP_DIV:
        if (b == 0)
            tpl_fail(&c->job, ERR_INVALID, "float division by zero");
        return tv_float(a / b);
    case OP_FLOORDIV:
    case OP_MOD: {
        if (b == 0)
            tpl_fail(&c->job, ERR_INVALID, "float %s by zero",
                     op == OP_MOD ? "modulo" : "floor division");
        /* CPython's float_divmod. */
        double mod = fmod(a, b), div = (a - mod) / b, floordiv;
        if (mod != 0) {
            if ((b < 0) != (mod < 0)) {
                mod += b;
                div -= 1.0;
            }
        } else {
            mod = copysign(0.0, b);
        }
        if (div != 0) {
            floordiv = floor(div);
            if (div - floordiv > 0.5)
                floordiv += 1.0;
        } else {
            floordiv = copysign(0.0, a / b);
        }
        return tv_float(op == OP_MOD ? mod : floordiv);
    }
    case OP_POW:
        if (a == 0 && b < 0)
            tpl_fail(&c->job, ERR_INVALID, "0.0 cannot be raised to a negative power");
        if (a < 0 && b != floor(b))
            tpl_fail(&c->job, ERR_INVALID,
                     "negative number cannot be raised to a fractional power");
        return tv_float(pow(a, b));
    default: return tv_none();
    }
}

static const char *op_text(int op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "**";
    default: return "?";
    }
}

/* seq * times: Python's repetition, sized exactly before anything is built. */
static struct tv repeat(struct rctx *c, struct tv seq, int64_t times)
{
    size_t unit = seq.t == TV_STR ? seq.u.s->len : seq.u.l->n;
    size_t n = times > 0 ? (size_t)times : 0;
    if (unit == 0 || n == 0) {
        if (seq.t == TV_STR)
            return tv_str(&tstr_empty);
        struct tlist *l = tlist_new(&c->job, 0);
        l->tuple = seq.u.l->tuple;
        return tv_list(l);
    }
    size_t total = tpl_size_mul(&c->job, unit, n);
    if (seq.t == TV_STR) {
        tpl_check_output(&c->job, total);
        tpl_steps(&c->job, n);
        struct sbuf b;
        sb_init(&b, &c->job, total);
        for (size_t i = 0; i < n; i++)
            sb_put(&b, seq.u.s->s, unit);
        return tv_str(sb_done(&b));
    }
    tpl_check_output(&c->job, tpl_size_mul(&c->job, total, sizeof(struct tv)));
    tpl_steps(&c->job, total);
    struct tlist *l = tlist_new(&c->job, total);
    l->tuple = seq.u.l->tuple;
    for (size_t i = 0; i < n; i++) {
        memcpy(l->v + l->n, seq.u.l->v, unit * sizeof *l->v);
        l->n += unit;
    }
    return tv_list(l);
}

struct tv tpl_arith(struct rctx *c, int op, struct tv a, struct tv b)
{
    tpl_check_defined(c, a);
    tpl_check_defined(c, b);
    if (tv_is_number(a) && tv_is_number(b)) {
        if (is_intlike(a) && is_intlike(b) && op != OP_DIV)
            return int_arith(c, op, intval(a), intval(b));
        if (op == OP_DIV && is_intlike(a) && is_intlike(b) && intval(b) == 0)
            tpl_fail(&c->job, ERR_INVALID, "division by zero");
        return float_arith(c, op, tv_as_double(a), tv_as_double(b));
    }
    if (op == OP_ADD && a.t == TV_STR && b.t == TV_STR)
        return tv_str(tstr_cat(&c->job, a.u.s, b.u.s));
    if (op == OP_ADD && a.t == TV_LIST && b.t == TV_LIST && a.u.l->tuple == b.u.l->tuple &&
        a.u.l->view == TL_PLAIN && b.u.l->view == TL_PLAIN) {
        struct tlist *l = tlist_new(&c->job, a.u.l->n + b.u.l->n);
        l->tuple = a.u.l->tuple;
        if (a.u.l->n)
            memcpy(l->v, a.u.l->v, a.u.l->n * sizeof *l->v);
        if (b.u.l->n)
            memcpy(l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof *l->v);
        l->n = a.u.l->n + b.u.l->n;
        return tv_list(l);
    }
    if (op == OP_MUL && (a.t == TV_STR || a.t == TV_LIST) && is_intlike(b))
        return repeat(c, a, intval(b));
    if (op == OP_MUL && (b.t == TV_STR || b.t == TV_LIST) && is_intlike(a))
        return repeat(c, b, intval(a));
    if (op == OP_MOD && a.t == TV_STR)
        tpl_fail(&c->job, ERR_INVALID, "printf-style string formatting is not supported");
    if (op == OP_ADD && (a.t == TV_STR || a.t == TV_LIST))
        tpl_fail(&c->job, ERR_INVALID, "can only concatenate %s (not \"%s\") to %s",
                 tv_type_name(a), tv_type_name(b), tv_type_name(a));
    tpl_fail(&c->job, ERR_INVALID, "unsupported operand type(s) for %s: '%s' and '%s'", op_text(op),
             tv_type_name(a), tv_type_name(b));
}

static bool contains(struct rctx *c, struct tv container, struct tv item)
{
    switch (container.t) {
    case TV_UNDEF: return false;
    case TV_STR:
        if (item.t != TV_STR)
            tpl_fail(&c->job, ERR_INVALID, "'in <string>' requires string as left operand, not %s",
                     tv_type_name(item));
        return item.u.s->len == 0 ||
               memmem(container.u.s->s, container.u.s->len, item.u.s->s, item.u.s->len);
    case TV_LIST:
        for (size_t i = 0; i < container.u.l->n; i++)
            if (tv_eq(&c->job, container.u.l->v[i], item))
                return true;
        return false;
    case TV_DICT:
    case TV_NS: return tdict_get(&c->job, container.u.d, item) != NULL;
    default:
        tpl_fail(&c->job, ERR_INVALID, "argument of type '%s' is not iterable",
                 tv_type_name(container));
    }
}

bool tpl_compare(struct rctx *c, int op, struct tv a, struct tv b)
{
    switch (op) {
    case OP_EQ: return tv_eq(&c->job, a, b);
    case OP_NE: return !tv_eq(&c->job, a, b);
    case OP_LT: return tv_cmp(&c->job, a, b, "<") < 0;
    case OP_LTEQ: return tv_cmp(&c->job, a, b, "<=") <= 0;
    case OP_GT: return tv_cmp(&c->job, a, b, ">") > 0;
    case OP_GTEQ: return tv_cmp(&c->job, a, b, ">=") >= 0;
    case CMP_IN: return contains(c, b, a);
    case CMP_NOTIN: return !contains(c, b, a);
    default: return false;
    }
}

/* ---- nodes ------------------------------------------------------------------------------ */

/* Evaluates a call's or filter's arguments. */
static void eval_args(struct rctx *c, const struct node *n, struct targs *a)
{
    struct tv *pos = n->args.n ? tpl_alloc(&c->job, n->args.n * sizeof *pos) : NULL;
    struct tv *kw = n->kwargs.n ? tpl_alloc(&c->job, n->kwargs.n * sizeof *kw) : NULL;
    for (size_t i = 0; i < n->args.n; i++)
        pos[i] = tpl_eval(c, n->args.v[i]);
    for (size_t i = 0; i < n->kwargs.n; i++)
        kw[i] = tpl_eval(c, n->kwargs.v[i]);
    a->n = n->args.n;
    a->pos = pos;
    a->n_kw = n->kwargs.n;
    a->kw_names = n->kw_names;
    a->kw = kw;
}

static struct tv make_sequence(struct rctx *c, const struct node *n, bool tuple)
{
    struct tlist *l = tlist_new(&c->job, n->args.n);
    l->tuple = tuple;
    for (size_t i = 0; i < n->args.n; i++)
        l->v[l->n++] = tpl_eval(c, n->args.v[i]);
    return tv_list(l);
}

static struct tv eval_bin(struct rctx *c, const struct node *n)
{
    struct tv a = tpl_eval(c, n->a), b = tpl_eval(c, n->b);
    at_node(c, n);
    return tpl_arith(c, n->op, a, b);
}

static struct tv eval_compare(struct rctx *c, const struct node *n)
{
    struct tv left = tpl_eval(c, n->a);
    for (size_t i = 0; i < n->args.n; i++) {
        struct tv right = tpl_eval(c, n->args.v[i]);
        at_node(c, n);
        if (!tpl_compare(c, n->ops[i], left, right))
            return tv_bool(false);
        left = right;
    }
    return tv_bool(true);
}

static struct tv eval_unary(struct rctx *c, const struct node *n)
{
    struct tv v = tpl_eval(c, n->a);
    at_node(c, n);
    tpl_check_defined(c, v);
    if (!tv_is_number(v))
        tpl_fail(&c->job, ERR_INVALID, "bad operand type for unary %s: '%s'",
                 n->kind == N_NEG ? "-" : "+", tv_type_name(v));
    if (n->kind == N_POS)
        return v.t == TV_BOOL ? tv_int(v.u.b) : v;
    if (v.t == TV_FLOAT)
        return tv_float(-v.u.f);
    if (intval(v) == INT64_MIN)
        overflow(c);
    return tv_int(-intval(v));
}

static struct tv eval_node(struct rctx *c, const struct node *n)
{
    struct targs args;
    struct tv v;
    switch (n->kind) {
    case N_CONST: return n->value;
    case N_NAME: return tpl_lookup(c, n->name);
    case N_ATTR:
        v = tpl_eval(c, n->a);
        at_node(c, n);
        return tpl_getattr(c, v, n->name);
    case N_ITEM: {
        v = tpl_eval(c, n->a);
        if (n->b->kind == N_SLICE)
            return eval_slice(c, v, n->b);
        struct tv key = tpl_eval(c, n->b);
        at_node(c, n);
        return tpl_getitem(c, v, key);
    }
    case N_CALL:
        v = tpl_eval(c, n->a);
        eval_args(c, n, &args);
        at_node(c, n);
        return tpl_call(c, v, &args);
    case N_FILTER:
        v = n->a->kind == N_CAPTURED ? tv_str(c->captured) : tpl_eval(c, n->a);
        eval_args(c, n, &args);
        at_node(c, n);
        return tpl_apply_filter(c, n->name, v, &args);
    case N_TEST:
        v = tpl_eval(c, n->a);
        eval_args(c, n, &args);
        at_node(c, n);
        return tv_bool(tpl_apply_test(c, n->name, v, &args));
    case N_NOT: return tv_bool(!tv_truthy(tpl_eval(c, n->a)));
    case N_NEG:
    case N_POS: return eval_unary(c, n);
    case N_BIN: return eval_bin(c, n);
    case N_AND: v = tpl_eval(c, n->a); return tv_truthy(v) ? tpl_eval(c, n->b) : v;
    case N_OR: v = tpl_eval(c, n->a); return tv_truthy(v) ? v : tpl_eval(c, n->b);
    case N_CONCAT: {
        struct sbuf b;
        sb_init(&b, &c->job, 64);
        for (size_t i = 0; i < n->args.n; i++)
            tv_str_into(&c->job, &b, tpl_eval(c, n->args.v[i]));
        return tv_str(sb_done(&b));
    }
    case N_COMPARE: return eval_compare(c, n);
    case N_COND:
        if (tv_truthy(tpl_eval(c, n->a)))
            return tpl_eval(c, n->b);
        return n->c ? tpl_eval(c, n->c)
                    : tv_undef("the inline if-expression evaluated to false and no else "
                               "section was defined.");
    case N_LIST: return make_sequence(c, n, false);
    case N_TUPLE: return make_sequence(c, n, true);
    case N_DICT: {
        struct tdict *d = tdict_new(&c->job, n->args.n);
        for (size_t i = 0; i < n->args.n; i++) {
            struct tv k = tpl_eval(c, n->args.v[i]);
            tdict_set(&c->job, d, k, tpl_eval(c, n->kwargs.v[i]));
        }
        return tv_dict(d);
    }
    case N_CAPTURED: return tv_str(c->captured);
    default:
        at_node(c, n);
        tpl_fail(&c->job, ERR_INTERNAL, "node %d is not an expression", (int)n->kind);
    }
}

struct tv tpl_eval(struct rctx *c, const struct node *n)
{
    tpl_enter(&c->job);
    struct tv v = eval_node(c, n);
    tpl_leave(&c->job);
    return v;
}
