/* serve: `inferd serve`, the daemon's main: options and config, the server state the other
 * server/ files share (struct server), signal handling (SIGTERM/SIGINT drain, SIGHUP
 * reload) on the main thread with sigwait, and the background loading of models (a model
 * that fails its first load stops the daemon, exit 1, unless server.allow_partial_start).
 * Also the in-process daemon of `inferd batch` (serve_local_start): the same server on a
 * loopback port with a one-time API key, its models loaded before it answers. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "batcher.h"
#include "constraint.h"
#include "cpus.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "server.h"

#define DRAIN_GRACE 5.0 /* seconds past request_timeout_ms that a drain may take */
/* seconds for the calls left once their work is ended: a request thread may still be
 * tokenizing a large request (bounded by the request limits), which nothing interrupts */
#define DRAIN_ABORT_WAIT 60.0

struct server {
    struct config cfg; /* the server section stays as started; models follow reloads */
    const char *config_path;
    struct metrics *metrics;
    struct registry reg;
    atomic_bool draining;
    atomic_bool start_failed; /* a model failed its first load (without allow_partial_start) */
    pthread_t main_thread;    /* sigwaits; told of start_failed by SIGUSR1 */
    double started_at;
    pthread_mutex_t reload_mu; /* one load or reload at a time */
};

struct metrics *server_metrics(struct server *s)
{
    return s->metrics;
}
const struct server_config *server_config(const struct server *s)
{
    return &s->cfg.server;
}
struct registry *server_registry(struct server *s)
{
    return &s->reg;
}
bool server_draining(const struct server *s)
{
    return atomic_load(&s->draining);
}
double server_started_at(const struct server *s)
{
    return s->started_at;
}
bool server_ready(struct server *s)
{
    return !server_draining(s) && registry_ready(&s->reg);
}

/* ---- options ---- */

struct opts {
    const char *config, *model, *task, *name, *host, *dtype;
    long port, workers, threads, max_batch_size;
};

/* The executable's usage text for `serve` (serve_main's argument). */
static void (*usage_serve)(FILE *f);

static int parse_long(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        fprintf(stderr, "inferd serve: %s must be an integer in %ld..%ld, not '%s'\n", opt, lo, hi,
                v);
        return -1;
    }
    *out = n;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.port = -1, .workers = -1, .threads = -1, .max_batch_size = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage_serve(stdout);
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "inferd serve: unknown option or missing value '%s'\n", a);
            return -1;
        }
        int rc = 0;
        if (strcmp(a, "--config") == 0)
            o->config = v;
        else if (strcmp(a, "--model") == 0)
            o->model = v;
        else if (strcmp(a, "--task") == 0)
            o->task = v;
        else if (strcmp(a, "--name") == 0)
            o->name = v;
        else if (strcmp(a, "--host") == 0)
            o->host = v;
        else if (strcmp(a, "--dtype") == 0)
            o->dtype = v;
        else if (strcmp(a, "--port") == 0)
            rc = parse_long(a, v, 0, 65535, &o->port);
        else if (strcmp(a, "--workers") == 0)
            rc = parse_long(a, v, 1, 64, &o->workers);
        else if (strcmp(a, "--threads") == 0)
            rc = parse_long(a, v, 1, 1024, &o->threads);
        else if (strcmp(a, "--max-batch-size") == 0)
            rc = parse_long(a, v, 1, 1 << 20, &o->max_batch_size);
        else {
            fprintf(stderr, "inferd serve: unknown option '%s'\n", a);
            return -1;
        }
        if (rc)
            return -1;
        i++;
    }
    if (!o->config == !o->model || (o->model && !o->task)) {
        fprintf(stderr, "inferd serve: give either --config FILE or --model DIR --task TASK\n");
        return -1;
    }
    return 0;
}

/* The config from the file or the one-model options, with the command line's overrides. */
static int load_config(const struct opts *o, struct config *cfg)
{
    struct err e = {0};
    int rc = o->config ? config_load(o->config, &registry_tasks, cfg, &e)
                       : config_single(o->model, o->task, o->name, &registry_tasks, cfg, &e);
    if (rc) {
        fprintf(stderr, "inferd serve: %s\n", e.msg);
        return -1;
    }
    if (o->host) {
        char *h = strdup(o->host);
        if (!h)
            return -1;
        free(cfg->server.host);
        cfg->server.host = h;
    }
    if (o->port >= 0)
        cfg->server.port = (int)o->port;
    if (o->model) {
        struct model_config *m = &cfg->models[0];
        if (o->dtype) {
            if (config_dtype_by_name(o->dtype, &m->dtype) != 0) {
                fprintf(stderr, "inferd serve: --dtype must be fp32, bf16, int8 or int4\n");
                return -1;
            }
        }
        if (o->workers > 0)
            m->workers = (int)o->workers;
        if (o->threads > 0)
            m->threads = (int)o->threads;
        if (o->max_batch_size > 0)
            m->batching.max_batch_size = (size_t)o->max_batch_size;
    }
    return 0;
}

/* Cores the models ask for versus cores online: oneDNN's OpenMP threads slow down badly
 * when they share cores, so say so at start. */
static bool generation_task(const char *task)
{
    int t = task_by_name(task);
    return t >= 0 && task_kind((enum task_id)t) == TASK_KIND_GENERATOR;
}

static void check_cores(const struct config *cfg)
{
    long cpus = cpus_usable(), want = 0;
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct model_config *m = &cfg->models[i];
        want += (long)(generation_task(m->task) ? 1 : m->workers) * m->threads;
    }
    if (want > cpus)
        log_msg(LOG_WARN,
                "warning: the models ask for %ld threads (workers x threads) on the %ld cores "
                "this process may use; oneDNN is fastest when they match: lower workers or "
                "threads, or set threads: 0 to share the cores among the models",
                want, cpus);
}

/* The start banner: what runs and how (never the API keys themselves). Each model's own line
 * comes when its load starts (registry.c). */
static void log_banner(const struct config *cfg)
{
    const struct server_config *sc = &cfg->server;
    struct log_field f[] = {
        LOG_S("version", INFERD_VERSION),
        LOG_S("onednn", engine_describe()),
        LOG_S("api_keys", sc->n_api_keys ? "on" : "off"),
        LOG_S("tls", sc->tls.cert ? "on" : "off"),
        LOG_I("http_threads", sc->http_threads),
        LOG_I("work_threads", sc->work_threads),
        LOG_I("models", cfg->n_models),
    };
    log_fields(LOG_ALWAYS, "starting", f, sizeof f / sizeof f[0]);
}

/* ---- loading and reloading in the background ---- */

/* One loading thread at a time. A SIGHUP while it runs only marks a reload pending, which
 * the thread then runs (reading the file as it is by then), so a burst of signals costs at
 * most one reload more. The thread is joined by the next start_load or by the drain, both
 * on the main thread, so the server outlives it. Lock order: server.reload_mu, then
 * loader.mu. */
static struct {
    pthread_mutex_t mu;
    bool running, pending;
    bool joinable; /* thread was started and not joined yet (main thread only) */
    pthread_t thread;
} loader = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Waits for the last loading thread (main thread only). */
static void join_loader(void)
{
    if (loader.joinable)
        pthread_join(loader.thread, NULL);
    loader.joinable = false;
}

/* One reload of the config file: models applied all or nothing (registry_apply). */
static void reload_once(struct server *s)
{
    struct config cfg = {0};
    struct err e = {0};
    if (config_load(s->config_path, &registry_tasks, &cfg, &e)) {
        log_msg(LOG_ERROR, "reload ignored: %s", e.msg);
        return;
    }
    cpus_share(&cfg, cpus_usable(), generation_task);
    if (registry_apply(&s->reg, &cfg, s->metrics, false))
        log_msg(LOG_INFO, "reloaded %s", s->config_path);
    else
        log_msg(LOG_ERROR, "reload of %s not applied", s->config_path);
    config_free(&cfg);
}

struct load_job {
    struct server *s;
    bool initial;
};

/* Whether a reload was asked for meanwhile; if not, the loading thread is done. */
static bool take_pending(void)
{
    pthread_mutex_lock(&loader.mu);
    bool again = loader.pending;
    loader.pending = false;
    loader.running = again;
    pthread_mutex_unlock(&loader.mu);
    return again;
}

/* The first load; a model that fails stops the daemon unless server.allow_partial_start
 * (the main thread, woken by SIGUSR1, drains and exits 1). */
static void initial_load(struct server *s)
{
    if (registry_apply(&s->reg, &s->cfg, s->metrics, true) || s->cfg.server.allow_partial_start)
        return;
    fprintf(stderr, "inferd: stopping: a model failed to load at start "
                    "(server.allow_partial_start: true serves the others)\n");
    atomic_store(&s->start_failed, true);
    pthread_kill(s->main_thread, SIGUSR1);
}

/* The loading thread: the initial load or a reload, then the reloads asked for meanwhile.
 * Nothing of the server is touched once reload_mu is let go. */
static void *load_main(void *arg)
{
    struct load_job j = *(struct load_job *)arg;
    free(arg);
    pthread_mutex_lock(&j.s->reload_mu);
    for (bool again = true; again; j.initial = false) {
        if (!server_draining(j.s) && j.initial)
            initial_load(j.s);
        else if (!server_draining(j.s))
            reload_once(j.s);
        /* weights_load_model trims after the weights; a pipeline's tokenizer and the rest load
         * after them, and what they freed stayed resident in this thread's arena (the 124M
         * LLaMA: 22 MB, docs/DECISIONS.md): handed back once all is loaded */
        malloc_trim(0);
        again = take_pending();
    }
    pthread_mutex_unlock(&j.s->reload_mu);
    return NULL;
}

static void start_load(struct server *s, bool initial)
{
    pthread_mutex_lock(&loader.mu);
    bool busy = loader.running;
    loader.pending |= busy;
    loader.running = true;
    pthread_mutex_unlock(&loader.mu);
    if (busy)
        return;
    join_loader(); /* the previous thread is done with the server: it set running false */
    struct load_job *j = calloc(1, sizeof *j);
    if (j) {
        j->s = s;
        j->initial = initial;
    }
    if (!j || pthread_create(&loader.thread, NULL, load_main, j) != 0) {
        log_msg(LOG_ERROR, "cannot start a loading thread");
        free(j);
        pthread_mutex_lock(&loader.mu);
        loader.running = false;
        pthread_mutex_unlock(&loader.mu);
        return;
    }
    loader.joinable = true;
}

/* ---- the drain ---- */

/* Waits up to limit seconds for every call to be answered. */
static bool calls_answered(double limit)
{
    double t0 = now_seconds();
    while (http_active_calls() > 0 && now_seconds() - t0 < limit)
        usleep(5000);
    return http_active_calls() == 0;
}

/* Stops taking connections, lets every call finish (a request's own deadline bounds it: a
 * running batch whose requests are all late is cancelled), then ends whatever is left at
 * once (503) so that no connection stays suspended when libmicrohttpd stops: stopping it
 * with a suspended connection aborts the process. */
static void drain(struct server *s, struct http *h)
{
    atomic_store(&s->draining, true);
    log_msg(LOG_INFO, "draining: %ld requests in flight", http_active_calls());
    http_quiesce(h);
    double limit = (double)s->cfg.server.request_timeout_ms * 1e-3 + DRAIN_GRACE;
    if (!calls_answered(limit)) {
        log_msg(LOG_WARN, "drain: %ld requests still running after %.1f s: ending them",
                http_active_calls(), limit);
        registry_abort(&s->reg);
        if (!calls_answered(DRAIN_ABORT_WAIT)) {
            /* nothing should get here: every request's work is cancellable */
            log_msg(LOG_ERROR, "drain: %ld requests could not be ended; exiting",
                    http_active_calls());
            fflush(stderr);
            _exit(1);
        }
    }
    http_stop(h);
    join_loader(); /* a load in progress ends first; one not yet started sees the drain */
    registry_clear(&s->reg);
    log_msg(LOG_ALWAYS, "stopped");
}

int serve_main(int argc, char **argv, void (*usage)(FILE *f))
{
    usage_serve = usage;
    struct opts o;
    if (parse_opts(argc, argv, &o)) {
        usage_serve(stderr);
        return 2;
    }
    struct server *s = calloc(1, sizeof *s);
    if (!s || load_config(&o, &s->cfg)) {
        if (s)
            config_free(&s->cfg);
        free(s);
        return 2;
    }
    s->config_path = o.config;
    s->started_at = (double)time(NULL);
    registry_init(&s->reg);
    pthread_mutex_init(&s->reload_mu, NULL);
    atomic_init(&s->draining, false);
    log_configure(s->cfg.server.log_format, s->cfg.server.log_level); /* checked by config */
    log_banner(&s->cfg);
    atomic_init(&s->start_failed, false);
    s->main_thread = pthread_self();
    cpus_share(&s->cfg, cpus_usable(), generation_task);
    check_cores(&s->cfg);

    /* every thread started from here on inherits the blocked set; main sigwaits */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1); /* from the loading thread: the start failed */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    struct err e = {0};
    int port = 0;
    struct http *h = NULL;
    if (!(s->metrics = metrics_new()))
        fprintf(stderr, "inferd serve: out of memory\n");
    else if (!(h = http_start(s, &s->cfg.server, &port, &e)))
        fprintf(stderr, "inferd serve: %s\n", e.msg);
    if (h) {
        log_msg(LOG_ALWAYS, "listening on %s://%s:%d", s->cfg.server.tls.cert ? "https" : "http",
                s->cfg.server.host, port);
        start_load(s, true);
        for (;;) {
            int sig = 0;
            if (sigwait(&set, &sig) != 0)
                continue;
            if (sig == SIGUSR1 && atomic_load(&s->start_failed))
                break;
            if (sig == SIGUSR1)
                continue;
            if (sig == SIGHUP) {
                if (s->config_path)
                    start_load(s, false);
                else
                    log_msg(LOG_WARN, "SIGHUP ignored: no config file to reload");
                continue;
            }
            log_msg(LOG_INFO, "%s received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        drain(s, h);
        rc = atomic_load(&s->start_failed) ? 1 : 0;
    }
    metrics_free(s->metrics);
    config_free(&s->cfg);
    constraint_cache_clear(); /* the compiled output constraints (the models are gone) */
    pthread_mutex_destroy(&s->reload_mu);
    free(s);
    return rc;
}

/* ---- the in-process daemon of `inferd batch` ---- */

struct local_server {
    struct server *s;
    struct http *h;
    char key[33];
};

/* The config served locally: loopback, any free port, plain HTTP, one random key of ours
 * (no other local user can use the models meanwhile), no per-address connection limit, no
 * request deadline short of a day (a line waits its turn behind the job's own lines, which
 * the job bounds) and only errors logged (the job's progress is on stderr). */
static int localize(struct config *cfg, char key[33], struct err *e)
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return err_set(e, ERR_IO, "cannot read random bytes for the local API key");
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(key + 2 * i, 3, "%02x", raw[i]);
    struct server_config *sc = &cfg->server;
    char *host = strdup("127.0.0.1"), *k = strdup(key), **keys = calloc(1, sizeof *keys),
         *level = strdup("error");
    if (!host || !k || !keys || !level) {
        free(host), free(k), free(keys), free(level);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < sc->n_api_keys; i++)
        free(sc->api_keys[i]);
    free(sc->api_keys);
    keys[0] = k;
    sc->api_keys = keys;
    sc->n_api_keys = 1;
    free(sc->host);
    sc->host = host;
    free(sc->log_level);
    sc->log_level = level;
    free(sc->tls.cert), free(sc->tls.key);
    sc->tls.cert = sc->tls.key = NULL;
    sc->port = 0;
    sc->max_connections_per_ip = 0;
    sc->request_timeout_ms = 86400000L;
    return 0;
}

struct local_server *serve_local_start(struct config *cfg, int *port, const char **key,
                                       struct err *e)
{
    struct local_server *l = calloc(1, sizeof *l);
    struct server *s = calloc(1, sizeof *s);
    if (!l || !s) {
        free(l), free(s);
        config_free(cfg);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    *cfg = (struct config){0};
    l->s = s;
    s->started_at = (double)time(NULL);
    registry_init(&s->reg);
    pthread_mutex_init(&s->reload_mu, NULL);
    atomic_init(&s->draining, false);
    atomic_init(&s->start_failed, false);
    s->main_thread = pthread_self();
    signal(SIGPIPE, SIG_IGN);
    if (localize(&s->cfg, l->key, e) == 0) {
        log_configure(s->cfg.server.log_format, s->cfg.server.log_level);
        cpus_share(&s->cfg, cpus_usable(), generation_task);
        if (!(s->metrics = metrics_new()))
            err_set(e, ERR_NOMEM, "out of memory");
        else if (!registry_apply(&s->reg, &s->cfg, s->metrics, true))
            err_set(e, ERR_INVALID, "a model failed to load (its error is above)");
        else
            l->h = http_start(s, &s->cfg.server, port, e);
    }
    if (!l->h) {
        serve_local_stop(l);
        return NULL;
    }
    *key = l->key;
    return l;
}

void serve_local_stop(struct local_server *l)
{
    if (!l)
        return;
    struct server *s = l->s;
    atomic_store(&s->draining, true);
    if (l->h) {
        http_quiesce(l->h);
        /* the job has its answers by now: a call still open is one it gave up on */
        if (!calls_answered(DRAIN_GRACE)) {
            registry_abort(&s->reg);
            calls_answered(DRAIN_ABORT_WAIT);
        }
        http_stop(l->h);
    }
    registry_clear(&s->reg);
    metrics_free(s->metrics);
    config_free(&s->cfg);
    pthread_mutex_destroy(&s->reload_mu);
    free(s);
    free(l);
}
