/* json_dump: Python's json.dumps for template values, byte for byte, as transformers' `tojson`
 * filter calls it: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
 * sort_keys=False) unless the template passes other values. Floats use Python's repr, strings
 * escape only `"`, `\` and control characters (and everything beyond ASCII with
 * ensure_ascii=True, as \uXXXX with surrogate pairs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/tpl.h"

static void dump_string(struct sbuf *b, const char *s, size_t len, bool ensure_ascii)
{
    char esc[16];
    sb_putc(b, '"');
    size_t i = 0, run = 0; /* bytes [run, i) are copied as they are */
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        size_t start = i;
        uint32_t cp = c;
        if (c >= 0x80) {
            cp = utf8_next(s, len, &i);
            if (!ensure_ascii)
                continue;
        } else {
            i++;
        }
        switch (cp) {
        case '"': rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        case '\b': rep = "\\b"; break;
        case '\f': rep = "\\f"; break;
        default:
            if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
                if (cp > 0xFFFF) {
                    uint32_t v = cp - 0x10000;
                    snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                             0xDC00 + (v & 0x3FF));
                } else {
                    snprintf(esc, sizeof esc, "\\u%04x", cp);
                }
                rep = esc;
            }
        }
        if (rep) {
            sb_put(b, s + run, start - run);
            sb_puts(b, rep);
            run = i;
        }
    }
    sb_put(b, s + run, len - run);
    sb_putc(b, '"');
}

static void newline_indent(struct sbuf *b, const struct json_opts *o, int level)
{
    sb_putc(b, '\n');
    for (int i = 0; i < level; i++)
        sb_put(b, o->indent->s, o->indent->len);
}

static void dump_float(struct sbuf *b, double f)
{
    char num[32];
    if (isnan(f))
        sb_puts(b, "NaN");
    else if (isinf(f))
        sb_puts(b, f < 0 ? "-Infinity" : "Infinity");
    else {
        float_repr(f, num);
        sb_puts(b, num);
    }
}

/* A dict key as json.dumps writes it: str as is, numbers, booleans and None converted. */
static void dump_key(struct tpl_job *j, struct sbuf *b, struct tv k, const struct json_opts *o)
{
    char num[32];
    switch (k.t) {
    case TV_STR: dump_string(b, k.u.s->s, k.u.s->len, o->ensure_ascii); return;
    case TV_BOOL: sb_puts(b, k.u.b ? "\"true\"" : "\"false\""); return;
    case TV_NONE: sb_puts(b, "\"null\""); return;
    case TV_INT:
        snprintf(num, sizeof num, "\"%lld\"", (long long)k.u.i);
        sb_puts(b, num);
        return;
    case TV_FLOAT:
        sb_putc(b, '"');
        dump_float(b, k.u.f);
        sb_putc(b, '"');
        return;
    default:
        tpl_fail(j, ERR_INVALID, "keys must be str, int, float, bool or None, not %s",
                 tv_type_name(k));
    }
}

static int key_order(const void *pa, const void *pb)
{
    const struct tv *a = *(const struct tv *const *)pa, *b = *(const struct tv *const *)pb;
    if (a->t != TV_STR || b->t != TV_STR)
        return 0;
    size_t n = a->u.s->len < b->u.s->len ? a->u.s->len : b->u.s->len;
    int r = memcmp(a->u.s->s, b->u.s->s, n);
    if (r)
        return r;
    return a->u.s->len < b->u.s->len ? -1 : a->u.s->len > b->u.s->len;
}

static void dump(struct tpl_job *j, struct sbuf *b, struct tv v, const struct json_opts *o,
                 int level);

static void dump_dict(struct tpl_job *j, struct sbuf *b, const struct tdict *d,
                      const struct json_opts *o, int level)
{
    if (d->n == 0) {
        sb_puts(b, "{}");
        return;
    }
    /* order[i] points at the i-th key to write; values sit at the same index in d->v. */
    const struct tv **order = tpl_alloc(j, d->n * sizeof *order);
    for (size_t i = 0; i < d->n; i++)
        order[i] = &d->k[i];
    if (o->sort_keys) {
        for (size_t i = 0; i < d->n; i++)
            if (d->k[i].t != TV_STR)
                tpl_fail(j, ERR_INVALID, "sort_keys needs str keys, got %s", tv_type_name(d->k[i]));
        qsort(order, d->n, sizeof *order, key_order);
    }
    sb_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            sb_put(b, o->item_sep->s, o->item_sep->len);
        if (o->indent)
            newline_indent(b, o, level + 1);
        dump_key(j, b, *order[i], o);
        sb_put(b, o->key_sep->s, o->key_sep->len);
        dump(j, b, d->v[order[i] - d->k], o, level + 1);
    }
    if (o->indent)
        newline_indent(b, o, level);
    sb_putc(b, '}');
}

static void dump_value(struct tpl_job *j, struct sbuf *b, struct tv v, const struct json_opts *o,
                       int level);

/* Python's json.dumps fails on a container inside itself ("Circular reference detected"). */
static void dump(struct tpl_job *j, struct sbuf *b, struct tv v, const struct json_opts *o,
                 int level)
{
    bool container = v.t == TV_LIST || v.t == TV_DICT;
    if (container && tpl_value_enter(j, v.t == TV_LIST ? (const void *)v.u.l : v.u.d))
        tpl_fail(j, ERR_INVALID, "Circular reference detected");
    dump_value(j, b, v, o, level);
    if (container)
        tpl_value_leave(j);
}

static void dump_value(struct tpl_job *j, struct sbuf *b, struct tv v, const struct json_opts *o,
                       int level)
{
    char num[32];
    switch (v.t) {
    case TV_NONE: sb_puts(b, "null"); return;
    case TV_BOOL: sb_puts(b, v.u.b ? "true" : "false"); return;
    case TV_INT:
        snprintf(num, sizeof num, "%lld", (long long)v.u.i);
        sb_puts(b, num);
        return;
    case TV_FLOAT: dump_float(b, v.u.f); return;
    case TV_STR: dump_string(b, v.u.s->s, v.u.s->len, o->ensure_ascii); return;
    case TV_LIST:
        if (v.u.l->view != TL_PLAIN)
            break; /* dict views and generators are not serializable */
        if (v.u.l->n == 0) {
            sb_puts(b, "[]");
            return;
        }
        sb_putc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                sb_put(b, o->item_sep->s, o->item_sep->len);
            if (o->indent)
                newline_indent(b, o, level + 1);
            dump(j, b, v.u.l->v[i], o, level + 1);
        }
        if (o->indent)
            newline_indent(b, o, level);
        sb_putc(b, ']');
        return;
    case TV_DICT: dump_dict(j, b, v.u.d, o, level); return;
    default: break;
    }
    tpl_fail(j, ERR_INVALID, "Object of type %s is not JSON serializable", tv_type_name(v));
}

void tv_dump_json(struct tpl_job *j, struct sbuf *b, struct tv v, const struct json_opts *o)
{
    struct json_opts full = *o;
    if (!full.item_sep)
        full.item_sep = tstr_cstr(j, full.indent ? "," : ", ");
    if (!full.key_sep)
        full.key_sep = tstr_cstr(j, ": ");
    dump(j, b, v, &full, 0);
}
