/* methods: the Python methods templates call on values (message.content.strip(),
 * text.split('</think>'), tools.items(), loop.cycle(...)), with Python's semantics: Unicode
 * whitespace for strip() and split(), code point indexes for find(), simple case mappings
 * (utf8proc) for lower() and upper(). Mutating methods (list.append, dict.update, ...) are
 * refused as transformers' ImmutableSandboxedEnvironment refuses them. */
#include <string.h>
#include <utf8proc.h>

#include "chat/tpl.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers shared with filters ---------------------------------------------------------- */

static bool in_chars(uint32_t cp, const struct tstr *chars)
{
    if (!chars)
        return py_isspace(cp);
    for (size_t i = 0; i < chars->len;)
        if (utf8_next(chars->s, chars->len, &i) == cp)
            return true;
    return false;
}

struct tstr *py_strip(struct tpl_job *j, const struct tstr *s, const struct tstr *chars, bool left,
                      bool right)
{
    size_t start = 0, end = s->len;
    while (left && start < end) {
        size_t next = start;
        if (!in_chars(utf8_next(s->s, s->len, &next), chars))
            break;
        start = next;
    }
    while (right && end > start) {
        size_t prev = utf8_prev(s->s, end), i = prev;
        if (!in_chars(utf8_next(s->s, s->len, &i), chars))
            break;
        end = prev;
    }
    if (start == 0 && end == s->len)
        return (struct tstr *)s;
    return tstr_new(j, s->s + start, end - start);
}

struct tstr *py_replace(struct tpl_job *j, const struct tstr *s, const struct tstr *old,
                        const struct tstr *new_s, int64_t count)
{
    struct sbuf b;
    sb_init(&b, j, s->len);
    size_t i = 0;
    if (old->len == 0) {
        /* "" matches before every character and at the end */
        for (;;) {
            if (count != 0) {
                sb_put(&b, new_s->s, new_s->len);
                count--;
            }
            if (i >= s->len)
                break;
            size_t start = i;
            utf8_next(s->s, s->len, &i);
            sb_put(&b, s->s + start, i - start);
        }
        return sb_done(&b);
    }
    while (count != 0) {
        const char *hit = memmem(s->s + i, s->len - i, old->s, old->len);
        if (!hit)
            break;
        size_t at = (size_t)(hit - s->s);
        sb_put(&b, s->s + i, at - i);
        sb_put(&b, new_s->s, new_s->len);
        i = at + old->len;
        count--;
    }
    sb_put(&b, s->s + i, s->len - i);
    return sb_done(&b);
}

static bool is_cased(utf8proc_int32_t cp)
{
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL ||
           cat == UTF8PROC_CATEGORY_LT;
}

/* Unconditional full case mappings (Unicode SpecialCasing.txt) that Python applies and the
 * simple mappings of utf8proc lack: one code point becomes several. */
static const struct {
    uint32_t cp;
    const char *upper, *title;
} special_case[] = {
    {0x00DF, "SS", "Ss"},
    {0x0149, "\u02BCN", "\u02BCN"},
    {0x01F0, "J\u030C", "J\u030C"},
    {0x0390, "\u0399\u0308\u0301", "\u0399\u0308\u0301"},
    {0x03B0, "\u03A5\u0308\u0301", "\u03A5\u0308\u0301"},
    {0x0587, "\u0535\u0552", "\u0535\u0582"},
    {0x1E96, "H\u0331", "H\u0331"},
    {0x1E97, "T\u0308", "T\u0308"},
    {0x1E98, "W\u030A", "W\u030A"},
    {0x1E99, "Y\u030A", "Y\u030A"},
    {0x1E9A, "A\u02BE", "A\u02BE"},
    {0xFB00, "FF", "Ff"},
    {0xFB01, "FI", "Fi"},
    {0xFB02, "FL", "Fl"},
    {0xFB03, "FFI", "Ffi"},
    {0xFB04, "FFL", "Ffl"},
    {0xFB05, "ST", "St"},
    {0xFB06, "ST", "St"},
    {0xFB13, "\u0544\u0546", "\u0544\u0576"},
    {0xFB14, "\u0544\u0535", "\u0544\u0565"},
    {0xFB15, "\u0544\u053B", "\u0544\u056B"},
    {0xFB16, "\u054E\u0546", "\u054E\u0576"},
    {0xFB17, "\u0544\u053D", "\u0544\u056D"},
};

/* Appends cp mapped to upper (to_title false) or title case. */
static void put_upper(struct sbuf *b, utf8proc_int32_t cp, bool to_title)
{
    for (size_t i = 0; i < N_OF(special_case); i++) {
        if (special_case[i].cp == (uint32_t)cp) {
            sb_puts(b, to_title ? special_case[i].title : special_case[i].upper);
            return;
        }
    }
    sb_put_cp(b, (uint32_t)(to_title ? utf8proc_totitle(cp) : utf8proc_toupper(cp)));
}

static void put_lower(struct sbuf *b, utf8proc_int32_t cp)
{
    if (cp == 0x0130) /* İ -> i + combining dot above */
        sb_puts(b, "i\u0307");
    else
        sb_put_cp(b, (uint32_t)utf8proc_tolower(cp));
}

/* mode 0 lower, 1 upper, 2 capitalize, 3 title (Python's str.title) */
struct tstr *py_case(struct tpl_job *j, const struct tstr *s, int mode)
{
    struct sbuf b;
    sb_init(&b, j, s->len);
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < s->len;) {
        utf8proc_int32_t cp = (utf8proc_int32_t)utf8_next(s->s, s->len, &i);
        switch (mode) {
        case 0: put_lower(&b, cp); break;
        case 1: put_upper(&b, cp, false); break;
        case 2:
            if (first)
                put_upper(&b, cp, true);
            else
                put_lower(&b, cp);
            break;
        default:
            if (prev_cased)
                put_lower(&b, cp);
            else
                put_upper(&b, cp, true);
            prev_cased = is_cased(cp);
        }
        first = false;
    }
    return sb_done(&b);
}

/* ---- str methods ---------------------------------------------------------------------- */

static struct tstr *opt_str(struct rctx *c, struct tv v, const char *what)
{
    if (v.t == TV_MISSING || v.t == TV_NONE)
        return NULL;
    if (v.t != TV_STR)
        tpl_fail(&c->job, ERR_INVALID, "%s arg must be None or str", what);
    return v.u.s;
}

static int64_t opt_int(struct rctx *c, struct tv v, int64_t dflt, const char *what)
{
    if (v.t == TV_MISSING)
        return dflt;
    if (v.t != TV_INT && v.t != TV_BOOL)
        tpl_fail(&c->job, ERR_INVALID, "%s must be an integer, not %s", what, tv_type_name(v));
    return v.t == TV_INT ? v.u.i : v.u.b;
}

static struct tstr *need_str(struct rctx *c, struct tv v, const char *what)
{
    if (v.t != TV_STR)
        tpl_fail(&c->job, ERR_INVALID, "%s must be str, not %s", what, tv_type_name(v));
    return v.u.s;
}

static struct tv strip_method(struct rctx *c, struct tv self, const struct targs *a, bool left,
                              bool right, const char *what)
{
    static const char *const names[] = {"chars"};
    struct tv p[1];
    tpl_bind(c, what, a, names, 1, p);
    return tv_str(py_strip(&c->job, self.u.s, opt_str(c, p[0], what), left, right));
}

static struct tv m_strip(struct rctx *c, struct tv self, const struct targs *a)
{
    return strip_method(c, self, a, true, true, "strip");
}

static struct tv m_lstrip(struct rctx *c, struct tv self, const struct targs *a)
{
    return strip_method(c, self, a, true, false, "lstrip");
}

static struct tv m_rstrip(struct rctx *c, struct tv self, const struct targs *a)
{
    return strip_method(c, self, a, false, true, "rstrip");
}

static struct tv piece(struct rctx *c, const struct tstr *s, size_t from, size_t to)
{
    return tv_str(tstr_new(&c->job, s->s + from, to - from));
}

static bool space_at(const struct tstr *s, size_t i, size_t *next)
{
    *next = i;
    return py_isspace(utf8_next(s->s, s->len, next));
}

/* str.split(sep=None, maxsplit=-1) */
static struct tv m_split(struct rctx *c, struct tv self, const struct targs *a)
{
    static const char *const names[] = {"sep", "maxsplit"};
    struct tv p[2];
    tpl_bind(c, "split", a, names, 2, p);
    const struct tstr *s = self.u.s, *sep = opt_str(c, p[0], "split");
    int64_t maxsplit = opt_int(c, p[1], -1, "maxsplit");
    struct tlist *l = tlist_new(&c->job, 0);
    size_t i = 0, next, n_splits = 0;
    if (!sep) {
        for (;;) {
            while (i < s->len && space_at(s, i, &next))
                i = next;
            if (i >= s->len)
                break;
            if (maxsplit >= 0 && n_splits == (size_t)maxsplit) {
                tlist_push(&c->job, l, piece(c, s, i, s->len));
                break;
            }
            size_t k = i;
            while (k < s->len && !space_at(s, k, &next))
                k = next;
            tlist_push(&c->job, l, piece(c, s, i, k));
            n_splits++;
            i = k;
        }
        return tv_list(l);
    }
    if (sep->len == 0)
        tpl_fail(&c->job, ERR_INVALID, "empty separator");
    while (maxsplit < 0 || n_splits < (size_t)maxsplit) {
        const char *hit = memmem(s->s + i, s->len - i, sep->s, sep->len);
        if (!hit)
            break;
        size_t at = (size_t)(hit - s->s);
        tlist_push(&c->job, l, piece(c, s, i, at));
        i = at + sep->len;
        n_splits++;
    }
    tlist_push(&c->job, l, piece(c, s, i, s->len));
    return tv_list(l);
}

/* str.rsplit(sep=None, maxsplit=-1) */
static struct tv m_rsplit(struct rctx *c, struct tv self, const struct targs *a)
{
    static const char *const names[] = {"sep", "maxsplit"};
    struct tv p[2];
    tpl_bind(c, "rsplit", a, names, 2, p);
    const struct tstr *s = self.u.s, *sep = opt_str(c, p[0], "rsplit");
    int64_t maxsplit = opt_int(c, p[1], -1, "maxsplit");
    struct tlist *rev = tlist_new(&c->job, 0);
    size_t end = s->len, next, n_splits = 0;
    if (sep && sep->len == 0)
        tpl_fail(&c->job, ERR_INVALID, "empty separator");
    for (;;) {
        if (!sep) {
            while (end > 0 && space_at(s, utf8_prev(s->s, end), &next))
                end = utf8_prev(s->s, end);
            if (end == 0)
                break;
        }
        if (maxsplit >= 0 && n_splits == (size_t)maxsplit) {
            tlist_push(&c->job, rev, piece(c, s, 0, end));
            break;
        }
        size_t start = end;
        if (!sep) {
            while (start > 0 && !space_at(s, utf8_prev(s->s, start), &next))
                start = utf8_prev(s->s, start);
            tlist_push(&c->job, rev, piece(c, s, start, end));
            end = start;
        } else {
            size_t k = end >= sep->len ? end - sep->len + 1 : 0;
            bool found = false;
            while (k-- > 0) {
                if (memcmp(s->s + k, sep->s, sep->len) == 0) {
                    found = true;
                    break;
                }
            }
            if (!found) {
                tlist_push(&c->job, rev, piece(c, s, 0, end));
                break;
            }
            tlist_push(&c->job, rev, piece(c, s, k + sep->len, end));
            end = k;
        }
        n_splits++;
    }
    struct tlist *l = tlist_new(&c->job, rev->n);
    for (size_t i = rev->n; i-- > 0;)
        l->v[l->n++] = rev->v[i];
    return tv_list(l);
}

static struct tv m_splitlines(struct rctx *c, struct tv self, const struct targs *a)
{
    static const char *const names[] = {"keepends"};
    struct tv p[1];
    tpl_bind(c, "splitlines", a, names, 1, p);
    return tv_list(py_splitlines(&c->job, self.u.s, tv_truthy(p[0])));
}

/* startswith / endswith with a str or a tuple of str */
static struct tv affix(struct rctx *c, struct tv self, const struct targs *a, bool end,
                       const char *what)
{
    static const char *const names[] = {"prefix"};
    struct tv p[1];
    tpl_bind(c, what, a, names, 1, p);
    const struct tstr *s = self.u.s;
    const struct tv *cands = &p[0];
    size_t n = 1;
    if (p[0].t == TV_LIST && p[0].u.l->tuple) {
        cands = p[0].u.l->v;
        n = p[0].u.l->n;
    }
    for (size_t i = 0; i < n; i++) {
        if (cands[i].t != TV_STR)
            tpl_fail(&c->job, ERR_INVALID, "%s first arg must be str or a tuple of str, not %s",
                     what, tv_type_name(cands[i]));
        const struct tstr *x = cands[i].u.s;
        if (x->len <= s->len && !memcmp(s->s + (end ? s->len - x->len : 0), x->s, x->len))
            return tv_bool(true);
    }
    return tv_bool(false);
}

static struct tv m_startswith(struct rctx *c, struct tv self, const struct targs *a)
{
    return affix(c, self, a, false, "startswith");
}

static struct tv m_endswith(struct rctx *c, struct tv self, const struct targs *a)
{
    return affix(c, self, a, true, "endswith");
}

#define CASE_METHOD(fname, mode)                                                                   \
    static struct tv fname(struct rctx *c, struct tv self, const struct targs *a)                  \
    {                                                                                              \
        tpl_bind(c, #fname + 2, a, NULL, 0, NULL);                                                 \
        return tv_str(py_case(&c->job, self.u.s, mode));                                           \
    }

CASE_METHOD(m_lower, 0)
CASE_METHOD(m_upper, 1)
CASE_METHOD(m_capitalize, 2)
CASE_METHOD(m_title, 3)

static struct tv m_replace(struct rctx *c, struct tv self, const struct targs *a)
{
    static const char *const names[] = {"old", "new", "count"};
    struct tv p[3];
    tpl_bind(c, "replace", a, names, 3, p);
    return tv_str(py_replace(&c->job, self.u.s, need_str(c, p[0], "replace() old"),
                             need_str(c, p[1], "replace() new"), opt_int(c, p[2], -1, "count")));
}

/* The byte offset of sub's first (or last) occurrence in s, or -1: linear (memmem), the last
 * one through reversed copies. */
static long long find_bytes(struct rctx *c, const struct tstr *s, const struct tstr *sub,
                            bool last)
{
    if (!last) {
        const char *hit = memmem(s->s, s->len, sub->s, sub->len);
        return hit ? (long long)(hit - s->s) : -1;
    }
    char *rs = tpl_alloc(&c->job, s->len + 1), *rsub = tpl_alloc(&c->job, sub->len + 1);
    for (size_t i = 0; i < s->len; i++)
        rs[i] = s->s[s->len - 1 - i];
    for (size_t i = 0; i < sub->len; i++)
        rsub[i] = sub->s[sub->len - 1 - i];
    const char *hit = memmem(rs, s->len, rsub, sub->len);
    return hit ? (long long)(s->len - (size_t)(hit - rs) - sub->len) : -1;
}

/* find / rfind / index / count: code point positions as Python reports them */
static struct tv search(struct rctx *c, struct tv self, const struct targs *a, int mode,
                        const char *what)
{
    static const char *const names[] = {"sub"};
    struct tv p[1];
    tpl_bind(c, what, a, names, 1, p);
    const struct tstr *s = self.u.s, *sub = need_str(c, p[0], what);
    if (mode == 3) { /* count: non-overlapping */
        if (sub->len == 0)
            return tv_int((int64_t)tstr_cp_len(s) + 1);
        int64_t n = 0;
        for (const char *hit = s->s;
             (hit = memmem(hit, s->len - (size_t)(hit - s->s), sub->s, sub->len)) != NULL;
             hit += sub->len)
            n++;
        return tv_int(n);
    }
    long long at = -1;
    if (sub->len <= s->len) {
        at = sub->len ? find_bytes(c, s, sub, mode == 1) : mode == 1 ? (long long)s->len : 0;
        if (at >= 0)
            at = (long long)utf8_count(s->s, (size_t)at);
    }
    if (at < 0 && mode == 2)
        tpl_fail(&c->job, ERR_INVALID, "substring not found");
    return tv_int(at);
}

static struct tv m_find(struct rctx *c, struct tv self, const struct targs *a)
{
    return search(c, self, a, 0, "find");
}

static struct tv m_rfind(struct rctx *c, struct tv self, const struct targs *a)
{
    return search(c, self, a, 1, "rfind");
}

static struct tv m_index(struct rctx *c, struct tv self, const struct targs *a)
{
    return search(c, self, a, 2, "index");
}

static struct tv m_count(struct rctx *c, struct tv self, const struct targs *a)
{
    return search(c, self, a, 3, "count");
}

static struct tv m_join(struct rctx *c, struct tv self, const struct targs *a)
{
    static const char *const names[] = {"iterable"};
    struct tv p[1];
    tpl_bind(c, "join", a, names, 1, p);
    const struct tlist *items = tpl_iterate(c, p[0]);
    struct sbuf b;
    sb_init(&b, &c->job, 64);
    for (size_t i = 0; i < items->n; i++) {
        if (items->v[i].t != TV_STR)
            tpl_fail(&c->job, ERR_INVALID, "sequence item %zu: expected str instance, %s found", i,
                     tv_type_name(items->v[i]));
        if (i)
            sb_put(&b, self.u.s->s, self.u.s->len);
        sb_put(&b, items->v[i].u.s->s, items->v[i].u.s->len);
    }
    return tv_str(sb_done(&b));
}

static struct tv remove_affix(struct rctx *c, struct tv self, const struct targs *a, bool end)
{
    static const char *const names[] = {"affix"};
    struct tv p[1];
    tpl_bind(c, end ? "removesuffix" : "removeprefix", a, names, 1, p);
    const struct tstr *s = self.u.s, *x = need_str(c, p[0], "argument");
    if (x->len == 0 || x->len > s->len || memcmp(s->s + (end ? s->len - x->len : 0), x->s, x->len))
        return self;
    return piece(c, s, end ? 0 : x->len, end ? s->len - x->len : s->len);
}

static struct tv m_removeprefix(struct rctx *c, struct tv self, const struct targs *a)
{
    return remove_affix(c, self, a, false);
}

static struct tv m_removesuffix(struct rctx *c, struct tv self, const struct targs *a)
{
    return remove_affix(c, self, a, true);
}

/* isdigit / isalpha / isalnum / isspace / isupper / islower */
static bool char_class(uint32_t cp, int cls)
{
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
    bool letter = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
    bool digit = cat == UTF8PROC_CATEGORY_ND;
    switch (cls) {
    case 0: return digit;
    case 1: return letter;
    case 2: return letter || digit || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
    default: return py_isspace(cp);
    }
}

static struct tv is_class(struct rctx *c, struct tv self, const struct targs *a, int cls)
{
    tpl_bind(c, "is*", a, NULL, 0, NULL);
    const struct tstr *s = self.u.s;
    if (cls >= 4) {
        bool cased = false;
        for (size_t i = 0; i < s->len;) {
            utf8proc_int32_t cp = (utf8proc_int32_t)utf8_next(s->s, s->len, &i);
            if (cls == 4 ? utf8proc_islower(cp) : utf8proc_isupper(cp))
                return tv_bool(false);
            cased = cased || utf8proc_isupper(cp) || utf8proc_islower(cp);
        }
        return tv_bool(cased);
    }
    if (s->len == 0)
        return tv_bool(false);
    for (size_t i = 0; i < s->len;)
        if (!char_class(utf8_next(s->s, s->len, &i), cls))
            return tv_bool(false);
    return tv_bool(true);
}

#define CLASS_METHOD(fname, cls)                                                                   \
    static struct tv fname(struct rctx *c, struct tv self, const struct targs *a)                  \
    {                                                                                              \
        return is_class(c, self, a, cls);                                                          \
    }

CLASS_METHOD(m_isdigit, 0)
CLASS_METHOD(m_isalpha, 1)
CLASS_METHOD(m_isalnum, 2)
CLASS_METHOD(m_isspace, 3)
CLASS_METHOD(m_isupper, 4)
CLASS_METHOD(m_islower, 5)

static struct tv m_format(struct rctx *c, struct tv self, const struct targs *a)
{
    (void)self;
    (void)a;
    tpl_fail(&c->job, ERR_INVALID, "str.format is not supported in chat templates");
}

static const struct tpl_builtin str_methods[] = {
    {"strip", m_strip},
    {"lstrip", m_lstrip},
    {"rstrip", m_rstrip},
    {"split", m_split},
    {"rsplit", m_rsplit},
    {"splitlines", m_splitlines},
    {"startswith", m_startswith},
    {"endswith", m_endswith},
    {"lower", m_lower},
    {"upper", m_upper},
    {"capitalize", m_capitalize},
    {"title", m_title},
    {"replace", m_replace},
    {"find", m_find},
    {"rfind", m_rfind},
    {"index", m_index},
    {"count", m_count},
    {"join", m_join},
    {"removeprefix", m_removeprefix},
    {"removesuffix", m_removesuffix},
    {"isdigit", m_isdigit},
    {"isalpha", m_isalpha},
    {"isalnum", m_isalnum},
    {"isspace", m_isspace},
    {"isupper", m_isupper},
    {"islower", m_islower},
    {"format", m_format},
};

/* ---- dict, list and loop methods ------------------------------------------------------- */

static struct tv d_items(struct rctx *c, struct tv self, const struct targs *a)
{
    tpl_bind(c, "items", a, NULL, 0, NULL);
    const struct tdict *d = self.u.d;
    struct tlist *l = tlist_new(&c->job, d->n);
    l->view = TL_ITEMS;
    for (size_t i = 0; i < d->n; i++) {
        struct tlist *pair = tlist_new(&c->job, 2);
        pair->tuple = true;
        pair->v[0] = d->k[i];
        pair->v[1] = d->v[i];
        pair->n = 2;
        l->v[l->n++] = tv_list(pair);
    }
    return tv_list(l);
}

static struct tv d_keys_or_values(struct rctx *c, struct tv self, const struct targs *a,
                                  bool values)
{
    tpl_bind(c, values ? "values" : "keys", a, NULL, 0, NULL);
    const struct tdict *d = self.u.d;
    struct tlist *l = tlist_new(&c->job, d->n);
    l->view = values ? TL_VALUES : TL_KEYS;
    for (size_t i = 0; i < d->n; i++)
        l->v[l->n++] = values ? d->v[i] : d->k[i];
    return tv_list(l);
}

static struct tv d_keys(struct rctx *c, struct tv self, const struct targs *a)
{
    return d_keys_or_values(c, self, a, false);
}

static struct tv d_values(struct rctx *c, struct tv self, const struct targs *a)
{
    return d_keys_or_values(c, self, a, true);
}

static struct tv d_get(struct rctx *c, struct tv self, const struct targs *a)
{
    static const char *const names[] = {"key", "default"};
    struct tv p[2];
    tpl_bind(c, "get", a, names, 2, p);
    if (p[0].t == TV_MISSING)
        tpl_fail(&c->job, ERR_INVALID, "get expected at least 1 argument, got 0");
    const struct tv *v = tdict_get(&c->job, self.u.d, p[0]);
    return v ? *v : p[1].t == TV_MISSING ? tv_none() : p[1];
}

static struct tv l_index_or_count(struct rctx *c, struct tv self, const struct targs *a, bool count)
{
    static const char *const names[] = {"value"};
    struct tv p[1];
    tpl_bind(c, count ? "count" : "index", a, names, 1, p);
    const struct tlist *l = self.u.l;
    int64_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (!tv_eq(&c->job, l->v[i], p[0]))
            continue;
        if (!count)
            return tv_int((int64_t)i);
        n++;
    }
    if (!count)
        tpl_fail(&c->job, ERR_INVALID, "value is not in list");
    return tv_int(n);
}

static struct tv l_index(struct rctx *c, struct tv self, const struct targs *a)
{
    return l_index_or_count(c, self, a, false);
}

static struct tv l_count(struct rctx *c, struct tv self, const struct targs *a)
{
    return l_index_or_count(c, self, a, true);
}

static struct tv loop_cycle(struct rctx *c, struct tv self, const struct targs *a)
{
    if (a->n == 0)
        tpl_fail(&c->job, ERR_INVALID, "no items for cycling given");
    return a->pos[self.u.loop->index0 % a->n];
}

static const struct tpl_builtin dict_methods[] = {
    {"items", d_items},
    {"keys", d_keys},
    {"values", d_values},
    {"get", d_get},
};

static const struct tpl_builtin list_methods[] = {
    {"index", l_index},
    {"count", l_count},
};

static const struct tpl_builtin loop_methods[] = {
    {"cycle", loop_cycle},
};

static const char *const unsafe_list[] = {"append", "clear",  "extend",  "insert",
                                          "pop",    "remove", "reverse", "sort"};
static const char *const unsafe_dict[] = {"clear", "pop", "popitem", "setdefault", "update"};

static const struct tpl_builtin *find(const struct tpl_builtin *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name))
            return &rows[i];
    return NULL;
}

static bool listed(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

const struct tpl_builtin *tpl_find_method(struct tv self, const char *name, bool *unsafe)
{
    *unsafe = name[0] == '_' && name[1] == '_';
    if (*unsafe)
        return NULL;
    switch (self.t) {
    case TV_STR: return find(str_methods, N_OF(str_methods), name);
    case TV_DICT:
        *unsafe = listed(unsafe_dict, N_OF(unsafe_dict), name);
        return find(dict_methods, N_OF(dict_methods), name);
    case TV_LIST:
        if (self.u.l->view != TL_PLAIN)
            return NULL; /* views and generators have neither index() nor append() */
        *unsafe = !self.u.l->tuple && listed(unsafe_list, N_OF(unsafe_list), name);
        return find(list_methods, N_OF(list_methods), name);
    case TV_LOOP: return find(loop_methods, N_OF(loop_methods), name);
    default: return NULL;
    }
}
