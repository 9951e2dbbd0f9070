/* sampling: picks the next token from one sequence's logits (float[n_vocab]) the way
 * transformers' generate does, plus OpenAI's penalties, with a seeded generator; reports the
 * chosen token's log-probability and the top-n alternatives. Knows nothing of models or text.
 *
 * Order (transformers' _get_logits_processor; TGI's NextTokenChooser has the same):
 *   1. repetition_penalty over every distinct token of prompt + generated ids (HF: the
 *      decoder's input_ids): a logit < 0 is multiplied by the penalty, else divided by it;
 *   2. frequency_penalty and presence_penalty over the generated ids (OpenAI's definition:
 *      logit -= count * frequency + (count > 0) * presence); bad_words_ids
 *      (NoBadWordsLogitsProcessor: a sequence's last id is -inf where the input_ids end with
 *      the rest of it, a single id always, one longer than the input_ids never; a lone eos id
 *      is dropped);
 *   then, only when sampling (do_sample):
 *   3. temperature: logits / temperature;
 *   4. top_k: logits below the k-th largest become -inf (ties with it stay, as torch.topk);
 *   5. top_p: in descending order, a token stays while the probability mass strictly before it
 *      is < top_p (HF: ascending cumulative softmax <= 1 - top_p is removed); the most
 *      probable token always stays;
 *   6. typical_p: tokens ordered by |-log p - entropy| ascending; the cut is the first position
 *      where the cumulative probability reaches typical_p; tokens farther than it become -inf,
 *      the first one always stays;
 *   7. a draw from the softmax of what is left (xoshiro256** seeded per request, see
 *      gen_rng_seed), or, when not sampling, argmax (ties to the lowest id, as torch.argmax).
 * Ties in the orderings of steps 5 and 6 go to the lower id (kept first). Sums are in double;
 * e^x is a vectorizable approximation (relative error < 3e-7). Every step is linear in the
 * vocabulary (top-k/top-p/typical-p select through a histogram of the keys, not a full sort).
 * The same seed and logits give the same tokens; HF's torch.multinomial draws differ, so
 * seeded outputs are reproducible here but not equal to transformers'.
 *
 * Log-probabilities (gen_params.logprobs_mode): GEN_LOGPROBS_PROCESSED is log_softmax of the
 * logits after steps 1-6 (TGI: tokens removed by a warper have -inf), GEN_LOGPROBS_RAW that of
 * the model's logits (vLLM). */
#ifndef INFERD_GEN_SAMPLING_H
#define INFERD_GEN_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "generate/params.h"

/* xoshiro256** (Blackman and Vigna, 2018): 256-bit state, period 2^256 - 1. */
struct gen_rng {
    uint64_t s[4];
};

/* Seeds the state from splitmix64 over seed; stream picks an independent sequence for the
 * same seed (choice i of an OpenAI n > 1 request uses stream i; stream 0 is the plain seed). */
void gen_rng_seed(struct gen_rng *r, uint64_t seed, uint64_t stream);
uint64_t gen_rng_next(struct gen_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double gen_rng_uniform(struct gen_rng *r);
/* A seed for requests that give none (getrandom, else the clock). */
uint64_t gen_seed_random(void);

/* ---- the processors, in place on logits[n] (also usable one by one) ---- */

/* Scratch the sorting processors need, sized for n logits. */
struct logits_scratch {
    size_t n;
    uint32_t *idx;    /* (n) */
    double *key;      /* (n) */
    double *prob;     /* (n) */
    uint16_t *bucket; /* (n) */
};
int logits_scratch_init(struct logits_scratch *s, size_t n, struct err *e);
void logits_scratch_fini(struct logits_scratch *s);

/* ids: distinct token ids (out-of-range ones are skipped). */
void logits_repetition_penalty(float *logits, size_t n, const int32_t *ids, size_t n_ids,
                               double penalty);
/* ids[i] occurred counts[i] > 0 times among the generated tokens; ids distinct. */
void logits_frequency_presence(float *logits, size_t n, const int32_t *ids, const uint32_t *counts,
                               size_t n_ids, double frequency, double presence);
void logits_temperature(float *logits, size_t n, double temperature);
/* k >= n leaves logits alone. */
void logits_top_k(float *logits, size_t n, size_t k, struct logits_scratch *s);
/* top_p >= 1 leaves logits alone. */
void logits_top_p(float *logits, size_t n, double top_p, struct logits_scratch *s);
/* mass >= 1 leaves logits alone. */
void logits_typical_p(float *logits, size_t n, double mass, struct logits_scratch *s);

/* The first index of the largest logit (NaN never wins). */
int32_t logits_argmax(const float *logits, size_t n);
/* log(sum(exp(logits))) in double; -inf logits count as 0. */
double logits_logsumexp(const float *logits, size_t n);

struct gen_logprob {
    int32_t id;
    float logprob;
};

/* The k (<= GEN_MAX_TOP_N) largest logits as log-probabilities (logit - lse), by descending
 * value then ascending id; returns how many were written (k or n when smaller). */
size_t logits_top_n(const float *logits, size_t n, size_t k, double lse, struct gen_logprob *out);

/* ---- one sequence's sampler: state across steps (penalty history, generator) ---- */

struct gen_choice {
    int32_t id;
    float logprob; /* of id, in the params' logprobs_mode */
    uint32_t n_top;
    struct gen_logprob top[GEN_MAX_TOP_N]; /* params.top_n_tokens alternatives */
};

struct sampler;

/* A sampler for logits of n_vocab entries, with p's processing values, seeded from p->seed and
 * stream (see gen_rng_seed). Allocates its history and scratch here, never per token.
 * ERR_INVALID for malformed bad_words or an id of them outside the vocabulary. */
int sampler_new(const struct gen_params *p, size_t n_vocab, uint64_t stream, struct sampler **out,
                struct err *e);
void sampler_free(struct sampler *s);

/* Tokens that count for repetition_penalty and bad_words besides the generated ones: HF's
 * input_ids, i.e. the prompt of a decoder-only model, or the decoder start token of an
 * encoder-decoder. */
void sampler_add_prompt(struct sampler *s, const int32_t *ids, size_t n);

/* Processes logits (float[n_vocab], modified in place) and picks the next token, which it then
 * records as generated; fills out (when not NULL) with the id and log-probabilities. */
int32_t sampler_sample(struct sampler *s, float *logits, struct gen_choice *out);

#endif
