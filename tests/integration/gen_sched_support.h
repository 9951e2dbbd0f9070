/* gen_sched_support: what the gen_sched suite's files share: the gpt2-lm and llama-lm
 * fixtures with their references (refs-dev.json "generations" and "pipeline"), schedulers
 * over them, parameters from JSON, and a probe: a request owner that records every callback
 * (thread-safe) for the test thread to wait on and check. */
#ifndef INFERD_TEST_GEN_SCHED_SUPPORT_H
#define INFERD_TEST_GEN_SCHED_SUPPORT_H

#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gen_sched.h"
#include "gen_api.h"

#define MAX_PROMPTS 8
#define MAX_IDS 64
#define MAX_GEN 256
#define TEXT_CAP 8192
#define WAIT_SECONDS 60
#define GS_N_MODELS 2

struct metrics;

extern const char *const gs_models[GS_N_MODELS];

struct prompt {
    int32_t ids[MAX_IDS];
    size_t n;
    int32_t greedy[MAX_IDS];
    size_t n_greedy;
    const char *greedy_text;
    const char *pipeline_text; /* after the prompt, 16 tokens; NULL when the refs have none */
};

struct fixture {
    const char *name;
    struct gen_model *gm;
    json_t *refs;
    struct prompt p[MAX_PROMPTS];
    size_t n;
};

/* Loads gs_models[i] and its references. */
void gs_open(struct fixture *f, int i);
void gs_close(struct fixture *f);

/* A model_config with these limits (threads 1, max_total_tokens the default). */
struct model_config gs_cfg(size_t max_running, size_t max_queue, size_t prefill,
                           size_t batch_total);
struct gen_sched *gs_sched(const struct fixture *f, const struct model_config *c,
                           struct metrics *m);
/* Parameters from a JSON text in a dialect (with the model's generation_config). */
void gs_params(const struct fixture *f, const struct gen_api *d, const char *json,
               struct gen_params *p);

/* A request's owner: everything the callbacks saw. */
struct probe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int slow_us; /* sleep in each on_event (to keep a request running) */
    /* events */
    size_t n_events;
    int32_t ids[MAX_GEN];
    float lps[MAX_GEN]; /* each event's token logprob */
    char text[TEXT_CAP];
    size_t text_len;
    int bad_index, finish_events, after_done, overflow, special_events;
    enum gen_finish event_finish;
    long first_event_at;
    /* on_done */
    int done;
    long done_at;
    enum gen_status status;
    enum gen_finish finish;
    char error[ERR_MSG_SIZE];
    char res_text[TEXT_CAP];
    size_t res_text_len;
    int32_t res_ids[MAX_GEN];
    size_t n_generated, n_prompt;
    uint64_t seed;
    size_t cached_tokens;
    bool has_plp;
    float plp[MAX_IDS];
    double queue_seconds, first_token_seconds, total_seconds;
};

void gs_probe_init(struct probe *p);
void gs_probe_fini(struct probe *p);
void gs_on_event(void *owner, const struct gen_event *ev);
void gs_on_done(void *owner, const struct gen_result *res);
/* Wait (at most WAIT_SECONDS) for on_done, or for n events; fail the test otherwise. */
void gs_wait_done(struct probe *p, const char *what);
void gs_wait_events(struct probe *p, size_t n, const char *what);
/* Once on_done came: exactly once, no event after it, events in order, their text the
 * result's text, their ids the result's ids, a finish on the last event iff status OK. */
void gs_check(struct probe *p, const char *what);
/* Submits prompt pr (deadline 0 = none, fd -1 = none); fails the test if refused. */
struct gen_req *gs_submit(struct gen_sched *s, const struct prompt *pr, const struct gen_params *gp,
                          struct probe *p, double deadline, int fd);
/* CLOCK_MONOTONIC seconds, the scheduler's clock for deadlines. */
double gs_now(void);
/* Status OK, n tokens, the first 24 of them (at most) the reference ids, and the reference
 * texts at 24 (greedy_text) and 16 tokens (the pipeline's). */
void gs_expect_greedy(const struct fixture *f, size_t i, struct probe *p, size_t n,
                      const char *how);
/* The value of a sample line of the registry ("name{labels}"), or -1. */
double gs_metric(struct metrics *m, const char *series);

/* The control tests (cancel, deadlines, refusals, FIFO admission, gen_sched_free), added to
 * the gen_sched suite's case by test_gen_sched.c. */
void gen_sched_control_tests(TCase *tc);

#endif
