/* test_gen_sched_control: the gen_sched suite's control tests (see test_gen_sched.c):
 * cancel (also by the client's socket closing) of running and queued requests, deadlines,
 * refusals at submit (a full queue, a request too big for max_batch_total_tokens, bad ids,
 * stopping) and configurations that cannot work, FIFO admission, gen_sched_free finishing
 * everything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gen_sched_support.h"
#include "metrics.h"

/* Cancelling a running request frees its slot for a queued one; cancelling a queued one
 * drops it; a client socket closing does the same. */
START_TEST(cancel)
{
    struct fixture f;
    gs_open(&f, _i);
    struct model_config c = gs_cfg(1, 16, 512, 16384);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    struct gen_params slow, g24;
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 200, \"do_sample\": false}", &slow);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 24, \"do_sample\": false}", &g24);
    slow.ignore_eos = true;

    struct probe a, b, q;
    gs_probe_init(&a);
    gs_probe_init(&b);
    gs_probe_init(&q);
    a.slow_us = 20000; /* 200 tokens would take 4 s */
    struct gen_req *ra = gs_submit(s, &f.p[0], &slow, &a, 0, -1);
    gs_wait_events(&a, 2, "running");
    struct gen_req *rq = gs_submit(s, &f.p[3], &g24, &q, 0, -1);
    gs_submit(s, &f.p[2], &g24, &b, 0, -1);
    ck_assert_uint_eq(gen_sched_running(s), 1);
    ck_assert_uint_eq(gen_sched_queued(s), 2);
    gen_sched_cancel(rq); /* queued */
    gs_wait_done(&q, "cancel queued");
    ck_assert_int_eq(q.status, GEN_CANCELLED);
    ck_assert_uint_eq(q.n_generated, 0);
    ck_assert_int_eq(q.finish, GEN_FINISH_NONE);
    ck_assert_uint_eq(q.res_text_len, 0);
    ck_assert_int_eq(b.done, 0);
    gen_sched_cancel(ra); /* running */
    gs_wait_done(&a, "cancel running");
    ck_assert_int_eq(a.status, GEN_CANCELLED);
    ck_assert_uint_ge(a.n_generated, 2);
    ck_assert_uint_lt(a.n_generated, 200);
    for (size_t k = 0; k < a.n_generated && k < 24; k++)
        ck_assert_int_eq(a.res_ids[k], f.p[0].greedy[k]);
    /* b took the slot */
    gs_wait_done(&b, "after cancel");
    gs_expect_greedy(&f, 2, &b, 24, "in the cancelled request's slot");
    gs_check(&a, "cancelled running");
    gs_check(&b, "after cancel");
    gs_check(&q, "cancelled queued");
    gs_probe_fini(&a);
    gs_probe_fini(&b);
    gs_probe_fini(&q);

    /* the client's socket closes: running, then queued */
    int running_fds[2], queued_fds[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, running_fds), 0);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, queued_fds), 0);
    gs_probe_init(&a);
    gs_probe_init(&q);
    gs_probe_init(&b);
    a.slow_us = 20000;
    gs_submit(s, &f.p[0], &slow, &a, 0, running_fds[0]);
    gs_wait_events(&a, 2, "running, socket");
    gs_submit(s, &f.p[1], &g24, &q, 0, queued_fds[0]);
    gs_submit(s, &f.p[4], &g24, &b, 0, -1);
    close(queued_fds[1]);
    gs_wait_done(&q, "queued, socket closed");
    ck_assert_int_eq(q.status, GEN_CANCELLED);
    ck_assert_int_eq(a.done, 0);
    close(running_fds[1]);
    gs_wait_done(&a, "running, socket closed");
    ck_assert_int_eq(a.status, GEN_CANCELLED);
    ck_assert_uint_lt(a.n_generated, 200);
    gs_wait_done(&b, "after the socket closed");
    gs_expect_greedy(&f, 4, &b, 24, "after a client left");
    gs_check(&a, "socket running");
    gs_check(&q, "socket queued");
    gs_check(&b, "socket after");
    close(running_fds[0]);
    close(queued_fds[0]);
    gen_sched_free(s);
    gs_probe_fini(&a);
    gs_probe_fini(&b);
    gs_probe_fini(&q);
    gen_params_fini(&slow);
    gen_params_fini(&g24);
    gs_close(&f);
}
END_TEST

START_TEST(deadlines)
{
    struct fixture f;
    gs_open(&f, _i);
    struct metrics *m = metrics_new();
    struct model_config c = gs_cfg(1, 16, 512, 16384);
    struct gen_sched *s = gs_sched(&f, &c, m);
    struct gen_params slow, g24;
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 200, \"do_sample\": false}", &slow);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 24, \"do_sample\": false}", &g24);
    slow.ignore_eos = true;
    struct probe a, q, b;
    gs_probe_init(&a);
    gs_probe_init(&q);
    gs_probe_init(&b);
    a.slow_us = 10000; /* 200 tokens: 2 s */
    double t0 = gs_now();
    gs_submit(s, &f.p[0], &slow, &a, t0 + 0.5, -1);
    gs_wait_events(&a, 1, "deadline");
    gs_submit(s, &f.p[1], &g24, &q, gs_now() + 0.1, -1); /* waits for a's slot: expires queued */
    gs_submit(s, &f.p[2], &g24, &b, gs_now() + 30, -1);
    gs_wait_done(&q, "queued deadline");
    ck_assert_int_eq(q.status, GEN_TIMEOUT);
    ck_assert_uint_eq(q.n_generated, 0);
    ck_assert_int_eq(a.done, 0);
    gs_wait_done(&a, "running deadline");
    double waited = gs_now() - t0;
    ck_assert_int_eq(a.status, GEN_TIMEOUT);
    ck_assert_uint_gt(a.n_generated, 0);
    ck_assert_uint_lt(a.n_generated, 200);
    ck_assert_msg(waited >= 0.5 && waited < 1.5, "cut after %.3f s", waited);
    ck_assert_int_eq(a.finish, GEN_FINISH_LENGTH);
    gs_wait_done(&b, "after deadlines");
    gs_expect_greedy(&f, 2, &b, 24, "after deadlines");
    gs_check(&a, "running deadline");
    gs_check(&q, "queued deadline");
    gs_check(&b, "after deadlines");
    /* an already expired request never runs */
    gs_probe_fini(&q);
    gs_probe_init(&q);
    gs_submit(s, &f.p[1], &g24, &q, gs_now() - 1, -1);
    gs_wait_done(&q, "expired");
    ck_assert_int_eq(q.status, GEN_TIMEOUT);
    ck_assert_uint_eq(q.n_generated, 0);
    gen_sched_free(s);
    ck_assert_double_eq(
        gs_metric(m, "inferd_requests_dropped_total{model=\"t\",reason=\"timeout\"}"), 2);
    gs_probe_fini(&a);
    gs_probe_fini(&q);
    gs_probe_fini(&b);
    gen_params_fini(&slow);
    gen_params_fini(&g24);
    metrics_free(m);
    gs_close(&f);
}
END_TEST

/* Refusals at submit: nothing queued, on_done never called. */
START_TEST(refusals)
{
    struct fixture f;
    gs_open(&f, _i);
    struct model_config c = gs_cfg(1, 2, 512, 100);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    /* max_total_tokens defaults to max_batch_total_tokens when that is below the positions */
    ck_assert_uint_eq(gen_sched_max_total_tokens(s), 100);
    struct gen_params slow, g24, big;
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 80, \"do_sample\": false}", &slow);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 24, \"do_sample\": false}", &g24);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 96, \"do_sample\": false}", &big);
    slow.ignore_eos = true;
    struct probe a, b, q, never;
    gs_probe_init(&a);
    gs_probe_init(&b);
    gs_probe_init(&q);
    gs_probe_init(&never);
    a.slow_us = 10000;
    struct gen_req *ra = gs_submit(s, &f.p[0], &slow, &a, 0, -1);
    gs_wait_events(&a, 1, "refusals");
    gs_submit(s, &f.p[1], &g24, &b, 0, -1);
    gs_submit(s, &f.p[2], &g24, &q, 0, -1);

    struct gen_req_spec spec = {.prompt = f.p[3].ids,
                                .n_prompt = f.p[3].n,
                                .params = &g24,
                                .fd = -1,
                                .on_event = gs_on_event,
                                .on_done = gs_on_done,
                                .owner = &never};
    struct gen_req *r = (struct gen_req *)&spec;
    struct err e = {0};
    /* the queue holds 2 */
    ck_assert_int_eq(gen_sched_submit(s, &spec, &r, &e), ERR_BUSY);
    ck_assert_ptr_null(r);
    ck_assert_ptr_nonnull(strstr(e.msg, "overloaded"));
    /* prompt + max_new_tokens over max_batch_total_tokens (100) */
    spec.params = &big;
    ck_assert_int_eq(gen_sched_submit(s, &spec, &r, &e), ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "must be <= 100") != NULL, "%s", e.msg);
    /* an id outside the vocabulary */
    int32_t bad[] = {1, gen_model_vocab_size(f.gm)};
    spec.params = &g24;
    spec.prompt = bad;
    spec.n_prompt = 2;
    ck_assert_int_eq(gen_sched_submit(s, &spec, &r, &e), ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(e.msg, "vocabulary"));
    spec.n_prompt = 0;
    ck_assert_int_eq(gen_sched_submit(s, &spec, &r, &e), ERR_INVALID);
    gen_sched_cancel(ra);
    gs_wait_done(&a, "refusals");
    gs_wait_done(&b, "refusals");
    gs_wait_done(&q, "refusals");
    gs_expect_greedy(&f, 1, &b, 24, "after refusals");
    gs_expect_greedy(&f, 2, &q, 24, "after refusals");
    gs_check(&a, "refusals");
    gs_check(&b, "refusals");
    gs_check(&q, "refusals");
    gen_sched_stop(s);
    spec.prompt = f.p[3].ids;
    spec.n_prompt = f.p[3].n;
    ck_assert_int_eq(gen_sched_submit(s, &spec, &r, &e), ERR_UNAVAILABLE);
    gen_sched_free(s);
    ck_assert_int_eq(never.done, 0);
    ck_assert_uint_eq(never.n_events, 0);

    /* configurations that cannot work */
    c = gs_cfg(1, 2, 512, 100);
    c.generation.max_total_tokens = 200;
    ck_assert_ptr_null(gen_sched_new(f.gm, &c, NULL, "t", &e));
    ck_assert_int_eq(e.kind, ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "max_total_tokens (200) must be <=") != NULL, "%s", e.msg);
    if (strcmp(f.name, "gpt2-lm") == 0) { /* learned positions: 256 at most */
        c = gs_cfg(1, 2, 512, 16384);
        c.generation.max_total_tokens = 300;
        ck_assert_ptr_null(gen_sched_new(f.gm, &c, NULL, "t", &e));
        ck_assert_msg(strstr(e.msg, "max_total_tokens") != NULL, "%s", e.msg);
    }
    gs_probe_fini(&a);
    gs_probe_fini(&b);
    gs_probe_fini(&q);
    gs_probe_fini(&never);
    gen_params_fini(&slow);
    gen_params_fini(&g24);
    gen_params_fini(&big);
    gs_close(&f);
}
END_TEST

/* A request that does not fit the free tokens waits at the head; a smaller one behind it
 * that would fit waits too, rather than overtaking it. */
START_TEST(fifo_admission)
{
    struct fixture f;
    gs_open(&f, _i);
    struct model_config c = gs_cfg(4, 16, 512, 100);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    struct gen_params g60, g20;
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 60, \"do_sample\": false}", &g60);
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 20, \"do_sample\": false}", &g20);
    g60.ignore_eos = true;
    struct probe a, big, small;
    gs_probe_init(&a);
    gs_probe_init(&big);
    gs_probe_init(&small);
    a.slow_us = 5000;
    gs_submit(s, &f.p[0], &g60, &a, 0, -1); /* reserves 60 + prompt of 100 */
    gs_wait_events(&a, 1, "fifo");
    gs_submit(s, &f.p[1], &g60, &big, 0, -1);   /* does not fit beside a */
    gs_submit(s, &f.p[2], &g20, &small, 0, -1); /* would fit beside a */
    gs_wait_done(&a, "fifo");
    gs_wait_done(&big, "fifo");
    gs_wait_done(&small, "fifo");
    ck_assert_msg(small.first_event_at > a.done_at, "the small request overtook the big one");
    ck_assert(big.first_event_at < small.first_event_at);
    gs_expect_greedy(&f, 0, &a, 60, "fifo");
    gs_expect_greedy(&f, 1, &big, 60, "fifo");
    gs_expect_greedy(&f, 2, &small, 20, "fifo");
    gs_check(&a, "fifo");
    gs_check(&big, "fifo");
    gs_check(&small, "fifo");
    gen_sched_free(s);
    gs_probe_fini(&a);
    gs_probe_fini(&big);
    gs_probe_fini(&small);
    gen_params_fini(&g60);
    gen_params_fini(&g20);
    gs_close(&f);
}
END_TEST

/* gen_sched_free with requests queued and running finishes every one of them. */
START_TEST(free_finishes_all)
{
    struct fixture f;
    gs_open(&f, _i);
    struct model_config c = gs_cfg(2, 16, 4, 16384);
    struct gen_sched *s = gs_sched(&f, &c, NULL);
    struct gen_params g24;
    gs_params(&f, &gen_api_tgi, "{\"max_new_tokens\": 24, \"do_sample\": false}", &g24);
    struct probe p[MAX_PROMPTS];
    for (size_t i = 0; i < f.n; i++) {
        gs_probe_init(&p[i]);
        gs_submit(s, &f.p[i], &g24, &p[i], 0, -1);
    }
    gen_sched_free(s);
    for (size_t i = 0; i < f.n; i++) {
        ck_assert_int_eq(p[i].done, 1); /* before gen_sched_free returned */
        gs_check(&p[i], "free");
        gs_expect_greedy(&f, i, &p[i], 24, "finished by gen_sched_free");
        gs_probe_fini(&p[i]);
    }
    gen_params_fini(&g24);
    gs_close(&f);
}
END_TEST

void gen_sched_control_tests(TCase *tc)
{
    tcase_add_loop_test(tc, cancel, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, deadlines, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, refusals, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, fifo_admission, 0, GS_N_MODELS);
    tcase_add_loop_test(tc, free_finishes_all, 0, GS_N_MODELS);
}
