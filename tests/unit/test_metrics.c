/* test_metrics: the Prometheus registry. Exact values after a known set of observations
 * (counters, cumulative histogram buckets, sum and count), label escaping, gauges dropped by
 * model_forget, exact totals from 8 threads at once, and promtool's verdict on the text. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "suites.h"
#include "support/support.h"

/* The text of the registry, owned by the caller. */
static char *render(struct metrics *m)
{
    size_t len = 0;
    char *text = metrics_render(m, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

/* The line of `series` (name and labels exactly as rendered), or NULL. */
static const char *find_line(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = strstr(text, series); p; p = strstr(p + 1, series))
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return p;
    return NULL;
}

/* The value of `series`; fails the test (printing the text to stderr) if it is absent. */
static double sample(const char *text, const char *series)
{
    const char *line = find_line(text, series);
    if (!line)
        fprintf(stderr, "test_metrics: no sample %s in:\n%s", series, text);
    ck_assert_msg(line != NULL, "no sample %s", series);
    return strtod(line + strlen(series) + 1, NULL);
}

#define ck_sample(text, series, want) ck_assert_double_eq(sample(text, series), want)

START_TEST(fresh_registry_has_every_family)
{
    struct metrics *m = metrics_new();
    ck_assert_ptr_nonnull(m);
    char *text = render(m);
    static const char *const families[][2] = {
        {"inferd_requests_total", "counter"},
        {"inferd_request_duration_seconds", "histogram"},
        {"inferd_queue_duration_seconds", "histogram"},
        {"inferd_batch_duration_seconds", "histogram"},
        {"inferd_batch_size", "histogram"},
        {"inferd_batches_total", "counter"},
        {"inferd_tokens_total", "counter"},
        {"inferd_padded_tokens_total", "counter"},
        {"inferd_queue_depth", "gauge"},
        {"inferd_model_ready", "gauge"},
        {"inferd_requests_in_flight", "gauge"},
        {"inferd_requests_dropped_total", "counter"},
        {"inferd_generated_tokens_total", "counter"},
        {"inferd_time_to_first_token_seconds", "histogram"},
        {"inferd_running_sequences", "gauge"},
        {"inferd_start_time_seconds", "gauge"},
        {"inferd_build_info", "gauge"},
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "\n# TYPE %s %s\n", families[i][0], families[i][1]);
        ck_assert_msg(strstr(text, want) != NULL, "missing%s", want);
        snprintf(want, sizeof(want), "# HELP %s ", families[i][0]);
        ck_assert_msg(strstr(text, want) != NULL, "missing %s", want);
    }
    /* Only the three unlabelled-at-birth series exist; no family has observations yet. */
    ck_assert_ptr_null(strstr(text, "inferd_requests_total{"));
    ck_assert_ptr_null(strstr(text, "_bucket"));
    ck_sample(text, "inferd_requests_in_flight", 0);
    ck_sample(text, "inferd_build_info{version=\"0.1.0\"}", 1);
    double start = sample(text, "inferd_start_time_seconds");
    ck_assert(start > (double)time(NULL) - 60 && start <= (double)time(NULL) + 1);
    free(text);
    metrics_free(m);
    metrics_free(NULL);
}
END_TEST

START_TEST(values_after_known_observations)
{
    struct metrics *m = metrics_new();
    /* Durations are binary fractions so sums are exact; 0.001 and 1 sit on bucket bounds. */
    metrics_request(m, "bert", "/embed", 200, 0.0005);
    metrics_request(m, "bert", "/embed", 200, 0.001);
    metrics_request(m, "bert", "/embed", 200, 1);
    metrics_request(m, "bert", "/embed", 422, 64);
    metrics_request(m, NULL, "other", 404, 0.125);
    metrics_request(m, "", "other", 404, 0.125);
    metrics_queue_time(m, "bert", 0.5);
    metrics_batch(m, "bert", 3, 40, 48, 0.25);
    metrics_batch(m, "bert", 8, 100, 128, 0.75);
    metrics_batch(m, "bert", 300, 1000, 3000, 2);
    metrics_dropped(m, "bert", "timeout");
    metrics_dropped(m, "bert", "timeout");
    metrics_dropped(m, "bert", "disconnect");
    metrics_inflight_add(m, 3);
    metrics_inflight_add(m, -1);
    metrics_request(m, "bert", "/embed", 200, -1); /* clamped to 0 */
    metrics_generated(m, "gpt", 16);
    metrics_generated(m, "gpt", 0); /* creates nothing */
    metrics_generated(m, "gpt", 3);
    metrics_first_token(m, "gpt", 0.125);
    metrics_first_token(m, "gpt", 2);
    metrics_running(m, "gpt", 4);
    metrics_running(m, "gpt", 3);
    char *text = render(m);

    ck_sample(text, "inferd_requests_total{model=\"bert\",route=\"/embed\",status=\"200\"}", 4);
    ck_sample(text, "inferd_requests_total{model=\"bert\",route=\"/embed\",status=\"422\"}", 1);
    /* NULL and "" are the same model="" series. */
    ck_sample(text, "inferd_requests_total{model=\"\",route=\"other\",status=\"404\"}", 2);

    /* Request durations of bert /embed: 0.0005, 0.001, 1, 64, 0 (both statuses). */
    static const struct {
        const char *le;
        double n;
    } buckets[] = {{"0.001", 3}, {"0.0025", 3}, {"0.005", 3}, {"0.01", 3}, {"0.025", 3},
                   {"0.05", 3},  {"0.1", 3},    {"0.25", 3},  {"0.5", 3},  {"1", 4},
                   {"2.5", 4},   {"5", 4},      {"10", 4},    {"30", 4},   {"+Inf", 5}};
    for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
        char series[160];
        snprintf(
            series, sizeof(series),
            "inferd_request_duration_seconds_bucket{model=\"bert\",route=\"/embed\",le=\"%s\"}",
            buckets[i].le);
        ck_sample(text, series, buckets[i].n);
    }
    ck_sample(text, "inferd_request_duration_seconds_sum{model=\"bert\",route=\"/embed\"}",
              0.0005 + 0.001 + 1 + 64);
    ck_sample(text, "inferd_request_duration_seconds_count{model=\"bert\",route=\"/embed\"}", 5);
    ck_sample(text, "inferd_request_duration_seconds_count{model=\"\",route=\"other\"}", 2);

    ck_sample(text, "inferd_queue_duration_seconds_bucket{model=\"bert\",le=\"0.25\"}", 0);
    ck_sample(text, "inferd_queue_duration_seconds_bucket{model=\"bert\",le=\"0.5\"}", 1);
    ck_sample(text, "inferd_queue_duration_seconds_sum{model=\"bert\"}", 0.5);

    /* Batches of 3, 8 and 300 rows. */
    ck_sample(text, "inferd_batch_size_bucket{model=\"bert\",le=\"2\"}", 0);
    ck_sample(text, "inferd_batch_size_bucket{model=\"bert\",le=\"4\"}", 1);
    ck_sample(text, "inferd_batch_size_bucket{model=\"bert\",le=\"8\"}", 2);
    ck_sample(text, "inferd_batch_size_bucket{model=\"bert\",le=\"256\"}", 2);
    ck_sample(text, "inferd_batch_size_bucket{model=\"bert\",le=\"+Inf\"}", 3);
    ck_sample(text, "inferd_batch_size_sum{model=\"bert\"}", 311);
    ck_sample(text, "inferd_batch_size_count{model=\"bert\"}", 3);
    ck_sample(text, "inferd_batch_duration_seconds_sum{model=\"bert\"}", 3);
    ck_sample(text, "inferd_batch_duration_seconds_bucket{model=\"bert\",le=\"1\"}", 2);
    ck_sample(text, "inferd_batches_total{model=\"bert\"}", 3);
    ck_sample(text, "inferd_tokens_total{model=\"bert\"}", 1140);
    ck_sample(text, "inferd_padded_tokens_total{model=\"bert\"}", 3176);

    ck_sample(text, "inferd_requests_dropped_total{model=\"bert\",reason=\"timeout\"}", 2);
    ck_sample(text, "inferd_requests_dropped_total{model=\"bert\",reason=\"disconnect\"}", 1);
    ck_sample(text, "inferd_requests_in_flight", 2);
    ck_sample(text, "inferd_generated_tokens_total{model=\"gpt\"}", 19);
    ck_sample(text, "inferd_time_to_first_token_seconds_bucket{model=\"gpt\",le=\"0.1\"}", 0);
    ck_sample(text, "inferd_time_to_first_token_seconds_bucket{model=\"gpt\",le=\"0.25\"}", 1);
    ck_sample(text, "inferd_time_to_first_token_seconds_bucket{model=\"gpt\",le=\"2.5\"}", 2);
    ck_sample(text, "inferd_time_to_first_token_seconds_sum{model=\"gpt\"}", 2.125);
    ck_sample(text, "inferd_time_to_first_token_seconds_count{model=\"gpt\"}", 2);
    ck_sample(text, "inferd_running_sequences{model=\"gpt\"}", 3);
    ck_assert_ptr_null(strstr(text, "inferd_generated_tokens_total{model=\"bert\"}"));
    /* Never observed: still no series. */
    ck_assert_ptr_null(strstr(text, "inferd_queue_depth{"));
    free(text);
    metrics_free(m);
}
END_TEST

START_TEST(odd_label_values_are_escaped)
{
    struct metrics *m = metrics_new();
    metrics_queue_depth(m, "a\"b\\c\nd", 7);
    metrics_queue_depth(m, "caf\xc3\xa9 \xe2\x98\x83", 1); /* valid UTF-8 passes through */
    metrics_queue_depth(m, "bad\xff\xc3", 2);              /* invalid bytes become U+FFFD */
    metrics_request(m, "m", "/models/{name}", 200, 0.01);
    char *text = render(m);
    ck_sample(text, "inferd_queue_depth{model=\"a\\\"b\\\\c\\nd\"}", 7);
    ck_sample(text, "inferd_queue_depth{model=\"caf\xc3\xa9 \xe2\x98\x83\"}", 1);
    ck_sample(text, "inferd_queue_depth{model=\"bad\xef\xbf\xbd\xef\xbf\xbd\"}", 2);
    ck_sample(text, "inferd_requests_total{model=\"m\",route=\"/models/{name}\",status=\"200\"}",
              1);
    free(text);
    metrics_free(m);
}
END_TEST

START_TEST(forget_drops_gauges_only)
{
    struct metrics *m = metrics_new();
    metrics_queue_depth(m, "old", 3);
    metrics_queue_depth(m, "old", 5);
    metrics_model_ready(m, "old", true);
    metrics_model_ready(m, "keep", false);
    metrics_queue_depth(m, "keep", 1);
    metrics_request(m, "old", "/embed", 200, 0.01);
    metrics_running(m, "old", 2);
    char *text = render(m);
    ck_sample(text, "inferd_queue_depth{model=\"old\"}", 5);
    ck_sample(text, "inferd_model_ready{model=\"old\"}", 1);
    ck_sample(text, "inferd_model_ready{model=\"keep\"}", 0);
    ck_sample(text, "inferd_running_sequences{model=\"old\"}", 2);
    free(text);

    metrics_model_forget(m, "old");
    text = render(m);
    ck_assert_ptr_null(strstr(text, "model=\"old\"}"));
    ck_sample(text, "inferd_model_ready{model=\"keep\"}", 0);
    ck_sample(text, "inferd_queue_depth{model=\"keep\"}", 1);
    ck_sample(text, "inferd_requests_total{model=\"old\",route=\"/embed\",status=\"200\"}", 1);
    free(text);

    /* A model loaded again under the same name starts new gauges. */
    metrics_model_ready(m, "old", true);
    text = render(m);
    ck_sample(text, "inferd_model_ready{model=\"old\"}", 1);
    ck_assert_ptr_null(strstr(text, "inferd_queue_depth{model=\"old\"}"));
    free(text);
    metrics_free(m);
}
END_TEST

enum { N_THREADS = 8, N_ITER = 20000 };

struct worker {
    pthread_t thread;
    struct metrics *m;
    int id;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    const char *model = w->id % 2 ? "odd" : "even";
    for (int i = 0; i < N_ITER; i++) {
        metrics_inflight_add(w->m, 1);
        metrics_request(w->m, model, "/embed", i % 3 ? 200 : 503, 0.5);
        metrics_queue_time(w->m, model, 0.25);
        metrics_batch(w->m, model, 2, 10, 12, 0.125);
        metrics_queue_depth(w->m, model, i);
        metrics_inflight_add(w->m, -1);
        if (i % 2000 == 0)
            free(metrics_render(w->m, NULL)); /* renders race with observations too */
    }
    return NULL;
}

START_TEST(concurrent_observations_add_up)
{
    struct metrics *m = metrics_new();
    struct worker w[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        w[t] = (struct worker){.m = m, .id = t};
        ck_assert_int_eq(pthread_create(&w[t].thread, NULL, hammer, &w[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++)
        pthread_join(w[t].thread, NULL);
    char *text = render(m);
    const double per_model = (double)(N_THREADS / 2) * N_ITER;
    const double ok = (double)(N_THREADS / 2) * (N_ITER - (N_ITER + 2) / 3); /* i % 3 != 0 */
    static const char *const models[] = {"even", "odd"};
    for (int i = 0; i < 2; i++) {
        char s[160];
#define AT(fmt) (snprintf(s, sizeof(s), fmt, models[i]), s)
        ck_sample(text, AT("inferd_requests_total{model=\"%s\",route=\"/embed\",status=\"200\"}"),
                  ok);
        ck_sample(text, AT("inferd_requests_total{model=\"%s\",route=\"/embed\",status=\"503\"}"),
                  per_model - ok);
        ck_sample(text, AT("inferd_request_duration_seconds_count{model=\"%s\",route=\"/embed\"}"),
                  per_model);
        ck_sample(text, AT("inferd_request_duration_seconds_sum{model=\"%s\",route=\"/embed\"}"),
                  per_model * 0.5);
        ck_sample(text,
                  AT("inferd_request_duration_seconds_bucket{model=\"%s\",route=\"/embed\","
                     "le=\"0.25\"}"),
                  0);
        ck_sample(text, AT("inferd_queue_duration_seconds_sum{model=\"%s\"}"), per_model * 0.25);
        ck_sample(text, AT("inferd_batches_total{model=\"%s\"}"), per_model);
        ck_sample(text, AT("inferd_tokens_total{model=\"%s\"}"), per_model * 10);
        ck_sample(text, AT("inferd_padded_tokens_total{model=\"%s\"}"), per_model * 12);
        ck_sample(text, AT("inferd_batch_size_bucket{model=\"%s\",le=\"2\"}"), per_model);
        ck_sample(text, AT("inferd_batch_duration_seconds_sum{model=\"%s\"}"), per_model * 0.125);
        ck_sample(text, AT("inferd_queue_depth{model=\"%s\"}"), N_ITER - 1);
#undef AT
    }
    ck_sample(text, "inferd_requests_in_flight", 0);
    free(text);
    metrics_free(m);
}
END_TEST

/* Runs `promtool check metrics` on text; *out gets its combined output (malloc'ed).
 * Returns its exit status, or -1 when promtool is not installed. */
static int promtool_check(const char *text, char **out)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0)
        return -1;
    char path[512], cmd[1200];
    snprintf(path, sizeof(path), "%s/metrics.txt", temp_dir());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = 0, cap = 4096;
    *out = malloc(cap);
    size_t n;
    while ((n = fread(*out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap)
            *out = realloc(*out, cap *= 2);
    }
    (*out)[len] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void check_with_promtool(struct metrics *m)
{
    char *text = render(m);
    char *out = NULL;
    int status = promtool_check(text, &out);
    if (status == -1) {
        printf("test_metrics: promtool not installed, skipping `promtool check metrics`\n");
    } else {
        if (status != 0 || out[0] != '\0')
            fprintf(stderr, "test_metrics: promtool exit %d:\n%s\non:\n%s", status, out, text);
        ck_assert_msg(status == 0 && out[0] == '\0', "promtool check metrics: exit %d, %.200s",
                      status, out);
    }
    free(out);
    free(text);
}

START_TEST(promtool_accepts_the_text)
{
    struct metrics *m = metrics_new();
    check_with_promtool(m); /* families without series */
    metrics_request(m, "bert", "/models/{name}", 200, 0.02);
    metrics_request(m, NULL, "other", 404, 0.0001);
    metrics_request(m, "a\"b\\c\nd\xff", "/v1/embeddings", 413, 40);
    metrics_queue_time(m, "bert", 0.003);
    metrics_batch(m, "bert", 5, 50, 60, 0.04);
    metrics_queue_depth(m, "bert", 2);
    metrics_model_ready(m, "bert", true);
    metrics_model_ready(m, "e5", false);
    metrics_dropped(m, "bert", "disconnect");
    metrics_inflight_add(m, 1);
    metrics_generated(m, "gpt", 7);
    metrics_first_token(m, "gpt", 0.01);
    metrics_running(m, "gpt", 1);
    check_with_promtool(m);
    metrics_free(m);
}
END_TEST

Suite *suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, fresh_registry_has_every_family);
    tcase_add_test(tc, values_after_known_observations);
    tcase_add_test(tc, odd_label_values_are_escaped);
    tcase_add_test(tc, forget_drops_gauges_only);
    tcase_add_test(tc, concurrent_observations_add_up);
    tcase_add_test(tc, promtool_accepts_the_text);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
