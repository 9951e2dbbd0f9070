/* gen_bart: the generation kind of the BART-like encoder-decoders (engine/models/bart.h:
 * config.json model_types bart, mbart, marian, m2m100, pegasus). It steps them as gen_t5.c
 * steps T5: a step encodes the inputs of the sequences not encoded yet (oldest first, within
 * the prefill budget, a longer one alone), then runs one decoder step of every encoded
 * sequence (the decoder start token for those just encoded); a sequence's cache holds the
 * cross-attention keys and values of its input and the decoder's self-attention cache, and
 * reserves room for max_total input ids and as many decoder tokens. Unlike T5, the position
 * table bounds both: inputs and outputs longer than max_position_embeddings are refused. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "gen_impl.h"
#include "models/bart.h"

/* The stepping thread's buffers. */
struct bart_gen_run {
    struct bart_run *run;
    struct bart_seq **seqs; /* (max_seqs) */
    struct gen_seq **st;  /* (max_seqs) */
    int *n;               /* (max_seqs) */
    int32_t *tokens;      /* (max_seqs) decoder tokens */
    int32_t *enc_ids;     /* (max(max_prefill, max_total)) input ids to encode */
};

static size_t model_types(const char **names, size_t cap)
{
    return bart_model_types(names, cap);
}

static int load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct gen_model *m,
                struct err *e)
{
    struct bart_model *net = NULL;
    int rc = bart_load(dir, dt, ctx, &net, e);
    if (rc)
        return rc;
    m->net = net;
    m->hf = bart_config(net);
    m->max_positions = bart_max_positions(net); /* the position table bounds both stacks */
    m->vocab_size = bart_vocab_size(net);
    m->decoder_start_token_id = bart_decoder_start_token_id(net);
    return 0;
}

static void unload(struct gen_model *m)
{
    bart_unload(m->net);
}

static int cache_new(const struct gen_model *m, int max_total, void **out, struct err *e)
{
    struct bart_seq *seq = NULL;
    int rc = bart_seq_new(m->net, max_total, max_total, &seq, e);
    *out = seq;
    return rc;
}
static void cache_free(void *cache)
{
    bart_seq_free(cache);
}
static void cache_reset(void *cache)
{
    bart_seq_reset(cache);
}

static int cache_copy(void *dst, const void *src, struct err *e)
{
    return bart_seq_copy(dst, src, e);
}

static void run_free(void *run_)
{
    struct bart_gen_run *r = run_;
    if (!r)
        return;
    bart_run_free(r->run);
    free(r->seqs);
    gen_step_arrays_free(r->st, r->n, r->tokens);
    free(r->enc_ids);
    free(r);
}

static void *run_new(const struct generator_limits *lim)
{
    struct bart_gen_run *r = calloc(1, sizeof *r);
    size_t cap = lim->max_seqs ? lim->max_seqs : 1;
    size_t enc = lim->max_prefill > lim->max_total ? lim->max_prefill : lim->max_total;
    if (!r)
        return NULL;
    r->run = bart_run_new();
    r->seqs = calloc(cap, sizeof *r->seqs);
    bool arrays = gen_step_arrays_new(cap, cap, &r->st, &r->n, &r->tokens);
    r->enc_ids = calloc(enc ? enc : 1, sizeof *r->enc_ids);
    if (!r->run || !r->seqs || !arrays || !r->enc_ids) {
        run_free(r);
        return NULL;
    }
    return r;
}

/* Picks the inputs to encode this step: sequences not encoded yet in order while their ids
 * total at most budget (the first one whatever its length). Returns how many (their caches,
 * sequences and lengths in run->seqs, st, n; their ids in enc_ids). */
static int compose_encode(struct bart_gen_run *run, struct gen_seq *const *seqs, size_t n_seqs,
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
        run->seqs[n] = s->cache;
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
static void encode(struct generator *g, struct bart_gen_run *run, int n)
{
    struct bart_encode_batch b = {
        .n_seqs = n, .seqs = run->seqs, .ids = run->enc_ids, .n_ids = run->n};
    struct err e = {0};
    if (bart_encode(g->m->net, g->ctx, run->run, &b, NULL, &e) != 0) {
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

/* The inputs to encode, then one decoder token of every encoded sequence. */
static void step(struct generator *g, struct gen_seq *const *seqs, size_t n_seqs, size_t budget,
                 struct gen_step_stats *stats)
{
    struct bart_gen_run *run = g->run;
    double t0 = now_seconds();
    size_t n_enc_ids = 0;
    int n_enc = compose_encode(run, seqs, n_seqs, budget, &n_enc_ids);
    if (n_enc)
        encode(g, run, n_enc);
    int n = 0;
    for (size_t i = 0; i < n_seqs; i++) {
        struct gen_seq *s = seqs[i];
        if (s->done || s->n_fed < s->n_prompt)
            continue;
        run->seqs[n] = s->cache;
        run->st[n] = s;
        run->n[n] = 1;
        run->tokens[n] = s->last;
        n++;
    }
    if (n == 0) {
        if (n_enc)
            *stats = (struct gen_step_stats){.batch = true,
                                             .rows = (size_t)n_enc,
                                             .tokens = n_enc_ids,
                                             .seconds = now_seconds() - t0};
        return;
    }
    struct bart_step st = {.n_seqs = n, .seqs = run->seqs, .tokens = run->tokens, .n_tokens = run->n};
    const float *logits = NULL;
    struct err e = {0};
    if (bart_forward(g->m->net, g->ctx, run->run, &st, &logits, &e) != 0) {
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

const struct gen_kind gen_kind_bart = {
    .name = "bart",
    .encoder_decoder = true,
    .model_types = model_types,
    .load = load,
    .unload = unload,
    .cache_new = cache_new,
    .cache_free = cache_free,
    .cache_reset = cache_reset,
    .cache_copy = cache_copy,
    .run_new = run_new,
    .run_free = run_free,
    .step = step,
};
