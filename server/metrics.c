/* metrics: the Prometheus registry. One table describes every metric family (name, type, help,
 * label names, histogram buckets); at run time each family holds a linked list of series, one
 * per distinct tuple of label values, in order of first observation. One mutex guards it all:
 * an observation is a short list walk and a few additions (a handful of models x ~15 routes x
 * ~12 statuses), and rendering only formats into memory, so nobody waits long. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef INFERD_VERSION
#define INFERD_VERSION "0.1.0"
#endif

#define MAX_LABELS 3

enum metric {
    METRIC_REQUESTS,
    METRIC_REQUEST_DURATION,
    METRIC_QUEUE_DURATION,
    METRIC_BATCH_DURATION,
    METRIC_BATCH_SIZE,
    METRIC_BATCHES,
    METRIC_TOKENS,
    METRIC_PADDED_TOKENS,
    METRIC_QUEUE_DEPTH,
    METRIC_MODEL_READY,
    METRIC_IN_FLIGHT,
    METRIC_DROPPED,
    METRIC_START_TIME,
    METRIC_BUILD_INFO,
    METRIC_COUNT
};

struct family {
    const char *name;
    const char *type; /* "counter", "gauge" or "histogram" */
    const char *help; /* no backslash or newline: written as is */
    const char *const *labels;
    int n_labels;
    const double *bounds; /* histogram upper bounds, ascending; +Inf is implicit */
    int n_bounds;
};

static const char *const L_MODEL[] = {"model"};
static const char *const L_MODEL_ROUTE[] = {"model", "route"};
static const char *const L_MODEL_ROUTE_STATUS[] = {"model", "route", "status"};
static const char *const L_MODEL_REASON[] = {"model", "reason"};
static const char *const L_VERSION[] = {"version"};

/* Latencies from 1 ms (a cached tiny model) to 30 s (a long batch under load). */
static const double SECONDS_BOUNDS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10,   30};
/* Encoder rows per batch; max_batch_size is rarely above 256. */
static const double ROWS_BOUNDS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

#define LABELS(a) a, (int)(sizeof(a) / sizeof(a[0]))
#define BOUNDS(a) a, (int)(sizeof(a) / sizeof(a[0]))

static const struct family FAMILIES[METRIC_COUNT] = {
    [METRIC_REQUESTS] = {"inferd_requests_total", "counter", "HTTP requests answered.",
                         LABELS(L_MODEL_ROUTE_STATUS), NULL, 0},
    [METRIC_REQUEST_DURATION] = {"inferd_request_duration_seconds", "histogram",
                                 "Time from request received to reply queued.",
                                 LABELS(L_MODEL_ROUTE), BOUNDS(SECONDS_BOUNDS)},
    [METRIC_QUEUE_DURATION] = {"inferd_queue_duration_seconds", "histogram",
                               "Time a request waited in its model's queue before its batch ran.",
                               LABELS(L_MODEL), BOUNDS(SECONDS_BOUNDS)},
    [METRIC_BATCH_DURATION] = {"inferd_batch_duration_seconds", "histogram",
                               "Wall time of one batch (forward pass and finish).", LABELS(L_MODEL),
                               BOUNDS(SECONDS_BOUNDS)},
    [METRIC_BATCH_SIZE] = {"inferd_batch_size", "histogram", "Encoder rows per batch.",
                           LABELS(L_MODEL), BOUNDS(ROWS_BOUNDS)},
    [METRIC_BATCHES] = {"inferd_batches_total", "counter", "Batches run.", LABELS(L_MODEL), NULL,
                        0},
    [METRIC_TOKENS] = {"inferd_tokens_total", "counter", "Real (unpadded) tokens run.",
                       LABELS(L_MODEL), NULL, 0},
    [METRIC_PADDED_TOKENS] = {"inferd_padded_tokens_total", "counter",
                              "Tokens run including padding (rows x longest row).", LABELS(L_MODEL),
                              NULL, 0},
    [METRIC_QUEUE_DEPTH] = {"inferd_queue_depth", "gauge", "Requests waiting in the queue.",
                            LABELS(L_MODEL), NULL, 0},
    [METRIC_MODEL_READY] = {"inferd_model_ready", "gauge", "1 if the model is loaded and serving.",
                            LABELS(L_MODEL), NULL, 0},
    [METRIC_IN_FLIGHT] = {"inferd_requests_in_flight", "gauge", "HTTP requests being handled.",
                          NULL, 0, NULL, 0},
    [METRIC_DROPPED] = {"inferd_requests_dropped_total", "counter",
                        "Requests dropped before running (client disconnect or queue timeout).",
                        LABELS(L_MODEL_REASON), NULL, 0},
    [METRIC_START_TIME] = {"inferd_start_time_seconds", "gauge",
                           "Start time of the process since the unix epoch.", NULL, 0, NULL, 0},
    [METRIC_BUILD_INFO] = {"inferd_build_info", "gauge", "Always 1; the labels name the build.",
                           LABELS(L_VERSION), NULL, 0},
};

/* One series: its label values (in the family's label order) and its numbers. Allocated as one
 * block: the struct, then n_bounds bucket counts, then the label strings. */
struct series {
    struct series *next;
    const char *labels[MAX_LABELS];
    double value;      /* counter or gauge */
    double sum;        /* histogram: sum of observations */
    uint64_t count;    /* histogram: observations, i.e. the le="+Inf" bucket */
    uint64_t bucket[]; /* histogram: observations in (bounds[i-1], bounds[i]], not cumulative */
};

struct metrics {
    pthread_mutex_t lock;                /* guards every list below */
    struct series *series[METRIC_COUNT]; /* per family, in order of first observation */
};

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* The series of family f with these label values, created (zeroed) if new; NULL on OOM.
 * Called with the lock held. */
static struct series *series_get(struct metrics *m, enum metric f, const char *const *values)
{
    const struct family *fam = &FAMILIES[f];
    struct series **pp = &m->series[f];
    for (; *pp; pp = &(*pp)->next) {
        int i = 0;
        while (i < fam->n_labels && strcmp((*pp)->labels[i], or_empty(values[i])) == 0)
            i++;
        if (i == fam->n_labels)
            return *pp;
    }
    size_t head = sizeof(struct series) + (size_t)fam->n_bounds * sizeof(uint64_t);
    size_t size = head;
    for (int i = 0; i < fam->n_labels; i++)
        size += strlen(or_empty(values[i])) + 1;
    struct series *s = calloc(1, size);
    if (!s)
        return NULL;
    char *p = (char *)s + head;
    for (int i = 0; i < fam->n_labels; i++) {
        size_t n = strlen(or_empty(values[i])) + 1;
        memcpy(p, or_empty(values[i]), n);
        s->labels[i] = p;
        p += n;
    }
    *pp = s;
    return s;
}

/* Adds delta to a counter or gauge (set = false), or sets a gauge (set = true). */
static void value_update(struct metrics *m, enum metric f, const char *const *values, double v,
                         bool set)
{
    pthread_mutex_lock(&m->lock);
    struct series *s = series_get(m, f, values);
    if (s)
        s->value = set ? v : s->value + v;
    pthread_mutex_unlock(&m->lock);
}

/* Called with the lock held. An observation equal to a bound falls in that bound's bucket. */
static void histogram_observe(struct metrics *m, enum metric f, const char *const *values, double v)
{
    struct series *s = series_get(m, f, values);
    if (!s)
        return;
    const struct family *fam = &FAMILIES[f];
    int i = 0;
    while (i < fam->n_bounds && v > fam->bounds[i])
        i++;
    if (i < fam->n_bounds)
        s->bucket[i]++;
    s->count++;
    s->sum += v;
}

static double clamp_seconds(double seconds)
{
    return seconds >= 0 ? seconds : 0; /* also maps NaN to 0 */
}

struct metrics *metrics_new(void)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    const char *version[] = {INFERD_VERSION};
    struct series *start = series_get(m, METRIC_START_TIME, NULL);
    struct series *build = series_get(m, METRIC_BUILD_INFO, version);
    struct series *in_flight = series_get(m, METRIC_IN_FLIGHT, NULL);
    if (!start || !build || !in_flight) {
        metrics_free(m);
        return NULL;
    }
    start->value = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    build->value = 1;
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (int f = 0; f < METRIC_COUNT; f++) {
        struct series *s = m->series[f];
        while (s) {
            struct series *next = s->next;
            free(s);
            s = next;
        }
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void metrics_request(struct metrics *m, const char *model, const char *route, int status,
                     double seconds)
{
    if (!m)
        return;
    char code[16];
    snprintf(code, sizeof(code), "%d", status);
    const char *labels[] = {model, route, code};
    pthread_mutex_lock(&m->lock);
    struct series *s = series_get(m, METRIC_REQUESTS, labels);
    if (s)
        s->value += 1;
    histogram_observe(m, METRIC_REQUEST_DURATION, labels, clamp_seconds(seconds));
    pthread_mutex_unlock(&m->lock);
}

void metrics_queue_time(struct metrics *m, const char *model, double seconds)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    histogram_observe(m, METRIC_QUEUE_DURATION, &model, clamp_seconds(seconds));
    pthread_mutex_unlock(&m->lock);
}

void metrics_batch(struct metrics *m, const char *model, size_t rows, size_t tokens,
                   size_t padded_tokens, double seconds)
{
    if (!m)
        return;
    static const enum metric counters[] = {METRIC_BATCHES, METRIC_TOKENS, METRIC_PADDED_TOKENS};
    const double add[] = {1, (double)tokens, (double)padded_tokens};
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < 3; i++) {
        struct series *s = series_get(m, counters[i], &model);
        if (s)
            s->value += add[i];
    }
    histogram_observe(m, METRIC_BATCH_SIZE, &model, (double)rows);
    histogram_observe(m, METRIC_BATCH_DURATION, &model, clamp_seconds(seconds));
    pthread_mutex_unlock(&m->lock);
}

void metrics_queue_depth(struct metrics *m, const char *model, long depth)
{
    if (m)
        value_update(m, METRIC_QUEUE_DEPTH, &model, (double)depth, true);
}

void metrics_model_ready(struct metrics *m, const char *model, bool ready)
{
    if (m)
        value_update(m, METRIC_MODEL_READY, &model, ready ? 1 : 0, true);
}

void metrics_inflight_add(struct metrics *m, long delta)
{
    if (m)
        value_update(m, METRIC_IN_FLIGHT, NULL, (double)delta, false);
}

void metrics_dropped(struct metrics *m, const char *model, const char *reason)
{
    const char *labels[] = {model, reason};
    if (m)
        value_update(m, METRIC_DROPPED, labels, 1, false);
}

void metrics_model_forget(struct metrics *m, const char *model)
{
    if (!m)
        return;
    static const enum metric gauges[] = {METRIC_QUEUE_DEPTH, METRIC_MODEL_READY};
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < 2; i++) {
        struct series **pp = &m->series[gauges[i]];
        while (*pp) {
            struct series *s = *pp;
            if (strcmp(s->labels[0], or_empty(model)) == 0) {
                *pp = s->next;
                free(s);
            } else {
                pp = &s->next;
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
}

/* ---- rendering ---- */

/* A growing output buffer; after the first failed allocation every append is ignored. */
struct out {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (o->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* The shortest of %.15g / %.17g that reads back as v; Prometheus spellings of infinities. */
static void put_number(struct out *o, double v)
{
    char s[40];
    if (isnan(v))
        snprintf(s, sizeof(s), "NaN");
    else if (isinf(v))
        snprintf(s, sizeof(s), v > 0 ? "+Inf" : "-Inf");
    else if (snprintf(s, sizeof(s), "%.15g", v) > 0 && strtod(s, NULL) != v)
        snprintf(s, sizeof(s), "%.17g", v);
    puts_(o, s);
}

/* Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), 0 if ill-formed. */
static int utf8_len(const unsigned char *s)
{
    unsigned lo = 0x80, hi = 0xBF;
    int n;
    if (s[0] < 0x80)
        return 1;
    else if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4;
    else
        return 0;
    /* The second byte's range rules out overlong forms, surrogates and code points > 10FFFF. */
    lo = s[0] == 0xE0 ? 0xA0 : s[0] == 0xF0 ? 0x90 : lo;
    hi = s[0] == 0xED ? 0x9F : s[0] == 0xF4 ? 0x8F : hi;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* A label value: backslash, double quote and newline escaped as the format demands; a byte
 * that is not UTF-8 becomes U+FFFD, since Prometheus rejects the whole scrape otherwise. */
static void put_label_value(struct out *o, const char *value)
{
    const unsigned char *s = (const unsigned char *)value;
    while (*s) {
        int n = utf8_len(s);
        if (*s == '\\')
            puts_(o, "\\\\");
        else if (*s == '"')
            puts_(o, "\\\"");
        else if (*s == '\n')
            puts_(o, "\\n");
        else if (n == 0)
            puts_(o, "\xEF\xBF\xBD");
        else
            put(o, (const char *)s, (size_t)n);
        s += n ? n : 1;
    }
}

/* `name{labels[,le="bound"]} value\n`; suffix ("_bucket", "_sum"...) follows the name. */
static void put_sample(struct out *o, const struct family *fam, const char *suffix,
                       const struct series *s, const char *le, double v)
{
    puts_(o, fam->name);
    puts_(o, suffix);
    if (fam->n_labels > 0 || le) {
        puts_(o, "{");
        for (int i = 0; i < fam->n_labels; i++) {
            if (i)
                puts_(o, ",");
            puts_(o, fam->labels[i]);
            puts_(o, "=\"");
            put_label_value(o, s->labels[i]);
            puts_(o, "\"");
        }
        if (le) {
            puts_(o, fam->n_labels ? ",le=\"" : "le=\"");
            puts_(o, le);
            puts_(o, "\"");
        }
        puts_(o, "}");
    }
    puts_(o, " ");
    put_number(o, v);
    puts_(o, "\n");
}

static void put_histogram(struct out *o, const struct family *fam, const struct series *s)
{
    uint64_t cumulative = 0;
    for (int i = 0; i < fam->n_bounds; i++) {
        char le[40];
        snprintf(le, sizeof(le), "%.15g", fam->bounds[i]);
        cumulative += s->bucket[i];
        put_sample(o, fam, "_bucket", s, le, (double)cumulative);
    }
    put_sample(o, fam, "_bucket", s, "+Inf", (double)s->count);
    put_sample(o, fam, "_sum", s, NULL, s->sum);
    put_sample(o, fam, "_count", s, NULL, (double)s->count);
}

char *metrics_render(struct metrics *m, size_t *len)
{
    if (!m)
        return NULL;
    struct out o = {0};
    put(&o, "", 0); /* an empty registry still renders as "" */
    pthread_mutex_lock(&m->lock);
    for (int f = 0; f < METRIC_COUNT; f++) {
        const struct family *fam = &FAMILIES[f];
        const char *head[] = {"# HELP ", fam->name, " ",       fam->help, "\n# TYPE ",
                              fam->name, " ",       fam->type, "\n"};
        for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
            puts_(&o, head[i]);
        for (const struct series *s = m->series[f]; s; s = s->next) {
            if (fam->bounds)
                put_histogram(&o, fam, s);
            else
                put_sample(&o, fam, "", s, NULL, s->value);
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    if (len)
        *len = o.len;
    return o.p;
}
