/* gen_impl: the inside of generator.h, shared by gen_model.c, generator.c and the kinds'
 * files (gen_decoder.c, gen_t5.c, gen_bart.c, gen_s2s.c) and the cache pool (gen_cache.c);
 * nothing outside engine/generate/ includes it (but tests).
 *
 * Adding an architecture kind (an encoder-decoder such as BART, say): one file that fills a
 * struct gen_kind (its model types, load/unload, its caches, its run buffers and its step),
 * and one row in gen_model.c's kinds table. Its step composes the batch from the sequences it
 * is given and hands each sequence's logits row to gen_seq_emit; gen_seq_fail marks a
 * sequence that cannot go on. */
#ifndef INFERD_GEN_IMPL_H
#define INFERD_GEN_IMPL_H

#include <pthread.h>

#include "chat/template.h"
#include "generate/grammar.h"
#include "generate/generator.h"
#include "ops/dnnl.h"
#include "tokenizer/tokenizer.h"

struct gen_kind {
    const char *name;
    bool encoder_decoder; /* the prompt is encoded; the decoder starts from its start token */
    /* the config.json model_types it runs: up to cap into names; returns how many */
    size_t (*model_types)(const char **names, size_t cap);
    /* loads dir's weights into m->net and fills m->max_positions, m->vocab_size,
     * m->decoder_start_token_id and m->hf (config.json, for the eos fallback) */
    int (*load)(const char *dir, enum dtype_compute dt, struct dnn_ctx *ctx, struct gen_model *m,
                struct err *e);
    void (*unload)(struct gen_model *m);
    /* a cache for one sequence of up to max_total tokens */
    int (*cache_new)(const struct gen_model *m, int max_total, void **out, struct err *e);
    void (*cache_free)(void *cache);
    void (*cache_reset)(void *cache);
    /* dst becomes a copy of src's cached state (a forked beam) */
    int (*cache_copy)(void *dst, const void *src, struct err *e);
    /* prefix caching (gen_cache.c; NULL for a kind that opts out: the encoder-decoders, whose
     * decoder caches follow an encoded input): the positions a cache holds, and dst holding
     * src's first n of them (dst == src: cut in place), ERR_INVALID when it cannot be cut there */
    int (*cache_len)(const void *cache);
    int (*cache_prefix)(void *dst, const void *src, int n, struct err *e);
    /* an encoder-decoder's: dst becomes a beam forked from src (both of one search): src's
     * decoder positions copied, the encoded input shared (read from the cache that encoded
     * it, never copied; the search's caches are retired together). NULL: cache_copy */
    int (*cache_fork)(void *dst, const void *src, struct err *e);
    /* the stepping thread's buffers for lim (activations, the step's arrays) */
    void *(*run_new)(const struct generator_limits *lim);
    void (*run_free)(void *run);
    /* one step (see generator_step): fills stats when a forward pass ran */
    void (*step)(struct generator *g, struct gen_seq *const *seqs, size_t n, size_t budget,
                 struct gen_step_stats *stats);
};

extern const struct gen_kind gen_kind_decoder; /* gen_decoder.c */
extern const struct gen_kind gen_kind_t5;      /* gen_t5.c */
extern const struct gen_kind gen_kind_bart;    /* gen_bart.c */

struct gen_model {
    const struct gen_kind *kind;
    void *net; /* the kind's network: struct decoder_model, struct t5_model */
    const struct hf_config *hf;
    struct tokenizer *tokenizer;
    struct gen_config gen_config;  /* generation_config.json (+ config.json's eos fallback) */
    struct chat_template_set chat; /* chat.main NULL when the model has no chat template */
    int64_t max_positions;         /* 0: unbounded (T5) */
    int vocab_size;
    int32_t decoder_start_token_id; /* encoder-decoders; -1 otherwise */
    struct json_t *task_params;     /* config.json's task_specific_params (NULL: none) */
    char model_id[256];
    /* constrained decoding's view of the vocabulary, made on first use (gen_model_gram_vocab) */
    struct gram_vocab *gvocab;
    pthread_mutex_t gvocab_mu;
};

/* The model's gram_vocab (made on the first call); NULL with e set when that failed. */
const struct gram_vocab *gen_model_gram_vocab(const struct gen_model *m, struct err *e);

/* A cache no sequence holds (gen_cache.c), with the tokens it still holds for a later
 * sequence that starts with them (prefix caching); n_ids 0 once reset. */
struct gen_cached {
    void *cache;
    int32_t *ids; /* (cap) the tokens in the cache, in order */
    size_t n_ids, cap;
    uint64_t used; /* the generator's tick when last retired or reused: LRU */
};

struct generator {
    const struct gen_model *m;
    struct generator_limits lim;
    struct dnn_ctx *ctx;     /* generator_open's */
    void *run;               /* the kind's run buffers */
    struct gen_cached *pool; /* (max_seqs) the caches no sequence holds; [n_pool, max_seqs)
                                keep their ids buffers for the next retire */
    size_t n_pool;
    size_t n_caches;       /* caches alive: pooled + held by sequences */
    uint64_t tick;         /* LRU clock */
    struct gen_seq *live;  /* the sequences holding a cache (not beams): prefixes to copy */
    /* the step in progress */
    gen_step_fn fn;
    void *arg;
    struct gen_event ev;
};

struct gen_seq {
    void *cache;
    const int32_t *prompt;
    size_t n_prompt;
    const struct gen_params *params;
    void *user;
    size_t n_fed; /* prompt tokens in the cache (an encoder-decoder: n_prompt once encoded) */
    int32_t last; /* the token the next decode feeds */
    bool done;    /* finished or failed: not stepped again */
    struct sampler *sampler;
    struct stopper *stopper;
    int32_t *ids; /* (params->max_new_tokens) generated */
    size_t n_ids;
    float *prompt_logprobs; /* (n_prompt) with decoder_input_details */
    /* a beam of a beam search (gen_beam.c): gen_seq_emit keeps its logits row there instead
     * of sampling; no sampler, stopper or ids */
    struct gen_beam *beam;
    int beam_index;
    /* prefix caching (gen_cache.c): on g->live while it holds its cache; the prompt tokens its
     * cache started with (n_fed starts there); whether it looked for them; failed: its cache
     * is not kept */
    struct gen_seq *live_prev, *live_next;
    size_t n_cached;
    bool looked_up, failed;
    /* constrained decoding (params->grammar): the automaton's state after the ids so far,
     * the model's vocabulary view, and a mask the grammar's cache could not keep */
    int32_t gstate;
    const struct gram_vocab *gvocab;
    uint64_t *gscratch;
};

/* gen_cache.c: a cache for s from the pool (with its prompt's longest cached prefix when s
 * may reuse one: n_cached, n_fed set), or a new one; s->cache set. */
int gen_cache_take(struct generator *g, struct gen_seq *s, struct err *e);
/* s's cache back to the pool, keeping the tokens it holds unless s failed or is a beam. */
void gen_cache_give(struct generator *g, struct gen_seq *s);
/* Frees every pooled cache and the pool. */
void gen_cache_free_pool(struct generator *g);

/* gen_beam.c: where gen_seq_emit puts a beam's logits row. */
void gen_beam_keep_row(struct gen_beam *b, int index, const float *logits);

/* Samples s's next token from logits (modified in place: the step's own memory), runs it
 * through the stopper and reports it. */
/* The per-step arrays every kind's run buffers hold: the step's sequences (*st) and the tokens
 * each feeds (*n), max_seqs each, and n_tokens token ids (*tokens). gen_step_arrays_new
 * allocates all three (false when out of memory: then none); gen_step_arrays_free frees them
 * (NULLs pass). */
bool gen_step_arrays_new(size_t max_seqs, size_t n_tokens, struct gen_seq ***st, int **n,
                         int32_t **tokens);
void gen_step_arrays_free(struct gen_seq **st, int *n, int32_t *tokens);

void gen_seq_emit(struct generator *g, struct gen_seq *s, float *logits, double now);
/* s cannot go on: reported with msg, not stepped again. */
void gen_seq_fail(struct generator *g, struct gen_seq *s, const char *msg);
/* Log-probabilities of the prompt tokens a chunk of k rows predicts (row j: the token at
 * n_fed + j predicts the prompt token at n_fed + j + 1). */
void gen_seq_prompt_logprobs(struct gen_seq *s, const float *rows, int k, int V);

#endif
