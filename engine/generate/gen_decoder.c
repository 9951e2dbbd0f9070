/* gen_decoder: the decoder-only generation kind (engine/models/decoder.h: every model_type of
 * the decoders' variant table). A step mixes one decode token of every sequence whose prompt
 * is in its cache with prompt chunks of the sequences still prefilling, oldest first, at most
 * the step's prefill budget of prompt tokens, so a long prompt is spread over several steps
 * and never stalls the decodes; a sequence's first token comes in the step that feeds the
 * last of its prompt. A sequence that found a cached prefix (gen_cache.c) starts with n_fed
 * past it: only the rest of its prompt is fed.
 *
 * A sequence whose prompt logprobs are wanted (decoder_input_details) needs the logits of
 * every prompt position: its chunks run in steps with all_logits, alongside the decodes (one
 * row each anyway) but without other prompt chunks, at most DETAILS_CHUNK tokens at a time to
 * bound the (tokens x vocab) logits. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "gen_impl.h"
#include "models/decoder.h"

#define DETAILS_CHUNK 64 /* prompt tokens per step with all_logits */

/* The stepping thread's buffers. */
struct dec_run {
    struct decoder_run *run;
    struct decoder_seq **seqs; /* (max_seqs) */
    struct gen_seq **st;       /* (max_seqs) */
    int *n;                    /* (max_seqs) */
    int32_t *tokens;           /* (max_seqs + max_prefill) */
};

static size_t model_types(const char **names, size_t cap)
{
    size_t n = decoder_model_types(names, cap);
    return n < cap ? n : cap;
}

static int load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct gen_model *m,
                struct err *e)
{
    struct decoder_model *d = NULL;
    int rc = decoder_load(dir, dt, ctx, &d, e);
    if (rc)
        return rc;
    m->net = d;
    m->hf = decoder_config(d);
    m->max_positions = decoder_max_positions(d);
    m->vocab_size = decoder_vocab_size(d);
    return 0;
}

static void unload(struct gen_model *m)
{
    decoder_unload(m->net);
}

static int cache_new(const struct gen_model *m, int max_total, void **out, struct err *e)
{
    struct decoder_seq *seq = NULL;
    int rc = decoder_seq_new(m->net, max_total, &seq, e);
    *out = seq;
    return rc;
}
static void cache_free(void *cache)
{
    decoder_seq_free(cache);
}
static void cache_reset(void *cache)
{
    decoder_seq_reset(cache);
}

static int cache_copy(void *dst, const void *src, struct err *e)
{
    return decoder_seq_copy(dst, src, e);
}

static int cache_len(const void *cache)
{
    return decoder_seq_len(cache);
}

static int cache_prefix(void *dst, const void *src, int n, struct err *e)
{
    return decoder_seq_copy_prefix(dst, src, n, e);
}

static void run_free(void *run_)
{
    struct dec_run *r = run_;
    if (!r)
        return;
    decoder_run_free(r->run);
    free(r->seqs);
    gen_step_arrays_free(r->st, r->n, r->tokens);
    free(r);
}

static void *run_new(const struct generator_limits *lim)
{
    struct dec_run *r = calloc(1, sizeof *r);
    size_t cap = lim->max_seqs ? lim->max_seqs : 1;
    if (!r)
        return NULL;
    r->run = decoder_run_new();
    r->seqs = calloc(cap, sizeof *r->seqs);
    bool arrays = gen_step_arrays_new(cap, cap + lim->max_prefill, &r->st, &r->n, &r->tokens);
    if (!r->run || !r->seqs || !arrays) {
        run_free(r);
        return NULL;
    }
    return r;
}

/* Picks this step's tokens: each decoding sequence's last token, then prompt chunks in order
 * up to budget. Returns the number of sequences; *all_logits when the oldest prefilling
 * sequence wants prompt logprobs (it is then the only one prefilling). */
static int compose(struct dec_run *run, struct gen_seq *const *seqs, size_t n_seqs,
                   size_t budget, int *M_out, bool *all_logits)
{
    const struct gen_seq *oldest = NULL;
    for (size_t i = 0; i < n_seqs && !oldest; i++)
        if (seqs[i]->n_fed < seqs[i]->n_prompt)
            oldest = seqs[i];
    bool details = oldest && oldest->params->decoder_input_details;
    size_t M = 0;
    if (details && budget > DETAILS_CHUNK)
        budget = DETAILS_CHUNK;
    int n = 0;
    for (size_t i = 0; i < n_seqs; i++) {
        struct gen_seq *s = seqs[i];
        size_t take = 1;
        if (s->n_fed >= s->n_prompt) {
            run->tokens[M] = s->last;
        } else {
            if (budget == 0 || (details ? s != oldest : s->params->decoder_input_details))
                continue;
            size_t left = s->n_prompt - s->n_fed;
            take = left < budget ? left : budget;
            memcpy(run->tokens + M, s->prompt + s->n_fed, take * sizeof *run->tokens);
            budget -= take;
        }
        run->seqs[n] = s->cache;
        run->st[n] = s;
        run->n[n] = (int)take;
        M += take;
        n++;
    }
    *M_out = (int)M;
    *all_logits = details;
    return n;
}

static void step(struct generator *g, struct gen_seq *const *seqs, size_t n_seqs, size_t budget,
                 struct gen_step_stats *stats)
{
    struct dec_run *run = g->run;
    int M = 0;
    bool all_logits = false;
    int n = compose(run, seqs, n_seqs, budget, &M, &all_logits);
    if (n == 0)
        return;
    struct decoder_step st = {.n_seqs = n,
                              .seqs = run->seqs,
                              .tokens = run->tokens,
                              .n_tokens = run->n,
                              .all_logits = all_logits};
    const float *logits = NULL;
    struct err e = {0};
    double t0 = now_seconds();
    if (decoder_forward(g->m->net, g->ctx, run->run, &st, &logits, &e) != 0) {
        for (int i = 0; i < n; i++)
            gen_seq_fail(g, run->st[i], e.msg);
        return;
    }
    double t1 = now_seconds();
    *stats = (struct gen_step_stats){.batch = true,
                                     .rows = (size_t)n,
                                     .tokens = (size_t)M,
                                     .seconds = t1 - t0,
                                     .generated = true};
    int V = g->m->vocab_size;
    size_t row = 0;
    for (int i = 0; i < n; i++) {
        struct gen_seq *s = run->st[i];
        int k = run->n[i];
        /* the step's logits are this thread's run memory: sampling may process them in place */
        float *rows = (float *)logits + (all_logits ? row : (size_t)i) * (size_t)V;
        float *last = all_logits ? rows + (size_t)(k - 1) * (size_t)V : rows;
        row += (size_t)k;
        if (s->n_fed < s->n_prompt) {
            if (all_logits && s->prompt_logprobs)
                gen_seq_prompt_logprobs(s, rows, k, V);
            s->n_fed += (size_t)k;
            if (s->n_fed < s->n_prompt)
                continue;
        }
        gen_seq_emit(g, s, last, t1);
        stats->produced++;
    }
}

const struct gen_kind gen_kind_decoder = {
    .name = "decoder",
    .encoder_decoder = false,
    .model_types = model_types,
    .load = load,
    .unload = unload,
    .cache_new = cache_new,
    .cache_free = cache_free,
    .cache_reset = cache_reset,
    .cache_copy = cache_copy,
    .cache_len = cache_len,
    .cache_prefix = cache_prefix,
    .run_new = run_new,
    .run_free = run_free,
    .step = step,
};
