/* sampling: the logits processors of transformers' generate, OpenAI's penalties, the seeded
 * xoshiro256** generator, softmax sampling, greedy argmax and log-probabilities; see sampling.h
 * for the order and the exact semantics. */
#include "generate/sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* The selections of top_k, top_p and typical_p histogram the keys into SELECT_BUCKETS buckets,
 * and sort candidate lists once they are down to SELECT_SHORT entries. */
#define SELECT_BUCKETS 1024
#define SELECT_SHORT 32

/* ---- generator ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void gen_rng_seed(struct gen_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed;
    if (stream) { /* a different, decorrelated starting point per stream */
        uint64_t t = stream;
        x ^= splitmix64(&t);
    }
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t gen_rng_next(struct gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double gen_rng_uniform(struct gen_rng *r)
{
    return (double)(gen_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t gen_seed_random(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
        return seed;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return splitmix64(&x);
}

/* ---- scratch and partial sorting ---- */

int logits_scratch_init(struct logits_scratch *s, size_t n, struct err *e)
{
    memset(s, 0, sizeof *s);
    s->idx = malloc(n * sizeof *s->idx);
    s->key = malloc(n * sizeof *s->key);
    s->prob = malloc(n * sizeof *s->prob);
    s->bucket = malloc(n * sizeof *s->bucket);
    if (!s->idx || !s->key || !s->prob || !s->bucket) {
        logits_scratch_fini(s);
        return err_set(e, ERR_NOMEM, "sampler: out of memory for %zu logits", n);
    }
    s->n = n;
    return 0;
}

void logits_scratch_fini(struct logits_scratch *s)
{
    free(s->idx);
    free(s->key);
    free(s->prob);
    free(s->bucket);
    memset(s, 0, sizeof *s);
}

/* The strict order of the selections: larger key first, then lower index. */
static bool before(const double *key, uint32_t a, uint32_t b)
{
    return key[a] > key[b] || (key[a] == key[b] && a < b);
}

static int cmp_before(const void *pa, const void *pb, void *ctx)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return before(ctx, a, b) ? -1 : before(ctx, b, a) ? 1 : 0;
}

/* Insertion sort in `before` order, for short candidate lists. */
static void sort_short(const double *key, uint32_t *idx, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t v = idx[i];
        size_t j = i;
        for (; j > 0 && before(key, v, idx[j - 1]); j--)
            idx[j] = idx[j - 1];
        idx[j] = v;
    }
}

/* Bucket of a key in [lo, hi] (bucket 0 holds hi; -inf keys land in the last one). Monotonic:
 * a larger key never lands in a later bucket. */
static uint16_t bucket_of(double key, double hi, double scale)
{
    double b = (hi - key) * scale;
    return (uint16_t)(b < SELECT_BUCKETS - 1 ? b : SELECT_BUCKETS - 1);
}

/* The entry at the first position, in `before` order, where the total weight of positions 0..j
 * reaches target (weight = prob[i], or 1 each when prob is NULL), or -1 when it never does.
 * The entries ahead of it are exactly those `before` it. Linear: a histogram of the weight per
 * key bucket finds the bucket where the total crosses target, and only that bucket's entries
 * are looked at again (re-bucketed, or sorted once few). idx: scratch for n entries. */
static int64_t entry_reaching(const double *key, const double *prob, struct logits_scratch *s,
                              size_t n, double target)
{
    uint32_t *idx = s->idx;
    size_t m = n; /* candidates idx[0..m), always in ascending index order */
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    double acc = 0;       /* weight of every entry ahead of the candidates */
    bool ordered = false; /* the candidates are in `before` order already */
    double weight[SELECT_BUCKETS];
    while (m > SELECT_SHORT) {
        double hi = -INFINITY, lo = INFINITY; /* lo: the smallest finite key */
        bool neg_inf = false;
        for (size_t i = 0; i < m; i++) {
            double k = key[idx[i]];
            hi = k > hi ? k : hi;
            if (k == -INFINITY)
                neg_inf = true;
            else
                lo = k < lo ? k : lo;
        }
        if (hi == -INFINITY || (!(hi > lo) && !neg_inf)) {
            ordered = true; /* all equal: ascending index order is `before` order */
            break;
        }
        /* equal finite keys and some -inf: any scale separates them (buckets 0 and last) */
        double scale = hi > lo ? (SELECT_BUCKETS - 1) / (hi - lo) : 1.0;
        if (!isfinite(scale) || !isfinite(hi))
            break; /* keys too close to bucket: sort them */
        memset(weight, 0, sizeof weight);
        for (size_t i = 0; i < m; i++) {
            uint16_t b = bucket_of(key[idx[i]], hi, scale);
            s->bucket[i] = b;
            weight[b] += prob ? prob[idx[i]] : 1.0;
        }
        size_t c = 0;
        for (; c < SELECT_BUCKETS && acc + weight[c] < target; c++)
            acc += weight[c];
        if (c == SELECT_BUCKETS)
            return -1;
        size_t w = 0; /* keep bucket c's entries, in order */
        for (size_t i = 0; i < m; i++)
            if (s->bucket[i] == c)
                idx[w++] = idx[i];
        m = w; /* hi is in bucket 0 and lo in the last: w < m */
    }
    if (!ordered && m <= SELECT_SHORT)
        sort_short(key, idx, m);
    else if (!ordered)
        qsort_r(idx, m, sizeof *idx, cmp_before, (void *)key);
    for (size_t j = 0; j < m; j++) {
        acc += prob ? prob[idx[j]] : 1.0;
        if (acc >= target)
            return idx[j];
    }
    return -1;
}

/* ---- e^x over the vocabulary ---- */

/* e^x for x <= 0 (logits minus their maximum), written so that loops over it vectorize (no
 * branches, no libm call): x = n ln2 + r with |r| <= ln2 / 2, e^r by its degree-6 Taylor
 * polynomial, 2^n through the exponent bits. Relative error < 3e-7 (expf's is ~1e-7). Below -87
 * (where e^x leaves float's normal range), and for -inf and NaN, it is 0. */
static inline float exp_nonpos(float x)
{
    const float log2e = 1.44269504f;
    const float ln2_hi = 0.693145751953125f; /* ln 2 = ln2_hi + ln2_lo, ln2_hi exact */
    const float ln2_lo = 1.428606765330187e-06f;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to integer */
    const uint32_t limit = 0x42AE0000u;    /* the bits of 87.0f */
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t keep = 0u - (uint32_t)((bits & 0x7FFFFFFFu) <= limit); /* all ones: |x| <= 87 */
    uint32_t xbits = bits & keep;
    float xc;
    memcpy(&xc, &xbits, sizeof xc);
    float n = (xc * log2e + round_magic) - round_magic;
    float r = xc - n * ln2_hi - n * ln2_lo;
    float p =
        1.0f +
        r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r / 720)))));
    uint32_t scale_bits = (uint32_t)((int32_t)n + 127) << 23; /* 2^n, n in [-126, 0] */
    float scale;
    memcpy(&scale, &scale_bits, sizeof scale);
    float v = p * scale;
    uint32_t vbits;
    memcpy(&vbits, &v, sizeof vbits);
    vbits &= keep;
    memcpy(&v, &vbits, sizeof v);
    return v;
}

/* The sums run in float over EXP_CHUNK entries split in EXP_LANES partial sums (which
 * vectorize), then in double across chunks. */
#define EXP_LANES 16
#define EXP_CHUNK 256

/* The largest logit (NaN skipped; -inf when there is none). */
static float max_logit(const float *logits, size_t n)
{
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (logits[i] > mx)
            mx = logits[i];
    return mx;
}

/* sum over i of e^(logits[i] - mx). */
static double exp_sum(const float *logits, size_t n, float mx)
{
    double sum = 0;
    size_t i = 0;
    for (; i + EXP_CHUNK <= n; i += EXP_CHUNK) {
        float acc[EXP_LANES] = {0};
        for (size_t k = 0; k < EXP_CHUNK; k += EXP_LANES)
            for (size_t j = 0; j < EXP_LANES; j++)
                acc[j] += exp_nonpos(logits[i + k + j] - mx);
        float chunk = 0;
        for (size_t j = 0; j < EXP_LANES; j++)
            chunk += acc[j];
        sum += chunk;
    }
    for (; i < n; i++)
        sum += exp_nonpos(logits[i] - mx);
    return sum;
}

/* w[i] = e^(logits[i] - mx); returns their sum. */
static double exp_weights(const float *logits, size_t n, float mx, double *w)
{
    for (size_t i = 0; i < n; i++)
        w[i] = exp_nonpos(logits[i] - mx);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += w[i];
    return sum;
}

/* ---- processors ---- */

void logits_repetition_penalty(float *logits, size_t n, const int32_t *ids, size_t n_ids,
                               double penalty)
{
    float pf = (float)penalty;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= n)
            continue;
        float *l = &logits[ids[i]];
        *l = *l < 0 ? *l * pf : *l / pf;
    }
}

void logits_frequency_presence(float *logits, size_t n, const int32_t *ids, const uint32_t *counts,
                               size_t n_ids, double frequency, double presence)
{
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= n || counts[i] == 0)
            continue;
        logits[ids[i]] -= (float)((double)counts[i] * frequency + presence);
    }
}

void logits_temperature(float *logits, size_t n, double temperature)
{
    float t = (float)temperature;
    for (size_t i = 0; i < n; i++)
        logits[i] /= t;
}

void logits_top_k(float *logits, size_t n, size_t k, struct logits_scratch *s)
{
    if (k == 0 || k >= n)
        return;
    for (size_t i = 0; i < n; i++)
        s->key[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    int64_t kth = entry_reaching(s->key, NULL, s, n, (double)k);
    float threshold = logits[kth];
    for (size_t i = 0; i < n; i++)
        if (!(logits[i] >= threshold))
            logits[i] = -INFINITY;
}

/* w[i] = e^(logits[i] - max), the softmax before normalization; returns sum(w) (0 when every
 * logit is -inf or NaN) and sets *lse to the log-sum-exp. */
static double weights_into(const float *logits, size_t n, double *w, double *lse)
{
    float mx = max_logit(logits, n);
    double sum = isinf(mx) ? 0 : exp_weights(logits, n, mx, w);
    if (sum <= 0)
        memset(w, 0, n * sizeof *w);
    *lse = sum > 0 ? (double)mx + log(sum) : -INFINITY;
    return sum;
}

void logits_top_p(float *logits, size_t n, double top_p, struct logits_scratch *s)
{
    if (top_p >= 1 || n == 0)
        return;
    double lse;
    double sum = weights_into(logits, n, s->prob, &lse);
    for (size_t i = 0; i < n; i++)
        s->key[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    /* token j stays when the mass ranked above it is < top_p: the tokens up to and including
     * the one where the mass reaches top_p */
    int64_t last = entry_reaching(s->key, s->prob, s, n, top_p * sum);
    if (last < 0)
        return; /* rounding: the whole mass stays under top_p */
    for (size_t i = 0; i < n; i++)
        if (i != (size_t)last && !before(s->key, (uint32_t)i, (uint32_t)last))
            logits[i] = -INFINITY;
}

void logits_typical_p(float *logits, size_t n, double mass, struct logits_scratch *s)
{
    if (mass >= 1 || n == 0)
        return;
    double lse;
    double sum = weights_into(logits, n, s->prob, &lse);
    double entropy = 0; /* -sum p log p */
    for (size_t i = 0; i < n; i++)
        if (s->prob[i] > 0)
            entropy -= s->prob[i] / sum * ((double)logits[i] - lse);
    /* key = -|(-log p) - entropy|: the most typical token has the largest key */
    size_t first = 0;
    for (size_t i = 0; i < n; i++) {
        s->key[i] = isfinite(logits[i]) ? -fabs(-((double)logits[i] - lse) - entropy) : -INFINITY;
        if (before(s->key, (uint32_t)i, (uint32_t)first))
            first = i;
    }
    int64_t last = entry_reaching(s->key, s->prob, s, n, mass * sum);
    double threshold = -INFINITY; /* never reached: HF clamps to the last position */
    if (last >= 0)
        threshold = s->key[last];
    for (size_t i = 0; i < n; i++)
        if (s->key[i] < threshold && i != first) /* shifted score > the cut's */
            logits[i] = -INFINITY;
}

int32_t logits_argmax(const float *logits, size_t n)
{
    int32_t best = 0;
    float v = -INFINITY;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (isnan(logits[i]))
            continue;
        if (!any || logits[i] > v) {
            v = logits[i];
            best = (int32_t)i;
            any = true;
        }
    }
    return best;
}

double logits_logsumexp(const float *logits, size_t n)
{
    float mx = max_logit(logits, n);
    if (isinf(mx))
        return mx;
    return (double)mx + log(exp_sum(logits, n, mx));
}

size_t logits_top_n(const float *logits, size_t n, size_t k, double lse, struct gen_logprob *out)
{
    if (k > GEN_MAX_TOP_N)
        k = GEN_MAX_TOP_N;
    if (k > n)
        k = n;
    /* insertion into out[0..have), sorted by value desc; out[].logprob holds the logit until
     * the end. Only a strictly larger value moves ahead, so equal values keep the lower id. */
    size_t have = 0;
    for (size_t i = 0; i < n && k > 0; i++) {
        float v = isnan(logits[i]) ? -INFINITY : logits[i];
        if (have == k) {
            if (!(v > out[k - 1].logprob))
                continue;
            have--; /* the last one drops out */
        }
        size_t pos = have;
        while (pos > 0 && v > out[pos - 1].logprob) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos].id = (int32_t)i;
        out[pos].logprob = v;
        have++;
    }
    for (size_t j = 0; j < have; j++)
        out[j].logprob = (float)((double)out[j].logprob - lse);
    return have;
}

/* ---- sampler ---- */

struct sampler {
    size_t n_vocab;
    /* the processing values of the request */
    bool do_sample;
    double temperature, top_p, typical_p, repetition_penalty, frequency_penalty, presence_penalty;
    size_t top_k;
    enum gen_logprobs_mode logprobs_mode;
    uint32_t top_n;
    struct gen_rng rng;
    /* repetition_penalty: distinct ids of prompt + generated tokens */
    uint8_t *seen;     /* (n_vocab) 1 when in seen_ids */
    int32_t *seen_ids; /* (n_vocab) */
    size_t n_seen;
    /* frequency and presence penalties: distinct generated ids and their counts */
    uint32_t *count_of; /* (n_vocab) occurrences among the generated tokens */
    int32_t *gen_ids;   /* (n_vocab) distinct generated ids */
    uint32_t *gen_counts;
    size_t n_gen;
    struct logits_scratch scratch; /* when sampling with sorting warpers */
    float *raw;                    /* (n_vocab) the model's logits, for GEN_LOGPROBS_RAW */
    /* bad_words_ids: the sequences (gen_params' layout, those of a lone eos id dropped) and the
     * last tail_cap ids of HF's input_ids (tail[n_ids % tail_cap] the oldest once full) */
    int32_t *bad_words;
    size_t bad_words_size;
    int32_t *tail;
    size_t tail_cap, n_ids;
    /* forced_bos_token_id: the only choice while HF's input_ids hold one token (cur_len 1) */
    int32_t forced_bos;
    size_t cur_len; /* prompt + generated ids so far */
    /* forced_eos_token_id: the only choice for the last of max_new_tokens */
    int32_t forced_eos;
    size_t n_new, max_new; /* generated so far; max_new_tokens (0: none) */
};

/* bad_words_ids without the sequences NoBadWordsLogitsProcessor drops (a lone eos id) into
 * s; tail_cap: the longest sequence less one. */
static int keep_bad_words(struct sampler *s, const struct gen_params *p, struct err *e)
{
    if (!p->bad_words_size)
        return 0;
    s->bad_words = malloc(p->bad_words_size * sizeof *s->bad_words);
    if (!s->bad_words)
        return err_set(e, ERR_NOMEM, "sampler: out of memory");
    const int32_t *w = p->bad_words, *end = w + p->bad_words_size;
    for (; w < end; w += 1 + w[0]) {
        if (w[0] < 1 || w[0] > end - w - 1)
            return err_set(e, ERR_INVALID, "bad_words_ids: a malformed sequence");
        bool eos = false;
        for (size_t i = 0; w[0] == 1 && i < p->n_eos_token_ids; i++)
            eos |= p->eos_token_ids[i] == w[1];
        for (int32_t k = 1; k <= w[0]; k++)
            if (w[k] < 0 || (size_t)w[k] >= s->n_vocab)
                return err_set(e, ERR_INVALID, "bad_words_ids: id %d is outside the vocabulary",
                               (int)w[k]);
        if (eos)
            continue;
        memcpy(s->bad_words + s->bad_words_size, w, (size_t)(1 + w[0]) * sizeof *w);
        s->bad_words_size += (size_t)(1 + w[0]);
        if ((size_t)w[0] - 1 > s->tail_cap)
            s->tail_cap = (size_t)w[0] - 1;
    }
    if (s->tail_cap && !(s->tail = malloc(s->tail_cap * sizeof *s->tail)))
        return err_set(e, ERR_NOMEM, "sampler: out of memory");
    return 0;
}

static void push_tail(struct sampler *s, int32_t id)
{
    if (s->tail_cap)
        s->tail[s->n_ids % s->tail_cap] = id;
    s->n_ids++;
}

/* The id k places back (k = 1: the last one); k <= min(n_ids, tail_cap). */
static int32_t tail_back(const struct sampler *s, size_t k)
{
    return s->tail[(s->n_ids - k) % s->tail_cap];
}

/* Bans each sequence's last id where the input_ids end with the rest of it (a single id:
 * always; a sequence longer than the input_ids: skipped), as the processor does. */
static void ban_bad_words(const struct sampler *s, float *logits)
{
    const int32_t *w = s->bad_words, *end = w + s->bad_words_size;
    for (; w < end; w += 1 + w[0]) {
        size_t n = (size_t)w[0];
        if (n > s->n_ids)
            continue;
        bool match = true;
        for (size_t k = 1; match && k < n; k++)
            match = tail_back(s, k) == w[n - k];
        if (match)
            logits[w[n]] = -INFINITY;
    }
}

static bool uses_repetition(const struct sampler *s)
{
    return s->repetition_penalty != 1.0;
}

static bool uses_freq_presence(const struct sampler *s)
{
    return s->frequency_penalty != 0.0 || s->presence_penalty != 0.0;
}

static bool uses_warpers(const struct sampler *s)
{
    return s->do_sample && (s->temperature != 1.0 || (s->top_k > 0 && s->top_k < s->n_vocab) ||
                            s->top_p < 1.0 || s->typical_p < 1.0);
}

static int sampler_alloc(struct sampler *s, struct err *e)
{
    size_t n = s->n_vocab;
    if (uses_repetition(s)) {
        s->seen = calloc(n, 1);
        s->seen_ids = malloc(n * sizeof *s->seen_ids);
        if (!s->seen || !s->seen_ids)
            return err_set(e, ERR_NOMEM, "sampler: out of memory");
    }
    if (uses_freq_presence(s)) {
        s->count_of = calloc(n, sizeof *s->count_of);
        s->gen_ids = malloc(n * sizeof *s->gen_ids);
        s->gen_counts = malloc(n * sizeof *s->gen_counts);
        if (!s->count_of || !s->gen_ids || !s->gen_counts)
            return err_set(e, ERR_NOMEM, "sampler: out of memory");
    }
    if (s->do_sample) {
        int rc = logits_scratch_init(&s->scratch, n, e);
        if (rc)
            return rc;
    }
    if (s->logprobs_mode == GEN_LOGPROBS_RAW &&
        (uses_repetition(s) || uses_freq_presence(s) || uses_warpers(s))) {
        s->raw = malloc(n * sizeof *s->raw);
        if (!s->raw)
            return err_set(e, ERR_NOMEM, "sampler: out of memory");
    }
    return 0;
}

int sampler_new(const struct gen_params *p, size_t n_vocab, uint64_t stream, struct sampler **out,
                struct err *e)
{
    *out = NULL;
    if (n_vocab == 0 || n_vocab > INT32_MAX)
        return err_set(e, ERR_INTERNAL, "sampler: bad vocabulary size %zu", n_vocab);
    struct sampler *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(e, ERR_NOMEM, "sampler: out of memory");
    s->n_vocab = n_vocab;
    s->do_sample = p->do_sample;
    s->temperature = p->temperature;
    s->top_k = p->top_k > 0 ? (size_t)p->top_k : 0;
    s->top_p = p->top_p;
    s->typical_p = p->typical_p;
    s->repetition_penalty = p->repetition_penalty;
    s->frequency_penalty = p->frequency_penalty;
    s->presence_penalty = p->presence_penalty;
    s->logprobs_mode = p->logprobs_mode;
    s->top_n = p->top_n_tokens > GEN_MAX_TOP_N ? GEN_MAX_TOP_N : p->top_n_tokens;
    s->forced_bos = p->forced_bos_token_id >= 0 && (size_t)p->forced_bos_token_id < n_vocab
                        ? p->forced_bos_token_id
                        : -1;
    s->forced_eos = p->forced_eos_token_id >= 0 && (size_t)p->forced_eos_token_id < n_vocab
                        ? p->forced_eos_token_id
                        : -1;
    s->max_new = p->max_new_tokens > 0 ? (size_t)p->max_new_tokens : 0;
    gen_rng_seed(&s->rng, p->seed, stream);
    int rc = sampler_alloc(s, e);
    if (rc == 0)
        rc = keep_bad_words(s, p, e);
    if (rc) {
        sampler_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sampler_free(struct sampler *s)
{
    if (!s)
        return;
    free(s->seen);
    free(s->seen_ids);
    free(s->count_of);
    free(s->gen_ids);
    free(s->gen_counts);
    logits_scratch_fini(&s->scratch);
    free(s->raw);
    free(s->bad_words);
    free(s->tail);
    free(s);
}

static void mark_seen(struct sampler *s, int32_t id)
{
    if (s->seen && id >= 0 && (size_t)id < s->n_vocab && !s->seen[id]) {
        s->seen[id] = 1;
        s->seen_ids[s->n_seen++] = id;
    }
}

void sampler_add_prompt(struct sampler *s, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mark_seen(s, ids[i]);
        push_tail(s, ids[i]);
    }
    s->cur_len += n;
}

static void accept(struct sampler *s, int32_t id)
{
    s->cur_len++;
    s->n_new++;
    mark_seen(s, id);
    push_tail(s, id);
    if (s->count_of && id >= 0 && (size_t)id < s->n_vocab) {
        if (s->count_of[id]++ == 0)
            s->gen_ids[s->n_gen++] = id;
    }
}

/* A draw from softmax(logits); the weights go to scratch.prob. */
static int32_t draw(struct sampler *s, const float *logits)
{
    size_t n = s->n_vocab;
    double *w = s->scratch.prob;
    float mx = max_logit(logits, n);
    double total = isinf(mx) ? 0 : exp_weights(logits, n, mx, w);
    if (total <= 0)
        return logits_argmax(logits, n);
    double target = gen_rng_uniform(&s->rng) * total;
    double acc = 0;
    int32_t last = -1; /* the last candidate, should rounding walk past the end */
    for (size_t i = 0; i < n; i++) {
        if (w[i] <= 0)
            continue;
        last = (int32_t)i;
        acc += w[i];
        if (acc > target)
            return last;
    }
    return last >= 0 ? last : logits_argmax(logits, n);
}

int32_t sampler_sample(struct sampler *s, float *logits, struct gen_choice *out)
{
    size_t n = s->n_vocab;
    if (s->raw)
        memcpy(s->raw, logits, n * sizeof *logits);
    if (uses_repetition(s))
        logits_repetition_penalty(logits, n, s->seen_ids, s->n_seen, s->repetition_penalty);
    if (uses_freq_presence(s)) {
        for (size_t i = 0; i < s->n_gen; i++)
            s->gen_counts[i] = s->count_of[s->gen_ids[i]];
        logits_frequency_presence(logits, n, s->gen_ids, s->gen_counts, s->n_gen,
                                  s->frequency_penalty, s->presence_penalty);
    }
    if (s->bad_words_size)
        ban_bad_words(s, logits);
    if (s->forced_bos >= 0 && s->cur_len == 1) { /* ForcedBOSTokenLogitsProcessor */
        for (size_t i = 0; i < n; i++)
            logits[i] = -INFINITY;
        logits[s->forced_bos] = 0.0f;
    }
    if (s->forced_eos >= 0 && s->max_new && s->n_new + 1 == s->max_new) { /* ForcedEOS... */
        for (size_t i = 0; i < n; i++)
            logits[i] = -INFINITY;
        logits[s->forced_eos] = 0.0f;
    }
    int32_t id;
    if (s->do_sample) {
        if (s->temperature != 1.0)
            logits_temperature(logits, n, s->temperature);
        logits_top_k(logits, n, s->top_k, &s->scratch);
        logits_top_p(logits, n, s->top_p, &s->scratch);
        logits_typical_p(logits, n, s->typical_p, &s->scratch);
        id = draw(s, logits);
    } else {
        id = logits_argmax(logits, n);
    }
    if (out) {
        const float *src = s->raw ? s->raw : logits;
        double lse = logits_logsumexp(src, n);
        out->id = id;
        out->logprob = (float)((double)src[id] - lse);
        out->n_top = (uint32_t)logits_top_n(src, n, s->top_n, lse, out->top);
    }
    accept(s, id);
    return id;
}
