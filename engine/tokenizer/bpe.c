/* bpe: the BPE model of HF tokenizers (GPT-2, RoBERTa, Llama, Qwen). A piece is
 * split into chars (vocab ids, byte-fallback <0xXX> tokens or the unknown token),
 * then merged pair by pair, always applying the lowest-ranked merge first and, at
 * equal rank, the leftmost one: a min-heap of candidate merges keyed (rank, pos),
 * as HF word.rs does, with stale entries skipped when popped. Dropout is refused:
 * we never sample. The state is read-only after parse; a call keeps its symbols
 * and heap on the stack for short pieces. */
#include <stdlib.h>
#include <string.h>

#include "tok_model.h"
#include "utf8.h"

struct merge_slot {
    uint64_t key; /* left id << 32 | right id; EMPTY_KEY when free */
    uint32_t rank;
    int32_t new_id;
};
#define EMPTY_KEY UINT64_MAX

/* Ids of single chars below this code point are cached when no prefix or suffix
 * changes the lookup string (it covers the whole byte-level alphabet). */
#define CP_CACHE 512

struct bpe {
    struct vocab vocab;
    struct merge_slot *merges;
    size_t merge_mask; /* slots - 1, slots a power of two */
    int32_t unk_id;    /* -1 without unk_token */
    bool fuse_unk, byte_fallback, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix; NULL = none */
    size_t prefix_len, suffix_len;
    int32_t byte_ids[256];    /* id of "<0xXX>" or -1 */
    int32_t cp_ids[CP_CACHE]; /* id of the char alone or -1, when use_cp_cache */
    bool use_cp_cache;
};

/* murmur3 fmix64: every key bit reaches the low bits the mask keeps. */
static size_t merge_hash(uint64_t key, size_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & mask;
}

static const struct merge_slot *merge_find(const struct bpe *b, int32_t left, int32_t right)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t i = merge_hash(key, b->merge_mask);; i = (i + 1) & b->merge_mask) {
        const struct merge_slot *s = &b->merges[i];
        if (s->key == key)
            return s;
        if (s->key == EMPTY_KEY)
            return NULL;
    }
}

/* A later merge of the same pair replaces the earlier one, as HF's map collect does. */
static void merge_put(struct bpe *b, int32_t left, int32_t right, uint32_t rank, int32_t new_id)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (size_t i = merge_hash(key, b->merge_mask);; i = (i + 1) & b->merge_mask) {
        struct merge_slot *s = &b->merges[i];
        if (s->key == key || s->key == EMPTY_KEY) {
            *s = (struct merge_slot){.key = key, .rank = rank, .new_id = new_id};
            return;
        }
    }
}

static void bpe_free(void *state)
{
    struct bpe *b = state;
    if (!b)
        return;
    vocab_fini(&b->vocab);
    free(b->merges);
    free(b->prefix);
    free(b->suffix);
    free(b);
}

/* ---- parse ---- */

/* Splits one merge entry: "a b" (exactly one space, HF's legacy form) or ["a", "b"]. */
static int merge_sides(const json_t *m, size_t i, const char **a, size_t *a_len, const char **bs,
                       size_t *b_len, struct err *e)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        size_t len = json_string_length(m);
        const char *sp = memchr(s, ' ', len);
        if (sp && !memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s))) {
            *a = s;
            *a_len = (size_t)(sp - s);
            *bs = sp + 1;
            *b_len = len - *a_len - 1;
            return 0;
        }
        return err_set(e, ERR_FORMAT,
                       "model BPE: field 'merges': entry %zu '%.40s' must be two "
                       "tokens separated by one space",
                       i, s);
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *a_len = json_string_length(json_array_get(m, 0));
        *bs = json_string_value(json_array_get(m, 1));
        *b_len = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return err_set(e, ERR_FORMAT,
                   "model BPE: field 'merges': entry %zu must be a string \"a b\" "
                   "or an array [\"a\", \"b\"]",
                   i);
}

static int parse_merges(struct bpe *b, const json_t *j, struct err *e)
{
    const json_t *merges = json_object_get(j, "merges");
    if (!merges || json_is_null(merges))
        return err_set(e, ERR_FORMAT, "model BPE: field 'merges' is missing");
    if (!json_is_array(merges))
        return err_set(e, ERR_FORMAT, "model BPE: field 'merges' must be an array");
    size_t n = json_array_size(merges), slots = 64;
    if (n >= UINT32_MAX)
        return err_set(e, ERR_FORMAT, "model BPE: field 'merges' has too many entries");
    while (slots < 2 * n)
        slots *= 2;
    b->merges = malloc(slots * sizeof *b->merges);
    if (!b->merges)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < slots; i++)
        b->merges[i].key = EMPTY_KEY;
    b->merge_mask = slots - 1;
    char stack_buf[256];
    char *buf = stack_buf;
    size_t buf_cap = sizeof stack_buf;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *l = NULL, *r = NULL;
        size_t l_len = 0, r_len = 0;
        if ((rc = merge_sides(json_array_get(merges, i), i, &l, &l_len, &r, &r_len, e)) != 0)
            break;
        int32_t l_id = vocab_find(&b->vocab, l, l_len), r_id = vocab_find(&b->vocab, r, r_len);
        if (l_id < 0 || r_id < 0) {
            rc = err_set(e, ERR_FORMAT,
                         "model BPE: field 'merges': entry %zu: token '%.40s' is "
                         "not in the vocab",
                         i, l_id < 0 ? l : r);
            break;
        }
        /* The merged token drops the right side's continuing prefix (by length, as HF). */
        if (r_len < b->prefix_len) {
            rc = err_set(e, ERR_FORMAT,
                         "model BPE: field 'merges': entry %zu: '%.40s' is "
                         "shorter than continuing_subword_prefix",
                         i, r);
            break;
        }
        size_t m_len = l_len + r_len - b->prefix_len;
        if (m_len > buf_cap) {
            char *nb = malloc(m_len);
            if (!nb) {
                rc = err_set(e, ERR_NOMEM, "out of memory");
                break;
            }
            if (buf != stack_buf)
                free(buf);
            buf = nb;
            buf_cap = m_len;
        }
        memcpy(buf, l, l_len);
        memcpy(buf + l_len, r + b->prefix_len, r_len - b->prefix_len);
        int32_t m_id = vocab_find(&b->vocab, buf, m_len);
        if (m_id < 0) {
            rc = err_set(e, ERR_FORMAT,
                         "model BPE: field 'merges': entry %zu: merged token "
                         "'%.*s' is not in the vocab",
                         i, (int)(m_len > 40 ? 40 : m_len), buf);
            break;
        }
        merge_put(b, l_id, r_id, (uint32_t)i, m_id);
    }
    if (buf != stack_buf)
        free(buf);
    return rc;
}

static int parse_options(struct bpe *b, const json_t *j, const char **unk, struct err *e)
{
    const char *where = "model BPE";
    const char *prefix = NULL, *suffix = NULL;
    double dropout = 0.0;
    int rc = tokj_double(j, "dropout", false, &dropout, where, e);
    if (rc == 0 && dropout != 0.0)
        rc = err_set(e, ERR_FORMAT,
                     "%s: field 'dropout' must be null or 0 (BPE dropout samples "
                     "tokenizations and is not supported)",
                     where);
    if (rc == 0)
        rc = tokj_str(j, "unk_token", false, unk, where, e);
    if (rc == 0)
        rc = tokj_str(j, "continuing_subword_prefix", false, &prefix, where, e);
    if (rc == 0)
        rc = tokj_str(j, "end_of_word_suffix", false, &suffix, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "fuse_unk", false, &b->fuse_unk, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "byte_fallback", false, &b->byte_fallback, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "ignore_merges", false, &b->ignore_merges, where, e);
    if (rc != 0)
        return rc;
    if ((prefix && !(b->prefix = strdup(prefix))) || (suffix && !(b->suffix = strdup(suffix))))
        return err_set(e, ERR_NOMEM, "out of memory");
    b->prefix_len = prefix ? strlen(prefix) : 0;
    b->suffix_len = suffix ? strlen(suffix) : 0;
    return 0;
}

static void fill_caches(struct bpe *b)
{
    char name[8];
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 0; i < 256; i++) {
        memcpy(name, "<0x", 3);
        name[3] = hex[i >> 4];
        name[4] = hex[i & 15];
        name[5] = '>';
        b->byte_ids[i] = vocab_find(&b->vocab, name, 6);
    }
    b->use_cp_cache = b->prefix_len == 0 && b->suffix_len == 0;
    for (uint32_t cp = 0; cp < CP_CACHE; cp++) {
        size_t n = utf8_encode(cp, name);
        b->cp_ids[cp] = vocab_find(&b->vocab, name, n);
    }
}

static int bpe_parse(const json_t *j, void **state, struct err *e)
{
    struct bpe *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(e, ERR_NOMEM, "out of memory");
    vocab_init(&b->vocab);
    b->unk_id = -1;
    const char *unk = NULL;
    int rc = parse_options(b, j, &unk, e);
    if (rc == 0)
        rc = tok_model_vocab_parse(j, "vocab", &b->vocab, "model BPE", e);
    /* HF only fails when an unknown char needs it; we refuse such a file at load. */
    if (rc == 0 && unk && (b->unk_id = vocab_find(&b->vocab, unk, strlen(unk))) < 0)
        rc = err_set(e, ERR_FORMAT, "model BPE: field 'unk_token': '%.40s' is not in the vocab",
                     unk);
    if (rc == 0)
        rc = parse_merges(b, j, e);
    if (rc != 0) {
        bpe_free(b);
        return rc;
    }
    fill_caches(b);
    *state = b;
    return 0;
}

/* ---- tokenize ---- */

struct symbol {
    int32_t c;          /* token id */
    int32_t prev, next; /* neighbours in the word, -1 at the ends */
    uint32_t len;       /* bytes of the piece; 0 once merged into its left neighbour */
};

struct candidate {
    uint32_t rank, pos;
    int32_t new_id;
};

struct word {
    struct symbol *sym;
    size_t n;
    struct candidate *heap;
    size_t n_heap;
};

static void word_add(struct word *w, int32_t c, uint32_t len)
{
    int32_t n = (int32_t)w->n;
    if (n > 0)
        w->sym[n - 1].next = n;
    w->sym[w->n++] = (struct symbol){.c = c, .prev = n - 1, .next = -1, .len = len};
}

static bool cand_less(const struct candidate *a, const struct candidate *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct word *w, uint32_t rank, uint32_t pos, int32_t new_id)
{
    size_t i = w->n_heap++;
    struct candidate c = {.rank = rank, .pos = pos, .new_id = new_id};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[parent]))
            break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
}

static struct candidate heap_pop(struct word *w)
{
    struct candidate top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && cand_less(&w->heap[child + 1], &w->heap[child]))
            child++;
        if (!cand_less(&w->heap[child], &last))
            break;
        w->heap[i] = w->heap[child];
        i = child;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

static void push_pair(const struct bpe *b, struct word *w, size_t pos)
{
    int32_t next = w->sym[pos].next;
    if (next < 0)
        return;
    const struct merge_slot *m = merge_find(b, w->sym[pos].c, w->sym[next].c);
    if (m)
        heap_push(w, m->rank, (uint32_t)pos, m->new_id);
}

/* HF Word::merge_all without dropout. */
static void merge_all(const struct bpe *b, struct word *w)
{
    w->n_heap = 0;
    for (size_t i = 0; i + 1 < w->n; i++)
        push_pair(b, w, i);
    while (w->n_heap > 0) {
        struct candidate top = heap_pop(w);
        struct symbol *cur = &w->sym[top.pos];
        if (cur->len == 0 || cur->next < 0)
            continue;
        struct symbol right = w->sym[cur->next];
        const struct merge_slot *m = merge_find(b, cur->c, right.c);
        if (!m || m->new_id != top.new_id)
            continue; /* stale: one side was merged since this entry was pushed */
        w->sym[cur->next].len = 0;
        cur->c = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        if (right.next >= 0)
            w->sym[right.next].prev = (int32_t)top.pos;
        if (cur->prev >= 0)
            push_pair(b, w, (size_t)cur->prev);
        push_pair(b, w, top.pos);
    }
}

/* Id of the lookup string of one char: prefix unless first, suffix when last. */
static int32_t char_id(const struct bpe *b, const char *ch, size_t ch_len, bool first, bool last,
                       char *buf, size_t *buf_len)
{
    if (b->use_cp_cache && (unsigned char)ch[0] < 0xC8) { /* code points below 0x200 */
        size_t n;
        uint32_t cp = utf8_decode(ch, &n);
        if (cp < CP_CACHE && n == ch_len) {
            *buf_len = 0;
            return b->cp_ids[cp];
        }
    }
    size_t n = 0;
    if (!first && b->prefix) {
        memcpy(buf, b->prefix, b->prefix_len);
        n = b->prefix_len;
    }
    memcpy(buf + n, ch, ch_len);
    n += ch_len;
    if (last && b->suffix) {
        memcpy(buf + n, b->suffix, b->suffix_len);
        n += b->suffix_len;
    }
    *buf_len = n;
    return vocab_find(&b->vocab, buf, n);
}

/* HF byte fallback: every byte of the lookup string as <0xXX>, or nothing. */
static bool add_bytes(const struct bpe *b, struct word *w, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (b->byte_ids[(unsigned char)s[i]] < 0)
            return false;
    for (size_t i = 0; i < len; i++)
        word_add(w, b->byte_ids[(unsigned char)s[i]], 1);
    return true;
}

/* HF BPE::merge_word up to the merges: chars to symbols. */
static void split_chars(const struct bpe *b, struct word *w, const char *s, size_t len, char *buf)
{
    bool unk = false;
    uint32_t unk_len = 0;
    w->n = 0;
    for (size_t i = 0; i < len;) {
        size_t ch_len = utf8_len((unsigned char)s[i]), buf_len;
        bool last = i + ch_len >= len;
        int32_t id = char_id(b, s + i, ch_len, i == 0, last, buf, &buf_len);
        if (id >= 0) {
            if (unk) {
                word_add(w, b->unk_id, unk_len);
                unk = false;
            }
            word_add(w, id, (uint32_t)ch_len);
        } else if (b->byte_fallback &&
                   add_bytes(b, w, buf_len ? buf : s + i, buf_len ? buf_len : ch_len)) {
            /* a pending unknown stays pending across byte tokens, as in HF */
        } else if (b->unk_id >= 0) {
            if (unk && !b->fuse_unk)
                word_add(w, b->unk_id, unk_len);
            if (unk && b->fuse_unk) {
                unk_len += (uint32_t)ch_len;
            } else {
                unk = true;
                unk_len = (uint32_t)ch_len;
            }
        }
        i += ch_len;
    }
    if (unk)
        word_add(w, b->unk_id, unk_len);
}

static int bpe_tokenize(const void *state, const char *s, size_t len, struct token_vec *out,
                        struct err *e)
{
    const struct bpe *b = state;
    if (len == 0)
        return 0;
    if (b->ignore_merges) {
        int32_t id = vocab_find(&b->vocab, s, len);
        if (id >= 0)
            return token_push(out, id, 0, (uint32_t)len) == 0
                       ? 0
                       : err_set(e, ERR_NOMEM, "out of memory");
    }
    /* Worst case every byte of every lookup string is a byte-fallback symbol. */
    size_t max_sym = len * (1 + b->prefix_len + b->suffix_len);
    size_t buf_need = b->prefix_len + 4 + b->suffix_len;
    struct symbol stack_sym[128];
    struct candidate stack_heap[3 * 128];
    char stack_buf[64];
    struct word w = {.sym = stack_sym, .heap = stack_heap};
    char *buf = stack_buf;
    int rc = 0;
    if (max_sym > 128) {
        w.sym = malloc(max_sym * sizeof *w.sym);
        w.heap = malloc(3 * max_sym * sizeof *w.heap);
    }
    if (buf_need > sizeof stack_buf)
        buf = malloc(buf_need);
    if (!w.sym || !w.heap || !buf) {
        rc = err_set(e, ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    split_chars(b, &w, s, len, buf);
    merge_all(b, &w);
    uint32_t pos = 0;
    for (size_t i = 0; i < w.n && rc == 0; i++) {
        if (w.sym[i].len == 0)
            continue;
        uint32_t end = pos + w.sym[i].len;
        /* Only byte fallback over a prefix or suffix can overrun the piece. */
        uint32_t cs = pos < len ? pos : (uint32_t)len, ce = end < len ? end : (uint32_t)len;
        if (token_push(out, w.sym[i].c, cs, ce) != 0)
            rc = err_set(e, ERR_NOMEM, "out of memory");
        pos = end;
    }
cleanup:
    if (w.sym != stack_sym)
        free(w.sym);
    if (w.heap != stack_heap)
        free(w.heap);
    if (buf != stack_buf)
        free(buf);
    return rc;
}

static const char *bpe_id_to_token(const void *state, int32_t id)
{
    return vocab_token(&((const struct bpe *)state)->vocab, id);
}

static int32_t bpe_token_to_id(const void *state, const char *s, size_t len)
{
    return vocab_find(&((const struct bpe *)state)->vocab, s, len);
}

static size_t bpe_vocab_size(const void *state)
{
    return ((const struct bpe *)state)->vocab.n_entries;
}

const struct tok_model_ops tok_model_bpe_ops = {
    .type = "BPE",
    .parse = bpe_parse,
    .tokenize = bpe_tokenize,
    .id_to_token = bpe_id_to_token,
    .token_to_id = bpe_token_to_id,
    .vocab_size = bpe_vocab_size,
    .free = bpe_free,
};
