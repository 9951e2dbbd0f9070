/* test_generate: the model-independent parts of generation (engine/generate).
 * - each logits processor on small vectors whose expected values are worked out by hand from
 *   the transformers definitions (logits_process.py) quoted in the comments;
 * - seeded sampling: reproducible, different across seeds, distributed as the softmax, top_k=1
 *   equal to greedy; xoshiro256** against its published first outputs;
 * - the API dialects' parameters (server/params*.c) and generation_config.json loading:
 *   test_gen_params.c; stop conditions and streaming detokenization: test_generate_text.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate/params.h"
#include "generate/sampling.h"
#include "suites.h"
#include "support/support.h"

/* ---- processors (expected values from the HF formulas, by hand) ---- */

static void assert_logits(const float *got, const float *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        bool ok = isinf(want[i]) ? got[i] == want[i] : fabsf(got[i] - want[i]) < 1e-6f;
        ck_assert_msg(ok, "%s: [%zu] = %g, want %g", what, i, got[i], want[i]);
    }
}

/* Whether a warper left a token in (removed ones are -inf). */
static bool kept(float logit)
{
    return logit != -INFINITY;
}

START_TEST(processors_penalties)
{
    /* RepetitionPenaltyLogitsProcessor: where(score < 0, score * p, score / p) on seen ids */
    float l[] = {2.0f, -1.0f, 0.5f, -3.0f};
    int32_t seen[] = {0, 1, 7 /* out of range: skipped */};
    logits_repetition_penalty(l, 4, seen, 3, 2.0);
    float want[] = {1.0f, -2.0f, 0.5f, -3.0f};
    assert_logits(l, want, 4, "repetition");
    /* OpenAI: logit -= count * frequency + (count > 0) * presence */
    float f[] = {1.0f, 1.0f, 1.0f};
    int32_t ids[] = {0, 2};
    uint32_t counts[] = {3, 1};
    logits_frequency_presence(f, 3, ids, counts, 2, 0.5, 0.25);
    float wf[] = {-0.75f, 1.0f, 0.25f};
    assert_logits(f, wf, 3, "frequency/presence");
    float t[] = {1.0f, 2.0f, -4.0f};
    logits_temperature(t, 3, 2.0);
    float wt[] = {0.5f, 1.0f, -2.0f};
    assert_logits(t, wt, 3, "temperature");
}
END_TEST

START_TEST(processors_top_k)
{
    struct logits_scratch s;
    ck_assert_int_eq(logits_scratch_init(&s, 8, NULL), 0);
    /* TopKLogitsWarper: scores < topk(scores, k)[-1] become -inf; ties with the k-th stay */
    float a[] = {1, 3, 2, 3, 0};
    logits_top_k(a, 5, 2, &s);
    float wa[] = {-INFINITY, 3, -INFINITY, 3, -INFINITY};
    assert_logits(a, wa, 5, "top_k 2");
    float b[] = {1, 3, 2, 3, 0};
    logits_top_k(b, 5, 3, &s);
    float wb[] = {-INFINITY, 3, 2, 3, -INFINITY};
    assert_logits(b, wb, 5, "top_k 3");
    float c[] = {1, 2, 2, 0};
    logits_top_k(c, 4, 1, &s); /* the tie at the top keeps both */
    float wc[] = {-INFINITY, 2, 2, -INFINITY};
    assert_logits(c, wc, 4, "top_k 1 tie");
    float d[] = {1, 2, 0};
    logits_top_k(d, 3, 3, &s); /* k >= n: nothing removed */
    float wd[] = {1, 2, 0};
    assert_logits(d, wd, 3, "top_k n");
    logits_scratch_fini(&s);
}
END_TEST

/* logits whose softmax is exactly p (up to float rounding) */
static void from_probs(float *l, const double *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        l[i] = (float)log(p[i]);
}

START_TEST(processors_top_p)
{
    struct logits_scratch s;
    ck_assert_int_eq(logits_scratch_init(&s, 8, NULL), 0);
    /* probabilities 0.15, 0.5, 0.05, 0.3 (scrambled ids). TopPLogitsWarper sorts ascending
     * (0.05, 0.15, 0.3, 0.5), cumulative 0.05, 0.2, 0.5, 1.0, removes cum <= 1 - top_p. */
    const double p[] = {0.15, 0.5, 0.05, 0.3};
    struct {
        double top_p;
        bool keep[4];
    } cases[] = {
        {0.75, {false, true, false, true}},  /* removes cum <= 0.25: 0.05, 0.15 */
        {0.9, {true, true, false, true}},    /* removes cum <= 0.1: 0.05 */
        {0.3, {false, true, false, false}},  /* removes cum <= 0.7: all but 0.5 */
        {0.01, {false, true, false, false}}, /* min_tokens_to_keep = 1 */
        {1.0, {true, true, true, true}},     /* off */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float l[4];
        from_probs(l, p, 4);
        logits_top_p(l, 4, cases[c].top_p, &s);
        for (size_t i = 0; i < 4; i++)
            ck_assert_msg(kept(l[i]) == cases[c].keep[i], "top_p %g: token %zu kept=%d",
                          cases[c].top_p, i, kept(l[i]));
    }
    logits_scratch_fini(&s);
}
END_TEST

START_TEST(processors_typical_p)
{
    struct logits_scratch s;
    ck_assert_int_eq(logits_scratch_init(&s, 8, NULL), 0);
    /* p = 0.5, 0.3, 0.15, 0.05: entropy H = -sum p ln p = 1.142120.
     * |-ln p - H| = 0.448973, 0.061853, 0.755000, 1.853612; ascending order: 0.3, 0.5, 0.15,
     * 0.05 with cumulative 0.3, 0.8, 0.95, 1.0. last_ind = #(cum < mass); tokens whose shifted
     * score exceeds the one at last_ind are removed (the first in order always stays). */
    const double p[] = {0.5, 0.3, 0.15, 0.05};
    struct {
        double mass;
        bool keep[4];
    } cases[] = {
        {0.5, {true, true, false, false}},  /* last_ind 1: cut at 0.448973 */
        {0.2, {false, true, false, false}}, /* last_ind 0: even the most probable goes */
        {0.9, {true, true, true, false}},   /* last_ind 2: cut at 0.755 */
        {0.99, {true, true, true, true}},   /* last_ind 3 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float l[4];
        from_probs(l, p, 4);
        logits_typical_p(l, 4, cases[c].mass, &s);
        for (size_t i = 0; i < 4; i++)
            ck_assert_msg(kept(l[i]) == cases[c].keep[i], "typical_p %g: token %zu kept=%d",
                          cases[c].mass, i, kept(l[i]));
    }
    logits_scratch_fini(&s);
}
END_TEST

/* Brute-force references over a full sort, for vocabularies where the processors' bucket
 * selection is used: keys sorted descending, ties by ascending id. */
static const double *ref_key;

static int ref_cmp(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    if (ref_key[a] != ref_key[b])
        return ref_key[a] > ref_key[b] ? -1 : 1;
    return a < b ? -1 : 1;
}

static uint32_t *ref_order(const double *key, size_t n)
{
    uint32_t *o = malloc(n * sizeof *o);
    for (size_t i = 0; i < n; i++)
        o[i] = (uint32_t)i;
    ref_key = key;
    qsort(o, n, sizeof *o, ref_cmp);
    return o;
}

/* kept[i] as the HF definitions give it, for one warper over logits l */
static void ref_keep(const float *l, size_t n, int which, double v, bool *kept)
{
    double *key = malloc(n * sizeof *key), *p = malloc(n * sizeof *p);
    double lse = logits_logsumexp(l, n), ent = 0;
    for (size_t i = 0; i < n; i++) {
        p[i] = exp(l[i] - lse);
        ent -= p[i] * (l[i] - lse);
        key[i] = l[i];
    }
    if (which == 2) /* typical: the smallest |-log p - H| first */
        for (size_t i = 0; i < n; i++)
            key[i] = -fabs(-(l[i] - lse) - ent);
    uint32_t *o = ref_order(key, n);
    memset(kept, 0, n * sizeof *kept);
    double cum = 0;
    if (which == 0) { /* top_k: every value >= the k-th */
        for (size_t i = 0; i < n; i++)
            kept[i] = l[i] >= l[o[(size_t)v - 1]];
    } else if (which == 1) { /* top_p: while the mass ranked above is < top_p */
        for (size_t j = 0; j < n && (j == 0 || cum < v); j++) {
            kept[o[j]] = true;
            cum += p[o[j]];
        }
    } else { /* typical_p: up to the first position where the mass reaches typical_p */
        size_t last = n - 1;
        for (size_t j = 0; j < n; j++) {
            cum += p[o[j]];
            if (cum >= v) {
                last = j;
                break;
            }
        }
        for (size_t i = 0; i < n; i++)
            kept[i] = key[i] >= key[o[last]];
    }
    free(o);
    free(key);
    free(p);
}

START_TEST(processors_large_vocab)
{
    size_t n = 5000;
    float *l = malloc(n * sizeof *l), *m = malloc(n * sizeof *m);
    bool *want = malloc(n * sizeof *want);
    struct logits_scratch s;
    ck_assert_int_eq(logits_scratch_init(&s, n, NULL), 0);
    struct {
        int which;
        double v;
        const char *name;
    } cases[] = {{0, 100, "top_k 100"}, {0, 1, "top_k 1"},       {1, 0.9, "top_p 0.9"},
                 {1, 0.3, "top_p 0.3"}, {2, 0.9, "typical 0.9"}, {2, 0.2, "typical 0.2"}};
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct gen_rng r;
        gen_rng_seed(&r, seed, 0);
        for (size_t i = 0; i < n; i++) /* a 1/64 grid: many ties; a skewed spread */
            l[i] = (float)floor(pow(gen_rng_uniform(&r), 3) * 6.0 * 64) / 64;
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            memcpy(m, l, n * sizeof *l);
            if (cases[c].which == 0)
                logits_top_k(m, n, (size_t)cases[c].v, &s);
            else if (cases[c].which == 1)
                logits_top_p(m, n, cases[c].v, &s);
            else
                logits_typical_p(m, n, cases[c].v, &s);
            ref_keep(l, n, cases[c].which, cases[c].v, want);
            size_t n_kept = 0;
            for (size_t i = 0; i < n; i++) {
                ck_assert_msg(kept(m[i]) == want[i], "%s seed %d: token %zu (%g) kept=%d",
                              cases[c].name, (int)seed, i, l[i], kept(m[i]));
                n_kept += want[i];
            }
            ck_assert_uint_gt(n_kept, 0);
            ck_assert_uint_lt(n_kept, n);
        }
    }
    /* all logits equal: the lower ids come first */
    for (size_t i = 0; i < 1000; i++)
        m[i] = 0;
    logits_top_p(m, 1000, 0.5004, &s); /* mass 0.001 each: ids 0..500 reach it */
    for (size_t i = 0; i < 1000; i++)
        ck_assert_msg(kept(m[i]) == (i <= 500), "flat top_p: token %zu", i);
    /* equal logits between removed ones: top_k counts only the finite ones */
    for (size_t i = 0; i < 1000; i++)
        m[i] = i % 2 ? 1.0f : -INFINITY;
    logits_top_k(m, 1000, 100, &s); /* 500 tied at 1.0: all stay (torch.topk ties) */
    for (size_t i = 0; i < 1000; i++)
        ck_assert_msg(kept(m[i]) == (i % 2 == 1), "top_k over -inf: token %zu", i);
    for (size_t i = 0; i < 1000; i++)
        m[i] = i % 2 ? 1.0f : -INFINITY;
    logits_top_p(m, 1000, 0.1001, &s); /* 0.002 each: the first 51 odd ids */
    for (size_t i = 0; i < 1000; i++)
        ck_assert_msg(kept(m[i]) == (i % 2 == 1 && i <= 101), "top_p over -inf: token %zu", i);
    logits_scratch_fini(&s);
    free(l);
    free(m);
    free(want);
}
END_TEST

START_TEST(argmax_logprobs)
{
    float l[] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
    ck_assert_int_eq(logits_argmax(l, 5), 1); /* ties to the lowest id */
    double lse = logits_logsumexp(l, 5);
    double want = log(exp(0.5) + 2 * exp(2.0) + exp(-1.0) + exp(1.0));
    ck_assert(fabs(lse - want) < 1e-6); /* expf terms, double sum */
    struct gen_logprob top[GEN_MAX_TOP_N];
    ck_assert_uint_eq(logits_top_n(l, 5, 3, lse, top), 3);
    ck_assert(top[0].id == 1 && top[1].id == 3 && top[2].id == 4);
    ck_assert(fabs(top[2].logprob - (1.0 - want)) < 1e-6);
    ck_assert_uint_eq(logits_top_n(l, 5, 10, lse, top), 5);
    ck_assert_int_eq(top[4].id, 2);
}
END_TEST

/* ---- sampler ---- */

/* What an OpenAI request without sampling fields asks for (vLLM: it samples, and reports the
 * raw logits' log-probabilities). */
static void sampling_like_openai(struct gen_params *p)
{
    gen_params_init(p, NULL);
    p->do_sample = true;
    p->stop_mode = GEN_STOP_CUT;
    p->logprobs_mode = GEN_LOGPROBS_RAW;
}

static struct sampler *make_sampler(struct gen_params *p, size_t n)
{
    struct sampler *s = NULL;
    struct err e = {0};
    ck_assert_msg(sampler_new(p, n, 0, &s, &e) == 0, "%s", e.msg);
    return s;
}

START_TEST(sampler_penalties_greedy)
{
    struct gen_params p;
    gen_params_init(&p, NULL);
    /* repetition: once per distinct id even when the prompt repeats it */
    p.repetition_penalty = 2.0;
    struct sampler *s = make_sampler(&p, 2);
    int32_t prompt[] = {0, 0, 0};
    sampler_add_prompt(s, prompt, 3);
    float l[] = {2.0f, 0.9f};
    struct gen_choice c;
    ck_assert_int_eq(sampler_sample(s, l, &c), 0); /* 2/2 = 1.0 > 0.9 (not 2/8) */
    /* TGI reports the processed distribution: log_softmax([1.0, 0.9])[0] */
    ck_assert(fabs(c.logprob - (1.0 - log(exp(1.0) + exp(0.9)))) < 1e-6);
    sampler_free(s);
    /* frequency over generated tokens: values 1 - .3 c0, .9 - .3 c1, .5 - .3 c2 */
    sampling_like_openai(&p);
    p.do_sample = false;
    p.frequency_penalty = 0.3;
    s = make_sampler(&p, 3);
    sampler_add_prompt(s, prompt, 3); /* prompt tokens do not count for OpenAI penalties */
    int32_t want_f[] = {0, 1, 0, 1, 2, 0};
    for (size_t i = 0; i < 6; i++) {
        float x[] = {1.0f, 0.9f, 0.5f};
        ck_assert_int_eq(sampler_sample(s, x, NULL), want_f[i]);
    }
    sampler_free(s);
    /* presence: a flat 0.25 once a token appeared */
    p.frequency_penalty = 0;
    p.presence_penalty = 0.25;
    s = make_sampler(&p, 3);
    int32_t want_p[] = {0, 1, 2, 0, 0};
    for (size_t i = 0; i < 5; i++) {
        float x[] = {1.0f, 0.9f, 0.8f};
        ck_assert_int_eq(sampler_sample(s, x, NULL), want_p[i]);
    }
    sampler_free(s);
}
END_TEST

/* n logits from a seeded generator, spread over [-4, 4) */
static void random_logits(float *l, size_t n, uint64_t seed)
{
    struct gen_rng r;
    gen_rng_seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        l[i] = (float)(gen_rng_uniform(&r) * 8.0 - 4.0);
}

static void draw_many(uint64_t seed, uint64_t stream, int32_t *out, size_t n_draws)
{
    struct gen_params p;
    gen_params_init(&p, NULL);
    p.do_sample = true;
    p.temperature = 0.8;
    p.top_p = 0.95;
    p.seed = seed;
    struct sampler *s = NULL;
    ck_assert_int_eq(sampler_new(&p, 50, stream, &s, NULL), 0);
    for (size_t i = 0; i < n_draws; i++) {
        float l[50];
        random_logits(l, 50, 1000 + i);
        out[i] = sampler_sample(s, l, NULL);
    }
    sampler_free(s);
}

START_TEST(seeded_sampling)
{
    int32_t a[200], b[200], c[200], d[200];
    draw_many(42, 0, a, 200);
    draw_many(42, 0, b, 200);
    draw_many(43, 0, c, 200);
    draw_many(42, 1, d, 200);
    ck_assert_mem_eq(a, b, sizeof a); /* same seed, same logits: same tokens */
    size_t diff_seed = 0, diff_stream = 0;
    for (size_t i = 0; i < 200; i++) {
        diff_seed += a[i] != c[i];
        diff_stream += a[i] != d[i];
    }
    ck_assert_uint_gt(diff_seed, 50);
    ck_assert_uint_gt(diff_stream, 50);

    /* draws follow the softmax: p = 0.5, 0.3, 0.2 over 30000 draws */
    struct gen_params p;
    sampling_like_openai(&p);
    p.seed = 7;
    struct sampler *s = make_sampler(&p, 3);
    size_t count[3] = {0};
    const double probs[] = {0.5, 0.3, 0.2};
    for (size_t i = 0; i < 30000; i++) {
        float l[3];
        from_probs(l, probs, 3);
        count[sampler_sample(s, l, NULL)]++;
    }
    for (size_t k = 0; k < 3; k++)
        ck_assert_msg(fabs((double)count[k] / 30000 - probs[k]) < 0.015, "token %zu: %zu", k,
                      count[k]);
    sampler_free(s);
}
END_TEST

START_TEST(top_k_one_is_greedy)
{
    struct gen_params p;
    gen_params_init(&p, NULL);
    p.do_sample = true;
    p.top_k = 1;
    p.temperature = 1.7;
    p.seed = 99;
    struct sampler *s = make_sampler(&p, 300);
    for (size_t i = 0; i < 100; i++) {
        float l[300], copy[300];
        random_logits(l, 300, 7 + i);
        memcpy(copy, l, sizeof l);
        struct gen_choice c;
        ck_assert_int_eq(sampler_sample(s, l, &c), logits_argmax(copy, 300));
        ck_assert(fabsf(c.logprob) < 1e-6f); /* all the processed mass is on it */
    }
    sampler_free(s);
    /* raw logprobs (vLLM) are those of the model's logits */
    p.logprobs_mode = GEN_LOGPROBS_RAW;
    p.top_n_tokens = 2;
    s = make_sampler(&p, 300);
    float l[300], copy[300];
    random_logits(l, 300, 3);
    memcpy(copy, l, sizeof l);
    struct gen_choice c;
    int32_t id = sampler_sample(s, l, &c);
    double lse = logits_logsumexp(copy, 300);
    ck_assert(fabs(c.logprob - (copy[id] - lse)) < 1e-5);
    ck_assert(c.n_top == 2 && c.top[0].id == id && c.top[1].logprob > -INFINITY);
    sampler_free(s);
}
END_TEST

START_TEST(xoshiro_reference)
{
    /* xoshiro256** from state {1, 2, 3, 4}: rotl(2 * 5, 7) * 9 = 11520, then 0 and 1509978240
     * (the reference implementation's first outputs) */
    struct gen_rng r = {{1, 2, 3, 4}};
    ck_assert_uint_eq(gen_rng_next(&r), 11520);
    ck_assert_uint_eq(gen_rng_next(&r), 0);
    ck_assert_uint_eq(gen_rng_next(&r), 1509978240);
    gen_rng_seed(&r, 0, 0);
    double u = gen_rng_uniform(&r);
    ck_assert(u >= 0 && u < 1);
}
END_TEST

/* The dialects' parameters live in test_gen_params.c, the stop and streaming cases in
 * test_generate_text.c. */
TCase *tcase_gen_params(void);
TCase *tcase_generate_text(void);

Suite *suite_generate(void)
{
    Suite *s = suite_create("generate");
    suite_add_tcase(s, tcase_gen_params());
    TCase *tc = tcase_create("sampling");
    tcase_add_test(tc, processors_penalties);
    tcase_add_test(tc, processors_top_k);
    tcase_add_test(tc, processors_top_p);
    tcase_add_test(tc, processors_typical_p);
    tcase_add_test(tc, processors_large_vocab);
    tcase_add_test(tc, argmax_logprobs);
    tcase_add_test(tc, sampler_penalties_greedy);
    tcase_add_test(tc, seeded_sampling);
    tcase_add_test(tc, top_k_one_is_greedy);
    tcase_add_test(tc, xoshiro_reference);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, tcase_generate_text());
    return s;
}
