/* gen_t5: the encoder-decoder generation kind for T5 (engine/models/t5.h, config.json
 * model_types "t5" and "mt5"). A sequence's prompt is the encoder input; its cache holds the
 * cross-attention keys and values of that input and the decoder's self-attention cache.
 *
 * A step (gen_s2s.c, shared with gen_bart.c) first encodes the inputs of the sequences not encoded yet, oldest first, in one
 * t5_encode call of at most the step's prefill budget of input ids (an input longer than that
 * is encoded alone: an encoder pass cannot be split), then runs one decoder step of every
 * encoded sequence: the decoder start token for those just encoded (their first token comes
 * in the same step), the last token for the others. A sequence reserves room for max_total
 * input ids and as many decoder tokens: its input plus its new tokens are within max_total,
 * and the decoder caches the start token and every generated one but the last. */
#include <stdlib.h>

#include "gen_s2s.h"
#include "models/t5.h"

/* The model's part of the stepping thread's buffers (gen_s2s.c holds the rest). */
struct t5_gen_run {
    struct t5_run *run;
    struct t5_seq **seqs; /* (max_seqs) the step's caches */
};

static size_t model_types(const char **names, size_t cap)
{
    return t5_model_types(names, cap);
}

static int load(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct gen_model *m,
                struct err *e)
{
    struct t5_model *t5 = NULL;
    int rc = t5_load(dir, dt, ctx, &t5, e);
    if (rc)
        return rc;
    m->net = t5;
    m->hf = t5_config(t5);
    /* relative positions: no table bounds the lengths (transformers only warns past the
     * tokenizer's model_max_length) */
    m->max_positions = 0;
    m->vocab_size = t5_vocab_size(t5);
    m->decoder_start_token_id = t5_decoder_start_token_id(t5);
    return 0;
}

static void unload(struct gen_model *m)
{
    t5_unload(m->net);
}

static int cache_new(const struct gen_model *m, int max_total, void **out, struct err *e)
{
    struct t5_seq *seq = NULL;
    int rc = t5_seq_new(m->net, max_total, max_total, &seq, e);
    *out = seq;
    return rc;
}
static void cache_free(void *cache)
{
    t5_seq_free(cache);
}
static void cache_reset(void *cache)
{
    t5_seq_reset(cache);
}

static int cache_copy(void *dst, const void *src, struct err *e)
{
    return t5_seq_copy(dst, src, e);
}

static int cache_fork(void *dst, const void *src, struct err *e)
{
    return t5_seq_fork(dst, src, e);
}

static void model_run_free(void *run_)
{
    struct t5_gen_run *r = run_;
    if (!r)
        return;
    t5_run_free(r->run);
    free(r->seqs);
    free(r);
}

static void *model_run_new(size_t max_seqs)
{
    struct t5_gen_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->run = t5_run_new();
    r->seqs = calloc(max_seqs, sizeof *r->seqs);
    if (!r->run || !r->seqs) {
        model_run_free(r);
        return NULL;
    }
    return r;
}

/* The caches of st[0..n), in r->seqs. */
static struct t5_seq *const *caches(struct t5_gen_run *r, struct gen_seq *const *st, int n)
{
    for (int i = 0; i < n; i++)
        r->seqs[i] = st[i]->cache;
    return r->seqs;
}

static int encode(const struct gen_model *m, struct dnn_ctx *ctx, void *run_,
                  struct gen_seq *const *st, int n, const int32_t *ids, const int *n_ids,
                  struct err *e)
{
    struct t5_gen_run *r = run_;
    struct t5_encode_batch b = {
        .n_seqs = n, .seqs = caches(r, st, n), .ids = ids, .n_ids = n_ids};
    return t5_encode(m->net, ctx, r->run, &b, e);
}

static int forward(const struct gen_model *m, struct dnn_ctx *ctx, void *run_,
                   struct gen_seq *const *st, int n, const int32_t *tokens, const int *n_tokens,
                   const float **logits, struct err *e)
{
    struct t5_gen_run *r = run_;
    struct t5_step s = {
        .n_seqs = n, .seqs = caches(r, st, n), .tokens = tokens, .n_tokens = n_tokens};
    return t5_forward(m->net, ctx, r->run, &s, logits, e);
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

const struct gen_kind gen_kind_t5 = {
    .name = "t5",
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
