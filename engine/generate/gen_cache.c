/* gen_cache: the generator's pool of KV caches and prefix caching (vLLM's automatic prefix
 * caching, llama.cpp's cache_prompt), for the kinds whose caches can be cut (cache_len and
 * cache_prefix in struct gen_kind: the decoders; the encoder-decoders opt out).
 *
 * A cache is one contiguous sequence (models/decoder.h), so sharing is by cache, not by block:
 * a retired sequence's cache stays in the pool with the token ids it holds (prompt, then the
 * generated tokens fed back). A new sequence looks for the longest common prefix of its
 * prompt, at most n_prompt - 1 tokens (one is always computed, for the logits of its first
 * token), among the pooled caches and the caches of running sequences (their prompt tokens
 * fed so far: requests that arrive together with a cached system prompt); then:
 *
 *   - a pooled cache whose every token is reused, or all but a short tail (the previous turn
 *     of a chat, whose answer re-tokenizes differently once the client sends it back as text),
 *     is taken and cut to the common prefix: no copy; what it loses is the tail no other
 *     prompt is likely to continue (SHORT_TAIL_SHARE);
 *   - otherwise the prefix is copied (decoder_seq_copy_prefix) into the cache the sequence
 *     would get anyway, so the source stays for the next request: an empty pooled cache, a
 *     new one while fewer than max_seqs exist, else the least recently used pooled cache;
 *     when the source itself is that least recently used one, it is taken and cut instead.
 *
 * Either way the victim is the one a miss would take, so reuse never evicts more than a miss.
 * generator_trim bounds the tokens pooled caches hold (the caller's KV budget: what the
 * running sequences do not reserve), resetting the least recently used first. A cache whose
 * sequence failed, a beam's (its cache was swapped among the beams) and one from a sequence
 * that wants prompt logprobs (decoder_input_details: every prompt position must be computed)
 * are handled as before: the last two reuse nothing, the first two are kept empty. */
#include <stdlib.h>
#include <string.h>

#include "gen_impl.h"

/* A pooled cache whose tokens past the common prefix are at most 1/SHORT_TAIL_SHARE of it is
 * taken rather than copied: the previous chat turn's answer and the template tokens around
 * it. A longer tail is another conversation on a shared system prompt: it stays. */
#define SHORT_TAIL_SHARE 4

static bool kind_caches_prefixes(const struct generator *g)
{
    return g->lim.prefix_cache && g->m->kind->cache_len && g->m->kind->cache_prefix;
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* ---- the live list ---- */

static void live_add(struct generator *g, struct gen_seq *s)
{
    s->live_prev = NULL;
    s->live_next = g->live;
    if (g->live)
        g->live->live_prev = s;
    g->live = s;
}

static void live_remove(struct generator *g, struct gen_seq *s)
{
    if (s->live_prev)
        s->live_prev->live_next = s->live_next;
    else if (g->live == s)
        g->live = s->live_next;
    if (s->live_next)
        s->live_next->live_prev = s->live_prev;
    s->live_prev = s->live_next = NULL;
}

/* ---- the pool ---- */

/* Pool entry i leaves the pool: its cache is returned; the entry's ids buffer stays behind
 * (at n_pool) for the next retire. */
static void *pool_remove(struct generator *g, size_t i)
{
    struct gen_cached taken = g->pool[i];
    g->pool[i] = g->pool[g->n_pool - 1];
    g->pool[g->n_pool - 1] = taken;
    g->n_pool--;
    g->pool[g->n_pool].n_ids = 0;
    void *cache = taken.cache;
    g->pool[g->n_pool].cache = NULL;
    return cache;
}

static void pool_reset(struct generator *g, struct gen_cached *c)
{
    if (c->n_ids)
        g->m->kind->cache_reset(c->cache);
    c->n_ids = 0;
}

/* The least recently used pooled cache other than `except` (-1: none), preferring empty
 * ones; -1 when there is none. */
static long pool_victim(const struct generator *g, long except)
{
    long best = -1;
    for (size_t i = 0; i < g->n_pool; i++) {
        const struct gen_cached *c = &g->pool[i];
        if ((long)i == except)
            continue;
        if (best < 0 || (c->n_ids == 0 && g->pool[best].n_ids != 0) ||
            ((c->n_ids == 0) == (g->pool[best].n_ids == 0) && c->used < g->pool[best].used))
            best = (long)i;
    }
    return best;
}

/* The cache a sequence gets besides pooled cache `except` (its prefix's source; -1: none): an
 * empty pooled one, a new one while fewer than max_seqs exist, else the LRU pooled one
 * (reset). *out NULL when `except` is the one to take: the only pooled cache left, or the
 * least recently used. */
static int target(struct generator *g, long except, void **out, struct err *e)
{
    *out = NULL;
    long v = pool_victim(g, except);
    bool empty = v >= 0 && g->pool[v].n_ids == 0;
    if (!empty && (g->n_caches < g->lim.max_seqs || (v < 0 && except < 0))) {
        int rc = g->m->kind->cache_new(g->m, (int)g->lim.max_total, out, e);
        if (rc == 0)
            g->n_caches++;
        return rc;
    }
    if (v < 0 || (!empty && except >= 0 && g->pool[except].used < g->pool[v].used))
        return 0;
    pool_reset(g, &g->pool[v]);
    *out = pool_remove(g, (size_t)v);
    return 0;
}

/* ---- matching ---- */

struct match {
    size_t len;                /* tokens reused */
    long pooled;               /* the pooled source, or -1 */
    const struct gen_seq *run; /* else the running source */
};

static struct match best_match(const struct generator *g, const struct gen_seq *s)
{
    struct match m = {.len = 0, .pooled = -1, .run = NULL};
    size_t limit = s->n_prompt - 1;
    for (size_t i = 0; i < g->n_pool; i++) {
        const struct gen_cached *c = &g->pool[i];
        size_t n = common_prefix(c->ids, c->n_ids, s->prompt, limit);
        if (n > m.len || (n == m.len && n > 0 && c->used > g->pool[m.pooled].used)) {
            m.len = n;
            m.pooled = (long)i;
        }
    }
    /* a running sequence's prompt tokens in its cache; ties go to a pooled cache */
    for (const struct gen_seq *r = g->live; r; r = r->live_next) {
        if (r->failed)
            continue;
        size_t fed = r->n_fed < r->n_prompt ? r->n_fed : r->n_prompt;
        size_t n = common_prefix(r->prompt, fed, s->prompt, limit);
        if (n > m.len) {
            m.len = n;
            m.pooled = -1;
            m.run = r;
        }
    }
    return m;
}

/* The index of the pooled entry holding cache (it is there). */
static long pool_find(const struct generator *g, const void *cache)
{
    for (size_t i = 0; i < g->n_pool; i++)
        if (g->pool[i].cache == cache)
            return (long)i;
    return -1;
}

/* Takes pooled cache m->pooled for s, cut to the common prefix. */
static void take_pooled(struct generator *g, struct gen_seq *s, const struct match *m)
{
    struct gen_cached *c = &g->pool[m->pooled];
    struct err e = {0};
    size_t n = g->m->kind->cache_prefix(c->cache, c->cache, (int)m->len, &e) == 0 ? m->len : 0;
    if (!n)
        pool_reset(g, c);
    s->cache = pool_remove(g, (size_t)m->pooled);
    s->n_cached = n;
}

int gen_cache_take(struct generator *g, struct gen_seq *s, struct err *e)
{
    s->n_cached = 0;
    s->looked_up = kind_caches_prefixes(g) && !s->beam && !s->params->decoder_input_details;
    struct match m = {.len = 0, .pooled = -1, .run = NULL};
    if (s->looked_up && s->n_prompt > 1)
        m = best_match(g, s);
    bool take = m.pooled >= 0 && m.len > 0 &&
                g->pool[m.pooled].n_ids - m.len <= m.len / SHORT_TAIL_SHARE;
    /* the source's cache: target() may move pool entries */
    const void *src = m.pooled >= 0 ? g->pool[m.pooled].cache : m.run ? m.run->cache : NULL;
    void *cache = NULL;
    int rc = 0;
    if (!take)
        rc = target(g, m.pooled, &cache, e);
    if (rc)
        return rc;
    if (m.pooled >= 0)
        m.pooled = pool_find(g, src);
    if (take || (!cache && m.pooled >= 0)) {
        take_pooled(g, s, &m);
    } else {
        s->cache = cache;
        struct err ce = {0};
        if (src && g->m->kind->cache_prefix(cache, src, (int)m.len, &ce) == 0)
            s->n_cached = m.len;
        else if (src)
            g->m->kind->cache_reset(cache);
        if (m.pooled >= 0)
            g->pool[m.pooled].used = ++g->tick;
    }
    s->n_fed = s->n_cached;
    if (!s->beam)
        live_add(g, s);
    return 0;
}

/* The tokens s's cache holds: its prompt, then the generated tokens fed back. */
static bool keep_ids(struct gen_cached *c, const struct gen_seq *s, size_t len)
{
    if (len > c->cap) {
        int32_t *ids = realloc(c->ids, len * sizeof *ids);
        if (!ids)
            return false;
        c->ids = ids;
        c->cap = len;
    }
    size_t from_prompt = len < s->n_prompt ? len : s->n_prompt;
    size_t generated = len - from_prompt;
    if (generated > s->n_ids)
        return false; /* not a decoder's sequence as this file knows it: keep nothing */
    memcpy(c->ids, s->prompt, from_prompt * sizeof *c->ids);
    if (generated)
        memcpy(c->ids + from_prompt, s->ids, generated * sizeof *c->ids);
    c->n_ids = len;
    return true;
}

void gen_cache_give(struct generator *g, struct gen_seq *s)
{
    if (!s->beam)
        live_remove(g, s);
    if (g->n_pool >= g->lim.max_seqs) { /* more caches than slots: only by misuse */
        g->m->kind->cache_free(s->cache);
        g->n_caches--;
        s->cache = NULL;
        return;
    }
    struct gen_cached *c = &g->pool[g->n_pool++];
    c->cache = s->cache;
    c->n_ids = 0;
    c->used = ++g->tick;
    s->cache = NULL;
    int len = kind_caches_prefixes(g) ? g->m->kind->cache_len(c->cache) : 0;
    if (s->beam || s->failed || len <= 0 || !keep_ids(c, s, (size_t)len)) {
        c->n_ids = 0;
        g->m->kind->cache_reset(c->cache);
    }
}

void gen_cache_free_pool(struct generator *g)
{
    for (size_t i = 0; g->pool && i < g->lim.max_seqs; i++) {
        if (i < g->n_pool)
            g->m->kind->cache_free(g->pool[i].cache);
        free(g->pool[i].ids);
    }
    free(g->pool);
    g->pool = NULL;
    g->n_pool = 0;
}

/* ---- the API ---- */

void generator_trim(struct generator *g, size_t max_tokens)
{
    for (;;) {
        size_t held = generator_cached_tokens(g);
        long lru = -1;
        for (size_t i = 0; held > max_tokens && i < g->n_pool; i++)
            if (g->pool[i].n_ids && (lru < 0 || g->pool[i].used < g->pool[lru].used))
                lru = (long)i;
        if (lru < 0)
            return;
        pool_reset(g, &g->pool[lru]);
    }
}

size_t generator_cached_tokens(const struct generator *g)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n_pool; i++)
        n += g->pool[i].n_ids;
    return n;
}

bool gen_seq_prefix_cached(const struct gen_seq *s, size_t *n_cached)
{
    *n_cached = s->n_cached;
    return s->looked_up;
}
