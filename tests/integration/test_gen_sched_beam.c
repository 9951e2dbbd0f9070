/* test_gen_sched_beam: beam search under continuous batching (server/gen_sched.c over the
 * engine's gen_beam), against transformers 4.57.6's generate on the t5-s2s and llama-lm
 * fixtures (tests/data/models-issue16-beams.tar.xz, tools/refgen/beams.py: every recorded
 * beam setting with its sequences and sequences_scores, and each input's greedy ids).
 *
 * "mixed": every setting of every input submitted at once beside greedy requests of the same
 * inputs, with fewer slots than they want (8: a 4-beam request waits for 4 free slots, first
 * come first served), and for llama-lm a prefill budget smaller than a prompt (beam 0's prompt
 * is fed in chunks beside the others' decodes): each beam request's hypotheses are the
 * reference ids (exact) and scores (1e-4), in order, with no token event; each greedy request
 * keeps its reference ids.
 * "cancel": a long beam search cancelled while it runs ends GEN_CANCELLED without hypotheses,
 * frees its slots (a greedy request behind it then runs and keeps its ids), and a deadline
 * ends another GEN_TIMEOUT; a request wanting more beams than the model has slots, or more
 * tokens than max_batch_total_tokens once multiplied by num_beams, is refused at submit. */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gen_sched.h"
#include "suites.h"
#include "support/support.h"

#define MAX_HYPS 4
#define MAX_OUT 64
#define MAX_REQS 128
#define WAIT_S 120
#define MAX_PROMPT 256

/* A request's owner: what on_event and on_done saw. */
struct bprobe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool slow; /* each on_event sleeps 2 ms (keeps the steps slow) */
    int events, done;
    enum gen_status status;
    char error[ERR_MSG_SIZE];
    int32_t ids[MAX_OUT]; /* result ids */
    size_t n_ids;
    size_t n_hyps;
    int32_t hyp_ids[MAX_HYPS][MAX_OUT];
    size_t hyp_n[MAX_HYPS];
    float hyp_score[MAX_HYPS];
    bool hyp_text_ok; /* every hypothesis had a text */
};

static void on_event(void *owner, const struct gen_event *ev)
{
    (void)ev;
    struct bprobe *p = owner;
    pthread_mutex_lock(&p->mu);
    p->events++;
    bool slow = p->slow;
    pthread_mutex_unlock(&p->mu);
    if (slow)
        nanosleep(&(struct timespec){0, 2000000}, NULL);
}

static void on_done(void *owner, const struct gen_result *res)
{
    struct bprobe *p = owner;
    pthread_mutex_lock(&p->mu);
    p->done++;
    p->status = res->status;
    snprintf(p->error, sizeof p->error, "%s", res->error);
    p->n_ids = res->n_generated < MAX_OUT ? res->n_generated : MAX_OUT;
    if (res->ids)
        memcpy(p->ids, res->ids, p->n_ids * sizeof *p->ids);
    p->n_hyps = res->n_hyps < MAX_HYPS ? res->n_hyps : MAX_HYPS;
    p->hyp_text_ok = true;
    for (size_t i = 0; i < p->n_hyps; i++) {
        const struct gen_hyp *h = &res->hyps[i];
        p->hyp_n[i] = h->n_ids < MAX_OUT ? h->n_ids : MAX_OUT;
        memcpy(p->hyp_ids[i], h->ids, p->hyp_n[i] * sizeof *h->ids);
        p->hyp_score[i] = h->score;
        p->hyp_text_ok &= h->text != NULL;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void wait_done(struct bprobe *p, const char *what)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_S;
    pthread_mutex_lock(&p->mu);
    while (!p->done)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) != 0)
            break;
    int done = p->done;
    pthread_mutex_unlock(&p->mu);
    ck_assert_msg(done == 1, "%s: on_done came %d times", what, done);
}

static void probe_init(struct bprobe *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

static void probe_fini(struct bprobe *p)
{
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

static size_t read_ids(const json_t *a, int32_t *out, size_t cap)
{
    size_t n = json_array_size(a);
    ck_assert_uint_le(n, cap);
    for (size_t i = 0; i < n; i++)
        out[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return n;
}

/* One submitted request and what it must give. */
struct job {
    struct bprobe probe;
    struct gen_params params;
    int32_t prompt[MAX_PROMPT];
    size_t n_prompt;
    const json_t *row; /* a beam setting's reference; NULL: greedy */
    const json_t *greedy;
    bool enc_dec;
    char what[96];
};

/* The beam request's hypotheses against the row: ids exact (the reference without an
 * encoder-decoder's start token, padding after the end), scores within 1e-4. */
static void check_beams(struct job *j)
{
    struct bprobe *p = &j->probe;
    ck_assert_msg(p->status == GEN_OK, "%s: status %d %s", j->what, p->status, p->error);
    ck_assert_msg(p->events == 0, "%s: a beam search streamed %d events", j->what, p->events);
    const json_t *seqs = json_object_get(j->row, "sequences");
    const json_t *scores = json_object_get(j->row, "sequences_scores");
    int64_t pad = json_integer_value(json_object_get(j->row, "pad_token_id"));
    if (!pad)
        pad = j->params.eos_token_ids[0];
    ck_assert_msg(p->n_hyps == json_array_size(seqs), "%s: %zu hypotheses, want %zu", j->what,
                  p->n_hyps, json_array_size(seqs));
    ck_assert(p->hyp_text_ok);
    for (size_t i = 0; i < p->n_hyps; i++) {
        const json_t *ref = json_array_get(seqs, i);
        size_t off = j->enc_dec ? 1 : 0, n_ref = json_array_size(ref) - off;
        ck_assert_msg(p->hyp_n[i] <= n_ref, "%s: hypothesis %zu too long", j->what, i);
        for (size_t k = 0; k < n_ref; k++) {
            int64_t want = json_integer_value(json_array_get(ref, k + off));
            int64_t got = k < p->hyp_n[i] ? p->hyp_ids[i][k] : pad;
            ck_assert_msg(got == want, "%s: hypothesis %zu id %zu: %lld, want %lld", j->what, i,
                          k, (long long)got, (long long)want);
        }
        double want = json_number_value(json_array_get(scores, i));
        ck_assert_msg(fabs(p->hyp_score[i] - want) <= 1e-4, "%s: hypothesis %zu score %.7g, want %.7g",
                      j->what, i, p->hyp_score[i], want);
    }
    /* the result's ids are the best hypothesis' */
    ck_assert_uint_eq(p->n_ids, p->hyp_n[0]);
}

static void check_greedy(struct job *j)
{
    struct bprobe *p = &j->probe;
    ck_assert_msg(p->status == GEN_OK, "%s: status %d %s", j->what, p->status, p->error);
    int32_t want[MAX_OUT];
    size_t n = read_ids(j->greedy, want, MAX_OUT);
    ck_assert_msg(p->n_ids == n, "%s: %zu ids, want %zu", j->what, p->n_ids, n);
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(p->ids[k] == want[k], "%s: id %zu: %d, want %d", j->what, k, p->ids[k],
                      want[k]);
    ck_assert_int_eq(p->n_hyps, 0);
}

struct model_ctx {
    struct gen_model *gm;
    json_t *refs;
    bool enc_dec;
    size_t max_new;
};

static void ctx_open(struct model_ctx *c, const char *name)
{
    struct model_config cfg = {.threads = 1, .dtype = CONFIG_DTYPE_FP32};
    struct err e = {0};
    ck_assert_msg(gen_model_load_config(fixture_model(name), &cfg, &c->gm, &e) == 0, "%s",
                  e.msg);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/beams", fixture_dir("models-issue16-beams.tar.xz"));
    char file[64];
    snprintf(file, sizeof file, "%s.json", name);
    c->refs = fixture_json(dir, file);
    c->enc_dec = gen_model_is_encoder_decoder(c->gm);
    c->max_new = (size_t)json_integer_value(json_object_get(c->refs, "max_new_tokens"));
}

static void ctx_close(struct model_ctx *c)
{
    json_decref(c->refs);
    gen_model_free(c->gm);
}

static struct gen_sched *sched(const struct model_ctx *c, size_t slots, size_t prefill)
{
    struct model_config cfg = {.threads = 1, .dtype = CONFIG_DTYPE_FP32};
    cfg.batching.max_batch_size = slots;
    cfg.batching.max_queue_size = MAX_REQS;
    cfg.generation.max_batch_prefill_tokens = prefill;
    cfg.generation.max_batch_total_tokens = 4096;
    cfg.generation.max_total_tokens = 256;
    struct err e = {0};
    struct gen_sched *s = gen_sched_new(c->gm, &cfg, NULL, "beam", &e);
    ck_assert_msg(s != NULL, "%s", e.msg);
    return s;
}

static void submit(struct gen_sched *s, struct job *j, struct gen_req **out)
{
    struct gen_req_spec spec = {.prompt = j->prompt, .n_prompt = j->n_prompt,
                                .params = &j->params, .fd = -1, .on_event = on_event,
                                .on_done = on_done, .owner = &j->probe};
    struct err e = {0};
    ck_assert_msg(gen_sched_submit(s, &spec, out, &e) == 0, "%s: %s", j->what, e.msg);
}

/* Every setting of every input, with two greedy requests per input among them. */
static void mixed(const char *name, size_t prefill)
{
    struct model_ctx c;
    ctx_open(&c, name);
    static struct job jobs[MAX_REQS];
    size_t n = 0;
    const json_t *inputs = json_object_get(c.refs, "inputs");
    for (size_t i = 0; i < json_array_size(inputs); i++) {
        const json_t *in = json_array_get(inputs, i);
        const json_t *beams = json_object_get(in, "beams");
        for (size_t k = 0; k <= json_array_size(beams) + 1; k++) {
            ck_assert_uint_lt(n, MAX_REQS);
            struct job *j = &jobs[n++];
            memset(j, 0, sizeof *j);
            probe_init(&j->probe);
            gen_params_init(&j->params, gen_model_config(c.gm));
            j->n_prompt = read_ids(json_object_get(in, "input_ids"), j->prompt, MAX_PROMPT);
            j->enc_dec = c.enc_dec;
            bool greedy = k == 0 || k == json_array_size(beams) / 2 + 1;
            if (greedy) {
                j->greedy = json_object_get(in, "greedy_ids");
                j->params.max_new_tokens = (uint32_t)c.max_new;
                snprintf(j->what, sizeof j->what, "%s input %zu greedy", name, i);
                continue;
            }
            j->row = json_array_get(beams, k - 1 - (k > json_array_size(beams) / 2 + 1));
            beam_params_from_row(&j->params, j->row, (uint32_t)c.max_new);
            snprintf(j->what, sizeof j->what, "%s input %zu %s", name, i,
                     json_string_value(json_object_get(j->row, "setting")));
        }
    }
    struct gen_sched *s = sched(&c, 8, prefill);
    for (size_t i = 0; i < n; i++)
        submit(s, &jobs[i], NULL);
    for (size_t i = 0; i < n; i++) {
        wait_done(&jobs[i].probe, jobs[i].what);
        if (jobs[i].row)
            check_beams(&jobs[i]);
        else
            check_greedy(&jobs[i]);
    }
    ck_assert_uint_eq(gen_sched_running(s), 0);
    gen_sched_free(s);
    for (size_t i = 0; i < n; i++) {
        gen_params_fini(&jobs[i].params);
        probe_fini(&jobs[i].probe);
    }
    ctx_close(&c);
}

START_TEST(mixed_t5)
{
    mixed("t5-s2s", 64);
}
END_TEST

START_TEST(mixed_llama)
{
    mixed("llama-lm", 5); /* prompts of up to 14 tokens fed in chunks of 5 */
}
END_TEST

START_TEST(cancel_and_limits)
{
    struct model_ctx c;
    ctx_open(&c, "t5-s2s");
    const json_t *in = json_array_get(json_object_get(c.refs, "inputs"), 0);
    /* room for a beam search that cannot end before the checks below (16000 steps of 4
     * beams; this tiny T5 steps in about 0.1 ms, so 200 steps could end within the wait) */
    struct model_config scfg = {.threads = 1, .dtype = CONFIG_DTYPE_FP32};
    scfg.batching.max_batch_size = 4;
    scfg.batching.max_queue_size = MAX_REQS;
    scfg.generation.max_batch_prefill_tokens = 64;
    scfg.generation.max_batch_total_tokens = 4 * 16400;
    scfg.generation.max_total_tokens = 16400;
    struct err se = {0};
    struct gen_sched *s = gen_sched_new(c.gm, &scfg, NULL, "beam", &se);
    ck_assert_msg(s != NULL, "%s", se.msg);
    static struct job j[5];
    for (int i = 0; i < 5; i++) {
        memset(&j[i], 0, sizeof j[i]);
        probe_init(&j[i].probe);
        gen_params_init(&j[i].params, gen_model_config(c.gm));
        j[i].n_prompt = read_ids(json_object_get(in, "input_ids"), j[i].prompt, MAX_PROMPT);
        snprintf(j[i].what, sizeof j[i].what, "request %d", i);
    }
    /* 0: 4 beams, long, no eos: cancelled while it runs; 1: greedy, waits for its slots */
    j[0].params.num_beams = 4;
    j[0].params.max_new_tokens = 16000;
    j[0].params.n_eos_token_ids = 0;
    j[1].params.max_new_tokens = (uint32_t)c.max_new;
    j[1].greedy = json_object_get(in, "greedy_ids");
    struct gen_req *r0 = NULL;
    submit(s, &j[0], &r0);
    submit(s, &j[1], NULL);
    for (int i = 0; i < 200 && gen_sched_running(s) == 0; i++)
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    nanosleep(&(struct timespec){0, 20000000}, NULL);
    size_t queued = gen_sched_queued(s);
    pthread_mutex_lock(&j[0].probe.mu);
    int done0 = j[0].probe.done, st0 = (int)j[0].probe.status;
    pthread_mutex_unlock(&j[0].probe.mu);
    ck_assert_msg(queued == 1, "queued %zu, running %zu, beams done %d (status %d)", queued,
                  gen_sched_running(s), done0, st0); /* the greedy one waits: 4 slots taken */
    gen_sched_cancel(r0);
    wait_done(&j[0].probe, "cancelled beams");
    ck_assert_int_eq(j[0].probe.status, GEN_CANCELLED);
    ck_assert_uint_eq(j[0].probe.n_hyps, 0);
    wait_done(&j[1].probe, "greedy after the cancel");
    check_greedy(&j[1]);
    /* 2: a deadline in the middle of a long search, slowed by 4: greedy beside it whose
     * events take 2 ms each */
    j[4].params.max_new_tokens = 200;
    j[4].params.n_eos_token_ids = 0;
    j[4].probe.slow = true;
    submit(s, &j[4], NULL);
    j[2].params.num_beams = 2;
    j[2].params.max_new_tokens = 200;
    j[2].params.n_eos_token_ids = 0;
    struct gen_req_spec spec = {.prompt = j[2].prompt, .n_prompt = j[2].n_prompt,
                                .params = &j[2].params, .deadline = 0, .fd = -1,
                                .on_done = on_done, .owner = &j[2].probe};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    spec.deadline = (double)now.tv_sec + now.tv_nsec / 1e9 + 0.05;
    struct err e = {0};
    ck_assert_msg(gen_sched_submit(s, &spec, NULL, &e) == 0, "%s", e.msg);
    wait_done(&j[2].probe, "deadline");
    ck_assert_int_eq(j[2].probe.status, GEN_TIMEOUT);
    ck_assert_uint_eq(j[2].probe.n_hyps, 0);
    wait_done(&j[4].probe, "slow greedy");
    ck_assert_int_eq(j[4].probe.status, GEN_OK);
    ck_assert_int_eq(j[4].probe.events, 200);
    /* refused at submit: 5 beams on 4 slots; 4 beams * (prompt + 1000) over the token budget */
    j[3].params.num_beams = 5;
    j[3].params.max_new_tokens = 8;
    spec = (struct gen_req_spec){.prompt = j[3].prompt, .n_prompt = j[3].n_prompt,
                                 .params = &j[3].params, .fd = -1, .on_done = on_done,
                                 .owner = &j[3].probe};
    ck_assert_int_eq(gen_sched_submit(s, &spec, NULL, &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "`num_beams` must be <= 4"), "%s", e.msg);
    j[3].params.num_beams = 4;
    j[3].params.max_new_tokens = 200;
    struct model_config cfg = {.threads = 1, .dtype = CONFIG_DTYPE_FP32};
    cfg.batching.max_batch_size = 4;
    cfg.batching.max_queue_size = 4;
    cfg.generation.max_batch_prefill_tokens = 64;
    cfg.generation.max_batch_total_tokens = 600;
    cfg.generation.max_total_tokens = 256;
    struct gen_sched *small = gen_sched_new(c.gm, &cfg, NULL, "small", &e);
    ck_assert_msg(small != NULL, "%s", e.msg);
    ck_assert_int_eq(gen_sched_submit(small, &spec, NULL, &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "* `num_beams` must be <= 600"), "%s", e.msg);
    ck_assert_int_eq(j[3].probe.done, 0);
    gen_sched_free(small);
    ck_assert_uint_eq(gen_sched_running(s), 0);
    gen_sched_free(s);
    for (int i = 0; i < 5; i++) {
        gen_params_fini(&j[i].params);
        probe_fini(&j[i].probe);
    }
    ctx_close(&c);
}
END_TEST

Suite *suite_gen_sched_beam(void)
{
    Suite *s = suite_create("gen_sched_beam");
    TCase *tc = tcase_create("sched");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, mixed_t5);
    tcase_add_test(tc, mixed_llama);
    tcase_add_test(tc, cancel_and_limits);
    suite_add_tcase(s, tc);
    return s;
}
