/* metrics: the daemon's Prometheus registry (counters, gauges, histograms keyed by label
 * values) and its text exposition format 0.0.4 for GET /metrics. Thread-safe: HTTP and worker
 * threads observe, any thread renders. It owns copies of every label value; it knows nothing
 * of HTTP, models or queues, only the numbers callers report. */
#ifndef INFERD_METRICS_H
#define INFERD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct metrics;

/* A registry with no series yet but inferd_requests_in_flight (0), inferd_start_time_seconds
 * (now, unix time: create it at process start) and inferd_build_info. NULL on OOM. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m); /* NULL is a no-op */

/* Every observer below is a no-op when m is NULL, treats a NULL label value as "" and clamps
 * negative or NaN seconds to 0. A series is created on its first observation; if that
 * allocation fails the observation is lost (metrics never fail a request). */

/* One finished HTTP request: model may be NULL or "" (rendered as model=""), route is the
 * route pattern ("/models/{name}", "/embed", "/health", "other" for 404s...), status the HTTP
 * status, seconds from the first byte received to the reply queued. */
void metrics_request(struct metrics *m, const char *model, const char *route, int status,
                     double seconds);
/* Time a request waited in its model's queue before its batch started. */
void metrics_queue_time(struct metrics *m, const char *model, double seconds);
/* One batch run by a worker: encoder rows, real tokens, padded tokens (rows x longest), wall
 * seconds of forward+finish. */
void metrics_batch(struct metrics *m, const char *model, size_t rows, size_t tokens,
                   size_t padded_tokens, double seconds);

/* Gauges. */
void metrics_queue_depth(struct metrics *m, const char *model, long depth);
void metrics_model_ready(struct metrics *m, const char *model, bool ready); /* 1 or 0 */
/* A model removed by reload: drop its gauges (queue depth, ready); its counters and
 * histograms stay, as Prometheus expects of counters. */
void metrics_model_forget(struct metrics *m, const char *model);
void metrics_inflight_add(struct metrics *m, long delta); /* requests being handled */

/* A request dropped before running: reason "disconnect" (client went away) or "timeout"
 * (expired in the queue). */
void metrics_dropped(struct metrics *m, const char *model, const char *reason);

/* Text generation (server/gen_sched.c): tokens generated (added per step), the time from a
 * request queued to its first token, and the sequences running (a gauge, dropped by
 * model_forget like the other gauges). */
void metrics_generated(struct metrics *m, const char *model, size_t tokens);
void metrics_first_token(struct metrics *m, const char *model, double seconds);
void metrics_running(struct metrics *m, const char *model, long running);
/* A generation request that looked for a cached prefix of its prompt (prefix caching): a hit
 * when cached_tokens > 0 (added to inferd_prefix_cache_tokens_total), else a miss. */
void metrics_prefix_cache(struct metrics *m, const char *model, size_t cached_tokens);

/* Every family in the Prometheus text format 0.0.4 (HELP and TYPE lines even for a family with
 * no series yet). Returns malloc'ed NUL-terminated text, its length in *len (len may be NULL);
 * NULL on OOM or when m is NULL. */
char *metrics_render(struct metrics *m, size_t *len);

#endif
