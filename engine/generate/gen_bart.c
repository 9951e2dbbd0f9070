/* gen_bart: the generation kind of the BART-like encoder-decoders (engine/models/bart.h:
 * config.json model_types bart, mbart, marian, m2m100, pegasus). gen_s2s.c steps them as it
 * steps T5: a step encodes the inputs of the sequences not encoded yet (oldest first, within
 * the prefill budget, a longer one alone), then runs one decoder step of every encoded
 * sequence (the decoder start token for those just encoded); a sequence's cache holds the
 * cross-attention keys and values of its input and the decoder's self-attention cache, and
 * reserves room for max_total input ids and as many decoder tokens. Unlike T5, the position
 * table bounds both: inputs and outputs longer than max_position_embeddings are refused. */
#include <stdlib.h>

#include "gen_s2s.h"
#include "models/bart.h"

/* The model's part of the stepping thread's buffers (gen_s2s.c holds the rest). */
struct bart_gen_run {
    struct bart_run *run;
    struct bart_seq **seqs; /* (max_seqs) the step's caches */
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

static int cache_fork(void *dst, const void *src, struct err *e)
{
    return bart_seq_fork(dst, src, e);
}

static void model_run_free(void *run_)
{
    struct bart_gen_run *r = run_;
    if (!r)
        return;
    bart_run_free(r->run);
    free(r->seqs);
    free(r);
}

static void *model_run_new(size_t max_seqs)
{
    struct bart_gen_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->run = bart_run_new();
    r->seqs = calloc(max_seqs, sizeof *r->seqs);
    if (!r->run || !r->seqs) {
        model_run_free(r);
        return NULL;
    }
    return r;
}

/* The caches of st[0..n), in r->seqs. */
static struct bart_seq *const *caches(struct bart_gen_run *r, struct gen_seq *const *st, int n)
{
    for (int i = 0; i < n; i++)
        r->seqs[i] = st[i]->cache;
    return r->seqs;
}

static int encode(const struct gen_model *m, struct dnn_ctx *ctx, void *run_,
                  struct gen_seq *const *st, int n, const int32_t *ids, const int *n_ids,
                  struct err *e)
{
    struct bart_gen_run *r = run_;
    struct bart_encode_batch b = {
        .n_seqs = n, .seqs = caches(r, st, n), .ids = ids, .n_ids = n_ids};
    return bart_encode(m->net, ctx, r->run, &b, NULL, e);
}

static int forward(const struct gen_model *m, struct dnn_ctx *ctx, void *run_,
                   struct gen_seq *const *st, int n, const int32_t *tokens, const int *n_tokens,
                   const float **logits, struct err *e)
{
    struct bart_gen_run *r = run_;
    struct bart_step s = {
        .n_seqs = n, .seqs = caches(r, st, n), .tokens = tokens, .n_tokens = n_tokens};
    return bart_forward(m->net, ctx, r->run, &s, logits, e);
}

static const struct gen_s2s_ops s2s_ops = {
    .run_new = model_run_new,
    .run_free = model_run_free,
    .encode = encode,
    .forward = forward,
};

static void *run_new(const struct generator_limits *lim)
{
    return gen_s2s_run_new(&s2s_ops, lim);
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
    .cache_fork = cache_fork,
    .run_new = run_new,
    .run_free = gen_s2s_run_free,
    .step = gen_s2s_step,
};
