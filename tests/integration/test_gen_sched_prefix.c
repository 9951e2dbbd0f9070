/* test_gen_sched_prefix: prefix caching (engine/generate/gen_cache.c, through the scheduler,
 * server/gen_sched.c) on the gpt2-lm and llama-lm fixtures. Each case runs its requests on a
 * scheduler with prefix caching on ("warm") and the same requests on one with it off ("cold")
 * and demands the same greedy (or seeded) ids and log-probabilities within LP_TOL; every
 * gen_result.cached_tokens is asserted exactly (the longest common prefix of the prompt with
 * what the pooled or running caches hold, at most n_prompt - 1), with the Prometheus counters
 * (hits, misses, reused tokens, and the tokens actually fed). Cases: a two-turn chat sharing a
 * 150-token prefix; prompts longer and shorter than the cached prefix (the source kept when
 * copied); an entry evicted under a tiny max_batch_total_tokens; requests sharing one prefix
 * at once (from a pooled cache, and from a running request's cache); seeded sampling; the
 * switch off, prompt logprobs and 1-token prompts reusing nothing; and the fixtures' own
 * prompts repeated, against transformers' greedy ids.
 *
 * Long prompts are pseudo-random ids (the fixtures are random-weight models: any ids are
 * text to them). LP_TOL: a warm run computes the prompt's tail in other chunks than the cold
 * one (prefill budget 64 here), so its matmuls may block differently and fp32 sums round
 * differently (measured here: 0, bit-identical over the 240 tokens compared: oneDNN reduces
 * each row alike whatever M is on this machine, which nothing promises elsewhere); 1e-4 is
 * the chunked-prefill tolerance of the gen_sched suite (prompt logprobs). Greedy ids must be
 * identical. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_sched_support.h"
#include "metrics.h"
#include "suites.h"
#include "support/support.h"

#define LP_TOL 1e-4
#define SEQ_CAP 256

struct seq {
    int32_t ids[SEQ_CAP];
    size_t n;
};

/* n pseudo-random ids of f's vocabulary (a llama prompt starts with its BOS, as the fixture's
 * prompts do). */
static void random_ids(const struct fixture *f, uint32_t seed, size_t n, bool bos, struct seq *s)
{
    uint32_t x = seed * 2654435761u + 1;
    int V = gen_model_vocab_size(f->gm);
    s->n = 0;
    if (bos && f->p[0].ids[0] == f->p[1].ids[0])
        s->ids[s->n++] = f->p[0].ids[0];
    while (s->n < n) {
        x = x * 1103515245u + 12345u;
        s->ids[s->n++] = 100 + (int32_t)((x >> 8) % (uint32_t)(V - 200));
    }
}

static void append(struct seq *s, const int32_t *ids, size_t n)
{
    ck_assert_uint_le(s->n + n, SEQ_CAP);
    memcpy(s->ids + s->n, ids, n * sizeof *ids);
    s->n += n;
}

/* What a cache holding `held` gives a prompt: their common prefix, at most n_prompt - 1. */
static size_t reuse(const struct seq *held, const struct seq *prompt)
{
    size_t i = 0;
    while (i < held->n && i + 1 < prompt->n && held->ids[i] == prompt->ids[i])
        i++;
    return i;
}

/* What a finished request's cache holds: its prompt and all its tokens but the last. */
static void held_after(const struct seq *prompt, const struct probe *p, struct seq *out)
{
    *out = *prompt;
    append(out, p->res_ids, p->n_generated - 1);
}

/* Submits pr with a fresh probe p (slow_us: its on_event's sleep). */
static void submit_slow(struct gen_sched *s, const struct seq *pr, const struct gen_params *gp,
                        struct probe *p, int slow_us)
{
    gs_probe_init(p);
    p->slow_us = slow_us;
    struct gen_req_spec spec = {.prompt = pr->ids,
                                .n_prompt = pr->n,
                                .params = gp,
                                .fd = -1,
                                .on_event = gs_on_event,
                                .on_done = gs_on_done,
                                .owner = p};
    struct err e = {0};
    ck_assert_msg(gen_sched_submit(s, &spec, NULL, &e) == 0, "submit: %s", e.msg);
}

static void submit(struct gen_sched *s, const struct seq *pr, const struct gen_params *gp,
                   struct probe *p)
{
    submit_slow(s, pr, gp, p, 0);
}

static void finish(struct probe *p, const char *how)
{
    gs_wait_done(p, how);
    gs_check(p, how);
    ck_assert_msg(p->status == GEN_OK, "%s: %s", how, p->error);
}

static void run(struct gen_sched *s, const struct seq *pr, const struct gen_params *gp,
                struct probe *p, const char *how)
{
    submit(s, pr, gp, p);
    finish(p, how);
}

/* The warm run equals the cold one: ids, and logprobs within LP_TOL. */
static void expect_same(const struct fixture *f, const struct probe *warm,
                        const struct probe *cold, const char *how)
{
    ck_assert_msg(warm->n_generated == cold->n_generated, "%s %s: %zu tokens warm, %zu cold",
                  f->name, how, warm->n_generated, cold->n_generated);
    for (size_t k = 0; k < warm->n_generated; k++) {
        ck_assert_msg(warm->res_ids[k] == cold->res_ids[k], "%s %s: token %zu is %d warm, %d cold",
                      f->name, how, k, warm->res_ids[k], cold->res_ids[k]);
        double d = fabs((double)warm->lps[k] - (double)cold->lps[k]);
        ck_assert_msg(d <= LP_TOL, "%s %s: token %zu logprob %.9g warm, %.9g cold", f->name, how,
                      k, warm->lps[k], cold->lps[k]);
    }
    ck_assert_uint_eq(cold->cached_tokens, 0);
}

static void expect_cached(const struct fixture *f, const struct probe *p, size_t want,
                          const char *how)
{
    ck_assert_msg(p->cached_tokens == want, "%s %s: %zu cached tokens, not %zu", f->name, how,
                  p->cached_tokens, want);
}

struct pair {
    struct metrics *m;
    struct gen_sched *warm, *cold;
};

static struct pair pair_new(const struct fixture *f, size_t slots, size_t batch_total)
{
    struct pair p = {.m = metrics_new()};
    struct model_config c = gs_cfg(slots, 16, 64, batch_total);
    p.warm = gs_sched(f, &c, p.m);
    c.generation.prefix_cache = false;
    p.cold = gs_sched(f, &c, NULL);
    return p;
}

static void pair_free(struct pair *p)
{
    gen_sched_free(p->warm);
    gen_sched_free(p->cold);
    metrics_free(p->m);
}

/* The end of a two-turn case: its four probes (warm and cold per turn), params, pair, fixture. */
static void two_turns_fini(struct fixture *f, struct pair *s, struct gen_params *gp,
                           struct probe *const probes[4])
{
    for (int i = 0; i < 4; i++)
        gs_probe_fini(probes[i]);
    gen_params_fini(gp);
    pair_free(s);
    gs_close(f);
}

static double metric(struct metrics *m, const char *family)
{
    char series[128];
    snprintf(series, sizeof series, "%s{model=\"t\"}", family);
    return gs_metric(m, series);
}

static void greedy(const struct fixture *f, unsigned max_new, struct gen_params *gp)
{
    char json[96];
    snprintf(json, sizeof json, "{\"max_new_tokens\": %u, \"do_sample\": false}", max_new);
    gs_params(f, &gen_api_tgi, json, gp);
    gp->ignore_eos = true; /* exactly max_new tokens: the caches' contents are known */
}

/* ---- tests ---- */

/* Turn 2 of a chat: turn 1's 150-token prompt, its answer, a new message. */
START_TEST(two_turns)
{
    struct fixture f;
    gs_open(&f, _i);
    struct pair s = pair_new(&f, 4, 16384);
    struct gen_params gp;
    greedy(&f, 16, &gp);
    struct seq t1, t2, more;
    random_ids(&f, 1, 150, true, &t1);
    struct probe w1, c1, w2, c2;
    run(s.warm, &t1, &gp, &w1, "turn 1");
    run(s.cold, &t1, &gp, &c1, "turn 1 cold");
    expect_cached(&f, &w1, 0, "turn 1");
    expect_same(&f, &w1, &c1, "turn 1");
    t2 = t1;
    append(&t2, w1.res_ids, w1.n_generated);
    random_ids(&f, 2, 20, false, &more);
    append(&t2, more.ids, more.n);
    run(s.warm, &t2, &gp, &w2, "turn 2");
    run(s.cold, &t2, &gp, &c2, "turn 2 cold");
    /* the whole cache: turn 1's prompt and 15 of its 16 tokens (the last was never fed) */
    expect_cached(&f, &w2, 150 + 15, "turn 2");
    expect_same(&f, &w2, &c2, "turn 2");
    /* the counters, and the tokens fed: 165 fewer than cold */
    ck_assert_double_eq(metric(s.m, "inferd_prefix_cache_hits_total"), 1);
    ck_assert_double_eq(metric(s.m, "inferd_prefix_cache_misses_total"), 1);
    ck_assert_double_eq(metric(s.m, "inferd_prefix_cache_tokens_total"), 165);
    double fed = (double)(t1.n + 15 + t2.n - 165 + 15);
    ck_assert_double_eq(metric(s.m, "inferd_tokens_total"), fed);
    two_turns_fini(&f, &s, &gp, (struct probe *[]){&w1, &c1, &w2, &c2});
}
END_TEST

/* Turn 2 of a chat whose client sent turn 1's answer back as text that re-tokenizes
 * differently: all but its last 6 tokens match turn 1's cache, which is taken and cut, not
 * copied; a prompt continuing turn 1's whole cache then finds only turn 2's. */
START_TEST(retokenized_answer)
{
    struct fixture f;
    gs_open(&f, _i);
    struct pair s = pair_new(&f, 4, 16384);
    struct gen_params gp;
    greedy(&f, 16, &gp);
    struct seq t1, t2, held, other;
    random_ids(&f, 8, 150, true, &t1);
    struct probe w1, w2, c2, w3;
    run(s.warm, &t1, &gp, &w1, "turn 1");
    held_after(&t1, &w1, &held); /* 150 + 15 tokens */
    t2 = held;
    t2.n -= 6;
    random_ids(&f, 9, 20, false, &other);
    append(&t2, other.ids, other.n);
    size_t want = reuse(&held, &t2);
    ck_assert_uint_ge(want, 159);
    run(s.warm, &t2, &gp, &w2, "turn 2");
    run(s.cold, &t2, &gp, &c2, "turn 2 cold");
    expect_cached(&f, &w2, want, "turn 2");
    expect_same(&f, &w2, &c2, "turn 2");
    /* turn 1's tail went with the taken cache: its continuation finds turn 2's prefix */
    struct seq again = held;
    append(&again, other.ids, 4);
    run(s.warm, &again, &gp, &w3, "turn 1 continued");
    expect_cached(&f, &w3, reuse(&t2, &again), "turn 1 continued");
    ck_assert_double_eq(metric(s.m, "inferd_prefix_cache_hits_total"), 2);
    two_turns_fini(&f, &s, &gp, (struct probe *[]){&w1, &w2, &c2, &w3});
}
END_TEST

/* A prompt longer than the cached prefix, then one sharing only part of it (copied: the
 * longer entry stays and serves the longer prompt again). */
START_TEST(longer_and_shorter)
{
    struct fixture f;
    gs_open(&f, _i);
    struct pair s = pair_new(&f, 4, 16384);
    struct gen_params one, g8;
    greedy(&f, 1, &one);
    greedy(&f, 8, &g8);
    struct seq a, p, q, tail, held;
    random_ids(&f, 3, 100, true, &a);
    struct probe w, c;
    run(s.warm, &a, &one, &w, "prefix"); /* the cache holds exactly a */
    expect_cached(&f, &w, 0, "prefix");
    gs_probe_fini(&w);

    p = a;
    random_ids(&f, 4, 30, false, &tail);
    append(&p, tail.ids, tail.n);
    run(s.warm, &p, &g8, &w, "longer");
    run(s.cold, &p, &g8, &c, "longer cold");
    expect_cached(&f, &w, 100, "longer than the cached prefix");
    expect_same(&f, &w, &c, "longer");
    held_after(&p, &w, &held);
    gs_probe_fini(&w);
    gs_probe_fini(&c);

    memcpy(q.ids, a.ids, 60 * sizeof *q.ids);
    q.n = 60;
    random_ids(&f, 5, 25, false, &tail);
    append(&q, tail.ids, tail.n);
    size_t want = reuse(&held, &q);
    ck_assert_uint_ge(want, 60);
    run(s.warm, &q, &g8, &w, "shorter");
    run(s.cold, &q, &g8, &c, "shorter cold");
    expect_cached(&f, &w, want, "sharing part of the cached prefix");
    expect_same(&f, &w, &c, "shorter");
    gs_probe_fini(&w);
    gs_probe_fini(&c);

    /* p again: its entry was copied from, not cut */
    run(s.warm, &p, &g8, &w, "again");
    expect_cached(&f, &w, p.n - 1, "the longer prompt again");
    run(s.cold, &p, &g8, &c, "again cold");
    expect_same(&f, &w, &c, "again");
    gs_probe_fini(&w);
    gs_probe_fini(&c);
    ck_assert_double_eq(metric(s.m, "inferd_prefix_cache_tokens_total"),
                        (double)(100 + want + p.n - 1));
    gen_params_fini(&one);
    gen_params_fini(&g8);
    pair_free(&s);
    gs_close(&f);
}
END_TEST

/* max_batch_total_tokens 120: a 60-token prompt's cache (67 tokens) does not survive another
 * request reserving 58. */
START_TEST(evicted)
{
    struct fixture f;
    gs_open(&f, _i);
    struct pair s = pair_new(&f, 2, 120);
    struct gen_params g8;
    greedy(&f, 8, &g8);
    struct seq a, u, held_u;
    random_ids(&f, 6, 60, true, &a);
    random_ids(&f, 7, 50, true, &u);
    struct probe w, c;
    run(s.warm, &a, &g8, &w, "first");
    gs_probe_fini(&w);
    run(s.warm, &u, &g8, &w, "other");
    expect_cached(&f, &w, reuse(&a, &u), "other"); /* llama: the BOS */
    held_after(&u, &w, &held_u);
    gs_probe_fini(&w);
    /* a's entry was evicted: only u's (+ BOS) can serve it */
    run(s.warm, &a, &g8, &w, "first again");
    run(s.cold, &a, &g8, &c, "first again cold");
    expect_cached(&f, &w, reuse(&held_u, &a), "after eviction");
    ck_assert_uint_le(w.cached_tokens, 1);
    expect_same(&f, &w, &c, "after eviction");
    gs_probe_fini(&w);
    gs_probe_fini(&c);
    gen_params_fini(&g8);
    pair_free(&s);
    gs_close(&f);
}
END_TEST

/* Three requests at once sharing a pooled 80-token prefix; then one joining a running request
 * whose prompt it shares. */
START_TEST(concurrent)
{
    struct fixture f;
    gs_open(&f, _i);
    struct pair s = pair_new(&f, 4, 16384);
    struct gen_params g8, slow;
    greedy(&f, 8, &g8);
    greedy(&f, 24, &slow);
    struct seq a, held, tail, pr[3];
    random_ids(&f, 8, 80, true, &a);
    struct probe w, warm[3], cold[3];
    run(s.warm, &a, &g8, &w, "system prompt");
    held_after(&a, &w, &held);
    gs_probe_fini(&w);
    for (int i = 0; i < 3; i++) {
        pr[i] = a;
        random_ids(&f, 20 + (uint32_t)i, 12, false, &tail);
        append(&pr[i], tail.ids, tail.n);
        /* the pooled entry is at least as good a source as any other request's prompt */
        ck_assert_uint_eq(reuse(&held, &pr[i]), 80);
        for (int j = 0; j < i; j++)
            ck_assert_uint_eq(reuse(&pr[j], &pr[i]), 80);
    }
    for (int i = 0; i < 3; i++)
        submit(s.warm, &pr[i], &g8, &warm[i]);
    for (int i = 0; i < 3; i++)
        submit(s.cold, &pr[i], &g8, &cold[i]);
    for (int i = 0; i < 3; i++) {
        finish(&warm[i], "together");
        finish(&cold[i], "together cold");
        expect_cached(&f, &warm[i], 80, "together");
        expect_same(&f, &warm[i], &cold[i], "together");
        gs_probe_fini(&warm[i]);
        gs_probe_fini(&cold[i]);
    }

    /* from a running request: b is fully fed once it has produced tokens */
    struct seq b, b2;
    random_ids(&f, 9, 90, true, &b);
    b2 = b;
    b.n = 100;
    random_ids(&f, 30, 10, false, &tail);
    memcpy(b.ids + 90, tail.ids, 10 * sizeof *b.ids);
    random_ids(&f, 31, 10, false, &tail);
    append(&b2, tail.ids, tail.n);
    ck_assert_int_ne(b.ids[90], b2.ids[90]);
    struct probe r, r2, rc;
    submit_slow(s.warm, &b, &slow, &r, 20000); /* kept running */
    gs_wait_events(&r, 2, "running source");
    run(s.warm, &b2, &g8, &r2, "joining");
    run(s.cold, &b2, &g8, &rc, "joining cold");
    expect_cached(&f, &r2, 90, "from a running request");
    expect_same(&f, &r2, &rc, "from a running request");
    finish(&r, "running source");
    gs_probe_fini(&r);
    gs_probe_fini(&r2);
    gs_probe_fini(&rc);
    gen_params_fini(&g8);
    gen_params_fini(&slow);
    pair_free(&s);
    gs_close(&f);
}
END_TEST

/* Seeded sampling: turn 2 draws the same tokens from a cached prefix as cold. */
START_TEST(seeded)
{
    struct fixture f;
    gs_open(&f, _i);
    struct pair s = pair_new(&f, 4, 16384);
    struct gen_params gp;
    gs_params(&f, &gen_api_tgi,
              "{\"max_new_tokens\": 12, \"do_sample\": true, \"temperature\": 1.3, \"top_k\": 50, "
              "\"seed\": 11}",
              &gp);
    gp.ignore_eos = true;
    struct seq t1, t2, more;
    random_ids(&f, 10, 120, true, &t1);
    struct probe w1, c1, w2, c2;
    run(s.warm, &t1, &gp, &w1, "sampled turn 1");
    run(s.cold, &t1, &gp, &c1, "sampled turn 1 cold");
    expect_same(&f, &w1, &c1, "sampled turn 1");
    t2 = t1;
    append(&t2, w1.res_ids, w1.n_generated);
    random_ids(&f, 11, 15, false, &more);
    append(&t2, more.ids, more.n);
    run(s.warm, &t2, &gp, &w2, "sampled turn 2");
    run(s.cold, &t2, &gp, &c2, "sampled turn 2 cold");
    expect_cached(&f, &w2, 120 + 11, "sampled turn 2");
    expect_same(&f, &w2, &c2, "sampled turn 2");
    two_turns_fini(&f, &s, &gp, (struct probe *[]){&w1, &c1, &w2, &c2});
}
END_TEST

/* What reuses nothing: the switch off (no lookups counted), prompt logprobs, a 1-token
 * prompt. */
START_TEST(opt_outs)
{
    struct fixture f;
    gs_open(&f, _i);
    struct pair s = pair_new(&f, 4, 16384);
    struct metrics *m = metrics_new();
    struct model_config c = gs_cfg(4, 16, 64, 16384);
    c.generation.prefix_cache = false;
    struct gen_sched *off = gs_sched(&f, &c, m);
    struct gen_params g4, det;
    greedy(&f, 4, &g4);
    gs_params(&f, &gen_api_tgi,
              "{\"max_new_tokens\": 4, \"do_sample\": false, \"decoder_input_details\": true}",
              &det);
    struct seq a, one;
    random_ids(&f, 12, 40, true, &a);
    one = a;
    one.n = 1;
    struct probe p;
    for (int k = 0; k < 2; k++) {
        run(off, &a, &g4, &p, "off");
        expect_cached(&f, &p, 0, "prefix_cache false");
        gs_probe_fini(&p);
    }
    ck_assert_double_eq(metric(m, "inferd_prefix_cache_hits_total"), -1);
    ck_assert_double_eq(metric(m, "inferd_prefix_cache_misses_total"), -1);
    run(s.warm, &a, &g4, &p, "warm");
    gs_probe_fini(&p);
    run(s.warm, &a, &det, &p, "details");
    expect_cached(&f, &p, 0, "decoder_input_details");
    ck_assert(p.has_plp);
    gs_probe_fini(&p);
    run(s.warm, &one, &g4, &p, "one token");
    expect_cached(&f, &p, 0, "a 1-token prompt");
    gs_probe_fini(&p);
    /* looked up: the first (miss) and the 1-token prompt (miss); details did not look */
    ck_assert_double_eq(metric(s.m, "inferd_prefix_cache_misses_total"), 2);
    ck_assert_double_eq(metric(s.m, "inferd_prefix_cache_hits_total"), -1);
    gen_sched_free(off);
    metrics_free(m);
    gen_params_fini(&g4);
    gen_params_fini(&det);
    pair_free(&s);
    gs_close(&f);
}
END_TEST

/* The fixtures' prompts twice: the second run reuses all but the last prompt token and still
 * gives transformers' greedy ids. */
START_TEST(repeat_vs_transformers)
{
    struct fixture f;
    gs_open(&f, _i);
    struct model_config c = gs_cfg(2, 16, 512, 16384);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    struct gen_params g24;
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 24, \"do_sample\": false}", &g24);
    for (size_t i = 0; i < f.n; i++) {
        struct probe p;
        for (int k = 0; k < 2; k++) {
            gs_probe_init(&p);
            gs_submit(s, &f.p[i], &g24, &p, 0, -1);
            gs_wait_done(&p, "repeat");
            gs_check(&p, "repeat");
            gs_expect_greedy(&f, i, &p, 24, k ? "repeated" : "first");
            if (k)
                expect_cached(&f, &p, f.p[i].n - 1, "repeated");
            gs_probe_fini(&p);
        }
    }
    gen_sched_free(s);
    gen_params_fini(&g24);
    gs_close(&f);
}
END_TEST

Suite *suite_gen_sched_prefix(void)
{
    Suite *s = suite_create("gen_sched_prefix");
    TCase *tc = tcase_create("prefix");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, two_turns, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, retokenized_answer, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, longer_and_shorter, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, evicted, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, concurrent, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, seeded, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, opt_outs, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, repeat_vs_transformers, 0, GS_N_MODELS);
    suite_add_tcase(s, tc);
    return s;
}
