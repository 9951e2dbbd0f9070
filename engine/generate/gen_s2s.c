/* gen_s2s: the stepping of the encoder-decoder kinds (see gen_s2s.h): which inputs a step
 * encodes, which sequences it decodes, its stats, and the logits rows handed to gen_seq_emit.
 * The model calls are the kind's (struct gen_s2s_ops). */
#include "gen_s2s.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* The stepping thread's buffers. */
struct gen_s2s_run {
    const struct gen_s2s_ops *ops;
    void *model;          /* ops->run_new's */
    struct gen_seq **st;  /* (max_seqs) */
    int *n;               /* (max_seqs) */
    int32_t *tokens;      /* (max_seqs) decoder tokens */
    int32_t *enc_ids;     /* (max(max_prefill, max_total)) input ids to encode */
};

void gen_s2s_run_free(void *run_)
{
    struct gen_s2s_run *r = run_;
    if (!r)
        return;
    if (r->model)
        r->ops->run_free(r->model);
    gen_step_arrays_free(r->st, r->n, r->tokens);
    free(r->enc_ids);
    free(r);
}

void *gen_s2s_run_new(const struct gen_s2s_ops *ops, const struct generator_limits *lim)
{
    struct gen_s2s_run *r = calloc(1, sizeof *r);
    size_t cap = lim->max_seqs ? lim->max_seqs : 1;
    size_t enc = lim->max_prefill > lim->max_total ? lim->max_prefill : lim->max_total;
    if (!r)
        return NULL;
    r->ops = ops;
    r->model = ops->run_new(cap);
    bool arrays = gen_step_arrays_new(cap, cap, &r->st, &r->n, &r->tokens);
    r->enc_ids = calloc(enc ? enc : 1, sizeof *r->enc_ids);
    if (!r->model || !arrays || !r->enc_ids) {
        gen_s2s_run_free(r);
        return NULL;
    }
    return r;
}

/* Picks the inputs to encode this step: sequences not encoded yet in order while their ids
 * total at most budget (the first one whatever its length). Returns how many (their
 * sequences and lengths in run->st, n; their ids in enc_ids). */
static int compose_encode(struct gen_s2s_run *run, struct gen_seq *const *seqs, size_t n_seqs,
                          size_t budget, size_t *n_ids)
{
    size_t M = 0;
    int n = 0;
    for (size_t i = 0; i < n_seqs; i++) {
        struct gen_seq *s = seqs[i];
        if (s->n_fed >= s->n_prompt)
            continue;
        if (n > 0 && M + s->n_prompt > budget)
            break; /* the next ones wait for their turn, in order */
        memcpy(run->enc_ids + M, s->prompt, s->n_prompt * sizeof *run->enc_ids);
        run->st[n] = s;
        run->n[n] = (int)s->n_prompt;
        M += s->n_prompt;
        n++;
    }
    *n_ids = M;
    return n;
}

/* Encodes what compose_encode picked; each encoded sequence's next decoder token is the start
 * token. A failure fails those sequences only. */
static void encode(struct generator *g, struct gen_s2s_run *run, int n)
{
    struct err e = {0};
    if (run->ops->encode(g->m, g->ctx, run->model, run->st, n, run->enc_ids, run->n, &e) != 0) {
        for (int i = 0; i < n; i++)
            gen_seq_fail(g, run->st[i], e.msg);
        return;
    }
    for (int i = 0; i < n; i++) {
        struct gen_seq *s = run->st[i];
        s->n_fed = s->n_prompt;
        s->last = g->m->decoder_start_token_id;
    }
}

/* Picks every encoded sequence still going, one decoder token each. Returns how many. */
static int compose_decode(struct gen_s2s_run *run, struct gen_seq *const *seqs, size_t n_seqs)
{
    int n = 0;
    for (size_t i = 0; i < n_seqs; i++) {
        struct gen_seq *s = seqs[i];
        if (s->done || s->n_fed < s->n_prompt)
            continue;
        run->st[n] = s;
        run->n[n] = 1;
        run->tokens[n] = s->last;
        n++;
    }
    return n;
}

/* The inputs to encode, then one decoder token of every encoded sequence. */
void gen_s2s_step(struct generator *g, struct gen_seq *const *seqs, size_t n_seqs, size_t budget,
                  struct gen_step_stats *stats)
{
    struct gen_s2s_run *run = g->run;
    double t0 = now_seconds();
    size_t n_enc_ids = 0;
    int n_enc = compose_encode(run, seqs, n_seqs, budget, &n_enc_ids);
    if (n_enc)
        encode(g, run, n_enc);
    int n = compose_decode(run, seqs, n_seqs);
    if (n == 0) {
        if (n_enc)
            *stats = (struct gen_step_stats){.batch = true,
                                             .rows = (size_t)n_enc,
                                             .tokens = n_enc_ids,
                                             .seconds = now_seconds() - t0};
        return;
    }
    const float *logits = NULL;
    struct err e = {0};
    if (run->ops->forward(g->m, g->ctx, run->model, run->st, n, run->tokens, run->n, &logits,
                          &e) != 0) {
        for (int i = 0; i < n; i++)
            gen_seq_fail(g, run->st[i], e.msg);
        return;
    }
    double t1 = now_seconds();
    /* rows: the sequences stepped; tokens: input ids encoded + decoder tokens fed */
    *stats = (struct gen_step_stats){.batch = true,
                                     .rows = (size_t)n,
                                     .tokens = n_enc_ids + (size_t)n,
                                     .seconds = t1 - t0,
                                     .generated = true,
                                     .produced = (size_t)n};
    int V = g->m->vocab_size;
    for (int i = 0; i < n; i++)
        gen_seq_emit(g, run->st[i], (float *)logits + (size_t)i * (size_t)V, t1);
}
