/* grammar: a regex -> syntax tree (parse) -> Thompson NFA over bytes (build) -> DFA over byte
 * classes (subset construction, up front, bounded by GRAMMAR_MAX_STATES); the walking
 * functions. The vocabulary and the mask cache are gram_vocab.c's. See grammar.h. */
#include "generate/grammar.h"

#include <stdlib.h>
#include <string.h>

#include "generate/grammar_impl.h"

/* ---- syntax tree ---- */

enum node_kind { N_SET, N_CAT, N_ALT, N_REP, N_EMPTY };

struct node {
    enum node_kind kind;
    uint64_t set[4];   /* N_SET: member bytes (a class: ASCII ones only) */
    bool nonascii;     /* N_SET: every non-ASCII character too */
    struct node **kid; /* N_CAT, N_ALT: children; N_REP: kid[0] */
    size_t n_kid;
    int min, max; /* N_REP; max -1 = unbounded */
};

#define REP_MAX 1000 /* the largest {n,m} bound */

struct parser {
    const unsigned char *s;
    size_t n, i;
    struct err *e;
    int rc;
    int depth;
};

static void node_free(struct node *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n_kid; i++)
        node_free(x->kid[i]);
    free(x->kid);
    free(x);
}

static struct node *node_new(struct parser *p, enum node_kind k)
{
    struct node *x = calloc(1, sizeof *x);
    if (!x && !p->rc)
        p->rc = err_set(p->e, ERR_NOMEM, "out of memory");
    if (x)
        x->kind = k;
    return x;
}

static bool node_add(struct parser *p, struct node *x, struct node *kid)
{
    struct node **nk = realloc(x->kid, (x->n_kid + 1) * sizeof *nk);
    if (!nk) {
        node_free(kid);
        if (!p->rc)
            p->rc = err_set(p->e, ERR_NOMEM, "out of memory");
        return false;
    }
    x->kid = nk;
    x->kid[x->n_kid++] = kid;
    return true;
}

static void fail(struct parser *p, const char *what)
{
    if (!p->rc)
        p->rc = err_set(p->e, ERR_INVALID, "regex: %s at position %zu", what, p->i);
}

static void set_add(uint64_t set[4], int c)
{
    set[c >> 6] |= (uint64_t)1 << (c & 63);
}

static void set_range(uint64_t set[4], int a, int b)
{
    for (int c = a; c <= b; c++)
        set_add(set, c);
}

/* \d \w \s (and their negations, upper case) into set; false when c is none of them. */
static bool class_escape(int c, uint64_t set[4], bool *neg)
{
    uint64_t t[4] = {0, 0, 0, 0};
    switch (c | 0x20) {
    case 'd': set_range(t, '0', '9'); break;
    case 'w': set_range(t, '0', '9'); set_range(t, 'a', 'z'); set_range(t, 'A', 'Z');
        set_add(t, '_'); break;
    case 's': set_range(t, '\t', '\r'); set_add(t, ' '); break;
    default: return false;
    }
    *neg = c < 'a';
    set[0] = t[0];
    set[1] = t[1];
    return true;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* \xHH (k = 2) or \uHHHH (k = 4) after the letter: the code point, -1 when malformed. */
static long hex_escape(struct parser *p, int k)
{
    long v = 0;
    for (int j = 0; j < k; j++) {
        int h = p->i < p->n ? hexval(p->s[p->i]) : -1;
        if (h < 0)
            return -1;
        v = v * 16 + h;
        p->i++;
    }
    return v;
}

/* A single-character escape after '\' (p->i at the letter): the byte or code point, -1 if
 * it is not one. */
static long simple_escape(struct parser *p)
{
    static const char from[] = "nrtfv0", to[] = "\n\r\t\f\v";
    int c = p->s[p->i++];
    const char *f = strchr(from, c);
    if (f && c)
        return c == '0' ? 0 : to[f - from];
    if (c == 'x')
        return hex_escape(p, 2);
    if (c == 'u')
        return hex_escape(p, 4);
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
        return c; /* escaped punctuation */
    p->i--;
    return -1;
}

static void utf8_put(long cp, unsigned char *b, int *n)
{
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        *n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 63));
        *n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        b[2] = (unsigned char)(0x80 | (cp & 63));
        *n = 3;
    }
}

static struct node *literal_bytes(struct parser *p, const unsigned char *b, int n)
{
    if (n == 1) {
        struct node *x = node_new(p, N_SET);
        if (x)
            set_add(x->set, b[0]);
        return x;
    }
    struct node *cat = node_new(p, N_CAT);
    for (int j = 0; cat && j < n; j++) {
        struct node *x = node_new(p, N_SET);
        if (!x || !node_add(p, cat, x))
            break;
        set_add(x->set, b[j]);
    }
    return cat;
}

/* One member of a class (p->i past '['): a byte, or a class escape into set. Returns the byte,
 * -2 for an escape class merged into set, -1 on error. */
static int class_member(struct parser *p, uint64_t set[4])
{
    int c = p->s[p->i++];
    if (c >= 0x80) {
        fail(p, "a non-ASCII character in a character class is not supported");
        return -1;
    }
    if (c != '\\')
        return c;
    if (p->i >= p->n) {
        fail(p, "a trailing backslash");
        return -1;
    }
    uint64_t t[4];
    bool neg;
    if (class_escape(p->s[p->i], t, &neg)) {
        p->i++;
        if (neg) {
            fail(p, "a negated class escape (\\D \\W \\S) inside a class is not supported");
            return -1;
        }
        set[0] |= t[0];
        set[1] |= t[1];
        return -2;
    }
    long v = simple_escape(p);
    if (v < 0 || v >= 0x80) {
        fail(p, v < 0 ? "an unknown escape" : "a non-ASCII character in a class is not supported");
        return -1;
    }
    return (int)v;
}

static struct node *parse_class(struct parser *p)
{
    struct node *x = node_new(p, N_SET);
    if (!x)
        return NULL;
    bool neg = p->i < p->n && p->s[p->i] == '^';
    p->i += neg;
    bool first = true;
    while (p->i < p->n && (p->s[p->i] != ']' || first)) {
        first = false;
        int a = class_member(p, x->set);
        if (a == -1)
            break;
        if (a == -2)
            continue;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            int b = class_member(p, x->set);
            if (b < 0 || b < a) {
                fail(p, "a bad range in a class");
                break;
            }
            set_range(x->set, a, b);
        } else {
            set_add(x->set, a);
        }
    }
    if (!p->rc && p->i >= p->n)
        fail(p, "an unterminated class");
    p->i++;
    if (neg) {
        x->set[0] = ~x->set[0];
        x->set[1] = ~x->set[1];
        x->nonascii = true;
    }
    if (!p->rc && !x->set[0] && !x->set[1] && !x->nonascii)
        fail(p, "an empty class");
    return x;
}

static struct node *parse_alt(struct parser *p);

static struct node *parse_group(struct parser *p)
{
    if (p->i + 1 < p->n && p->s[p->i] == '?') {
        if (p->s[p->i + 1] != ':') {
            fail(p, "lookaround and named groups are not supported");
            return NULL;
        }
        p->i += 2;
    }
    if (++p->depth > 200) {
        fail(p, "groups nested too deeply");
        return NULL;
    }
    struct node *x = parse_alt(p);
    p->depth--;
    if (!p->rc && (p->i >= p->n || p->s[p->i] != ')'))
        fail(p, "a missing )");
    p->i++;
    return x;
}

static struct node *parse_escape(struct parser *p)
{
    if (p->i >= p->n) {
        fail(p, "a trailing backslash");
        return NULL;
    }
    uint64_t t[4];
    bool neg;
    if (class_escape(p->s[p->i], t, &neg)) {
        p->i++;
        struct node *x = node_new(p, N_SET);
        if (x) {
            x->set[0] = neg ? ~t[0] : t[0];
            x->set[1] = neg ? ~t[1] : t[1];
            x->nonascii = neg;
        }
        return x;
    }
    long v = simple_escape(p);
    if (v < 0 || (v >= 0xD800 && v < 0xE000)) {
        fail(p, "an unsupported escape (backreferences, \\b and the like)");
        return NULL;
    }
    unsigned char b[4];
    int n = 1;
    utf8_put(v, b, &n);
    return literal_bytes(p, b, n);
}

/* An atom: NULL with p->rc on error. */
static struct node *parse_atom(struct parser *p)
{
    int c = p->s[p->i++];
    switch (c) {
    case '(': return parse_group(p);
    case '[': return parse_class(p);
    case '\\': return parse_escape(p);
    case '.': {
        struct node *x = node_new(p, N_SET);
        if (x) {
            x->set[0] = ~((uint64_t)1 << '\n');
            x->set[1] = ~(uint64_t)0;
            x->nonascii = true;
        }
        return x;
    }
    case '*': case '+': case '?': case '{': case ')': case ']': case '}':
        p->i--;
        fail(p, "a quantifier or bracket with nothing before it");
        return NULL;
    case '^': case '$':
        p->i--;
        fail(p, "an anchor inside the pattern is not supported");
        return NULL;
    }
    /* a literal: the whole UTF-8 character */
    int n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (p->i - 1 + (size_t)n > p->n) {
        fail(p, "a truncated UTF-8 character");
        return NULL;
    }
    const unsigned char *b = p->s + p->i - 1;
    p->i += (size_t)n - 1;
    return literal_bytes(p, b, n);
}

static int parse_int(struct parser *p)
{
    int v = -1;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        v = (v < 0 ? 0 : v) * 10 + (p->s[p->i++] - '0');
        if (v > REP_MAX) {
            fail(p, "a repetition count over 1000");
            return -1;
        }
    }
    return v;
}

/* After '{': n}, n,} or n,m}. */
static bool parse_braces(struct parser *p, int *min, int *max)
{
    *min = parse_int(p);
    *max = *min;
    if (p->i < p->n && p->s[p->i] == ',') {
        p->i++;
        *max = parse_int(p);
    }
    if (*min < 0 || p->i >= p->n || p->s[p->i] != '}' || (*max >= 0 && *max < *min)) {
        fail(p, "a malformed {n,m}");
        return false;
    }
    p->i++;
    return true;
}

static struct node *parse_repeat(struct parser *p)
{
    struct node *x = parse_atom(p);
    while (x && !p->rc && p->i < p->n && strchr("*+?{", p->s[p->i])) {
        int c = p->s[p->i++], min = 0, max = -1;
        if (c == '+')
            min = 1;
        else if (c == '?')
            max = 1;
        else if (c == '{' && !parse_braces(p, &min, &max))
            break;
        if (p->i < p->n && p->s[p->i] == '?')
            p->i++; /* lazy: the same language */
        struct node *r = node_new(p, N_REP);
        if (!r || !node_add(p, r, x)) {
            x = NULL;
            node_free(r);
            break;
        }
        r->min = min;
        r->max = max;
        x = r;
    }
    if (p->rc) {
        node_free(x);
        return NULL;
    }
    return x;
}

static struct node *parse_cat(struct parser *p)
{
    struct node *cat = node_new(p, N_CAT);
    while (cat && !p->rc && p->i < p->n && p->s[p->i] != '|' && p->s[p->i] != ')') {
        struct node *x = parse_repeat(p);
        if (!x || !node_add(p, cat, x))
            break;
    }
    return cat;
}

static struct node *parse_alt(struct parser *p)
{
    struct node *alt = node_new(p, N_ALT);
    while (alt && !p->rc) {
        struct node *x = parse_cat(p);
        if (!x || !node_add(p, alt, x))
            break;
        if (p->i >= p->n || p->s[p->i] != '|')
            break;
        p->i++;
    }
    return alt;
}

/* ---- NFA: states with one byte-set edge, or epsilon edges ---- */

struct nfa {
    struct nfa_state *st;
    size_t n, cap;
    struct nfa_eps *eps; /* epsilon edges (from, to) */
    size_t n_eps, cap_eps;
    struct err *e;
    int rc;
};

static int nfa_add(struct nfa *a)
{
    if (a->rc)
        return -1;
    if (a->n >= GRAMMAR_MAX_NFA) {
        a->rc = err_set(a->e, ERR_INVALID, "the grammar is too complex (over %d NFA states)",
                        GRAMMAR_MAX_NFA);
        return -1;
    }
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 256;
        struct nfa_state *ns = realloc(a->st, nc * sizeof *ns);
        if (!ns) {
            a->rc = err_set(a->e, ERR_NOMEM, "out of memory");
            return -1;
        }
        a->st = ns;
        a->cap = nc;
    }
    memset(&a->st[a->n], 0, sizeof a->st[a->n]);
    a->st[a->n].next = -1;
    return (int)a->n++;
}

static void nfa_eps(struct nfa *a, int from, int to)
{
    if (a->rc || from < 0 || to < 0)
        return;
    if (a->n_eps == a->cap_eps) {
        size_t nc = a->cap_eps ? a->cap_eps * 2 : 256;
        struct nfa_eps *ne = realloc(a->eps, nc * sizeof *ne);
        if (!ne) {
            a->rc = err_set(a->e, ERR_NOMEM, "out of memory");
            return;
        }
        a->eps = ne;
        a->cap_eps = nc;
    }
    a->eps[a->n_eps++] = (struct nfa_eps){from, to};
}

/* A byte edge from -> to over the bytes of set (bit b of set[b >> 6]). */
static void nfa_edge(struct nfa *a, int from, const uint64_t set[4], int to)
{
    if (a->rc || from < 0)
        return;
    memcpy(a->st[from].set, set, sizeof a->st[from].set);
    a->st[from].next = to;
}

/* The multi-byte UTF-8 sequences, from `from` to `to`. */
static void nfa_utf8(struct nfa *a, int from, int to)
{
    static const struct {
        unsigned char lo[4], hi[4];
        int n;
    } seqs[] = {
        {{0xC2, 0x80}, {0xDF, 0xBF}, 2},
        {{0xE0, 0xA0, 0x80}, {0xE0, 0xBF, 0xBF}, 3},
        {{0xE1, 0x80, 0x80}, {0xEC, 0xBF, 0xBF}, 3},
        {{0xED, 0x80, 0x80}, {0xED, 0x9F, 0xBF}, 3},
        {{0xEE, 0x80, 0x80}, {0xEF, 0xBF, 0xBF}, 3},
        {{0xF0, 0x90, 0x80, 0x80}, {0xF0, 0xBF, 0xBF, 0xBF}, 4},
        {{0xF1, 0x80, 0x80, 0x80}, {0xF3, 0xBF, 0xBF, 0xBF}, 4},
        {{0xF4, 0x80, 0x80, 0x80}, {0xF4, 0x8F, 0xBF, 0xBF}, 4},
    };
    for (size_t k = 0; k < sizeof seqs / sizeof seqs[0]; k++) {
        int cur = nfa_add(a);
        nfa_eps(a, from, cur);
        for (int j = 0; j < seqs[k].n; j++) {
            uint64_t set[4] = {0};
            for (int b = seqs[k].lo[j]; b <= seqs[k].hi[j]; b++)
                set[b >> 6] |= (uint64_t)1 << (b & 63);
            int nx = j + 1 == seqs[k].n ? to : nfa_add(a);
            nfa_edge(a, cur, set, nx);
            cur = nx;
        }
    }
}

/* Builds x between two fresh states; returns the end state (start given). */
static int build(struct nfa *a, const struct node *x, int start)
{
    int end = nfa_add(a);
    if (a->rc)
        return -1;
    switch (x->kind) {
    case N_EMPTY: nfa_eps(a, start, end); break;
    case N_SET: {
        uint64_t set[4] = {x->set[0], x->set[1], x->set[2], x->set[3]};
        int s = nfa_add(a);
        nfa_eps(a, start, s);
        nfa_edge(a, s, set, end);
        if (x->nonascii)
            nfa_utf8(a, start, end);
        break;
    }
    case N_CAT: {
        int cur = start;
        for (size_t i = 0; i < x->n_kid && !a->rc; i++)
            cur = build(a, x->kid[i], cur);
        nfa_eps(a, cur, end);
        break;
    }
    case N_ALT:
        for (size_t i = 0; i < x->n_kid && !a->rc; i++)
            nfa_eps(a, build(a, x->kid[i], start), end);
        break;
    case N_REP: {
        int cur = start;
        for (int i = 0; i < x->min && !a->rc; i++)
            cur = build(a, x->kid[0], cur);
        if (x->max < 0) { /* a loop: cur -> s -body-> cur */
            int s = nfa_add(a);
            nfa_eps(a, cur, s);
            nfa_eps(a, build(a, x->kid[0], s), cur);
        } else {
            for (int i = x->min; i < x->max && !a->rc; i++) {
                nfa_eps(a, cur, end);
                cur = build(a, x->kid[0], cur);
            }
        }
        nfa_eps(a, cur, end);
        break;
    }
    }
    return a->rc ? -1 : end;
}

/* ---- DFA: subset construction over byte classes ---- */

/* Byte classes: bytes between two boundaries of any edge set behave alike. */
static int byte_classes(const struct nfa *a, uint8_t cls[256])
{
    bool boundary[256] = {false};
    for (size_t i = 0; i < a->n; i++) {
        if (a->st[i].next < 0)
            continue;
        const uint64_t *s = a->st[i].set;
        for (int b = 1; b < 256; b++) {
            bool in = (s[b >> 6] >> (b & 63)) & 1, prev = (s[(b - 1) >> 6] >> ((b - 1) & 63)) & 1;
            if (in != prev)
                boundary[b] = true;
        }
    }
    int c = 0;
    for (int b = 0; b < 256; b++) {
        if (b > 0 && boundary[b])
            c++;
        cls[b] = (uint8_t)c;
    }
    return c + 1;
}

static int cmp_i32(const void *x, const void *y)
{
    int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;
    return (a > b) - (a < b);
}

/* The epsilon closure of the states in set[0..n) (marked in `in`), kept to the important
 * states (a byte edge, or the final state), sorted. */
struct closure {
    const size_t *adj_off; /* CSR of the epsilon edges */
    const int32_t *adj;
    int32_t *stack;
    int32_t *seen; /* the states marked, to unmark them after */
    uint8_t *mark;
    int32_t fin;
    size_t work; /* states visited so far (bounded by GRAMMAR_MAX_WORK) */
};

static size_t closure_of(struct closure *c, const struct nfa *a, const int32_t *seed, size_t n_seed,
                         int32_t *out)
{
    size_t top = 0, n = 0, n_seen = 0;
    for (size_t i = 0; i < n_seed; i++)
        if (!c->mark[seed[i]]) {
            c->mark[seed[i]] = 1;
            c->seen[n_seen++] = seed[i];
            c->stack[top++] = seed[i];
        }
    while (top > 0) {
        int32_t s = c->stack[--top];
        if (a->st[s].next >= 0 || s == c->fin)
            out[n++] = s;
        for (size_t k = c->adj_off[s]; k < c->adj_off[s + 1]; k++)
            if (!c->mark[c->adj[k]]) {
                c->mark[c->adj[k]] = 1;
                c->seen[n_seen++] = c->adj[k];
                c->stack[top++] = c->adj[k];
            }
    }
    for (size_t i = 0; i < n_seen; i++)
        c->mark[c->seen[i]] = 0;
    c->work += n_seen;
    qsort(out, n, sizeof *out, cmp_i32);
    return n;
}

/* Hash set of DFA states (sorted NFA sets). */
struct dstate {
    int32_t *set;
    size_t n;
    uint64_t hash;
};

static uint64_t hash_set(const int32_t *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint64_t)(uint32_t)s[i];
        h *= 1099511628211ull;
    }
    return h ^ n;
}

struct builder {
    struct dstate *ds;
    size_t n_ds, cap_ds;
    int32_t *table; /* open addressing: index into ds, -1 empty */
    size_t table_cap;
};

static int32_t find_or_add(struct builder *b, int32_t *set, size_t n, bool *added, struct err *e)
{
    uint64_t h = hash_set(set, n);
    size_t mask = b->table_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        int32_t d = b->table[i];
        if (d < 0)
            break;
        if (b->ds[d].hash == h && b->ds[d].n == n && memcmp(b->ds[d].set, set, n * sizeof *set) == 0) {
            *added = false;
            return d;
        }
    }
    if (b->n_ds >= GRAMMAR_MAX_STATES)
        return err_set(e, ERR_INVALID, "the grammar is too complex (over %d automaton states)",
                       GRAMMAR_MAX_STATES);
    int32_t *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(copy, set, n * sizeof *set);
    b->ds[b->n_ds] = (struct dstate){copy, n, h};
    for (size_t i = h & mask;; i = (i + 1) & mask)
        if (b->table[i] < 0) {
            b->table[i] = (int32_t)b->n_ds;
            break;
        }
    *added = true;
    return (int32_t)b->n_ds++;
}

static void builder_free(struct builder *b)
{
    for (size_t i = 0; i < b->n_ds; i++)
        free(b->ds[i].set);
    free(b->ds);
    free(b->table);
}

/* The epsilon edges as adjacency lists: the targets of state i are adj[off[i] .. off[i+1]). */
static int eps_adjacency(const struct nfa *a, size_t **off_out, int32_t **adj_out, struct err *e)
{
    size_t N = a->n;
    size_t *off = calloc(N + 1, sizeof *off), *fill = calloc(N, sizeof *fill);
    int32_t *adj = malloc((a->n_eps ? a->n_eps : 1) * sizeof *adj);
    if (!off || !fill || !adj) {
        free(off);
        free(fill);
        free(adj);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < a->n_eps; k++)
        off[a->eps[k].from + 1]++;
    for (size_t i = 0; i < N; i++)
        off[i + 1] += off[i];
    for (size_t k = 0; k < a->n_eps; k++)
        adj[off[a->eps[k].from] + fill[a->eps[k].from]++] = a->eps[k].to;
    free(fill);
    *off_out = off;
    *adj_out = adj;
    return 0;
}

/* The subset construction's scratch, NFA-sized. */
struct subset {
    struct closure c;
    int32_t *seed, *cur;
    int rep[256]; /* a byte of each class */
};

/* Row d of g->trans: for each byte class, the DFA state its bytes lead to (new ones added to
 * b), -1 when none. */
static int subset_row(struct grammar *g, const struct nfa *a, struct builder *b,
                      struct subset *w, size_t d, struct err *e)
{
    for (int k = 0; k < g->n_classes; k++) {
        int by = w->rep[k];
        size_t ns = 0;
        const struct dstate *D = &b->ds[d];
        for (size_t i = 0; i < D->n; i++) {
            const struct nfa_state *s = &a->st[D->set[i]];
            if (s->next >= 0 && ((s->set[by >> 6] >> (by & 63)) & 1))
                w->seed[ns++] = s->next;
        }
        int32_t to = -1;
        bool added;
        if (w->c.work > GRAMMAR_MAX_WORK)
            return err_set(e, ERR_INVALID, "the grammar is too complex (its automaton takes too "
                                           "long to build)");
        if (ns > 0) {
            size_t n = closure_of(&w->c, a, w->seed, ns, w->cur);
            to = find_or_add(b, w->cur, n, &added, e);
            if (to < 0)
                return to;
        }
        g->trans[d * (size_t)g->n_classes + (size_t)k] = to;
    }
    return 0;
}

/* g->accept (holds the final NFA state) and g->complete (accepts, no way on). */
static int final_states(struct grammar *g, const struct builder *b, int32_t fin, struct err *e)
{
    g->n_states = b->n_ds;
    g->accept = calloc(b->n_ds, 1);
    g->complete = calloc(b->n_ds, 1);
    if (!g->accept || !g->complete)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t d = 0; d < b->n_ds; d++) {
        const struct dstate *D = &b->ds[d];
        for (size_t i = 0; i < D->n; i++)
            if (D->set[i] == fin)
                g->accept[d] = 1;
        bool out = false;
        for (int k = 0; k < g->n_classes; k++)
            out |= g->trans[d * (size_t)g->n_classes + (size_t)k] >= 0;
        g->complete[d] = g->accept[d] && !out;
    }
    return 0;
}

/* Fills g->trans, g->accept and g->complete from the NFA (start 0, final fin). */
static int determinize(struct grammar *g, const struct nfa *a, int32_t fin, struct err *e)
{
    size_t N = a->n, tcap = 1024;
    struct subset w = {.c = {.fin = fin}};
    struct builder b = {.cap_ds = GRAMMAR_MAX_STATES, .table_cap = 1u << 16}; /* > 2 x states */
    size_t *off = NULL;
    int32_t *adj = NULL;
    int rc = eps_adjacency(a, &off, &adj, e);
    w.c.adj_off = off;
    w.c.adj = adj;
    w.c.stack = malloc(N * sizeof *w.c.stack);
    w.c.seen = malloc(N * sizeof *w.c.seen);
    w.c.mark = calloc(N, 1);
    w.seed = malloc(N * sizeof *w.seed);
    w.cur = malloc(N * sizeof *w.cur);
    b.ds = malloc(b.cap_ds * sizeof *b.ds);
    b.table = malloc(b.table_cap * sizeof *b.table);
    g->trans = malloc(tcap * (size_t)g->n_classes * sizeof *g->trans);
    if (!rc && (!w.c.stack || !w.c.seen || !w.c.mark || !w.seed || !w.cur || !b.ds || !b.table ||
                !g->trans))
        rc = err_set(e, ERR_NOMEM, "out of memory");
    if (!rc) {
        memset(b.table, 0xff, b.table_cap * sizeof *b.table);
        for (int by = 255; by >= 0; by--)
            w.rep[g->cls[by]] = by;
        int32_t start = 0;
        bool added;
        size_t n = closure_of(&w.c, a, &start, 1, w.cur);
        int32_t first = find_or_add(&b, w.cur, n, &added, e);
        rc = first < 0 ? first : 0;
    }
    for (size_t d = 0; !rc && d < b.n_ds; d++) {
        if (d + 1 > tcap) {
            tcap *= 2;
            int32_t *nt = realloc(g->trans, tcap * (size_t)g->n_classes * sizeof *nt);
            if (!nt) {
                rc = err_set(e, ERR_NOMEM, "out of memory");
                break;
            }
            g->trans = nt;
        }
        rc = subset_row(g, a, &b, &w, d, e);
    }
    if (!rc)
        rc = final_states(g, &b, fin, e);
    builder_free(&b);
    free(off);
    free(adj);
    free(w.c.stack);
    free(w.c.seen);
    free(w.c.mark);
    free(w.seed);
    free(w.cur);
    return rc;
}

int grammar_compile(const char *re, size_t len, struct grammar **out, struct err *e)
{
    *out = NULL;
    if (len > GRAMMAR_MAX_REGEX)
        return err_set(e, ERR_INVALID, "the grammar is too complex (a regex of %zu bytes, over %zu)",
                       len, GRAMMAR_MAX_REGEX);
    struct parser p = {(const unsigned char *)re, len, 0, e, 0, 0};
    if (p.n > 0 && p.s[0] == '^')
        p.i++;
    if (p.n > p.i && p.s[p.n - 1] == '$' && (p.n < 2 || p.s[p.n - 2] != '\\'))
        p.n--;
    struct node *root = parse_alt(&p);
    if (!p.rc && p.i < p.n)
        fail(&p, "an unmatched )");
    if (p.rc) {
        node_free(root);
        return p.rc;
    }
    struct nfa a = {.e = e};
    int start = nfa_add(&a);
    int fin = build(&a, root, start);
    node_free(root);
    struct grammar *g = calloc(1, sizeof *g);
    int rc = a.rc;
    if (!rc && !g)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    if (!rc) {
        g->n_classes = byte_classes(&a, g->cls);
        rc = determinize(g, &a, fin, e);
    }
    free(a.st);
    free(a.eps);
    if (rc == 0)
        rc = grammar_init_cache(g, e);
    if (rc) {
        grammar_free(g);
        return rc;
    }
    g->refs = 1;
    *out = g;
    return 0;
}

struct grammar *grammar_ref(struct grammar *g)
{
    if (g)
        __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
    return g;
}

void grammar_unref(struct grammar *g)
{
    if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
        grammar_free(g);
}

size_t grammar_n_states(const struct grammar *g)
{
    return g->n_states;
}

int32_t grammar_step(const struct grammar *g, int32_t state, const char *bytes, size_t len)
{
    for (size_t i = 0; i < len && state >= 0; i++)
        state = g->trans[(size_t)state * (size_t)g->n_classes + g->cls[(unsigned char)bytes[i]]];
    return state;
}

bool grammar_accepting(const struct grammar *g, int32_t state)
{
    return state >= 0 && g->accept[state];
}

bool grammar_complete(const struct grammar *g, int32_t state)
{
    return state >= 0 && g->complete[state];
}

bool grammar_matches(const struct grammar *g, const char *s, size_t len)
{
    return grammar_accepting(g, grammar_step(g, 0, s, len));
}
