/* gen_sched_support: see gen_sched_support.h. */
#include "gen_sched_support.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "suites.h"
#include "support/support.h"

const char *const gs_models[GS_N_MODELS] = {"gpt2-lm", "llama-lm"};

static size_t read_ints(const json_t *a, int32_t *out, size_t cap)
{
    size_t n = json_array_size(a);
    ck_assert_uint_le(n, cap);
    for (size_t i = 0; i < n; i++)
        out[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return n;
}

void gs_open(struct fixture *f, int i)
{
    memset(f, 0, sizeof *f);
    f->name = gs_models[i];
    const char *dir = fixture_model(f->name);
    struct model_config cfg = {.threads = 1, .dtype = CONFIG_DTYPE_FP32};
    struct err e = {0};
    ck_assert_msg(gen_model_load_config(dir, &cfg, &f->gm, &e) == 0, "%s: %s", dir, e.msg);
    f->refs = fixture_json(dir, "refs-dev.json");
    const json_t *gens = json_object_get(f->refs, "generations");
    const json_t *pipe = json_object_get(f->refs, "pipeline");
    f->n = json_array_size(gens);
    ck_assert(f->n >= 5 && f->n <= MAX_PROMPTS);
    for (size_t k = 0; k < f->n; k++) {
        const json_t *g = json_array_get(gens, k);
        struct prompt *p = &f->p[k];
        p->n = read_ints(json_object_get(g, "input_ids"), p->ids, MAX_IDS);
        p->n_greedy = read_ints(json_object_get(g, "greedy_ids"), p->greedy, MAX_IDS);
        ck_assert_uint_eq(p->n_greedy, 24);
        p->greedy_text = json_string_value(json_object_get(g, "greedy_text"));
        ck_assert_ptr_nonnull(p->greedy_text);
        const char *input = json_string_value(json_object_get(g, "prompt"));
        size_t j;
        const json_t *pr;
        json_array_foreach(pipe, j, pr)
        {
            const char *in = json_string_value(json_object_get(pr, "input"));
            if (strcmp(in, input) != 0)
                continue;
            const json_t *out = json_array_get(json_object_get(pr, "output"), 0);
            p->pipeline_text = json_string_value(json_object_get(out, "generated_text"));
            ck_assert(strncmp(p->pipeline_text, input, strlen(input)) == 0);
            p->pipeline_text += strlen(input); /* return_full_text */
        }
    }
}

void gs_close(struct fixture *f)
{
    json_decref(f->refs);
    gen_model_free(f->gm);
}

struct model_config gs_cfg(size_t max_running, size_t max_queue, size_t prefill, size_t batch_total)
{
    struct model_config c = {.name = "t", .threads = 1, .workers = 1};
    c.batching.max_batch_size = max_running;
    c.batching.max_queue_size = max_queue;
    c.generation.max_batch_prefill_tokens = prefill;
    c.generation.max_batch_total_tokens = batch_total;
    c.generation.prefix_cache = true; /* the configuration's default */
    return c;
}

struct gen_sched *gs_sched(const struct fixture *f, const struct model_config *c, struct metrics *m)
{
    struct err e = {0};
    struct gen_sched *s = gen_sched_new(f->gm, c, m, "t", &e);
    ck_assert_msg(s != NULL, "%s", e.msg);
    return s;
}

/* Parameters from a JSON text in a dialect (with the model's generation_config). */
void gs_params(const struct fixture *f, const struct gen_api *d, const char *json,
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

/* ---- a request's owner: everything the callbacks saw ---- */

static atomic_long callback_clock; /* orders callbacks of different requests */

void gs_probe_init(struct probe *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

void gs_probe_fini(struct probe *p)
{
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

void gs_on_event(void *owner, const struct gen_event *ev)
{
    struct probe *p = owner;
    pthread_mutex_lock(&p->mu);
    if (p->done)
        p->after_done++;
    if (ev->index != p->n_events)
        p->bad_index++;
    if (p->n_events == 0)
        p->first_event_at = atomic_fetch_add(&callback_clock, 1);
    if (p->n_events < MAX_GEN) {
        p->ids[p->n_events] = ev->token.id;
        p->lps[p->n_events] = ev->token.logprob;
    }
    p->n_events++;
    if (p->text_len + ev->text_len < TEXT_CAP) {
        memcpy(p->text + p->text_len, ev->text, ev->text_len);
        p->text_len += ev->text_len;
    } else {
        p->overflow++;
    }
    if (ev->special)
        p->special_events++;
    if (ev->finish != GEN_FINISH_NONE) {
        p->finish_events++;
        p->event_finish = ev->finish;
    }
    int slow = p->slow_us;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (slow)
        usleep((useconds_t)slow);
}

void gs_on_done(void *owner, const struct gen_result *res)
{
    struct probe *p = owner;
    pthread_mutex_lock(&p->mu);
    p->done++;
    p->done_at = atomic_fetch_add(&callback_clock, 1);
    p->status = res->status;
    p->finish = res->finish;
    snprintf(p->error, sizeof p->error, "%s", res->error);
    if (res->text_len < TEXT_CAP) {
        memcpy(p->res_text, res->text, res->text_len);
        p->res_text_len = res->text_len;
    } else {
        p->overflow++;
    }
    p->n_generated = res->n_generated;
    p->n_prompt = res->n_prompt;
    if (res->n_generated > 0 && res->n_generated <= MAX_GEN)
        memcpy(p->res_ids, res->ids, res->n_generated * sizeof *res->ids);
    else if (res->n_generated > MAX_GEN)
        p->overflow++;
    p->seed = res->seed;
    p->cached_tokens = res->cached_tokens;
    p->has_plp = res->prompt_logprobs != NULL;
    if (res->prompt_logprobs && res->n_prompt <= MAX_IDS)
        memcpy(p->plp, res->prompt_logprobs, res->n_prompt * sizeof *p->plp);
    p->queue_seconds = res->queue_seconds;
    p->first_token_seconds = res->first_token_seconds;
    p->total_seconds = res->total_seconds;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static bool gs_wait_until(struct probe *p, size_t events, bool done)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (rc == 0 && (done ? !p->done : p->n_events < events && !p->done))
        rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    bool ok = done ? p->done > 0 : p->n_events >= events;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void gs_wait_done(struct probe *p, const char *what)
{
    ck_assert_msg(gs_wait_until(p, 0, true), "%s: no on_done within %d s", what, WAIT_SECONDS);
}

void gs_wait_events(struct probe *p, size_t n, const char *what)
{
    ck_assert_msg(gs_wait_until(p, n, false), "%s: fewer than %zu events", what, n);
}

/* Once on_done came: exactly once, no event after it, events in order, their text the
 * result's text, their ids the result's ids, a finish on the last event iff status OK. */
void gs_check(struct probe *p, const char *what)
{
    pthread_mutex_lock(&p->mu);
    ck_assert_msg(p->done == 1, "%s: on_done %d times", what, p->done);
    ck_assert_msg(p->after_done == 0 && p->bad_index == 0 && p->overflow == 0,
                  "%s: events after done %d, out of order %d, overflow %d", what, p->after_done,
                  p->bad_index, p->overflow);
    ck_assert_uint_eq(p->n_events, p->n_generated);
    for (size_t k = 0; k < p->n_events && k < MAX_GEN; k++)
        ck_assert_int_eq(p->ids[k], p->res_ids[k]);
    if (p->status == GEN_OK) {
        ck_assert_msg(p->finish_events == 1 && p->event_finish == p->finish,
                      "%s: %d finishing events", what, p->finish_events);
        ck_assert_msg(p->text_len == p->res_text_len &&
                          memcmp(p->text, p->res_text, p->text_len) == 0,
                      "%s: events '%.*s' != result '%.*s'", what, (int)p->text_len, p->text,
                      (int)p->res_text_len, p->res_text);
    } else {
        ck_assert_int_eq(p->finish_events, 0);
    }
    ck_assert(p->total_seconds >= p->queue_seconds && p->queue_seconds >= 0);
    pthread_mutex_unlock(&p->mu);
}

struct gen_req *gs_submit(struct gen_sched *s, const struct prompt *pr, const struct gen_params *gp,
                          struct probe *p, double deadline, int fd)
{
    struct gen_req_spec spec = {.prompt = pr->ids,
                                .n_prompt = pr->n,
                                .params = gp,
                                .deadline = deadline,
                                .fd = fd,
                                .on_event = gs_on_event,
                                .on_done = gs_on_done,
                                .owner = p};
    struct gen_req *r = NULL;
    struct err e = {0};
    int rc = gen_sched_submit(s, &spec, &r, &e);
    ck_assert_msg(rc == 0, "submit: %s", e.msg);
    ck_assert_ptr_nonnull(r);
    return r;
}

double gs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The greedy reference: n tokens, the first 24 of them (at most) the reference ids, and
 * the reference texts at 24 and 16 tokens. */
void gs_expect_greedy(const struct fixture *f, size_t i, struct probe *p, size_t n, const char *how)
{
    const struct prompt *pr = &f->p[i];
    ck_assert_msg(p->status == GEN_OK, "%s prompt %zu (%s): status %d %s", f->name, i, how,
                  p->status, p->error);
    ck_assert_msg(p->n_generated == n, "%s prompt %zu (%s): %zu tokens, not %zu", f->name, i, how,
                  p->n_generated, n);
    for (size_t k = 0; k < n && k < pr->n_greedy; k++)
        ck_assert_msg(p->res_ids[k] == pr->greedy[k],
                      "%s prompt %zu (%s): greedy token %zu is %d, not %d", f->name, i, how, k,
                      p->res_ids[k], pr->greedy[k]);
    ck_assert_int_eq(p->finish, GEN_FINISH_LENGTH);
    ck_assert_uint_eq(p->n_prompt, pr->n);
    ck_assert_int_eq(p->special_events, 0); /* no reference token is special */
    if (n == pr->n_greedy) {
        /* greedy_text is the ids decoded alone; after the prompt, Metaspace (llama) keeps the
         * leading space a first "▁word" piece has, which a decode from the start drops */
        const char *t = p->res_text;
        size_t len = p->res_text_len;
        if (strcmp(f->name, "llama-lm") == 0 && len > 0 && t[0] == ' ' && pr->greedy_text[0] != ' ')
            t++, len--;
        ck_assert_msg(len == strlen(pr->greedy_text) && memcmp(t, pr->greedy_text, len) == 0,
                      "%s prompt %zu (%s): text '%.*s', not '%s'", f->name, i, how,
                      (int)p->res_text_len, p->res_text, pr->greedy_text);
    }
    if (n == 16 && pr->pipeline_text)
        ck_assert_msg(p->res_text_len == strlen(pr->pipeline_text) &&
                          memcmp(p->res_text, pr->pipeline_text, p->res_text_len) == 0,
                      "%s prompt %zu (%s): text '%.*s', not the pipeline's '%s'", f->name, i, how,
                      (int)p->res_text_len, p->res_text, pr->pipeline_text);
}

/* The value of a sample line of the registry ("name{labels}"), or -1. */
double gs_metric(struct metrics *m, const char *series)
{
    char *text = metrics_render(m, NULL);
    ck_assert_ptr_nonnull(text);
    double v = -1;
    size_t n = strlen(series);
    for (const char *p = strstr(text, series); p; p = strstr(p + 1, series))
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    free(text);
    return v;
}