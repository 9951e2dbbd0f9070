/* gen_s2s: the stepping shared by the encoder-decoder kinds (gen_t5.c, gen_bart.c). A step
 * encodes the inputs of the sequences not encoded yet (oldest first, within the prefill
 * budget, a longer one alone: an encoder pass cannot be split), then runs one decoder step of
 * every encoded sequence: the decoder start token for those just encoded (their first token
 * comes in the same step), the last token for the others. A kind gives its model's calls in a
 * struct gen_s2s_ops; its gen_kind row takes gen_s2s_run_free and gen_s2s_step as they are,
 * and its run_new calls gen_s2s_run_new with its ops. Internal to engine/generate/. */
#ifndef INFERD_GEN_S2S_H
#define INFERD_GEN_S2S_H

#include "gen_impl.h"

struct gen_s2s_ops {
    /* the model's buffers for steps of up to max_seqs sequences (its activations and its
     * array of the step's caches); NULL when out of memory */
    void *(*run_new)(size_t max_seqs);
    void (*run_free)(void *model_run);
    /* encodes the inputs of st[0..n) (their caches st[i]->cache): ids holds them in order,
     * n_ids[i] each */
    int (*encode)(const struct gen_model *m, struct dnn_ctx *ctx, void *model_run,
                  struct gen_seq *const *st, int n, const int32_t *ids, const int *n_ids,
                  struct err *e);
    /* one decoder step of st[0..n), n_tokens[i] tokens each: next-token logits (n, vocab) */
    int (*forward)(const struct gen_model *m, struct dnn_ctx *ctx, void *model_run,
                   struct gen_seq *const *st, int n, const int32_t *tokens, const int *n_tokens,
                   const float **logits, struct err *e);
};

/* A kind's run buffers for lim (gen_kind.run_new); NULL when out of memory. */
void *gen_s2s_run_new(const struct gen_s2s_ops *ops, const struct generator_limits *lim);
/* gen_kind.run_free (NULL passes) */
void gen_s2s_run_free(void *run);
/* gen_kind.step */
void gen_s2s_step(struct generator *g, struct gen_seq *const *seqs, size_t n_seqs, size_t budget,
                  struct gen_step_stats *stats);

#endif
