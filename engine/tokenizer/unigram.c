/* unigram: the Unigram model of HF tokenizers (SentencePiece: T5, XLM-R, ALBERT).
 * The best segmentation is a Viterbi pass over byte positions (HF encode_optimized):
 * each position extends every vocab piece that starts there, found by a byte trie;
 * a char no single piece covers gets the unknown token at min_score - 10.
 * Consecutive unknowns are fused into one token, and a segment not in the vocab
 * falls back to <0xXX> byte tokens when byte_fallback is set.
 * inferd's own optional field "inferd_unmatched" (ids; written only by the slow Marian
 * converter, whose vocabulary holds target-side pieces the source model lacks) names pieces
 * that keep their id <-> token mapping but are never matched in the text nor counted in
 * min_score; and "inferd_float_scores" (true) sums path scores in single precision as
 * sentencepiece's own EncodeOptimized does (HF sums doubles), which decides ties such as
 * 15+16 vs 16+15 repeated characters the way the slow sentencepiece tokenizer does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_model.h"
#include "utf8.h"

#define UNK_PENALTY 10.0 /* sentencepiece kUnkPenalty */
#define EMPTY_KEY UINT64_MAX

/* Trie over the bytes of the pieces. Edges other than the root's live in one hash
 * table keyed by (node << 8 | byte); node ids are dense, the root is 0. */
struct edge_slot {
    uint64_t key;
    uint32_t child;
};

struct unigram {
    char *pool;          /* all pieces, NUL-terminated, back to back */
    uint32_t *piece_off; /* piece id -> offset into pool */
    double *scores;      /* piece id -> score */
    size_t n_pieces;
    int32_t *leaf_id; /* trie node -> piece id ending there, or -1 (last duplicate wins) */
    size_t n_nodes;
    uint32_t root_child[256]; /* 0 = none */
    struct edge_slot *edges;
    size_t edge_mask;
    double min_score;
    int32_t unk_id; /* -1: none */
    bool byte_fallback;
    int32_t byte_ids[256];
    bool *unmatched; /* piece id -> never matched; NULL: every piece matches */
    bool float_scores; /* sum path scores as floats (sentencepiece) */
};

/* murmur3 fmix64: every key bit reaches the low bits the mask keeps. */
static size_t edge_hash(uint64_t key, size_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & mask;
}

static uint32_t trie_child(const struct unigram *u, uint32_t node, unsigned char byte)
{
    if (node == 0)
        return u->root_child[byte];
    uint64_t key = (uint64_t)node << 8 | byte;
    for (size_t i = edge_hash(key, u->edge_mask);; i = (i + 1) & u->edge_mask) {
        if (u->edges[i].key == key)
            return u->edges[i].child;
        if (u->edges[i].key == EMPTY_KEY)
            return 0;
    }
}

/* Adds the edge node --byte--> a new node (the edge is known to be absent). */
static uint32_t trie_add_child(struct unigram *u, uint32_t node, unsigned char byte)
{
    uint32_t child = (uint32_t)u->n_nodes++;
    u->leaf_id[child] = -1;
    if (node == 0) {
        u->root_child[byte] = child;
        return child;
    }
    uint64_t key = (uint64_t)node << 8 | byte;
    size_t i = edge_hash(key, u->edge_mask);
    while (u->edges[i].key != EMPTY_KEY)
        i = (i + 1) & u->edge_mask;
    u->edges[i] = (struct edge_slot){.key = key, .child = child};
    return child;
}

/* Exact lookup of s[0..len) in the trie: the piece id or -1. */
static int32_t trie_find(const struct unigram *u, const char *s, size_t len)
{
    uint32_t node = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!(node = trie_child(u, node, (unsigned char)s[i])))
            return -1;
    return u->leaf_id[node];
}

static void unigram_free(void *state)
{
    struct unigram *u = state;
    if (!u)
        return;
    free(u->pool);
    free(u->piece_off);
    free(u->scores);
    free(u->leaf_id);
    free(u->edges);
    free(u->unmatched);
    free(u);
}

/* ---- parse ---- */

/* Checks the [piece, score] pairs and sizes the pool. */
static int check_vocab(const json_t *vocab, size_t *pool_size, struct err *e)
{
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(vocab); i++) {
        const json_t *p = json_array_get(vocab, i);
        if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_string(json_array_get(p, 0)) ||
            !json_is_number(json_array_get(p, 1)))
            return err_set(e, ERR_FORMAT,
                           "model Unigram: field 'vocab': entry %zu must be "
                           "[piece, score]",
                           i);
        total += json_string_length(json_array_get(p, 0)) + 1;
    }
    if (total >= UINT32_MAX || json_array_size(vocab) >= INT32_MAX)
        return err_set(e, ERR_FORMAT, "model Unigram: field 'vocab' is too large");
    *pool_size = total;
    return 0;
}

static int build(struct unigram *u, const json_t *vocab, size_t pool_size, struct err *e)
{
    size_t n = json_array_size(vocab), edge_slots = 64;
    while (edge_slots < 2 * pool_size)
        edge_slots *= 2;
    u->n_pieces = n;
    u->pool = malloc(pool_size ? pool_size : 1);
    u->piece_off = malloc((n ? n : 1) * sizeof *u->piece_off);
    u->scores = malloc((n ? n : 1) * sizeof *u->scores);
    u->leaf_id = malloc((pool_size + 1) * sizeof *u->leaf_id);
    u->edges = malloc(edge_slots * sizeof *u->edges);
    if (!u->pool || !u->piece_off || !u->scores || !u->leaf_id || !u->edges)
        return err_set(e, ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < edge_slots; i++)
        u->edges[i].key = EMPTY_KEY;
    u->edge_mask = edge_slots - 1;
    u->n_nodes = 1;
    u->leaf_id[0] = -1;
    u->min_score = INFINITY;
    size_t off = 0;
    for (size_t id = 0; id < n; id++) {
        const json_t *p = json_array_get(vocab, id);
        const char *s = json_string_value(json_array_get(p, 0));
        size_t len = json_string_length(json_array_get(p, 0));
        double score = json_number_value(json_array_get(p, 1));
        memcpy(u->pool + off, s, len);
        u->pool[off + len] = '\0';
        u->piece_off[id] = (uint32_t)off;
        off += len + 1;
        u->scores[id] = score;
        if (score < u->min_score && !(u->unmatched && u->unmatched[id]))
            u->min_score = score;
        uint32_t node = 0;
        for (size_t k = 0; k < len; k++) {
            uint32_t c = trie_child(u, node, (unsigned char)s[k]);
            node = c ? c : trie_add_child(u, node, (unsigned char)s[k]);
        }
        if (len > 0) /* HF's trie never reports the empty piece */
            u->leaf_id[node] = (int32_t)id;
    }
    return 0;
}

/* The optional "inferd_unmatched" id list into u->unmatched. */
static int parse_unmatched(struct unigram *u, const json_t *ids, size_t n, struct err *e)
{
    if (!ids || json_is_null(ids))
        return 0;
    if (!json_is_array(ids))
        return err_set(e, ERR_FORMAT, "model Unigram: field 'inferd_unmatched' must be an array");
    if (!(u->unmatched = calloc(n ? n : 1, sizeof *u->unmatched)))
        return err_set(e, ERR_NOMEM, "out of memory");
    size_t i;
    const json_t *v;
    json_array_foreach(ids, i, v)
    {
        double d = json_number_value(v);
        if (!json_is_number(v) || d != floor(d) || d < 0 || d >= (double)n)
            return err_set(e, ERR_FORMAT,
                           "model Unigram: field 'inferd_unmatched': entry %zu is not an index "
                           "of the vocab",
                           i);
        u->unmatched[(size_t)d] = true;
    }
    return 0;
}

static int unigram_parse(const json_t *j, void **state, struct err *e)
{
    const char *where = "model Unigram";
    struct unigram *u = calloc(1, sizeof *u);
    if (!u)
        return err_set(e, ERR_NOMEM, "out of memory");
    long long unk = -1;
    size_t pool_size = 0;
    const json_t *vocab = json_object_get(j, "vocab");
    int rc = tokj_int(j, "unk_id", false, &unk, where, e);
    if (rc == 0)
        rc = tokj_bool(j, "byte_fallback", false, &u->byte_fallback, where, e);
    if (rc == 0 && (!vocab || json_is_null(vocab)))
        rc = err_set(e, ERR_FORMAT, "%s: field 'vocab' is missing", where);
    else if (rc == 0 && !json_is_array(vocab))
        rc = err_set(e, ERR_FORMAT, "%s: field 'vocab' must be an array of [piece, score]", where);
    if (rc == 0)
        rc = check_vocab(vocab, &pool_size, e);
    if (rc == 0 && json_object_get(j, "unk_id") && !json_is_null(json_object_get(j, "unk_id")) &&
        (unk < 0 || (size_t)unk >= json_array_size(vocab)))
        rc = err_set(e, ERR_FORMAT,
                     "%s: field 'unk_id' (%lld) is not an index of the vocab "
                     "(size %zu)",
                     where, unk, json_array_size(vocab));
    if (rc == 0)
        rc = tokj_bool(j, "inferd_float_scores", false, &u->float_scores, where, e);
    if (rc == 0)
        rc = parse_unmatched(u, json_object_get(j, "inferd_unmatched"), json_array_size(vocab), e);
    if (rc == 0)
        rc = build(u, vocab, pool_size, e);
    if (rc != 0) {
        unigram_free(u);
        return rc;
    }
    u->unk_id = (int32_t)unk;
    char name[8];
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        snprintf(name, sizeof name, "<0x%c%c>", hex[b >> 4], hex[b & 15]);
        u->byte_ids[b] = trie_find(u, name, 6);
    }
    *state = u;
    return 0;
}

/* ---- tokenize ---- */

struct best {
    double score;  /* of the best path ending here */
    int32_t id;    /* last piece of that path */
    int32_t start; /* where that piece starts, -1 while unreached */
};

struct segment {
    uint32_t start, end;
    int32_t id; /* -1: fused unknowns, resolved by their text */
};

/* Viterbi over byte positions; best[len] ends the best path. */
static int viterbi(const struct unigram *u, const char *s, size_t len, struct best *best,
                   struct err *e)
{
    double unk_score = u->float_scores ? (double)((float)u->min_score - (float)UNK_PENALTY)
                                       : u->min_score - UNK_PENALTY;
    for (size_t i = 0; i <= len; i++)
        best[i] = (struct best){.score = 0.0, .id = 0, .start = -1};
    for (size_t start = 0; start < len;) {
        double till = best[start].score;
        size_t mblen = utf8_len((unsigned char)s[start]);
        bool has_single = false;
        uint32_t node = 0;
        for (size_t k = start; k < len; k++) {
            if (!(node = trie_child(u, node, (unsigned char)s[k])))
                break;
            int32_t id = u->leaf_id[node];
            if (id < 0 || (u->unmatched && u->unmatched[id]))
                continue;
            struct best *t = &best[k + 1];
            double cand = u->float_scores ? (double)((float)u->scores[id] + (float)till)
                                          : u->scores[id] + till;
            if (t->start < 0 || cand > t->score)
                *t = (struct best){.score = cand, .id = id, .start = (int32_t)start};
            if (k + 1 - start == mblen)
                has_single = true;
        }
        if (!has_single) {
            struct best *t = &best[start + mblen];
            double cand = u->float_scores ? (double)((float)unk_score + (float)till)
                                          : unk_score + till;
            if (t->start < 0 || cand > t->score) {
                if (u->unk_id < 0)
                    return err_set(e, ERR_INPUT,
                                   "model Unigram: unknown character and the "
                                   "model has no unk_id");
                *t = (struct best){.score = cand, .id = u->unk_id, .start = (int32_t)start};
            }
        }
        start += mblen;
    }
    return 0;
}

/* Walks the best path back; returns the segments in reverse order. */
static size_t backtrack(const struct unigram *u, const struct best *best, size_t len,
                        struct segment *seg)
{
    size_t n = 0;
    uint32_t end = (uint32_t)len, unk_end = 0;
    bool in_unk = false;
    while (end > 0) {
        const struct best *b = &best[end];
        uint32_t start = (uint32_t)b->start;
        if (b->id == u->unk_id) {
            if (!in_unk)
                unk_end = end;
            in_unk = true;
        } else {
            if (in_unk)
                seg[n++] = (struct segment){.start = end, .end = unk_end, .id = -1};
            in_unk = false;
            seg[n++] = (struct segment){.start = start, .end = end, .id = b->id};
        }
        end = start;
    }
    if (in_unk)
        seg[n++] = (struct segment){.start = 0, .end = unk_end, .id = -1};
    return n;
}

/* HF Unigram::tokenize for one segment: its id, else byte fallback, else unknown. */
static int emit(const struct unigram *u, const char *s, const struct segment *g,
                struct token_vec *out, struct err *e)
{
    int32_t id = g->id >= 0 ? g->id : trie_find(u, s + g->start, g->end - g->start);
    if (id >= 0 && u->unmatched && u->unmatched[id])
        id = -1;
    if (id < 0 && u->byte_fallback) {
        bool all = true;
        for (uint32_t i = g->start; i < g->end && all; i++)
            all = u->byte_ids[(unsigned char)s[i]] >= 0;
        if (all) {
            for (uint32_t i = g->start; i < g->end; i++)
                if (token_push(out, u->byte_ids[(unsigned char)s[i]], g->start, g->end) != 0)
                    return err_set(e, ERR_NOMEM, "out of memory");
            return 0;
        }
    }
    if (id < 0)
        id = u->unk_id;
    if (id < 0)
        return err_set(e, ERR_INPUT,
                       "model Unigram: unknown character and the model has no "
                       "unk_id");
    if (token_push(out, id, g->start, g->end) != 0)
        return err_set(e, ERR_NOMEM, "out of memory");
    return 0;
}

static int unigram_tokenize(const void *state, const char *s, size_t len, struct token_vec *out,
                            struct err *e)
{
    const struct unigram *u = state;
    if (len == 0)
        return 0;
    if (len >= INT32_MAX)
        return err_set(e, ERR_TOO_LARGE, "model Unigram: piece too long");
    struct best stack_best[257];
    struct segment stack_seg[256];
    struct best *best = stack_best;
    struct segment *seg = stack_seg;
    int rc = 0;
    if (len > 256) {
        best = malloc((len + 1) * sizeof *best);
        seg = malloc(len * sizeof *seg);
        if (!best || !seg) {
            rc = err_set(e, ERR_NOMEM, "out of memory");
            goto cleanup;
        }
    }
    if ((rc = viterbi(u, s, len, best, e)) != 0)
        goto cleanup;
    size_t n = backtrack(u, best, len, seg);
    for (size_t i = n; i-- > 0 && rc == 0;)
        rc = emit(u, s, &seg[i], out, e);
cleanup:
    if (best != stack_best)
        free(best);
    if (seg != stack_seg)
        free(seg);
    return rc;
}

static const char *unigram_id_to_token(const void *state, int32_t id)
{
    const struct unigram *u = state;
    return id >= 0 && (size_t)id < u->n_pieces ? u->pool + u->piece_off[id] : NULL;
}

static int32_t unigram_token_to_id(const void *state, const char *s, size_t len)
{
    return trie_find(state, s, len);
}

static size_t unigram_vocab_size(const void *state)
{
    return ((const struct unigram *)state)->n_pieces;
}

const struct tok_model_ops tok_model_unigram_ops = {
    .type = "Unigram",
    .parse = unigram_parse,
    .tokenize = unigram_tokenize,
    .id_to_token = unigram_id_to_token,
    .token_to_id = unigram_token_to_id,
    .vocab_size = unigram_vocab_size,
    .free = unigram_free,
};
