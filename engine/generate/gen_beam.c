/* gen_beam: a beam search request over a generator's sequences (generator.h, "beam search"):
 * its num_beams sequences and caches, the logits rows they produce each step, the search
 * (beam.h) and the caches' reordering after it (see DECISIONS: forks copy the parent's cached
 * positions; a beam continued once keeps its cache). */
#include <stdlib.h>
#include <string.h>

#include "gen_impl.h"
#include "generate/beam.h"

struct gen_beam {
    struct beam_search *bs;
    int B;
    size_t V;
    struct gen_seq **seqs; /* (B) */
    float *rows;           /* (B, V) the step's logits rows */
    bool *has_row;
    const float **row_ptr; /* (B) */
    int *parent, *children;
    int32_t *token;
    void **caches; /* (B) scratch for the reordering */
    bool started, done;
};

void gen_beam_keep_row(struct gen_beam *b, int index, const float *logits)
{
    memcpy(b->rows + (size_t)index * b->V, logits, b->V * sizeof *b->rows);
    b->has_row[index] = true;
}

void gen_beam_free(struct gen_beam *b)
{
    if (!b)
        return;
    for (int i = 0; b->seqs && i < b->B; i++)
        gen_seq_free(b->seqs[i]);
    beam_search_free(b->bs);
    free(b->seqs);
    free(b->rows);
    free(b->has_row);
    free(b->row_ptr);
    free(b->parent);
    free(b->children);
    free(b->token);
    free(b->caches);
    free(b);
}

static int alloc_arrays(struct gen_beam *b)
{
    size_t B = (size_t)b->B;
    b->seqs = calloc(B, sizeof *b->seqs);
    b->rows = malloc(B * b->V * sizeof *b->rows);
    b->has_row = calloc(B, sizeof *b->has_row);
    b->row_ptr = calloc(B, sizeof *b->row_ptr);
    b->parent = calloc(B, sizeof *b->parent);
    b->children = calloc(B, sizeof *b->children);
    b->token = calloc(B, sizeof *b->token);
    b->caches = calloc(B, sizeof *b->caches);
    return b->seqs && b->rows && b->has_row && b->row_ptr && b->parent && b->children &&
                   b->token && b->caches
               ? 0
               : ERR_NOMEM;
}

/* Beam i's sequence: the prompt, a cache from the pool (or a new one). */
static int beam_seq(struct generator *g, struct gen_beam *b, int i, const int32_t *prompt,
                    size_t n_prompt, const struct gen_params *p, void *user, struct err *e)
{
    struct gen_seq *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory");
    b->seqs[i] = s;
    *s = (struct gen_seq){.prompt = prompt, .n_prompt = n_prompt, .params = p, .user = user,
                          .beam = b, .beam_index = i};
    return gen_cache_take(g, s, e); /* a beam reuses no prefix */
}

int gen_beam_start(struct generator *g, const int32_t *prompt, size_t n_prompt,
                   const struct gen_params *p, void *user, struct gen_beam **out, struct err *e)
{
    *out = NULL;
    struct gen_beam *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(e, ERR_NOMEM, "out of memory");
    b->B = (int)p->num_beams;
    b->V = (size_t)g->m->vocab_size;
    const int32_t *prefix = prompt;
    size_t n_prefix = n_prompt;
    if (g->m->kind->encoder_decoder) {
        prefix = &g->m->decoder_start_token_id;
        n_prefix = 1;
    }
    int rc = beam_search_new(p, b->V, prefix, n_prefix, &b->bs, e);
    if (rc == 0 && alloc_arrays(b) != 0)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < b->B; i++)
        rc = beam_seq(g, b, i, prompt, n_prompt, p, user, e);
    if (rc) {
        gen_beam_retire(g, b);
        gen_beam_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

size_t gen_beam_seqs(struct gen_beam *b, struct gen_seq **out)
{
    if (b->done)
        return 0;
    size_t n = b->started ? (size_t)b->B : 1;
    memcpy(out, b->seqs, n * sizeof *out);
    return n;
}

/* Caches follow their beams: the first new beam continuing an old one takes its cache; the
 * others get copies of it in the caches no new beam continues. */
static int reorder(struct generator *g, struct gen_beam *b, struct err *e)
{
    int B = b->B, n_free = 0;
    memset(b->children, 0, (size_t)B * sizeof *b->children);
    for (int i = 0; i < B; i++)
        b->children[b->parent[i]]++;
    void **free_caches = b->caches;
    void *old[B > 0 ? B : 1];
    for (int i = 0; i < B; i++) {
        old[i] = b->seqs[i]->cache;
        if (b->children[i] == 0)
            free_caches[n_free++] = old[i];
    }
    bool taken[B > 0 ? B : 1];
    memset(taken, 0, sizeof taken);
    void *next[B > 0 ? B : 1];
    for (int j = 0; j < B; j++) {
        int p = b->parent[j];
        if (!taken[p]) {
            taken[p] = true;
            next[j] = old[p];
        } else {
            next[j] = free_caches[--n_free];
            /* an encoder-decoder's beams share the one encoded input */
            const struct gen_kind *k = g->m->kind;
            int rc = k->cache_fork ? k->cache_fork(next[j], old[p], e)
                                   : k->cache_copy(next[j], old[p], e);
            if (rc)
                return rc;
        }
    }
    for (int j = 0; j < B; j++)
        b->seqs[j]->cache = next[j];
    return 0;
}

int gen_beam_advance(struct generator *g, struct gen_beam *b, struct err *e)
{
    if (b->done || !b->has_row[0])
        return 0;
    for (int i = 0; i < b->B; i++) {
        bool row = b->started ? b->has_row[i] : true; /* the first step: beam 0's row */
        if (!row || b->seqs[i]->done) {
            b->done = true; /* a beam failed: its event said why */
            return 0;
        }
        b->row_ptr[i] = b->rows + (size_t)(b->started ? i : 0) * b->V;
        b->has_row[i] = false;
    }
    bool over = beam_search_step(b->bs, b->row_ptr, b->parent, b->token);
    if (over) {
        b->done = true;
        return 0;
    }
    for (int i = 0; !b->started && i < b->B; i++)
        b->parent[i] = 0; /* the first step: every beam holds what beam 0's cache holds */
    int rc = reorder(g, b, e);
    if (rc) {
        b->done = true;
        return rc;
    }
    for (int i = 0; i < b->B; i++) {
        struct gen_seq *s = b->seqs[i];
        s->n_fed = s->n_prompt;
        s->last = b->token[i];
    }
    b->started = true;
    return 0;
}

bool gen_beam_done(const struct gen_beam *b)
{
    return b->done;
}

size_t gen_beam_n_results(const struct gen_beam *b)
{
    return beam_search_n_results(b->bs);
}

void gen_beam_result(const struct gen_beam *b, size_t i, const int32_t **ids, size_t *n,
                     float *score)
{
    beam_search_result(b->bs, i, ids, n, score);
}

void gen_beam_retire(struct generator *g, struct gen_beam *b)
{
    for (int i = 0; b->seqs && i < b->B; i++)
        if (b->seqs[i])
            gen_seq_retire(g, b->seqs[i]);
}
