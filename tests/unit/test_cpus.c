/* test_cpus: the cores threads: 0 shares (server/cpus.c): cgroup quotas parsed as container
 * runtimes write them, the share among every model's workers, and the real daemon started
 * under a restricted CPU affinity reporting the threads it gave its models. */
#include <check.h>
#include <jansson.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cpus.h"
#include "integration/serve_support.h"
#include "suites.h"
#include "support/support.h"

START_TEST(quota_text)
{
    ck_assert_int_eq(cpus_quota_v2("max 100000\n"), 0);
    ck_assert_int_eq(cpus_quota_v2("200000 100000\n"), 2);
    ck_assert_int_eq(cpus_quota_v2("150000 100000"), 2); /* 1.5 cores: rounded up */
    ck_assert_int_eq(cpus_quota_v2("50000 100000"), 1);
    ck_assert_int_eq(cpus_quota_v2("garbage"), 0);
    ck_assert_int_eq(cpus_quota_v2(NULL), 0);
    ck_assert_int_eq(cpus_quota_v1(-1, 100000), 0);
    ck_assert_int_eq(cpus_quota_v1(400000, 100000), 4);
    ck_assert_int_eq(cpus_quota_v1(250000, 100000), 3);
}
END_TEST

static bool gen_task(const char *task)
{
    return strcmp(task, "text-generation") == 0;
}

START_TEST(share_among_workers)
{
    struct model_config m[4] = {
        {.task = "text-classification", .workers = 2, .threads = 0},
        {.task = "fill-mask", .workers = 1, .threads = 0},
        {.task = "text-generation", .workers = 4, .threads = 0}, /* one worker */
        {.task = "ner", .workers = 1, .threads = 2},             /* named: 2 cores */
    };
    struct config cfg = {.models = m, .n_models = 4};
    cpus_share(&cfg, 10, gen_task); /* 10 - 2 named = 8 over 2 + 1 + 1 workers */
    ck_assert_int_eq(m[0].threads, 2);
    ck_assert_int_eq(m[1].threads, 2);
    ck_assert_int_eq(m[2].threads, 2);
    ck_assert_int_eq(m[3].threads, 2);
    struct model_config few[2] = {{.task = "ner", .workers = 3}, {.task = "ner", .workers = 2}};
    cfg = (struct config){.models = few, .n_models = 2};
    cpus_share(&cfg, 2, gen_task); /* fewer cores than workers: one thread each */
    ck_assert_int_eq(few[0].threads, 1);
    ck_assert_int_eq(few[1].threads, 1);
}
END_TEST

/* *old = this process's affinity, *one = its first CPU alone. */
static void first_cpu_only(cpu_set_t *old, cpu_set_t *one)
{
    ck_assert_int_eq(sched_getaffinity(0, sizeof *old, old), 0);
    CPU_ZERO(one);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, old)) {
            CPU_SET(c, one);
            return;
        }
}

START_TEST(usable_follows_affinity)
{
    cpu_set_t old, one;
    first_cpu_only(&old, &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
    ck_assert_int_eq(cpus_usable(), 1);
    ck_assert_int_eq(sched_setaffinity(0, sizeof old, &old), 0);
    ck_assert_int_le(cpus_usable(), CPU_COUNT(&old));
}
END_TEST

/* threads of model `name` as /info reports them */
static long info_threads(const struct daemon *d, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/info?model=%s", name);
    struct http_reply *r = daemon_get(d, path);
    ck_assert_msg(r->status == 200, "GET %s: %ld %s", path, r->status, r->body);
    long t = (long)json_integer_value(json_object_get(r->json, "threads"));
    http_reply_free(r);
    return t;
}

/* The daemon started on one CPU (as `taskset -c 0` or a container's cpuset would) gives each
 * of its two threads: 0 models one thread, not the machine's core count each. */
START_TEST(daemon_on_one_cpu)
{
    cpu_set_t old, one;
    first_cpu_only(&old, &one);
    char *yaml = NULL;
    const char *dir = fixture_model("bert-seqcls");
    ck_assert(asprintf(&yaml,
                       "server:\n  host: 127.0.0.1\n  port: 0\nmodels:\n"
                       "  - {name: a, path: %s, task: text-classification}\n"
                       "  - {name: b, path: %s, task: text-classification}\n",
                       dir, dir) > 0);
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
    struct daemon *d = daemon_start(yaml, NULL); /* the child inherits the mask */
    ck_assert_int_eq(sched_setaffinity(0, sizeof old, &old), 0);
    free(yaml);
    ck_assert_int_eq(info_threads(d, "a"), 1);
    ck_assert_int_eq(info_threads(d, "b"), 1);
    daemon_shutdown(d);
    daemon_stop(d);
}
END_TEST

Suite *suite_cpus(void)
{
    Suite *s = suite_create("cpus");
    TCase *tc = tcase_create("cpus");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, serve_teardown);
    tcase_add_test(tc, quota_text);
    tcase_add_test(tc, share_among_workers);
    tcase_add_test(tc, usable_follows_affinity);
    tcase_add_test(tc, daemon_on_one_cpu);
    suite_add_tcase(s, tc);
    return s;
}
