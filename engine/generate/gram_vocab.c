/* gram_vocab: a model's vocabulary as the grammar sees it (each token's text in generated text,
 * in a byte trie) and the per-state token masks each grammar caches per vocabulary. A mask is
 * one walk of the trie through the automaton from the state: a subtree is left at the first
 * byte the automaton refuses, so a state that allows little (most of a JSON document's
 * structure) costs little. See grammar.h. */
#include <stdlib.h>
#include <string.h>

#include "generate/grammar_impl.h"
#include "tokenizer/tokenizer.h"

struct trie_node {
    int32_t child;   /* first child, -1 */
    int32_t sibling; /* next sibling, -1 */
    int32_t tok;     /* first token whose text ends here, -1 */
    uint8_t byte;
};

struct gram_vocab {
    uint64_t serial;
    size_t n_logits;
    char **text; /* (n_logits) NULL: never allowed */
    size_t *len;
    int32_t *tok_next; /* (n_logits) next token with the same text */
    struct trie_node *node;
    size_t n_node, cap_node;
};

static uint64_t vocab_serials;

static const char fffd[] = "\xEF\xBF\xBD";

static int32_t trie_child(struct gram_vocab *v, int32_t at, uint8_t b, struct err *e)
{
    for (int32_t c = v->node[at].child; c >= 0; c = v->node[c].sibling)
        if (v->node[c].byte == b)
            return c;
    if (v->n_node == v->cap_node) {
        size_t nc = v->cap_node * 2;
        struct trie_node *nn = realloc(v->node, nc * sizeof *nn);
        if (!nn)
            return err_set(e, ERR_NOMEM, "out of memory");
        v->node = nn;
        v->cap_node = nc;
    }
    int32_t c = (int32_t)v->n_node++;
    v->node[c] = (struct trie_node){-1, v->node[at].child, -1, b};
    v->node[at].child = c;
    return c;
}

/* A one-letter token to decode after (so "▁x" reads " x" as it does mid-text); -1: none. */
static int32_t find_anchor(const struct tokenizer *tk, size_t n)
{
    for (size_t id = 0; id < n && id < 50000; id++) {
        if (tokenizer_is_special(tk, (int32_t)id))
            continue;
        char *t = NULL;
        size_t l = 0;
        int32_t one = (int32_t)id;
        if (tokenizer_decode(tk, &one, 1, false, &t, &l, NULL) == 0 && l == 1 &&
            ((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z'))) {
            free(t);
            return one;
        }
        free(t);
    }
    return -1;
}

/* Token id's text into v (left NULL when never allowed). */
static int token_text(struct gram_vocab *v, const struct tokenizer *tk, int32_t anchor,
                      int32_t id, struct err *e)
{
    if (tokenizer_id_to_token(tk, id) == NULL || tokenizer_is_special(tk, id))
        return 0;
    int32_t ids[2] = {anchor, id};
    char *t = NULL;
    size_t l = 0;
    int off = anchor >= 0;
    (void)e; /* a token that cannot be decoded is never allowed */
    if (tokenizer_decode(tk, ids + 1 - off, (size_t)1 + (size_t)off, false, &t, &l, NULL) != 0)
        return 0;
    size_t skip = off ? 1 : 0; /* the anchor is one ASCII letter */
    if (l > skip && !memmem(t, l, fffd, 3)) {
        memmove(t, t + skip, l - skip + 1);
        v->text[id] = t;
        v->len[id] = l - skip;
        return 0;
    }
    free(t);
    return 0;
}

int gram_vocab_new(const struct tokenizer *tk, size_t n_logits, struct gram_vocab **out,
                   struct err *e)
{
    *out = NULL;
    struct gram_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return err_set(e, ERR_NOMEM, "out of memory");
    v->serial = __atomic_add_fetch(&vocab_serials, 1, __ATOMIC_RELAXED);
    v->n_logits = n_logits;
    v->text = calloc(n_logits ? n_logits : 1, sizeof *v->text);
    v->len = calloc(n_logits ? n_logits : 1, sizeof *v->len);
    v->tok_next = malloc((n_logits ? n_logits : 1) * sizeof *v->tok_next);
    v->cap_node = 1024;
    v->node = malloc(v->cap_node * sizeof *v->node);
    int rc = 0;
    if (!v->text || !v->len || !v->tok_next || !v->node)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    if (!rc) {
        v->node[0] = (struct trie_node){-1, -1, -1, 0};
        v->n_node = 1;
    }
    size_t n_tk = tokenizer_vocab_size(tk);
    int32_t anchor = rc ? -1 : find_anchor(tk, n_tk);
    for (size_t id = 0; !rc && id < n_logits && id < n_tk; id++) {
        v->tok_next[id] = -1;
        rc = token_text(v, tk, anchor, (int32_t)id, e);
        if (rc || !v->text[id])
            continue;
        int32_t at = 0;
        for (size_t k = 0; k < v->len[id] && at >= 0; k++)
            at = trie_child(v, at, (uint8_t)v->text[id][k], e);
        if (at < 0) {
            rc = at;
            break;
        }
        v->tok_next[id] = v->node[at].tok;
        v->node[at].tok = (int32_t)id;
    }
    if (rc) {
        gram_vocab_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void gram_vocab_free(struct gram_vocab *v)
{
    if (!v)
        return;
    for (size_t i = 0; v->text && i < v->n_logits; i++)
        free(v->text[i]);
    free(v->text);
    free(v->len);
    free(v->tok_next);
    free(v->node);
    free(v);
}

const char *gram_vocab_text(const struct gram_vocab *v, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= v->n_logits || !v->text[id])
        return NULL;
    *len = v->len[id];
    return v->text[id];
}

/* ---- masks ---- */

int grammar_init_cache(struct grammar *g, struct err *e)
{
    if (pthread_mutex_init(&g->mu, NULL) != 0)
        return err_set(e, ERR_INTERNAL, "grammar: mutex");
    g->mu_ready = true;
    return 0;
}

void grammar_free(struct grammar *g)
{
    if (!g)
        return;
    for (struct gram_bind *b = g->binds, *nb; b; b = nb) {
        nb = b->next;
        for (size_t s = 0; s < g->n_states; s++)
            free(b->masks[s]);
        free(b->masks);
        free(b);
    }
    if (g->mu_ready)
        pthread_mutex_destroy(&g->mu);
    free(g->trans);
    free(g->accept);
    free(g->complete);
    free(g);
}

/* The subtree of node (whose byte the automaton reads from `from`): every token whose text the
 * automaton reads whole. Recursion depth: the longest token's length. */
static void walk(const struct grammar *g, const struct gram_vocab *v, int32_t node, int32_t from,
                 uint64_t *m)
{
    const struct trie_node *nd = &v->node[node];
    int32_t s = g->trans[(size_t)from * (size_t)g->n_classes + g->cls[nd->byte]];
    if (s < 0)
        return;
    for (int32_t t = nd->tok; t >= 0; t = v->tok_next[t])
        m[t >> 6] |= (uint64_t)1 << (t & 63);
    for (int32_t c = nd->child; c >= 0; c = v->node[c].sibling)
        walk(g, v, c, s, m);
}

const uint64_t *grammar_mask(struct grammar *g, const struct gram_vocab *v, int32_t state,
                             uint64_t *scratch)
{
    size_t words = (v->n_logits + 63) / 64;
    pthread_mutex_lock(&g->mu);
    struct gram_bind *b = g->binds;
    while (b && b->vocab_serial != v->serial)
        b = b->next;
    if (!b && (b = calloc(1, sizeof *b)) != NULL) {
        b->masks = calloc(g->n_states, sizeof *b->masks);
        if (!b->masks) {
            free(b);
            b = NULL;
        } else {
            b->vocab_serial = v->serial;
            b->next = g->binds;
            g->binds = b;
        }
    }
    const uint64_t *m = b ? b->masks[state] : NULL;
    if (m || !b) {
        pthread_mutex_unlock(&g->mu);
        return m;
    }
    uint64_t *mine = NULL;
    if (g->mask_bytes + words * 8 <= GRAMMAR_MASK_BUDGET)
        mine = malloc(words * sizeof *mine);
    uint64_t *out = mine ? mine : scratch;
    memset(out, 0, words * sizeof *out);
    for (int32_t c = v->node[0].child; c >= 0; c = v->node[c].sibling)
        walk(g, v, c, state, out);
    if (mine) {
        b->masks[state] = mine;
        g->mask_bytes += words * 8;
    }
    pthread_mutex_unlock(&g->mu);
    return out;
}
