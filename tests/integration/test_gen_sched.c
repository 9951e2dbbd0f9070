/* test_gen_sched: the continuous-batching generation scheduler called directly (no HTTP) on
 * the gpt2-lm and llama-lm fixtures, against transformers' greedy generations (refs-dev.json
 * "generations": 24 greedy ids and their text; "pipeline": the text the text-generation
 * pipeline appends after 16 tokens): every prompt alone, all of them at once with different
 * max_new_tokens arriving staggered, with 3-token prompt chunks and with fewer slots than
 * requests (queueing, slot reuse); seeded sampling independent of the rest of the batch; stop
 * strings, eos ids and max_new_tokens with their finish reasons; prompt logprobs
 * (decoder_input_details) against one whole-prompt forward. Every request hears on_done
 * exactly once and no event after it. The control tests (cancel, deadlines, refusals, FIFO
 * admission, gen_sched_free) are in test_gen_sched_control.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_sched_support.h"
#include "generate/gen_impl.h" /* the decoder itself, for reference logits */
#include "metrics.h"
#include "models/decoder.h"
#include "suites.h"
#include "support/support.h"

/* ---- tests ---- */

START_TEST(greedy_alone)
{
    struct fixture f;
    gs_open(&f, _i);
    struct model_config c = gs_cfg(4, 16, 512, 16384);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    /* the eos token (generation_config.json) is special, a generated one is not */
    const struct tokenizer *tk = gen_model_tokenizer(f.gm);
    ck_assert_uint_ge(gen_model_config(f.gm)->n_eos_token_ids, 1);
    ck_assert(tokenizer_is_special(tk, gen_model_config(f.gm)->eos_token_ids[0]));
    ck_assert(!tokenizer_is_special(tk, f.p[0].greedy[0]));
    ck_assert(!tokenizer_is_special(tk, -1) && !tokenizer_is_special(tk, 1 << 30));
    /* the default max_total_tokens: the model's 256 positions */
    ck_assert_uint_eq(gen_sched_max_total_tokens(s), 256);
    struct gen_params g24, g16;
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 24, \"do_sample\": false}", &g24);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 16, \"do_sample\": false}", &g16);
    for (size_t i = 0; i < f.n; i++) {
        struct probe p;
        gs_probe_init(&p);
        gs_submit(s, &f.p[i], &g24, &p, 0, -1);
        gs_wait_done(&p, "alone");
        gs_check(&p, "alone");
        gs_expect_greedy(&f, i, &p, 24, "alone");
        gs_probe_fini(&p);
        if (!f.p[i].pipeline_text)
            continue;
        gs_probe_init(&p);
        gs_submit(s, &f.p[i], &g16, &p, 0, -1);
        gs_wait_done(&p, "alone, 16");
        gs_check(&p, "alone, 16");
        gs_expect_greedy(&f, i, &p, 16, "alone, 16 tokens");
        gs_probe_fini(&p);
    }
    ck_assert_uint_eq(gen_sched_queued(s), 0);
    ck_assert_uint_eq(gen_sched_running(s), 0);
    gen_sched_free(s);
    gen_params_fini(&g24);
    gen_params_fini(&g16);
    gs_close(&f);
}
END_TEST

/* All prompts, different lengths, some joining while others decode, prompts fed 3 tokens a
 * step; with 8 slots (all run together) and with 2 (the rest wait and take freed slots). */
static void staggered(struct fixture *f, size_t slots)
{
    static const uint32_t lengths[] = {24, 10, 17, 24, 5, 20, 24, 12};
    struct metrics *m = metrics_new();
    struct model_config c = gs_cfg(slots, 64, 3, 16384);
    struct gen_sched *s = gs_sched(f, &c, m);
    struct gen_params gp[MAX_PROMPTS];
    struct probe p[MAX_PROMPTS];
    size_t prompt_tokens = 0, gen_tokens = 0;
    for (size_t i = 0; i < f->n; i++) {
        char json[128];
        snprintf(json, sizeof json, "{\"max_new_tokens\": %u, \"do_sample\": false}", lengths[i]);
        gs_params(f, &gen_api_tgi, json, &gp[i]);
        gs_probe_init(&p[i]);
        prompt_tokens += f->p[i].n;
        gen_tokens += lengths[i];
    }
    /* 0, 1 and 2 at once; 3 once 0 has 3 tokens; the others once 1 has 5 */
    for (size_t i = 0; i < 3; i++)
        gs_submit(s, &f->p[i], &gp[i], &p[i], 0, -1);
    gs_wait_events(&p[0], 3, "staggered");
    gs_submit(s, &f->p[3], &gp[3], &p[3], 0, -1);
    gs_wait_events(&p[1], 5, "staggered");
    for (size_t i = 4; i < f->n; i++)
        gs_submit(s, &f->p[i], &gp[i], &p[i], 0, -1);
    char how[64];
    snprintf(how, sizeof how, "staggered, %zu slots, 3-token chunks", slots);
    for (size_t i = 0; i < f->n; i++) {
        gs_wait_done(&p[i], how);
        gs_check(&p[i], how);
        gs_expect_greedy(f, i, &p[i], lengths[i], how);
    }
    gen_sched_free(s);
    /* every prompt token was fed once but those a prompt found cached (the prefix cache: a
     * llama prompt's BOS, kept by the first cache; each request looked once), every generated
     * token but the last of each */
    double fed = gs_metric(m, "inferd_tokens_total{model=\"t\"}");
    double steps = gs_metric(m, "inferd_batches_total{model=\"t\"}");
    double cached = gs_metric(m, "inferd_prefix_cache_tokens_total{model=\"t\"}");
    double hits = gs_metric(m, "inferd_prefix_cache_hits_total{model=\"t\"}");
    double misses = gs_metric(m, "inferd_prefix_cache_misses_total{model=\"t\"}");
    ck_assert_double_eq(fmax(hits, 0) + fmax(misses, 0), (double)f->n);
    ck_assert_double_eq(fed, (double)(prompt_tokens + gen_tokens - f->n) - cached);
    ck_assert_double_eq(gs_metric(m, "inferd_generated_tokens_total{model=\"t\"}"),
                        (double)gen_tokens);
    ck_assert_double_eq(gs_metric(m, "inferd_time_to_first_token_seconds_count{model=\"t\"}"),
                        (double)f->n);
    ck_assert_double_eq(gs_metric(m, "inferd_queue_duration_seconds_count{model=\"t\"}"),
                        (double)f->n);
    ck_assert_double_eq(gs_metric(m, "inferd_running_sequences{model=\"t\"}"), 0);
    ck_assert_double_eq(gs_metric(m, "inferd_queue_depth{model=\"t\"}"), 0);
    /* at most 3 prompt tokens a step: more steps than ceil(prompt tokens / 3) */
    ck_assert(steps >= (double)((prompt_tokens + 2) / 3));
    /* decodes share steps: fewer steps than tokens fed one by one */
    ck_assert_msg(steps < fed * 0.8, "%g steps for %g tokens", steps, fed);
    for (size_t i = 0; i < f->n; i++) {
        gen_params_fini(&gp[i]);
        gs_probe_fini(&p[i]);
    }
    metrics_free(m);
}

START_TEST(greedy_staggered)
{
    struct fixture f;
    gs_open(&f, _i);
    staggered(&f, 8);
    staggered(&f, 2);
    gs_close(&f);
}
END_TEST

/* The same seed gives the same tokens alone and in a busy batch; another seed others. */
START_TEST(seeded_sampling)
{
    struct fixture f;
    gs_open(&f, _i);
    struct model_config c = gs_cfg(8, 64, 4, 16384);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    const char *fmt = "{\"max_new_tokens\": 24, \"do_sample\": true, \"temperature\": 1.5, "
                      "\"seed\": %d}";
    char json[160];
    struct gen_params s42, s43, greedy;
    snprintf(json, sizeof json, fmt, 42);
    gs_params(&f, &gen_api_tgi, json, &s42);
    snprintf(json, sizeof json, fmt, 43);
    gs_params(&f, &gen_api_tgi, json, &s43);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 24, \"do_sample\": false}", &greedy);
    ck_assert(s42.seed_given && s42.seed == 42 && s42.do_sample);
    s42.ignore_eos = s43.ignore_eos = true; /* all 24 tokens, whatever is drawn */

    struct probe alone, busy, other, noise[4];
    gs_probe_init(&alone);
    gs_submit(s, &f.p[1], &s42, &alone, 0, -1);
    gs_wait_done(&alone, "seed alone");
    gs_check(&alone, "seed alone");
    ck_assert_int_eq(alone.status, GEN_OK);
    ck_assert_uint_eq(alone.n_generated, 24);
    ck_assert_uint_eq(alone.seed, 42);

    /* busy: greedy and other-seed requests before, with and after it */
    gs_probe_init(&busy);
    gs_probe_init(&other);
    for (int k = 0; k < 4; k++)
        gs_probe_init(&noise[k]);
    gs_submit(s, &f.p[0], &greedy, &noise[0], 0, -1);
    gs_submit(s, &f.p[3], &s43, &noise[1], 0, -1);
    gs_wait_events(&noise[0], 2, "noise");
    gs_submit(s, &f.p[1], &s42, &busy, 0, -1);
    gs_submit(s, &f.p[2], &greedy, &noise[2], 0, -1);
    gs_wait_events(&busy, 4, "busy");
    gs_submit(s, &f.p[4], &s43, &noise[3], 0, -1);
    gs_submit(s, &f.p[1], &s43, &other, 0, -1);
    struct probe *all[] = {&busy, &other, &noise[0], &noise[1], &noise[2], &noise[3]};
    for (size_t k = 0; k < 6; k++) {
        gs_wait_done(all[k], "seeded batch");
        gs_check(all[k], "seeded batch");
        ck_assert_int_eq(all[k]->status, GEN_OK);
    }
    ck_assert_uint_eq(busy.n_generated, 24);
    for (size_t k = 0; k < 24; k++)
        ck_assert_msg(busy.res_ids[k] == alone.res_ids[k],
                      "seed 42 token %zu: %d in a busy batch, %d alone", k, busy.res_ids[k],
                      alone.res_ids[k]);
    ck_assert_uint_eq(other.n_generated, 24);
    size_t same = 0;
    for (size_t k = 0; k < 24; k++)
        same += other.res_ids[k] == alone.res_ids[k];
    ck_assert_msg(same < 24, "seeds 42 and 43 drew the same 24 tokens");
    /* sampling at temperature 1.5 is not greedy decoding */
    same = 0;
    for (size_t k = 0; k < 24; k++)
        same += alone.res_ids[k] == f.p[1].greedy[k];
    ck_assert_msg(same < 24, "seed 42 drew the greedy tokens");
    /* the greedy neighbours were not disturbed either */
    gs_expect_greedy(&f, 0, &noise[0], 24, "beside sampled requests");
    gs_expect_greedy(&f, 2, &noise[2], 24, "beside sampled requests");
    gen_sched_free(s);
    for (size_t k = 0; k < 6; k++)
        gs_probe_fini(all[k]);
    gs_probe_fini(&alone);
    gen_params_fini(&s42);
    gen_params_fini(&s43);
    gen_params_fini(&greedy);
    gs_close(&f);
}
END_TEST

/* Runs prompt i with params json (dialect d) to its end. */
static void gs_run_one(struct fixture *f, struct gen_sched *s, size_t i, const struct gen_api *d,
                       const char *json, struct probe *p)
{
    struct gen_params gp;
    gs_params(f, d, json, &gp);
    gs_probe_init(p);
    gs_submit(s, &f->p[i], &gp, p, 0, -1);
    gen_params_fini(&gp); /* the scheduler has its copy */
    gs_wait_done(p, json);
    gs_check(p, json);
    ck_assert_msg(p->status == GEN_OK, "%s: %s", json, p->error);
}

/* The first index k with greedy[k] == id. */
static size_t first_index(const struct prompt *pr, int32_t id)
{
    size_t k = 0;
    while (k < pr->n_greedy && pr->greedy[k] != id)
        k++;
    return k;
}

START_TEST(stopping)
{
    struct fixture f;
    gs_open(&f, _i);
    struct model_config c = gs_cfg(4, 16, 512, 16384);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    struct probe p;
    /* max_new_tokens */
    gs_run_one(&f, s, 0, &gen_api_tgi, "{\"max_new_tokens\": 5, \"do_sample\": false}", &p);
    gs_expect_greedy(&f, 0, &p, 5, "max_new_tokens 5");
    gs_probe_fini(&p);
    gs_run_one(&f, s, 0, &gen_api_tgi, "{\"max_new_tokens\": 1, \"do_sample\": false}", &p);
    gs_expect_greedy(&f, 0, &p, 1, "max_new_tokens 1");
    gs_probe_fini(&p);

    /* stop strings taken from the greedy text. TGI checks after each token whether the text
     * ends with one, and keeps it: take the 3 code points before the second space (where a
     * token ends, the next starting with the space). OpenAI finds one anywhere, even inside a
     * token, holding text back meanwhile, and cuts it: take code points 4 to 9. */
    const struct prompt *pr = &f.p[1];
    const char *gt = pr->greedy_text, *end = strchr(gt + 1, ' ');
    ck_assert_ptr_nonnull(end);
    end = strchr(end + 1, ' ');
    ck_assert_ptr_nonnull(end);
    const char *a = end;
    for (int k = 0; k < 3; k++)
        for (a--; (*a & 0xC0) == 0x80; a--) {
        }
    char stop[64], json[256];
    snprintf(stop, sizeof stop, "%.*s", (int)(end - a), a);
    ck_assert(strstr(gt, stop) == a); /* its first occurrence */
    json_t *js = json_string(stop);
    char *quoted = json_dumps(js, JSON_ENCODE_ANY);
    json_decref(js);
    snprintf(json, sizeof json, "{\"max_new_tokens\": 24, \"do_sample\": false, \"stop\": [%s]}",
             quoted);
    free(quoted);
    gs_run_one(&f, s, 1, &gen_api_tgi, json, &p);
    ck_assert_int_eq(p.finish, GEN_FINISH_STOP);
    ck_assert_uint_lt(p.n_generated, 24);
    for (size_t k = 0; k < p.n_generated; k++)
        ck_assert_int_eq(p.res_ids[k], pr->greedy[k]);
    size_t want = (size_t)(end - gt), got = p.res_text_len;
    const char *t = p.res_text;
    if (got > 0 && t[0] == ' ' && gt[0] != ' ') /* Metaspace, see expect_greedy */
        t++, got--;
    ck_assert_msg(got == want && memcmp(t, gt, want) == 0, "TGI stop '%s': '%.*s'", stop,
                  (int)p.res_text_len, p.res_text);
    gs_probe_fini(&p);

    a = gt;
    for (int k = 0; k < 4; k++)
        for (a++; (*a & 0xC0) == 0x80; a++) {
        }
    const char *b = a;
    for (int k = 0; k < 5; k++)
        for (b++; (*b & 0xC0) == 0x80; b++) {
        }
    snprintf(stop, sizeof stop, "%.*s", (int)(b - a), a);
    ck_assert(strstr(gt, stop) == a);
    js = json_string(stop);
    quoted = json_dumps(js, JSON_ENCODE_ANY);
    json_decref(js);
    snprintf(json, sizeof json,
             "{\"model\": \"t\", \"prompt\": \"x\", \"max_tokens\": 24, "
             "\"temperature\": 0, \"stop\": %s}",
             quoted);
    free(quoted);
    gs_run_one(&f, s, 1, &gen_api_completions, json, &p);
    ck_assert_int_eq(p.finish, GEN_FINISH_STOP);
    ck_assert_uint_lt(p.n_generated, 24);
    for (size_t k = 0; k < p.n_generated; k++)
        ck_assert_int_eq(p.res_ids[k], pr->greedy[k]);
    t = p.res_text;
    got = p.res_text_len;
    want = (size_t)(a - gt);
    if (got > 0 && t[0] == ' ' && gt[0] != ' ')
        t++, got--;
    ck_assert_msg(got == want && memcmp(t, gt, want) == 0, "OpenAI stop '%s': '%.*s'", stop,
                  (int)p.res_text_len, p.res_text);
    gs_probe_fini(&p);

    /* an eos id (vLLM's stop_token_ids): the greedy token at 6 */
    int32_t eos = pr->greedy[6];
    size_t at = first_index(pr, eos);
    snprintf(json, sizeof json,
             "{\"model\": \"t\", \"prompt\": \"x\", \"max_tokens\": 24, "
             "\"temperature\": 0, \"stop_token_ids\": [%d]}",
             eos);
    gs_run_one(&f, s, 1, &gen_api_completions, json, &p);
    ck_assert_int_eq(p.finish, GEN_FINISH_EOS);
    ck_assert_uint_eq(p.n_generated, at + 1);
    ck_assert_int_eq(p.res_ids[at], eos);
    gs_probe_fini(&p);
    gen_sched_free(s);
    gs_close(&f);
}
END_TEST

/* log_softmax of one forward over the whole prompt: want[k] for prompt token k >= 1. */
static void reference_logprobs(const struct fixture *f, const struct prompt *pr, float *want)
{
    struct err e = {0};
    struct dnn_ctx *ctx = dnn_ctx_new(1, &e);
    ck_assert_msg(ctx != NULL, "%s", e.msg);
    struct decoder_run *run = decoder_run_new();
    struct decoder_seq *seq;
    ck_assert_int_eq(decoder_seq_new(f->gm->net, 64, &seq, &e), 0);
    int n = (int)pr->n, V = gen_model_vocab_size(f->gm);
    struct decoder_step st = {1, &seq, pr->ids, &n, true, false};
    const float *logits;
    ck_assert_msg(decoder_forward(f->gm->net, ctx, run, &st, &logits, &e) == 0, "%s", e.msg);
    want[0] = NAN;
    for (int k = 1; k < n; k++) {
        const float *row = logits + (size_t)(k - 1) * (size_t)V;
        double mx = row[0], sum = 0;
        for (int v = 1; v < V; v++)
            mx = fmax(mx, row[v]);
        for (int v = 0; v < V; v++)
            sum += exp((double)row[v] - mx);
        want[k] = (float)((double)row[pr->ids[k]] - mx - log(sum));
    }
    decoder_seq_free(seq);
    decoder_run_free(run);
    dnn_ctx_free(ctx);
}

static void expect_logprobs(const struct probe *p, const float *want, size_t n, const char *how)
{
    ck_assert_msg(p->has_plp, "%s: no prompt logprobs", how);
    ck_assert_uint_eq(p->n_prompt, n);
    ck_assert_msg(isnan(p->plp[0]), "%s: the first prompt logprob is %g, not null", how, p->plp[0]);
    for (size_t k = 1; k < n; k++)
        ck_assert_msg(fabsf(p->plp[k] - want[k]) <= 1e-4f && p->plp[k] < 0,
                      "%s: prompt logprob %zu is %g, not %g", how, k, p->plp[k], want[k]);
}

/* Prompt logprobs (decoder_input_details) of a whole-prompt prefill, and of one fed in
 * chunks while other sequences decode and prefill, equal those of one plain forward. */
START_TEST(prompt_logprobs)
{
    struct fixture f;
    gs_open(&f, _i);
    size_t longest = 0;
    for (size_t i = 1; i < f.n; i++)
        if (f.p[i].n > f.p[longest].n)
            longest = i;
    const struct prompt *pr = &f.p[longest];
    float want[MAX_IDS];
    reference_logprobs(&f, pr, want);
    struct gen_params det, g24, slow;
    gs_params(&f, &gen_api_tgi,
              "{\"max_new_tokens\": 24, \"do_sample\": false, \"decoder_input_details\": true}",
              &det);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 24, \"do_sample\": false}", &g24);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 40, \"do_sample\": false}", &slow);
    slow.ignore_eos = true;

    struct model_config c = gs_cfg(4, 16, 512, 16384);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    struct probe p, plain;
    gs_probe_init(&p);
    gs_submit(s, pr, &det, &p, 0, -1);
    gs_wait_done(&p, "details");
    gs_check(&p, "details");
    gs_expect_greedy(&f, longest, &p, 24, "with decoder_input_details");
    expect_logprobs(&p, want, pr->n, "whole prompt");
    gs_probe_fini(&p);
    gen_sched_free(s);

    /* 3-token chunks; one request decoding, another prefilling before and after it */
    c = gs_cfg(4, 16, 3, 16384);
    s = gs_sched(&f, &c, NULL);
    struct probe dec, pre;
    gs_probe_init(&dec);
    gs_probe_init(&pre);
    gs_probe_init(&p);
    gs_probe_init(&plain);
    dec.slow_us = 2000;
    gs_submit(s, &f.p[0], &slow, &dec, 0, -1);
    gs_wait_events(&dec, 2, "decoding");
    gs_submit(s, &f.p[1], &g24, &pre, 0, -1);
    gs_submit(s, pr, &det, &p, 0, -1);
    gs_submit(s, &f.p[2], &g24, &plain, 0, -1);
    struct probe *all[] = {&dec, &pre, &p, &plain};
    for (size_t k = 0; k < 4; k++) {
        gs_wait_done(all[k], "details, chunked");
        gs_check(all[k], "details, chunked");
    }
    expect_logprobs(&p, want, pr->n, "chunked prompt");
    gs_expect_greedy(&f, longest, &p, 24, "details, chunked");
    gs_expect_greedy(&f, 0, &dec, 40, "beside details");
    gs_expect_greedy(&f, 1, &pre, 24, "beside details");
    gs_expect_greedy(&f, 2, &plain, 24, "beside details");
    ck_assert(!pre.has_plp && !plain.has_plp);
    gen_sched_free(s);
    for (size_t k = 0; k < 4; k++)
        gs_probe_fini(all[k]);
    gen_params_fini(&det);
    gen_params_fini(&g24);
    gen_params_fini(&slow);
    gs_close(&f);
}
END_TEST

/* gen_model_load: what the directory gives, config.json's eos ids when generation_config.json
 * is missing (transformers' fallback), and a clear error for a directory without a model. */
START_TEST(model_load)
{
    const char *src = fixture_model(gs_models[_i]);
    json_t *cfg = fixture_json(src, "config.json");
    json_int_t eos = json_integer_value(json_object_get(cfg, "eos_token_id"));
    json_int_t vocab = json_integer_value(json_object_get(cfg, "vocab_size"));
    json_decref(cfg);
    char dir[600], cmd[2048];
    snprintf(dir, sizeof dir, "%s/no-genconfig", temp_dir());
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && for f in config.json model.safetensors tokenizer.json "
             "tokenizer_config.json; do ln -s '%s'/$f '%s'/$f || exit 1; done",
             dir, src, dir);
    ck_assert_int_eq(system(cmd), 0);
    struct gen_model *gm = NULL;
    struct err e = {0};
    ck_assert_msg(gen_model_load(dir, NULL, &gm, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(gen_model_config(gm)->n_eos_token_ids, 1);
    ck_assert_int_eq(gen_model_config(gm)->eos_token_ids[0], eos);
    ck_assert_int_eq(gen_model_vocab_size(gm), vocab);
    ck_assert_int_eq(gen_model_max_positions(gm), 256);
    ck_assert_str_eq(gen_model_id(gm), "no-genconfig");
    ck_assert(!gen_model_has_chat_template(gm)); /* these tokenizers have no chat template */
    gen_model_free(gm);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    gm = (struct gen_model *)&e;
    ck_assert_int_ne(gen_model_load("/nonexistent/model", NULL, &gm, &e), 0);
    ck_assert_ptr_null(gm);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/model"));
    gen_model_free(NULL);
}
END_TEST

Suite *suite_gen_sched(void)
{
    Suite *s = suite_create("gen_sched");
    TCase *tc = tcase_create("gen_sched");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, model_load, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, greedy_alone, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, greedy_staggered, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, seeded_sampling, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, stopping, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, prompt_logprobs, 0, GS_N_MODELS);
    gen_sched_control_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}
