/* value: the chat template engine's arena, failure path and value type: strings, lists, dicts,
 * conversion from JSON, and the Python semantics every other file relies on (truthiness,
 * equality, ordering, str() and repr(), float repr) plus the UTF-8 helpers. See tpl.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "chat/template.h"
#include "chat/tpl.h"

/* ---- arena ------------------------------------------------------------------------------- */

enum { BLOCK_BYTES = 64 * 1024 };

struct tpl_block {
    struct tpl_block *next;
    size_t cap, used;
    max_align_t data[];
};

enum { CLOCK_EVERY = 128 }; /* steps between two looks at the clock */

void tpl_job_init(struct tpl_job *j, struct err *e, size_t limit_bytes)
{
    memset(j, 0, sizeof *j);
    j->e = e;
    j->limit_bytes = limit_bytes;
    j->max_depth = j->max_value_depth = UINT32_MAX;
    j->max_steps = j->next_clock = UINT64_MAX;
    j->max_output = SIZE_MAX;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void tpl_job_budget(struct tpl_job *j, const struct chat_template_budget *b)
{
    j->limit_bytes = b->max_memory_bytes;
    j->max_depth = b->max_depth;
    j->max_value_depth = b->max_value_depth;
    j->max_steps = b->max_steps;
    j->next_clock = CLOCK_EVERY;
    j->max_output = b->max_output_bytes;
    j->max_time_ms = b->max_time_ms;
    j->deadline_ns = now_ns() + (int64_t)b->max_time_ms * 1000000;
}

/* Budget failures name no position: the budget is the render's, not one tag's. */
static _Noreturn void budget_fail(struct tpl_job *j, const char *what, unsigned long long n,
                                  const char *unit)
{
    j->line = j->col = 0;
    tpl_fail(j, ERR_TOO_LARGE, "exceeded the %s budget (%llu %s)", what, n, unit);
}

void tpl_steps(struct tpl_job *j, uint64_t n)
{
    j->steps = n > UINT64_MAX - j->steps ? UINT64_MAX : j->steps + n;
    if (j->steps > j->max_steps)
        budget_fail(j, "step", j->max_steps, "steps");
    if (j->steps < j->next_clock)
        return;
    j->next_clock = j->steps + CLOCK_EVERY;
    if (j->deadline_ns && now_ns() > j->deadline_ns)
        budget_fail(j, "time", j->max_time_ms, "ms");
}

void tpl_enter(struct tpl_job *j)
{
    if (++j->depth <= j->max_depth)
        return;
    if (j->compiling)
        tpl_fail(j, ERR_FORMAT, "syntax error: the template nests too deeply (more than %u levels)",
                 j->max_depth);
    j->line = j->col = 0;
    tpl_fail(j, ERR_TOO_LARGE, "the template nests too deeply when it runs (more than %u levels)",
             j->max_depth);
}

bool tpl_value_enter(struct tpl_job *j, const void *container)
{
    for (unsigned i = 0; i < j->value_depth; i++)
        if (j->value_stack[i] == container)
            return true;
    if (j->value_depth >= j->max_value_depth) {
        j->line = j->col = 0;
        tpl_fail(j, ERR_TOO_LARGE, "a value nests too deeply (more than %u levels)",
                 j->max_value_depth);
    }
    if (!j->value_stack)
        j->value_stack = tpl_alloc(j, (size_t)j->max_value_depth * sizeof *j->value_stack);
    j->value_stack[j->value_depth++] = container;
    return false;
}

void tpl_check_output(struct tpl_job *j, size_t n)
{
    if (n > j->max_output)
        budget_fail(j, "output", j->max_output, "bytes");
}

size_t tpl_size_mul(struct tpl_job *j, size_t a, size_t b)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        budget_fail(j, "output", j->max_output, "bytes");
    return r;
}

void tpl_job_free_arena(struct tpl_job *j)
{
    struct tpl_block *b = j->blocks;
    while (b) {
        struct tpl_block *next = b->next;
        free(b);
        b = next;
    }
    j->blocks = NULL;
    j->used_bytes = 0;
}

void *tpl_alloc(struct tpl_job *j, size_t n)
{
    const size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (n == 0)
        n = align;
    if (j->used_bytes + n > j->limit_bytes)
        tpl_fail(j, ERR_TOO_LARGE, "template needs more than %zu MiB of memory",
                 j->limit_bytes >> 20);
    struct tpl_block *b = j->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > BLOCK_BYTES / 2 ? n : BLOCK_BYTES;
        b = malloc(sizeof *b + cap);
        if (!b)
            tpl_fail(j, ERR_NOMEM, "out of memory");
        b->cap = cap;
        b->used = 0;
        b->next = j->blocks;
        j->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    j->used_bytes += n;
    return p;
}

void *tpl_alloc_zero(struct tpl_job *j, size_t n)
{
    void *p = tpl_alloc(j, n);
    memset(p, 0, n);
    return p;
}

char *tpl_strndup(struct tpl_job *j, const char *s, size_t n)
{
    char *p = tpl_alloc(j, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void set_error(struct tpl_job *j, int kind, const char *msg)
{
    j->kind = kind;
    if (j->e)
        err_set(j->e, kind, "%s", msg);
}

_Noreturn void tpl_fail(struct tpl_job *j, int kind, const char *fmt, ...)
{
    char msg[ERR_MSG_SIZE];
    int n = 0;
    if (j->line > 0 && j->col > 0)
        n = snprintf(msg, sizeof msg, "chat template: line %d:%d: ", j->line, j->col);
    else if (j->line > 0)
        n = snprintf(msg, sizeof msg, "chat template: line %d: ", j->line);
    else
        n = snprintf(msg, sizeof msg, "chat template: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    set_error(j, kind, msg);
    longjmp(j->jb, 1);
}

_Noreturn void tpl_fail_raw(struct tpl_job *j, int kind, const char *msg)
{
    set_error(j, kind, msg);
    longjmp(j->jb, 1);
}

/* ---- UTF-8 --------------------------------------------------------------------------------- */

uint32_t utf8_next(const char *s, size_t len, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t c = u[*i];
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (*i + n > len) {
        (*i)++;
        return c;
    }
    if (n == 2)
        c = ((c & 0x1Fu) << 6) | (u[*i + 1] & 0x3Fu);
    else if (n == 3)
        c = ((c & 0x0Fu) << 12) | ((u[*i + 1] & 0x3Fu) << 6) | (u[*i + 2] & 0x3Fu);
    else if (n == 4)
        c = ((c & 0x07u) << 18) | ((u[*i + 1] & 0x3Fu) << 12) | ((u[*i + 2] & 0x3Fu) << 6) |
            (u[*i + 3] & 0x3Fu);
    *i += n;
    return c;
}

size_t utf8_prev(const char *s, size_t i)
{
    do
        i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

bool utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0)
            return false;
        i += (size_t)n;
    }
    return true;
}

bool py_isspace(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

size_t tstr_cp_offset(const struct tstr *s, size_t cp_index)
{
    if (s->ascii)
        return cp_index < s->len ? cp_index : s->len;
    size_t i = 0;
    while (i < s->len && cp_index > 0) {
        utf8_next(s->s, s->len, &i);
        cp_index--;
    }
    return i;
}

size_t tstr_cp_len(const struct tstr *s)
{
    return s->ascii ? s->len : utf8_count(s->s, s->len);
}

/* ---- strings, lists, dicts ---------------------------------------------------------------- */

struct tstr tstr_empty = {0, true};

struct tstr *tstr_new(struct tpl_job *j, const char *s, size_t len)
{
    if (len == 0)
        return &tstr_empty;
    struct tstr *t = tpl_alloc(j, sizeof *t + len + 1);
    memcpy(t->s, s, len);
    t->s[len] = '\0';
    t->len = len;
    t->ascii = true;
    for (size_t i = 0; i < len && t->ascii; i++)
        t->ascii = (unsigned char)s[i] < 0x80;
    return t;
}

struct tstr *tstr_cstr(struct tpl_job *j, const char *s)
{
    return tstr_new(j, s, strlen(s));
}

struct tstr *tstr_cat(struct tpl_job *j, const struct tstr *a, const struct tstr *b)
{
    struct sbuf sb;
    sb_init(&sb, j, a->len + b->len);
    sb_put(&sb, a->s, a->len);
    sb_put(&sb, b->s, b->len);
    return sb_done(&sb);
}

void sb_init(struct sbuf *b, struct tpl_job *j, size_t cap)
{
    b->j = j;
    b->cap = cap < 16 ? 16 : cap;
    b->t = tpl_alloc(j, sizeof *b->t + b->cap + 1);
    b->len = 0;
}

void sb_put(struct sbuf *b, const char *s, size_t n)
{
    size_t max = b->j->max_output;
    if (n > max || b->len > max - n)
        tpl_check_output(b->j, SIZE_MAX);
    if (b->len + n > b->cap) {
        size_t cap = b->cap > max / 2 ? max : b->cap * 2;
        if (cap < b->len + n)
            cap = b->len + n;
        struct tstr *t = tpl_alloc(b->j, sizeof *t + cap + 1);
        memcpy(t->s, b->t->s, b->len);
        b->t = t;
        b->cap = cap;
    }
    memcpy(b->t->s + b->len, s, n);
    b->len += n;
}

void sb_putc(struct sbuf *b, char c)
{
    sb_put(b, &c, 1);
}

void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

void sb_put_cp(struct sbuf *b, uint32_t cp)
{
    utf8proc_uint8_t u[4];
    utf8proc_ssize_t n = utf8proc_encode_char((utf8proc_int32_t)cp, u);
    sb_put(b, (const char *)u, (size_t)n);
}

struct tstr *sb_done(struct sbuf *b)
{
    struct tstr *t = b->t;
    if (b->len == 0)
        return &tstr_empty;
    t->len = b->len;
    t->s[t->len] = '\0';
    t->ascii = true;
    for (size_t i = 0; i < t->len && t->ascii; i++)
        t->ascii = (unsigned char)t->s[i] < 0x80;
    return t;
}

struct tlist *tlist_new(struct tpl_job *j, size_t cap)
{
    tpl_check_output(j, tpl_size_mul(j, cap, sizeof(struct tv)));
    struct tlist *l = tpl_alloc_zero(j, sizeof *l);
    l->cap = cap;
    l->v = cap ? tpl_alloc(j, cap * sizeof *l->v) : NULL;
    return l;
}

void tlist_push(struct tpl_job *j, struct tlist *l, struct tv v)
{
    tpl_steps(j, 1);
    if (l->n == l->cap) {
        tpl_check_output(j, tpl_size_mul(j, l->n + 1, sizeof *l->v));
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct tv *nv = tpl_alloc(j, cap * sizeof *nv);
        if (l->n)
            memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

struct tdict *tdict_new(struct tpl_job *j, size_t cap)
{
    struct tdict *d = tpl_alloc_zero(j, sizeof *d);
    d->cap = cap;
    if (cap) {
        d->k = tpl_alloc(j, cap * sizeof *d->k);
        d->v = tpl_alloc(j, cap * sizeof *d->v);
    }
    return d;
}

struct tv *tdict_get(struct tpl_job *j, const struct tdict *d, struct tv key)
{
    for (size_t i = 0; i < d->n; i++)
        if (tv_eq(j, d->k[i], key))
            return &d->v[i];
    return NULL;
}

struct tv *tdict_get_str(const struct tdict *d, const char *key, size_t len)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct tv *k = &d->k[i];
        if (k->t == TV_STR && k->u.s->len == len && memcmp(k->u.s->s, key, len) == 0)
            return &d->v[i];
    }
    return NULL;
}

void tdict_set(struct tpl_job *j, struct tdict *d, struct tv k, struct tv v)
{
    struct tv *old = tdict_get(j, d, k);
    if (old) {
        *old = v;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        struct tv *nk = tpl_alloc(j, cap * sizeof *nk);
        struct tv *nv = tpl_alloc(j, cap * sizeof *nv);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
}

struct tv tv_from_json(struct tpl_job *j, const json_t *x)
{
    switch (json_typeof(x)) {
    case JSON_OBJECT: {
        struct tdict *d = tdict_new(j, json_object_size(x));
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)x, key, val)
        {
            /* Keys are unique in a jansson object: append without searching. */
            d->k[d->n] = tv_str(tstr_cstr(j, key));
            d->v[d->n] = tv_from_json(j, val);
            d->n++;
        }
        return tv_dict(d);
    }
    case JSON_ARRAY: {
        struct tlist *l = tlist_new(j, json_array_size(x));
        for (size_t i = 0; i < json_array_size(x); i++)
            l->v[l->n++] = tv_from_json(j, json_array_get(x, i));
        return tv_list(l);
    }
    case JSON_STRING: return tv_str(tstr_new(j, json_string_value(x), json_string_length(x)));
    case JSON_INTEGER: return tv_int((int64_t)json_integer_value(x));
    case JSON_REAL: return tv_float(json_real_value(x));
    case JSON_TRUE: return tv_bool(true);
    case JSON_FALSE: return tv_bool(false);
    case JSON_NULL:
    default: return tv_none();
    }
}

/* ---- Python semantics ------------------------------------------------------------------- */

bool tv_truthy(struct tv v)
{
    switch (v.t) {
    case TV_MISSING:
    case TV_UNDEF:
    case TV_NONE: return false;
    case TV_BOOL: return v.u.b;
    case TV_INT: return v.u.i != 0;
    case TV_FLOAT: return v.u.f != 0.0;
    case TV_STR: return v.u.s->len > 0;
    case TV_LIST: return v.u.l->n > 0 || v.u.l->view == TL_GENERATOR;
    case TV_DICT: return v.u.d->n > 0;
    default: return true;
    }
}

bool tv_is_number(struct tv v)
{
    return v.t == TV_BOOL || v.t == TV_INT || v.t == TV_FLOAT;
}

double tv_as_double(struct tv v)
{
    return v.t == TV_FLOAT ? v.u.f : v.t == TV_INT ? (double)v.u.i : v.u.b ? 1.0 : 0.0;
}

static int64_t as_int(struct tv v)
{
    return v.t == TV_INT ? v.u.i : v.u.b ? 1 : 0;
}

static bool list_eq(struct tpl_job *j, const struct tlist *a, const struct tlist *b)
{
    if (a->tuple != b->tuple || a->n != b->n)
        return false;
    bool eq = true;
    if (tpl_value_enter(j, a))
        return true; /* a list inside itself: only a namespace can do that, compared by identity */
    for (size_t i = 0; i < a->n && eq; i++)
        eq = tv_eq(j, a->v[i], b->v[i]);
    tpl_value_leave(j);
    return eq;
}

static bool dict_eq(struct tpl_job *j, const struct tdict *a, const struct tdict *b)
{
    if (a->n != b->n)
        return false;
    bool eq = true;
    if (tpl_value_enter(j, a))
        return true;
    for (size_t i = 0; i < a->n && eq; i++) {
        const struct tv *bv = tdict_get(j, b, a->k[i]);
        eq = bv && tv_eq(j, a->v[i], *bv);
    }
    tpl_value_leave(j);
    return eq;
}

/* Python's ==; a container equals itself without a look inside (PyObject_RichCompareBool). */
bool tv_eq(struct tpl_job *j, struct tv a, struct tv b)
{
    tpl_steps(j, 1);
    if (tv_is_number(a) && tv_is_number(b)) {
        if (a.t != TV_FLOAT && b.t != TV_FLOAT)
            return as_int(a) == as_int(b);
        return tv_as_double(a) == tv_as_double(b);
    }
    if (a.t != b.t)
        return (a.t == TV_UNDEF && b.t == TV_MISSING) || (a.t == TV_MISSING && b.t == TV_UNDEF);
    switch (a.t) {
    case TV_MISSING:
    case TV_UNDEF:
    case TV_NONE: return true;
    case TV_STR: return a.u.s->len == b.u.s->len && memcmp(a.u.s->s, b.u.s->s, a.u.s->len) == 0;
    case TV_LIST:
        if (a.u.l == b.u.l || a.u.l->view == TL_GENERATOR || b.u.l->view == TL_GENERATOR)
            return a.u.l == b.u.l;
        return list_eq(j, a.u.l, b.u.l);
    case TV_DICT: return a.u.d == b.u.d || dict_eq(j, a.u.d, b.u.d);
    case TV_NS: return a.u.d == b.u.d;
    case TV_LOOP: return a.u.loop == b.u.loop;
    case TV_FUNC: return a.u.fn == b.u.fn;
    case TV_MACRO: return a.u.macro == b.u.macro;
    case TV_METHOD:
        return strcmp(a.u.m->name, b.u.m->name) == 0 && tv_eq(j, a.u.m->self, b.u.m->self);
    default: return false;
    }
}

int tv_cmp(struct tpl_job *j, struct tv a, struct tv b, const char *op)
{
    tpl_steps(j, 1);
    if (a.t == TV_UNDEF || b.t == TV_UNDEF)
        tpl_fail(j, ERR_INVALID, "%s", a.t == TV_UNDEF ? a.u.hint : b.u.hint);
    if (tv_is_number(a) && tv_is_number(b)) {
        if (a.t != TV_FLOAT && b.t != TV_FLOAT)
            return as_int(a) < as_int(b) ? -1 : as_int(a) > as_int(b);
        double x = tv_as_double(a), y = tv_as_double(b);
        return x < y ? -1 : x > y ? 1 : 0; /* NaN compares as equal: every test is false */
    }
    if (a.t == TV_STR && b.t == TV_STR) {
        /* UTF-8 byte order is code point order. */
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int r = memcmp(a.u.s->s, b.u.s->s, n);
        if (r)
            return r < 0 ? -1 : 1;
        return a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len;
    }
    if (a.t == TV_LIST && b.t == TV_LIST && a.u.l->tuple == b.u.l->tuple) {
        const struct tlist *x = a.u.l, *y = b.u.l;
        int r = x->n < y->n ? -1 : x->n > y->n;
        if (tpl_value_enter(j, x))
            return 0;
        for (size_t i = 0; i < x->n && i < y->n; i++) {
            if (!tv_eq(j, x->v[i], y->v[i])) {
                r = tv_cmp(j, x->v[i], y->v[i], op);
                break;
            }
        }
        tpl_value_leave(j);
        return r;
    }
    tpl_fail(j, ERR_INVALID, "'%s' not supported between instances of '%s' and '%s'", op,
             tv_type_name(a), tv_type_name(b));
}

const char *tv_type_name(struct tv v)
{
    switch (v.t) {
    case TV_MISSING:
    case TV_UNDEF: return "Undefined";
    case TV_NONE: return "NoneType";
    case TV_BOOL: return "bool";
    case TV_INT: return "int";
    case TV_FLOAT: return "float";
    case TV_STR: return "str";
    case TV_LIST:
        switch (v.u.l->view) {
        case TL_ITEMS: return "dict_items";
        case TL_KEYS: return "dict_keys";
        case TL_VALUES: return "dict_values";
        case TL_GENERATOR: return "generator";
        default: return v.u.l->tuple ? "tuple" : "list";
        }
    case TV_DICT: return "dict";
    case TV_NS: return "Namespace";
    case TV_LOOP: return "LoopContext";
    case TV_FUNC: return "function";
    case TV_METHOD: return "builtin_function_or_method";
    case TV_MACRO: return "Macro";
    }
    return "object";
}

/* ---- str() and repr() ------------------------------------------------------------------- */

void float_repr(double f, char out[32])
{
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0) {
        strcpy(out, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    /* The shortest %e that reads back as f: Python's repr picks the same digits (both round
     * correctly, and the shortest correctly rounded string is unique in length and closest). */
    char buf[40];
    for (int p = 0; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p, f);
        if (strtod(buf, NULL) == f)
            break;
    }
    const char *s = buf;
    char *o = out;
    if (*s == '-')
        *o++ = *s++;
    char digits[20];
    size_t nd = 0;
    for (; *s != 'e'; s++)
        if (*s != '.')
            digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int decpt = atoi(s + 1) + 1; /* value = 0.DIGITS * 10^decpt */
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -decpt; i++)
                *o++ = '0';
            memcpy(o, digits, nd);
            o += nd;
        } else if ((size_t)decpt >= nd) {
            memcpy(o, digits, nd);
            o += nd;
            for (size_t i = nd; i < (size_t)decpt; i++)
                *o++ = '0';
            *o++ = '.';
            *o++ = '0';
        } else {
            memcpy(o, digits, (size_t)decpt);
            o += decpt;
            *o++ = '.';
            memcpy(o, digits + decpt, nd - (size_t)decpt);
            o += nd - (size_t)decpt;
        }
        *o = '\0';
        return;
    }
    *o++ = digits[0];
    if (nd > 1) {
        *o++ = '.';
        memcpy(o, digits + 1, nd - 1);
        o += nd - 1;
    }
    int e = decpt - 1;
    sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
}

/* Python's str.isprintable() for one code point beyond ASCII. */
static bool py_printable(uint32_t cp)
{
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
    }
}

static void str_repr(struct sbuf *b, const struct tstr *s)
{
    char quote = '\'';
    if (memchr(s->s, '\'', s->len) && !memchr(s->s, '"', s->len))
        quote = '"';
    sb_putc(b, quote);
    size_t i = 0;
    while (i < s->len) {
        uint32_t cp = utf8_next(s->s, s->len, &i);
        char esc[16];
        if (cp == (uint32_t)quote || cp == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)cp);
        } else if (cp == '\t') {
            sb_puts(b, "\\t");
        } else if (cp == '\n') {
            sb_puts(b, "\\n");
        } else if (cp == '\r') {
            sb_puts(b, "\\r");
        } else if (cp < 0x20 || cp == 0x7F) {
            snprintf(esc, sizeof esc, "\\x%02x", cp);
            sb_puts(b, esc);
        } else if (cp < 0x7F || py_printable(cp)) {
            sb_put_cp(b, cp);
        } else {
            if (cp <= 0xFF)
                snprintf(esc, sizeof esc, "\\x%02x", cp);
            else if (cp <= 0xFFFF)
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            else
                snprintf(esc, sizeof esc, "\\U%08x", cp);
            sb_puts(b, esc);
        }
    }
    sb_putc(b, quote);
}

static void dict_repr(struct tpl_job *j, struct sbuf *b, const struct tdict *d)
{
    if (tpl_value_enter(j, d)) {
        sb_puts(b, "{...}"); /* Python's repr of a dict that contains itself */
        return;
    }
    sb_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            sb_puts(b, ", ");
        tv_repr_into(j, b, d->k[i]);
        sb_puts(b, ": ");
        tv_repr_into(j, b, d->v[i]);
    }
    sb_putc(b, '}');
    tpl_value_leave(j);
}

static void list_repr(struct tpl_job *j, struct sbuf *b, struct tv v)
{
    const struct tlist *l = v.u.l;
    if (tpl_value_enter(j, l)) {
        sb_puts(b, l->tuple ? "(...)" : "[...]");
        return;
    }
    if (l->view >= TL_ITEMS) {
        sb_puts(b, tv_type_name(v));
        sb_putc(b, '(');
    }
    sb_putc(b, l->tuple ? '(' : '[');
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            sb_puts(b, ", ");
        tv_repr_into(j, b, l->v[i]);
    }
    if (l->tuple && l->n == 1)
        sb_putc(b, ',');
    sb_putc(b, l->tuple ? ')' : ']');
    if (l->view >= TL_ITEMS)
        sb_putc(b, ')');
    tpl_value_leave(j);
}

void tv_str_into(struct tpl_job *j, struct sbuf *b, struct tv v)
{
    char num[32];
    switch (v.t) {
    case TV_MISSING:
    case TV_UNDEF: return;
    case TV_NONE: sb_puts(b, "None"); return;
    case TV_BOOL: sb_puts(b, v.u.b ? "True" : "False"); return;
    case TV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        sb_puts(b, num);
        return;
    case TV_FLOAT:
        float_repr(v.u.f, num);
        sb_puts(b, num);
        return;
    case TV_STR: sb_put(b, v.u.s->s, v.u.s->len); return;
    case TV_LIST:
        if (v.u.l->view == TL_GENERATOR) {
            sb_puts(b, "<generator object>");
            return;
        }
        list_repr(j, b, v);
        return;
    case TV_DICT: dict_repr(j, b, v.u.d); return;
    case TV_NS:
        sb_puts(b, "<Namespace ");
        dict_repr(j, b, v.u.d);
        sb_putc(b, '>');
        return;
    case TV_LOOP:
        snprintf(num, sizeof num, "%zu/%zu", v.u.loop->index0 + 1, v.u.loop->length);
        sb_puts(b, "<LoopContext ");
        sb_puts(b, num);
        sb_putc(b, '>');
        return;
    case TV_FUNC:
        sb_puts(b, "<function ");
        sb_puts(b, v.u.fn->name);
        sb_putc(b, '>');
        return;
    case TV_METHOD:
        sb_puts(b, "<built-in method ");
        sb_puts(b, v.u.m->name);
        sb_puts(b, " of ");
        sb_puts(b, tv_type_name(v.u.m->self));
        sb_puts(b, " object>");
        return;
    case TV_MACRO:
        sb_puts(b, "<Macro '");
        sb_puts(b, v.u.macro->name);
        sb_puts(b, "'>");
        return;
    }
}

void tv_repr_into(struct tpl_job *j, struct sbuf *b, struct tv v)
{
    if (v.t == TV_STR)
        str_repr(b, v.u.s);
    else if (v.t == TV_UNDEF || v.t == TV_MISSING)
        sb_puts(b, "Undefined");
    else
        tv_str_into(j, b, v);
}

struct tstr *tv_to_str(struct tpl_job *j, struct tv v)
{
    if (v.t == TV_STR)
        return v.u.s;
    if (v.t == TV_UNDEF || v.t == TV_MISSING)
        return &tstr_empty;
    struct sbuf b;
    sb_init(&b, j, 32);
    tv_str_into(j, &b, v);
    return sb_done(&b);
}
