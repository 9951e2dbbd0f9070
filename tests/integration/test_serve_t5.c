/* test_serve_t5: text2text-generation served: the t5-s2s fixture (a tiny random T5 with the real
 * T5 tokenizer) under continuous batching, against what transformers generated for it
 * (refs-dev.json "generations": input, input_ids, greedy_ids = the decoder start token then
 * 16 greedy tokens, none of them eos, and greedy_text = their decode without special tokens).
 *
 * "sched": gen_sched called directly: every prompt alone; requests joining while others decode
 * (8 slots, and 2 slots with queueing and slot reuse; prefill budgets that encode several
 * inputs together, or an input longer than the budget alone) keep every greedy id; seeded
 * sampling independent of the batch; stop strings (TGI keeps them, OpenAI cuts before them),
 * an eos id, max_new_tokens, cancel and a deadline with their ends; refusals at submit.
 *
 * "http": the real daemon with t5-s2s as task text2text-generation: POST /models/t5 (the
 * Text2TextGenerationPipeline's answer: the refs' greedy_text for every prompt at
 * max_new_tokens 16; generate()'s max_length 20 default counting the start token;
 * return_tensors; stop_sequence), all prompts at once several times, TGI /generate and
 * /generate_stream and /v1/completions (the generated text only), seeded sampling, and the
 * refusals: bad parameters 422, chat 400, echo / return_full_text / decoder_input_details. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen_sched_support.h"
#include "integration/serve_expect.h"
#include "integration/serve_support.h"
#include "metrics.h"
#include "suites.h"
#include "support/support.h"
#include "tokenizer/tokenizer.h"

#define T5_MAX_PROMPTS 4
#define T5_MAX_IDS 256
#define T5_MAX_OUT 32
#define N_NEW 16 /* the refs' generated tokens */

struct t5_prompt {
    const char *input;
    int32_t ids[T5_MAX_IDS];
    size_t n;
    int32_t start;              /* greedy_ids[0]: the decoder start token */
    int32_t greedy[T5_MAX_OUT]; /* greedy_ids[1..]: the generated ones */
    size_t n_greedy;
    const char *text; /* greedy_text */
};

struct t5_fixture {
    struct gen_model *gm;
    json_t *refs;
    struct t5_prompt p[T5_MAX_PROMPTS];
    size_t n;
};

static size_t read_ids(const json_t *a, int32_t *out, size_t cap)
{
    size_t n = json_array_size(a);
    ck_assert_uint_le(n, cap);
    for (size_t i = 0; i < n; i++)
        out[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return n;
}

/* The refs of t5-s2s (new reference to the refs; prompts point into it). */
static json_t *t5_refs(struct t5_prompt *p, size_t *n)
{
    json_t *refs = fixture_json(fixture_model("t5-s2s"), "refs-dev.json");
    ck_assert_str_eq(json_string_value(json_object_get(refs, "task")), "text2text-generation");
    const json_t *gens = json_object_get(refs, "generations");
    *n = json_array_size(gens);
    ck_assert(*n >= 3 && *n <= T5_MAX_PROMPTS);
    for (size_t i = 0; i < *n; i++) {
        const json_t *g = json_array_get(gens, i);
        struct t5_prompt *q = &p[i];
        memset(q, 0, sizeof *q);
        q->input = json_string_value(json_object_get(g, "input"));
        q->text = json_string_value(json_object_get(g, "greedy_text"));
        ck_assert(q->input && q->text);
        q->n = read_ids(json_object_get(g, "input_ids"), q->ids, T5_MAX_IDS);
        int32_t all[T5_MAX_OUT + 1];
        size_t k = read_ids(json_object_get(g, "greedy_ids"), all, T5_MAX_OUT + 1);
        ck_assert_uint_eq(k, N_NEW + 1);
        q->start = all[0];
        q->n_greedy = k - 1;
        memcpy(q->greedy, all + 1, q->n_greedy * sizeof *all);
    }
    return refs;
}

static void t5_open(struct t5_fixture *f)
{
    memset(f, 0, sizeof *f);
    const char *dir = fixture_model("t5-s2s");
    struct model_config cfg = {.threads = 1, .dtype = CONFIG_DTYPE_FP32};
    struct err e = {0};
    ck_assert_msg(gen_model_load_config(dir, &cfg, &f->gm, &e) == 0, "%s: %s", dir, e.msg);
    f->refs = t5_refs(f->p, &f->n);
    ck_assert(gen_model_is_encoder_decoder(f->gm));
    ck_assert_int_eq(gen_model_max_positions(f->gm), 0);
    /* the start token and eos ids transformers used: greedy_ids[0], generation_config.json */
    ck_assert_int_eq(gen_model_decoder_start_token_id(f->gm), f->p[0].start);
    json_t *gc = fixture_json(dir, "generation_config.json");
    ck_assert_uint_eq(gen_model_config(f->gm)->n_eos_token_ids, 1);
    ck_assert_int_eq(gen_model_config(f->gm)->eos_token_ids[0],
                     json_integer_value(json_object_get(gc, "eos_token_id")));
    json_decref(gc);
    /* the tokenizer gives the refs' input ids (what the HTTP routes will feed) */
    for (size_t i = 0; i < f->n; i++) {
        const struct tokenizer *tk = gen_model_tokenizer(f->gm);
        struct tokenizer_params tp = tokenizer_params_default(tk);
        struct encodings enc = {0};
        ck_assert_int_eq(
            tokenizer_encode(tk, f->p[i].input, strlen(f->p[i].input), NULL, 0, &tp, &enc, &e), 0);
        ck_assert_uint_eq(enc.v[0].n, f->p[i].n);
        for (size_t k = 0; k < f->p[i].n; k++)
            ck_assert_int_eq(enc.v[0].ids[k], f->p[i].ids[k]);
        encodings_fini(&enc);
    }
}

static void t5_close(struct t5_fixture *f)
{
    json_decref(f->refs);
    gen_model_free(f->gm);
}

static void t5_params(const struct t5_fixture *f, const struct gen_api *d, const char *json,
                      struct gen_params *p)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    ck_assert_msg(j != NULL, "%s: %s", json, je.text);
    struct gen_limits lim = gen_limits_default();
    struct err e = {0};
    int rc = gen_api_parse(d, j, gen_model_config(f->gm), &lim, p, &e);
    json_decref(j);
    ck_assert_msg(rc == 0, "%s: %s", json, e.msg);
}

static int t5_try_submit(struct gen_sched *s, const struct t5_prompt *pr,
                         const struct gen_params *gp, struct probe *p, double deadline,
                         struct gen_req **out, struct err *e)
{
    struct gen_req_spec spec = {.prompt = pr->ids,
                                .n_prompt = pr->n,
                                .params = gp,
                                .deadline = deadline,
                                .fd = -1,
                                .on_event = gs_on_event,
                                .on_done = gs_on_done,
                                .owner = p};
    return gen_sched_submit(s, &spec, out, e);
}

static struct gen_req *t5_submit(struct gen_sched *s, const struct t5_prompt *pr,
                                 const struct gen_params *gp, struct probe *p, double deadline)
{
    struct gen_req *r = NULL;
    struct err e = {0};
    ck_assert_msg(t5_try_submit(s, pr, gp, p, deadline, &r, &e) == 0, "submit: %s", e.msg);
    return r;
}

/* Status OK, n tokens, the reference ids, finish length; the reference text at 16 tokens. */
static void expect_greedy(const struct t5_fixture *f, size_t i, struct probe *p, size_t n,
                          const char *how)
{
    const struct t5_prompt *pr = &f->p[i];
    ck_assert_msg(p->status == GEN_OK, "prompt %zu (%s): status %d %s", i, how, p->status,
                  p->error);
    ck_assert_msg(p->n_generated == n, "prompt %zu (%s): %zu tokens, not %zu", i, how,
                  p->n_generated, n);
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(p->res_ids[k] == pr->greedy[k],
                      "prompt %zu (%s): greedy token %zu is %d, not %d", i, how, k, p->res_ids[k],
                      pr->greedy[k]);
    ck_assert_int_eq(p->finish, GEN_FINISH_LENGTH);
    ck_assert_uint_eq(p->n_prompt, pr->n);
    ck_assert_int_eq(p->special_events, 0);
    if (n == pr->n_greedy)
        ck_assert_msg(p->res_text_len == strlen(pr->text) &&
                          memcmp(p->res_text, pr->text, p->res_text_len) == 0,
                      "prompt %zu (%s): text '%.*s', not '%s'", i, how, (int)p->res_text_len,
                      p->res_text, pr->text);
}

/* ---- sched ---- */

START_TEST(sched_greedy_alone)
{
    struct t5_fixture f;
    t5_open(&f);
    struct model_config c = gs_cfg(4, 16, 512, 16384);
    struct gen_sched *s = gen_sched_new(f.gm, &c, NULL, "t", &(struct err){0});
    ck_assert_ptr_nonnull(s);
    struct gen_params gp;
    t5_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 16, \"do_sample\": false}", &gp);
    for (size_t i = 0; i < f.n; i++) {
        struct probe p;
        gs_probe_init(&p);
        t5_submit(s, &f.p[i], &gp, &p, 0);
        gs_wait_done(&p, "alone");
        gs_check(&p, "alone");
        expect_greedy(&f, i, &p, N_NEW, "alone");
        gs_probe_fini(&p);
    }
    ck_assert_uint_eq(gen_sched_queued(s), 0);
    ck_assert_uint_eq(gen_sched_running(s), 0);
    gen_sched_free(s);
    gen_params_fini(&gp);
    t5_close(&f);
}
END_TEST

/* 8 requests over the prompts, different max_new_tokens, some joining while others decode;
 * slots and the prefill budget (input ids encoded per step) vary. */
static void staggered(struct t5_fixture *f, size_t slots, size_t prefill)
{
    enum { N = 8 };
    static const uint32_t lengths[N] = {16, 5, 12, 16, 3, 9, 16, 7};
    struct metrics *m = metrics_new();
    struct model_config c = gs_cfg(slots, 64, prefill, 16384);
    struct err e = {0};
    struct gen_sched *s = gen_sched_new(f->gm, &c, m, "t", &e);
    ck_assert_msg(s != NULL, "%s", e.msg);
    struct gen_params gp[N];
    struct probe p[N];
    size_t input_ids = 0, generated = 0;
    for (size_t i = 0; i < N; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"max_new_tokens\": %u, \"do_sample\": false}", lengths[i]);
        t5_params(f, &gen_api_tgi, json, &gp[i]);
        gs_probe_init(&p[i]);
        input_ids += f->p[i % f->n].n;
        generated += lengths[i];
    }
    /* 0, 1 and 2 at once; 3 once 0 has 3 tokens; the others once 1 has 2 */
    for (size_t i = 0; i < 3; i++)
        t5_submit(s, &f->p[i % f->n], &gp[i], &p[i], 0);
    gs_wait_events(&p[0], 3, "staggered");
    t5_submit(s, &f->p[3 % f->n], &gp[3], &p[3], 0);
    gs_wait_events(&p[1], 2, "staggered");
    for (size_t i = 4; i < N; i++)
        t5_submit(s, &f->p[i % f->n], &gp[i], &p[i], 0);
    char how[96];
    snprintf(how, sizeof how, "staggered, %zu slots, prefill %zu", slots, prefill);
    for (size_t i = 0; i < N; i++) {
        gs_wait_done(&p[i], how);
        gs_check(&p[i], how);
        expect_greedy(f, i % f->n, &p[i], lengths[i], how);
    }
    gen_sched_free(s);
    /* every input id encoded once; decoder tokens fed: the start token and every generated
     * one but the last, i.e. max_new_tokens per request */
    double fed = gs_metric(m, "inferd_tokens_total{model=\"t\"}");
    double steps = gs_metric(m, "inferd_batches_total{model=\"t\"}");
    ck_assert_double_eq(fed, (double)(input_ids + generated));
    ck_assert_double_eq(gs_metric(m, "inferd_generated_tokens_total{model=\"t\"}"),
                        (double)generated);
    ck_assert_double_eq(gs_metric(m, "inferd_time_to_first_token_seconds_count{model=\"t\"}"), N);
    ck_assert_double_eq(gs_metric(m, "inferd_running_sequences{model=\"t\"}"), 0);
    /* decodes share steps */
    ck_assert_msg(steps < (double)generated * 0.8, "%g steps for %zu tokens", steps, generated);
    for (size_t i = 0; i < N; i++) {
        gen_params_fini(&gp[i]);
        gs_probe_fini(&p[i]);
    }
    metrics_free(m);
}

START_TEST(sched_joining)
{
    struct t5_fixture f;
    t5_open(&f);
    /* inputs of 16, 115 and 18 ids: 40 encodes the short ones together, 8 is below them all
     * (each input is then encoded alone in its step) */
    staggered(&f, 8, 40);
    staggered(&f, 2, 8);
    staggered(&f, 3, 512);
    t5_close(&f);
}
END_TEST

/* The same seed gives the same tokens alone and in a busy batch; another seed others. */
START_TEST(sched_seeded)
{
    struct t5_fixture f;
    t5_open(&f);
    struct model_config c = gs_cfg(8, 64, 64, 16384);
    struct gen_sched *s = gen_sched_new(f.gm, &c, NULL, "t", &(struct err){0});
    ck_assert_ptr_nonnull(s);
    const char *fmt = "{\"max_new_tokens\": 16, \"do_sample\": true, \"temperature\": 1.5, "
                      "\"seed\": %d}";
    char json[160];
    struct gen_params s42, s43, greedy;
    snprintf(json, sizeof json, fmt, 42);
    t5_params(&f, &gen_api_tgi, json, &s42);
    snprintf(json, sizeof json, fmt, 43);
    t5_params(&f, &gen_api_tgi, json, &s43);
    t5_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 16, \"do_sample\": false}", &greedy);
    s42.ignore_eos = s43.ignore_eos = true;
    struct probe alone, busy, other, noise[3];
    gs_probe_init(&alone);
    t5_submit(s, &f.p[1], &s42, &alone, 0);
    gs_wait_done(&alone, "seed alone");
    gs_check(&alone, "seed alone");
    ck_assert_int_eq(alone.status, GEN_OK);
    ck_assert_uint_eq(alone.n_generated, N_NEW);
    gs_probe_init(&busy);
    gs_probe_init(&other);
    for (int k = 0; k < 3; k++)
        gs_probe_init(&noise[k]);
    t5_submit(s, &f.p[0], &greedy, &noise[0], 0);
    t5_submit(s, &f.p[2], &s43, &noise[1], 0);
    gs_wait_events(&noise[0], 2, "noise");
    t5_submit(s, &f.p[1], &s42, &busy, 0);
    gs_wait_events(&busy, 3, "busy");
    t5_submit(s, &f.p[2], &greedy, &noise[2], 0);
    t5_submit(s, &f.p[1], &s43, &other, 0);
    struct probe *all[] = {&busy, &other, &noise[0], &noise[1], &noise[2]};
    for (size_t k = 0; k < 5; k++) {
        gs_wait_done(all[k], "seeded batch");
        gs_check(all[k], "seeded batch");
        ck_assert_int_eq(all[k]->status, GEN_OK);
    }
    for (size_t k = 0; k < N_NEW; k++)
        ck_assert_msg(busy.res_ids[k] == alone.res_ids[k],
                      "seed 42 token %zu: %d in a busy batch, %d alone", k, busy.res_ids[k],
                      alone.res_ids[k]);
    size_t same = 0, greedy_same = 0;
    for (size_t k = 0; k < N_NEW; k++) {
        same += other.res_ids[k] == alone.res_ids[k];
        greedy_same += alone.res_ids[k] == f.p[1].greedy[k];
    }
    ck_assert_msg(same < N_NEW, "seeds 42 and 43 drew the same tokens");
    ck_assert_msg(greedy_same < N_NEW, "seed 42 drew the greedy tokens");
    expect_greedy(&f, 0, &noise[0], N_NEW, "beside sampled requests");
    expect_greedy(&f, 2, &noise[2], N_NEW, "beside sampled requests");
    gen_sched_free(s);
    gen_params_fini(&s42);
    gen_params_fini(&s43);
    gen_params_fini(&greedy);
    gs_probe_fini(&alone);
    gs_probe_fini(&busy);
    gs_probe_fini(&other);
    for (int k = 0; k < 3; k++)
        gs_probe_fini(&noise[k]);
    t5_close(&f);
}
END_TEST

/* Runs prompt i with params alone; the probe is the caller's to check and fini. */
static void run_one(struct gen_sched *s, const struct t5_fixture *f, size_t i,
                    const struct gen_params *gp, struct probe *p, const char *what)
{
    gs_probe_init(p);
    t5_submit(s, &f->p[i], gp, p, 0);
    gs_wait_done(p, what);
    gs_check(p, what);
}

/* The greedy ids up to (and with) the first token whose text completes `word` in greedy_text:
 * how many there are, from the reference text and ids (each "▁word" piece one word). */
static size_t words_through(const char *text, const char *word, size_t *chars)
{
    const char *at = strstr(text, word);
    ck_assert_ptr_nonnull(at);
    *chars = (size_t)(at - text) + strlen(word);
    size_t words = 1;
    for (const char *q = text; q < at; q++)
        words += *q == ' ';
    return words;
}

START_TEST(sched_stops_and_control)
{
    struct t5_fixture f;
    t5_open(&f);
    struct model_config c = gs_cfg(4, 16, 512, 16384);
    c.generation.max_total_tokens = 64;
    struct gen_sched *s = gen_sched_new(f.gm, &c, NULL, "t", &(struct err){0});
    ck_assert_ptr_nonnull(s);
    /* prompt 0's greedy text is "number number number Marketing ...", one token a word */
    const struct t5_prompt *p0 = &f.p[0];
    size_t chars = 0, words = words_through(p0->text, "Marketing", &chars);
    struct probe p;
    struct gen_params gp;

    /* TGI: the text ends with the stop string, which stays */
    t5_params(&f, &gen_api_tgi,
              "{\"max_new_tokens\": 16, \"do_sample\": false, \"stop\": [\"Marketing\"]}", &gp);
    run_one(s, &f, 0, &gp, &p, "tgi stop");
    ck_assert_int_eq(p.status, GEN_OK);
    ck_assert_int_eq(p.finish, GEN_FINISH_STOP);
    ck_assert_uint_eq(p.n_generated, words);
    ck_assert_uint_eq(p.res_text_len, chars);
    ck_assert(memcmp(p.res_text, p0->text, chars) == 0);
    gs_probe_fini(&p);
    gen_params_fini(&gp);

    /* OpenAI: the text ends before it */
    t5_params(&f, &gen_api_completions,
              "{\"max_tokens\": 16, \"temperature\": 0, \"stop\": \"Marketing\"}", &gp);
    run_one(s, &f, 0, &gp, &p, "openai stop");
    ck_assert_int_eq(p.finish, GEN_FINISH_STOP);
    ck_assert_uint_eq(p.n_generated, words);
    ck_assert_uint_eq(p.res_text_len, chars - strlen("Marketing"));
    ck_assert(memcmp(p.res_text, p0->text, p.res_text_len) == 0);
    gs_probe_fini(&p);
    gen_params_fini(&gp);

    /* an eos id: the 4th greedy token */
    t5_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 16, \"do_sample\": false}", &gp);
    gp.eos_token_ids[0] = p0->greedy[3];
    gp.n_eos_token_ids = 1;
    run_one(s, &f, 0, &gp, &p, "eos");
    ck_assert_int_eq(p.finish, GEN_FINISH_EOS);
    ck_assert_uint_eq(p.n_generated, 4);
    for (size_t k = 0; k < 4; k++)
        ck_assert_int_eq(p.res_ids[k], p0->greedy[k]);
    gs_probe_fini(&p);
    gen_params_fini(&gp);

    /* cancel: slow events keep it running */
    t5_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 16, \"do_sample\": false}", &gp);
    gs_probe_init(&p);
    p.slow_us = 100000;
    struct gen_req *r = t5_submit(s, &f.p[2], &gp, &p, 0);
    gs_wait_events(&p, 2, "cancel");
    gen_sched_cancel(r);
    gs_wait_done(&p, "cancel");
    gs_check(&p, "cancel");
    ck_assert_int_eq(p.status, GEN_CANCELLED);
    ck_assert_uint_lt(p.n_generated, N_NEW);
    for (size_t k = 0; k < p.n_generated; k++)
        ck_assert_int_eq(p.res_ids[k], f.p[2].greedy[k]);
    gs_probe_fini(&p);

    /* a deadline cuts it short */
    gs_probe_init(&p);
    p.slow_us = 100000;
    t5_submit(s, &f.p[2], &gp, &p, gs_now() + 0.4);
    gs_wait_done(&p, "deadline");
    gs_check(&p, "deadline");
    ck_assert_int_eq(p.status, GEN_TIMEOUT);
    ck_assert_uint_lt(p.n_generated, N_NEW);
    gs_probe_fini(&p);

    /* refused at submit: prompt logprobs, an id outside the vocabulary, too long an input */
    struct err e = {0};
    gp.decoder_input_details = true;
    gs_probe_init(&p);
    ck_assert_int_eq(t5_try_submit(s, &f.p[0], &gp, &p, 0, NULL, &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "decoder_input_details") && strstr(e.msg, "encoder-decoder"), "%s",
                  e.msg);
    gp.decoder_input_details = false;
    struct t5_prompt bad = f.p[0];
    bad.ids[2] = gen_model_vocab_size(f.gm);
    ck_assert_int_eq(t5_try_submit(s, &bad, &gp, &p, 0, NULL, &e), ERR_INVALID);
    ck_assert_uint_gt(f.p[1].n + 16, 64);
    ck_assert_int_eq(t5_try_submit(s, &f.p[1], &gp, &p, 0, NULL, &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "must be <= 64"), "%s", e.msg);
    ck_assert_int_eq(p.done, 0);
    gs_probe_fini(&p);

    /* nothing of that disturbed the next request */
    run_one(s, &f, 0, &gp, &p, "after");
    expect_greedy(&f, 0, &p, N_NEW, "after the refusals");
    gs_probe_fini(&p);
    gen_params_fini(&gp);
    gen_sched_free(s);
    t5_close(&f);
}
END_TEST

/* ---- http ---- */

static struct daemon *srv;
static struct t5_prompt hp[T5_MAX_PROMPTS];
static size_t n_hp;
static json_t *hrefs;

static void srv_start(void)
{
    hrefs = t5_refs(hp, &n_hp);
    char *yaml = yaml_config(
        NULL, yaml_model("t5", "t5-s2s", "text2text-generation", "max_input_tokens: 600\n"), NULL);
    srv = daemon_start_shared(yaml);
}

static void srv_stop(void)
{
    daemon_stop(srv);
    srv = NULL;
    json_decref(hrefs);
    hrefs = NULL;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    ck_assert_msg(s, "no string \"%s\"", key);
    return s;
}

static json_t *greedy16(void)
{
    return json_pack("{s:b, s:i}", "do_sample", 0, "max_new_tokens", N_NEW);
}

/* [{"generated_text": text}] */
static void expect_generated(const struct http_reply *r, const char *text, const char *what)
{
    expect_status(r, 200, what);
    json_t *want = json_pack("[{s:s}]", "generated_text", text);
    expect_json(r->json, want, 0, what);
    json_decref(want);
}

START_TEST(hf_greedy)
{
    for (size_t i = 0; i < n_hp; i++) {
        char what[64];
        snprintf(what, sizeof what, "POST /models/t5 prompt %zu", i);
        struct http_reply *r =
            daemon_post(srv, "/models/t5",
                        json_pack("{s:s, s:o}", "inputs", hp[i].input, "parameters", greedy16()));
        expect_generated(r, hp[i].text, what);
        http_reply_free(r);
        /* clean_up_tokenization_spaces changes nothing in these texts (no " ." and the like) */
        r = daemon_post(srv, "/models/t5",
                        json_pack("{s:s, s:{s:b, s:i, s:b, s:b}}", "inputs", hp[i].input,
                                  "parameters", "do_sample", 0, "max_new_tokens", N_NEW,
                                  "clean_up_tokenization_spaces", 1, "return_text", 1));
        expect_generated(r, hp[i].text, what);
        http_reply_free(r);
    }
}
END_TEST

/* generate()'s lengths for an encoder-decoder: max_length (default 20) counts the start
 * token; return_tensors answers generate()'s output ids, the start token first. */
START_TEST(hf_lengths_and_tensors)
{
    const struct t5_prompt *p = &hp[0];
    struct http_reply *r =
        daemon_post(srv, "/models/t5",
                    json_pack("{s:s, s:{s:b, s:i, s:b}}", "inputs", p->input, "parameters",
                              "do_sample", 0, "max_new_tokens", N_NEW, "return_tensors", 1));
    expect_status(r, 200, "return_tensors");
    json_t *ids = json_array();
    json_array_append_new(ids, json_integer(p->start));
    for (size_t k = 0; k < N_NEW; k++)
        json_array_append_new(ids, json_integer(p->greedy[k]));
    json_t *want = json_pack("[{s:o}]", "generated_token_ids", ids);
    expect_json(r->json, want, 0, "return_tensors: greedy_ids");
    json_decref(want);
    http_reply_free(r);
    /* max_length 10: the start token and 9 generated */
    r = daemon_post(srv, "/models/t5",
                    json_pack("{s:s, s:{s:i, s:b}}", "inputs", p->input, "parameters", "max_length",
                              10, "return_tensors", 1));
    expect_status(r, 200, "max_length 10");
    const json_t *got = json_object_get(json_array_get(r->json, 0), "generated_token_ids");
    ck_assert_uint_eq(json_array_size(got), 10);
    ck_assert_int_eq(json_integer_value(json_array_get(got, 0)), p->start);
    for (size_t k = 1; k < 10; k++)
        ck_assert_int_eq(json_integer_value(json_array_get(got, k)), p->greedy[k - 1]);
    http_reply_free(r);
    /* no parameters: generation_config.json has no do_sample (greedy) and no max_length:
     * transformers' 20, i.e. 19 generated tokens, the refs' 16 first */
    r = daemon_post(srv, "/models/t5", json_pack("{s:s}", "inputs", p->input));
    expect_status(r, 200, "defaults");
    const char *text = str(json_array_get(r->json, 0), "generated_text");
    ck_assert_msg(strncmp(text, p->text, strlen(p->text)) == 0 && strlen(text) > strlen(p->text),
                  "defaults: '%s' does not extend '%s'", text, p->text);
    http_reply_free(r);
    r = daemon_post(
        srv, "/models/t5",
        json_pack("{s:s, s:{s:b}}", "inputs", p->input, "parameters", "return_tensors", 1));
    expect_status(r, 200, "defaults, tensors");
    got = json_object_get(json_array_get(r->json, 0), "generated_token_ids");
    ck_assert_uint_eq(json_array_size(got), 20);
    for (size_t k = 1; k <= N_NEW; k++)
        ck_assert_int_eq(json_integer_value(json_array_get(got, k)), p->greedy[k - 1]);
    http_reply_free(r);
    /* stop_sequence: its first token is the only eos id; generation ends on it, its text
     * kept (not a special token) */
    size_t chars = 0, words = words_through(p->text, "Marketing", &chars);
    (void)words;
    char *cut = strndup(p->text, chars);
    r = daemon_post(srv, "/models/t5",
                    json_pack("{s:s, s:{s:b, s:i, s:s}}", "inputs", p->input, "parameters",
                              "do_sample", 0, "max_new_tokens", N_NEW, "stop_sequence",
                              "Marketing"));
    expect_generated(r, cut, "stop_sequence");
    http_reply_free(r);
    free(cut);
    /* truncation: an input past max_input_tokens (600 here) is refused, unless cut to the
     * tokenizer's model_max_length (512) */
    size_t len = strlen(hp[1].input);
    char *big = malloc(8 * (len + 1) + 1);
    big[0] = '\0';
    for (int k = 0; k < 8; k++) {
        strcat(big, hp[1].input);
        strcat(big, " ");
    }
    r = daemon_post(srv, "/models/t5",
                    json_pack("{s:s, s:{s:i, s:b}}", "inputs", big, "parameters", "max_new_tokens",
                              4, "truncation", 1));
    expect_status(r, 200, "truncation");
    http_reply_free(r);
    r = daemon_post(srv, "/models/t5",
                    json_pack("{s:s, s:{s:i, s:s}}", "inputs", big, "parameters", "max_new_tokens",
                              4, "truncation", "do_not_truncate"));
    expect_hf_error(r, 422, "no truncation");
    ck_assert_msg(strstr(str(r->json, "error"), "must have less than 600 tokens"), "%s",
                  str(r->json, "error"));
    http_reply_free(r);
    free(big);
}
END_TEST

/* Every prompt at once, four times over: each answer exact. */
START_TEST(hf_concurrent)
{
    enum { ROUNDS = 4 };
    size_t n = n_hp * ROUNDS;
    struct http_spec specs[T5_MAX_PROMPTS * ROUNDS];
    char *bodies[T5_MAX_PROMPTS * ROUNDS];
    for (size_t i = 0; i < n; i++) {
        json_t *b = json_pack("{s:s, s:o}", "inputs", hp[i % n_hp].input, "parameters", greedy16());
        bodies[i] = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        specs[i] = (struct http_spec){"POST", "/models/t5", bodies[i], NULL};
    }
    for (int round = 0; round < 2; round++) {
        struct http_multi *m = http_multi_start(srv->port, specs, n);
        ck_assert(http_multi_wait(m, 120000));
        for (size_t i = 0; i < n; i++) {
            char what[64];
            snprintf(what, sizeof what, "concurrent %zu", i);
            expect_generated(http_multi_reply(m, i), hp[i % n_hp].text, what);
        }
        http_multi_free(m);
    }
    for (size_t i = 0; i < n; i++)
        free(bodies[i]);
    /* they ran together: some step had more than one sequence */
    struct http_reply *r = daemon_get(srv, "/metrics");
    const char *labels[] = {"model=\"t5\"", NULL};
    int k = 0;
    double batches = metric_sum(r->body, "inferd_batches_total", labels, &k);
    double generated = metric_sum(r->body, "inferd_generated_tokens_total", labels, NULL);
    ck_assert_msg(k == 1 && batches < generated, "%g steps for %g tokens", batches, generated);
    http_reply_free(r);
}
END_TEST

/* TGI and OpenAI completions serve it too: the generated text only. */
START_TEST(tgi_and_completions)
{
    for (size_t i = 0; i < n_hp; i++) {
        const struct t5_prompt *p = &hp[i];
        json_t *params = greedy16();
        json_object_set_new(params, "details", json_true());
        struct http_reply *r = daemon_post(
            srv, "/generate",
            json_pack("{s:s, s:o, s:s}", "inputs", p->input, "parameters", params, "model", "t5"));
        expect_status(r, 200, "/generate");
        ck_assert_str_eq(str(r->json, "generated_text"), p->text);
        const json_t *d = json_object_get(r->json, "details");
        ck_assert_str_eq(str(d, "finish_reason"), "length");
        ck_assert_int_eq(json_integer_value(json_object_get(d, "generated_tokens")), N_NEW);
        const json_t *toks = json_object_get(d, "tokens");
        ck_assert_uint_eq(json_array_size(toks), N_NEW);
        for (size_t k = 0; k < N_NEW; k++)
            ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(toks, k), "id")),
                             p->greedy[k]);
        http_reply_free(r);
        /* the stream's last event: the same text; one event per token */
        r = daemon_post(srv, "/generate_stream",
                        json_pack("{s:s, s:o}", "inputs", p->input, "parameters", greedy16()));
        expect_status(r, 200, "/generate_stream");
        size_t events = 0;
        const char *last = NULL;
        for (const char *q = strstr(r->body, "data: "); q; q = strstr(q + 1, "data: ")) {
            events++;
            last = q;
        }
        ck_assert_uint_eq(events, N_NEW);
        json_t *ev = json_loads(last + 6, JSON_DISABLE_EOF_CHECK, NULL);
        ck_assert_ptr_nonnull(ev);
        ck_assert_str_eq(str(ev, "generated_text"), p->text);
        json_decref(ev);
        http_reply_free(r);
        /* /v1/completions: the completion, usage from the refs' input ids */
        r = daemon_post(srv, "/v1/completions",
                        json_pack("{s:s, s:s, s:i, s:i}", "model", "t5", "prompt", p->input,
                                  "max_tokens", N_NEW, "temperature", 0));
        expect_status(r, 200, "/v1/completions");
        const json_t *c0 = json_array_get(json_object_get(r->json, "choices"), 0);
        ck_assert_str_eq(str(c0, "text"), p->text);
        ck_assert_str_eq(str(c0, "finish_reason"), "length");
        const json_t *u = json_object_get(r->json, "usage");
        ck_assert_int_eq(json_integer_value(json_object_get(u, "prompt_tokens")), (long)p->n);
        ck_assert_int_eq(json_integer_value(json_object_get(u, "completion_tokens")), N_NEW);
        http_reply_free(r);
    }
    /* seeded sampling: the same seed twice, the same text, not the greedy one */
    char *first = NULL;
    for (int round = 0; round < 2; round++) {
        struct http_reply *r = daemon_post(
            srv, "/generate",
            json_pack("{s:s, s:{s:b, s:f, s:i, s:i}}", "inputs", hp[2].input, "parameters",
                      "do_sample", 1, "temperature", 1.5, "seed", 99, "max_new_tokens", N_NEW));
        expect_status(r, 200, "seeded");
        if (!first)
            first = strdup(str(r->json, "generated_text"));
        else
            ck_assert_str_eq(str(r->json, "generated_text"), first);
        http_reply_free(r);
    }
    ck_assert_str_ne(first, hp[2].text);
    free(first);
}
END_TEST

static void expect_hf_422(json_t *body, const char *path, const char *needle)
{
    struct http_reply *r = daemon_post(srv, path, body);
    expect_hf_error(r, 422, needle);
    const char *msg = str(r->json, "error");
    ck_assert_msg(strstr(msg, needle), "%s: '%s' does not say '%s'", path, msg, needle);
    http_reply_free(r);
}

static void expect_openai_400(json_t *body, const char *path, const char *needle)
{
    struct http_reply *r = daemon_post(srv, path, body);
    expect_openai_error(r, 400, needle);
    const char *msg = str(json_object_get(r->json, "error"), "message");
    ck_assert_msg(strstr(msg, needle), "%s: '%s' does not say '%s'", path, msg, needle);
    http_reply_free(r);
}

START_TEST(refusals)
{
    const char *in = hp[0].input;
    /* the pipeline's parameters */
    expect_hf_422(json_pack("{s:s, s:{s:i}}", "inputs", in, "parameters", "max_new_tokens", 0),
                  "/models/t5", "`max_new_tokens` must be greater than 0");
    expect_hf_422(json_pack("{s:s, s:{s:b, s:f}}", "inputs", in, "parameters", "do_sample", 1,
                            "temperature", -1.0),
                  "/models/t5", "`temperature` (=-1.0) has to be a strictly positive float");
    expect_hf_422(json_pack("{s:s, s:{s:i}}", "inputs", in, "parameters", "max_length", 1),
                  "/models/t5", "`max_length` must be at least 2");
    expect_hf_422(json_pack("{s:s, s:{s:b}}", "inputs", in, "parameters", "return_full_text", 1),
                  "/models/t5", "`return_full_text`");
    expect_hf_422(json_pack("{s:s, s:{s:s}}", "inputs", in, "parameters", "truncation", "bogus"),
                  "/models/t5", "`truncation` must be");
    expect_hf_422(json_pack("{s:s, s:{s:s}}", "inputs", in, "parameters", "return_tensors", "yes"),
                  "/models/t5", "`return_tensors` must be true or false");
    expect_hf_422(json_pack("{s:s, s:{s:i}}", "inputs", in, "parameters", "stop_sequence", 3),
                  "/models/t5", "`stop_sequence` must be a string");
    expect_hf_422(json_pack("{s:s}", "inputs", ""), "/models/t5", "cannot be empty");
    expect_hf_422(json_pack("{s:[s]}", "inputs", in), "/models/t5", "must be a string");
    /* TGI: no prompt to return or to score */
    expect_hf_422(json_pack("{s:s, s:{s:b}}", "inputs", in, "parameters", "return_full_text", 1),
                  "/generate", "`return_full_text` is not supported by an encoder-decoder");
    expect_hf_422(json_pack("{s:s, s:{s:i, s:b, s:b}}", "inputs", in, "parameters",
                            "max_new_tokens", 4, "details", 1, "decoder_input_details", 1),
                  "/generate", "`decoder_input_details` is not supported by an encoder-decoder");
    expect_hf_422(json_pack("{s:s, s:{s:i}}", "inputs", in, "parameters", "max_new_tokens", 5000),
                  "/generate", "must be <= 4096");
    /* OpenAI: echo, and chat without a chat template */
    expect_openai_400(json_pack("{s:s, s:s, s:b}", "model", "t5", "prompt", in, "echo", 1),
                      "/v1/completions", "`echo` is not supported by an encoder-decoder");
    expect_openai_400(json_pack("{s:s, s:[{s:s, s:s}]}", "model", "t5", "messages", "role", "user",
                                "content", "Hello"),
                      "/v1/chat/completions", "encoder-decoder (text2text-generation)");
    /* without "model", chat does not pick it */
    struct http_reply *r =
        daemon_post(srv, "/v1/chat/completions",
                    json_pack("{s:[{s:s, s:s}]}", "messages", "role", "user", "content", "Hello"));
    expect_openai_error(r, 404, "chat without a model");
    http_reply_free(r);
    /* and the model still answers exactly */
    r = daemon_post(srv, "/models/t5",
                    json_pack("{s:s, s:o}", "inputs", in, "parameters", greedy16()));
    expect_generated(r, hp[0].text, "after the refusals");
    http_reply_free(r);
}
END_TEST

START_TEST(shutdown_is_clean)
{
    daemon_shutdown(srv);
}
END_TEST

/* A T5 configured as text-generation does not load, says why, and stops the start (exit 1). */
START_TEST(t5_as_text_generation_refused)
{
    char *yaml = yaml_config(NULL, yaml_model("t5", "t5-s2s", "text-generation", NULL), NULL);
    struct daemon *d = daemon_new(yaml);
    free(yaml);
    daemon_exec(d, NULL);
    int code = daemon_wait_exit(d, 60000);
    ck_assert_msg(code == 1, "exit code %d (want 1; -1: still running); log:\n%s", code,
                  daemon_log_tail(d));
    char *log = daemon_log(d);
    const char *msg = strstr(log, "inferd: model t5 failed to load: ");
    ck_assert_msg(msg && strstr(msg, "encoder-decoder") && strstr(msg, "text2text-generation"),
                  "%s", log);
    free(log);
    expect_clean_log(d);
    daemon_stop(d);
}
END_TEST

Suite *suite_serve_t5(void)
{
    Suite *s = suite_create("serve_t5");
    TCase *tc = tcase_create("sched");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, sched_greedy_alone);
    tcase_add_test(tc, sched_joining);
    tcase_add_test(tc, sched_seeded);
    tcase_add_test(tc, sched_stops_and_control);
    suite_add_tcase(s, tc);
    TCase *h = tcase_create("http");
    tcase_set_timeout(h, 300);
    tcase_add_unchecked_fixture(h, srv_start, srv_stop);
    tcase_add_checked_fixture(h, NULL, serve_teardown);
    tcase_add_test(h, hf_greedy);
    tcase_add_test(h, hf_lengths_and_tensors);
    tcase_add_test(h, hf_concurrent);
    tcase_add_test(h, tgi_and_completions);
    tcase_add_test(h, refusals);
    tcase_add_test(h, shutdown_is_clean);
    suite_add_tcase(s, h);
    TCase *load = tcase_create("load");
    tcase_set_timeout(load, 120);
    tcase_add_checked_fixture(load, NULL, serve_teardown);
    tcase_add_test(load, t5_as_text_generation_refused);
    suite_add_tcase(s, load);
    return s;
}
