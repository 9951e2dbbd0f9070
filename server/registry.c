/* registry: see registry.h. A model is reference counted: the registry holds one reference,
 * each call that picked it holds one until the call ends, so a model replaced by a reload
 * keeps serving the calls that already chose it. */
#include "registry.h"
#include "server.h"

#include <jansson.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batcher.h"
#include "cpus.h"
#include "dtypes.h"
#include "gen_sched.h"
#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "params_s2s.h"

#define RETIRE_TIMEOUT 120.0 /* seconds to wait for a retired model's calls */
#define PROGRESS_EVERY 3.0   /* seconds between a loading model's progress lines */

struct model {
    struct model_config cfg; /* own copies of the strings */
    atomic_int refs;
    _Atomic int state; /* enum model_state */
    char error[ERR_MSG_SIZE];
    char where[48]; /* where the path came from: "models[0].path" or "--model" */
    char dir[PATH_MAX]; /* the model directory: the path, or a model id's Hub snapshot */
    struct hub_watch *watch; /* a model id's: what its pull is fetching (NULL for a path) */
    struct pipeline *pipe; /* an encoder task's pipeline and its batcher, or */
    struct batcher *b;
    struct gen_model *gm; /* a generation task's model and scheduler */
    struct gen_sched *gs;
    enum task_id task; /* cfg.task resolved (registry_tasks) */
    struct metrics *metrics;
    double loaded_at; /* unix time */
};

/* ---- one model ---- */

/* threads 0 (a config cpus_share did not see): the usable cores shared among the workers. */
static int effective_threads(const struct model_config *cfg)
{
    if (cfg->threads > 0)
        return cfg->threads;
    int cpus = cpus_usable(), workers = cfg->workers > 0 ? cfg->workers : 1;
    return cpus / workers > 0 ? cpus / workers : 1;
}

static struct model *model_alloc(const struct model_config *cfg, struct metrics *metrics)
{
    int task = task_by_name(cfg->task); /* resolved once: the model keeps its id */
    struct model *m = task >= 0 ? calloc(1, sizeof *m) : NULL;
    if (!m)
        return NULL;
    m->cfg = *cfg;
    m->task = (enum task_id)task;
    m->cfg.name = strdup(cfg->name);
    m->cfg.path = strdup(cfg->path);
    m->cfg.revision = cfg->revision ? strdup(cfg->revision) : NULL;
    m->cfg.model_id = cfg->model_id ? strdup(cfg->model_id) : NULL;
    m->cfg.task = strdup(cfg->task);
    m->cfg.tool_parser = cfg->tool_parser ? strdup(cfg->tool_parser) : NULL;
    m->watch = cfg->model_id ? hub_watch_new() : NULL;
    if (!m->cfg.name || !m->cfg.path || !m->cfg.task || (cfg->revision && !m->cfg.revision) ||
        (cfg->model_id && (!m->cfg.model_id || !m->watch)) ||
        (cfg->tool_parser && !m->cfg.tool_parser)) {
        hub_watch_free(m->watch);
        free(m->cfg.tool_parser);
        free(m->cfg.name);
        free(m->cfg.path);
        free(m->cfg.revision);
        free(m->cfg.model_id);
        free(m->cfg.task);
        free(m);
        return NULL;
    }
    m->cfg.threads = effective_threads(cfg);
    atomic_init(&m->refs, 1);
    atomic_init(&m->state, MODEL_LOADING);
    m->metrics = metrics;
    metrics_model_ready(metrics, m->cfg.name, false);
    return m;
}

/* The model of entry i of cfg (a file's, or the --model of `serve --model DIR`). */
static struct model *model_new(const struct config *cfg, size_t i, struct metrics *metrics)
{
    struct model *m = model_alloc(&cfg->models[i], metrics);
    if (m && cfg->path)
        snprintf(m->where, sizeof m->where, "models[%zu].path", i);
    else if (m)
        snprintf(m->where, sizeof m->where, "--model");
    return m;
}

const struct config_tasks registry_tasks = {.id = task_by_name, .list = task_list};

/* A generation model: the decoder (or T5), tokenizer and templates, then its scheduler. */
static bool gen_load(struct model *m, struct err *e)
{
    if (gen_model_load_config(m->dir, &m->cfg, &m->gm, e) != 0)
        return false;
    if (gen_model_is_encoder_decoder(m->gm) && !task_is_seq2seq(m->task)) {
        err_set(e, ERR_INVALID,
                "model %s: %s is an encoder-decoder (T5): its task is text2text-generation, "
                "summarization or translation, not %s",
                m->cfg.name, m->dir, m->cfg.task);
        return false;
    }
    if (!gen_model_is_encoder_decoder(m->gm) && task_is_seq2seq(m->task)) {
        err_set(e, ERR_INVALID,
                "model %s: %s is a decoder-only model: %s needs an encoder-decoder; its task is "
                "text-generation",
                m->cfg.name, m->dir, m->cfg.task);
        return false;
    }
    struct s2s_task t; /* a translation pair the model does not have, a bad task entry */
    if (task_is_seq2seq(m->task) && s2s_task_init(m->gm, m->cfg.task, &t, e) != 0) {
        err_prefix(e, "model %s: ", m->cfg.name);
        return false;
    }
    m->gs = gen_sched_new(m->gm, &m->cfg, m->metrics, m->cfg.name, e);
    return m->gs != NULL;
}

/* A loading model's progress lines (the weights' hook), one every PROGRESS_EVERY seconds. */
struct load_progress {
    const char *name;
    double t0, last;
};

static void on_progress(void *arg, size_t taken, size_t total)
{
    struct load_progress *p = arg;
    double now = now_seconds();
    if (now - p->last < PROGRESS_EVERY)
        return;
    p->last = now;
    log_msg(LOG_INFO, "loading %s: %zu of %zu tensors (%.1f s)", p->name, taken, total,
            now - p->t0);
}

/* The line a load starts with: what is loaded from where (the path normalized), and how. */
static void log_load_start(const struct model *m, const char *real)
{
    struct log_field f[] = {
        LOG_S("task", m->cfg.task),
        LOG_S("path", real),
        LOG_S("dtype", config_dtype_name(m->cfg.dtype)),
        LOG_I("workers", m->cfg.workers),
        LOG_I("threads", m->cfg.threads),
    };
    char msg[128];
    snprintf(msg, sizeof msg, "model %s loading", m->cfg.name);
    log_fields(LOG_INFO, msg, f, sizeof f / sizeof f[0]);
}

/* MODEL_FAILED with the reason, logged. */
static void model_fail(struct model *m, const struct err *e)
{
    snprintf(m->error, sizeof m->error, "%s", e->msg);
    atomic_store(&m->state, MODEL_FAILED);
    log_msg(LOG_ERROR, "model %s failed to load: %s", m->cfg.name, e->msg);
}

/* A line of the Hub client (what is fetched, progress), as the model's. */
static void on_hub_line(void *arg, const char *line)
{
    const struct model *m = arg;
    log_msg(LOG_INFO, "model %s: %s", m->cfg.name, line);
}

/* m->dir: the path, or the model id the config found in it (config.h: model_id) fetched
 * into the Hub cache (the model stays loading, so /ready answers 503, while it is fetched). */
static int model_fetch(struct model *m, struct err *e)
{
    if (!m->cfg.model_id) {
        snprintf(m->dir, sizeof m->dir, "%s", m->cfg.path);
        return 0;
    }
    struct hub_ref ref;
    int rc = hub_parse_ref(m->cfg.model_id, m->cfg.revision, &ref, e);
    if (rc)
        return err_prefix(e, "%s: ", m->where);
    log_msg(LOG_INFO, "model %s fetching %s@%s from the Hub", m->cfg.name, ref.repo,
            ref.revision);
    struct hub_opts o = {
        .progress = HUB_PROGRESS_LINES, .log = on_hub_line, .log_arg = m, .watch = m->watch};
    return hub_snapshot(&ref, &o, m->dir, sizeof m->dir, e);
}

/* Opens the pipeline and starts the workers: MODEL_READY, or MODEL_FAILED with the reason. */
static void model_load(struct model *m)
{
    double t0 = now_seconds();
    struct err e = {0};
    bool ok;
    char real[PATH_MAX];
    if (model_fetch(m, &e) != 0) {
        model_fail(m, &e);
        return;
    }
    if (!realpath(m->dir, real))
        snprintf(real, sizeof real, "%s", m->dir);
    log_load_start(m, real);
    struct load_progress progress = {.name = m->cfg.name, .t0 = t0, .last = t0};
    engine_set_load_progress(on_progress, &progress);
    if (engine_check_dir(m->dir, m->where, &e) != 0) {
        ok = false;
    } else if (model_is_generation(m)) {
        ok = gen_load(m, &e);
    } else {
        if (pipeline_open_task(m->dir, m->task, dtype_of_config(m->cfg.dtype),
                               m->cfg.threads, &m->pipe, &e) == 0) {
            pipeline_set_batch_tokens(m->pipe, m->cfg.batching.max_batch_tokens);
            struct pipeline_limits lim = model_limits(m);
            pipeline_set_limits(m->pipe, &lim);
            m->b = batcher_new(m->pipe, &m->cfg, m->metrics, m->cfg.name, &e);
        }
        ok = m->b != NULL;
    }
    engine_set_load_progress(NULL, NULL);
    if (!ok) {
        model_fail(m, &e);
        return;
    }
    m->loaded_at = (double)time(NULL);
    atomic_store(&m->state, MODEL_READY);
    metrics_model_ready(m->metrics, m->cfg.name, true);
    log_msg(LOG_INFO, "model %s ready (%s, %s, %s, %d worker%s) in %.2f s", m->cfg.name,
            task_name(m->task), real, config_dtype_name(m->cfg.dtype), m->cfg.workers,
            m->cfg.workers == 1 ? "" : "s", now_seconds() - t0);
}

void model_unref(struct model *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    batcher_free(m->b);
    pipeline_close(m->pipe);
    if (m->gs)
        gen_sched_free(m->gs);
    if (m->gm)
        gen_model_free(m->gm);
    free(m->cfg.name);
    free(m->cfg.path);
    free(m->cfg.revision);
    free(m->cfg.model_id);
    free(m->cfg.task);
    free(m->cfg.tool_parser);
    hub_watch_free(m->watch);
    free(m);
}

/* Waits (bounded) until the caller's reference is the last one, then stops and drops it. */
static void model_retire(struct model *m)
{
    double t0 = now_seconds();
    while (atomic_load(&m->refs) > 1 && now_seconds() - t0 < RETIRE_TIMEOUT)
        usleep(10000);
    if (atomic_load(&m->refs) > 1)
        log_msg(LOG_WARN, "model %s: retiring with calls still holding it", m->cfg.name);
    metrics_model_forget(m->metrics, m->cfg.name);
    model_unref(m);
}

const char *model_name(const struct model *m)
{
    return m->cfg.name;
}
enum model_state model_state(const struct model *m)
{
    return (enum model_state)atomic_load(&m->state);
}
const struct pipeline *model_pipeline(const struct model *m)
{
    return model_state(m) == MODEL_READY ? m->pipe : NULL;
}
struct pipeline_limits model_limits(const struct model *m)
{
    const struct limits_config *l = &m->cfg.limits;
    return (struct pipeline_limits){
        .max_inputs = l->max_client_batch_size,
        .max_tokens = l->max_request_tokens ? l->max_request_tokens
                                            : m->cfg.batching.max_batch_tokens,
        .max_results = l->max_results,
    };
}

const struct model_config *model_config(const struct model *m)
{
    return &m->cfg;
}
double model_loaded_at(const struct model *m)
{
    return m->loaded_at;
}

enum task_id model_task(const struct model *m)
{
    return m->task;
}
bool model_is_generation(const struct model *m)
{
    return task_kind(m->task) == TASK_KIND_GENERATOR;
}
struct gen_sched *model_gen_sched(const struct model *m)
{
    return model_state(m) == MODEL_READY ? m->gs : NULL;
}
const struct gen_model *model_gen_model(const struct model *m)
{
    return model_state(m) == MODEL_READY ? m->gm : NULL;
}
const struct tokenizer *model_tokenizer(const struct model *m)
{
    if (model_state(m) != MODEL_READY)
        return NULL;
    return m->gm ? gen_model_tokenizer(m->gm) : pipeline_tokenizer(m->pipe);
}

size_t model_gen_max_total(const struct model *m)
{
    return m->gm ? gen_model_max_total_tokens(m->gm, &m->cfg) : 0;
}

size_t model_gen_max_input(const struct model *m)
{
    size_t total = model_gen_max_total(m);
    size_t in = m->cfg.max_input_tokens ? m->cfg.max_input_tokens : total - 1;
    return in < total ? in : total - 1;
}

int model_push(struct model *m, struct job *j, struct err *e)
{
    if (model_state(m) != MODEL_READY)
        return err_set(e, ERR_UNAVAILABLE, "model %s is not loaded", m->cfg.name);
    return batcher_push(m->b, j, e);
}

/* ---- lookups ---- */

struct model *server_model(struct server *s, const char *name)
{
    struct registry *r = server_registry(s);
    struct model *found = NULL;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n && !found; i++)
        if (strcmp(r->v[i]->cfg.name, name) == 0) {
            found = r->v[i];
            atomic_fetch_add(&found->refs, 1);
        }
    pthread_mutex_unlock(&r->mu);
    return found;
}

static struct model **registry_models(struct registry *r, size_t *n)
{
    pthread_mutex_lock(&r->mu);
    struct model **v = malloc((r->n ? r->n : 1) * sizeof *v);
    *n = 0;
    for (size_t i = 0; v && i < r->n; i++) {
        v[i] = r->v[i];
        atomic_fetch_add(&v[i]->refs, 1);
        *n = i + 1;
    }
    pthread_mutex_unlock(&r->mu);
    return v;
}

struct model **server_models(struct server *s, size_t *n)
{
    return registry_models(server_registry(s), n);
}

static bool serves(const struct model *m, unsigned tasks)
{
    return (tasks & TASK_BIT(m->task)) != 0;
}

/* The model name names, else the first configured one serving one of tasks, whatever its
 * state, with a reference for the caller. */
static int find_model(struct server *s, const char *name, unsigned tasks, struct model **out,
                      struct err *e)
{
    struct model *m = NULL;
    if (name) {
        if (!(m = server_model(s, name)))
            return err_set(e, ERR_NOT_FOUND, "model '%s' not found", name);
        if (!serves(m, tasks)) {
            err_set(e, ERR_INVALID, "model '%s' serves %s, which this route does not take", name,
                    m->cfg.task);
            model_unref(m);
            return ERR_INVALID;
        }
    } else {
        size_t n;
        struct model **all = server_models(s, &n);
        for (size_t i = 0; i < n; i++) {
            if (!m && serves(all[i], tasks))
                m = all[i];
            else
                model_unref(all[i]);
        }
        free(all);
        if (!m)
            return err_set(e, ERR_NOT_FOUND, "no model of a task this route takes is configured");
    }
    *out = m;
    return 0;
}

int registry_pick(struct server *s, const char *name, unsigned tasks, struct model **out,
                  struct err *e)
{
    struct model *m = NULL;
    *out = NULL;
    int rc = find_model(s, name, tasks, &m, e);
    if (rc)
        return rc;
    if (model_state(m) == MODEL_LOADING)
        rc = err_set(e, ERR_UNAVAILABLE, "Model %s is currently loading", m->cfg.name);
    else if (model_state(m) == MODEL_FAILED)
        rc = err_set(e, ERR_UNAVAILABLE, "model %s failed to load: %s", m->cfg.name, m->error);
    if (rc)
        model_unref(m);
    else
        *out = m;
    return rc;
}

/* {"file", "bytes", "total"} per file being downloaded */
static json_t *fetching_files(const struct hub_status *st)
{
    json_t *files = json_array();
    for (size_t i = 0; files && i < st->n; i++)
        json_array_append_new(files, json_pack("{s:s, s:I, s:I}", "file", st->files[i].name,
                                               "bytes", (json_int_t)st->files[i].done, "total",
                                               (json_int_t)st->files[i].total));
    return files;
}

json_t *registry_fetching(struct server *s, const char *name, unsigned tasks)
{
    struct model *m = NULL;
    struct err e = {0};
    if (find_model(s, name, tasks, &m, &e) != 0)
        return NULL;
    struct hub_status *st = malloc(sizeof *st);
    json_t *j = NULL;
    if (st && m->watch && model_state(m) == MODEL_LOADING && hub_watch_get(m->watch, st))
        j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "model", m->cfg.name, "repo",
                      st->repo, "revision", st->revision, "commit", st->commit, "files_done",
                      (json_int_t)st->files_done, "files_total", (json_int_t)st->files_total,
                      "files", fetching_files(st));
    free(st);
    model_unref(m);
    return j;
}

/* ---- the registry ---- */

void registry_init(struct registry *r)
{
    pthread_mutex_init(&r->mu, NULL);
    r->v = NULL;
    r->n = 0;
    r->loaded = false;
}

static struct model *find(struct model **v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && strcmp(v[i]->cfg.name, name) == 0)
            return v[i];
    return NULL;
}

/* Publishes v (taking its references) and returns the previous set. */
static struct model **publish(struct registry *r, struct model **v, size_t n, size_t *old_n)
{
    pthread_mutex_lock(&r->mu);
    struct model **old = r->v;
    *old_n = r->n;
    r->v = v;
    r->n = n;
    pthread_mutex_unlock(&r->mu);
    return old;
}

/* The first load: every model published at once in the loading state, then loaded (up to
 * the first that fails unless server.allow_partial_start: the daemon then stops). Returns
 * whether every one is ready. */
static bool apply_initial(struct registry *r, const struct config *cfg, struct metrics *metrics,
                          struct model **v)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_models; i++)
        if ((v[n] = model_new(cfg, i, metrics)))
            n++;
    size_t old_n;
    free(publish(r, v, n, &old_n));
    bool all = n == cfg->n_models;
    for (size_t i = 0; i < n && (all || cfg->server.allow_partial_start); i++) {
        model_load(v[i]);
        all &= model_state(v[i]) == MODEL_READY;
    }
    pthread_mutex_lock(&r->mu);
    r->loaded = true;
    pthread_mutex_unlock(&r->mu);
    return all;
}

/* Drops a set built by load_set that is not to be published, and puts the ready gauges back
 * as the current set cur has them (a model loading under a served name had set its gauge to
 * 0; a new name's gauge goes). */
static void discard_set(struct model **v, size_t n, struct model **cur, size_t cur_n,
                        struct metrics *metrics)
{
    for (size_t i = 0; i < n; i++) {
        if (!find(cur, cur_n, v[i]->cfg.name))
            metrics_model_forget(metrics, v[i]->cfg.name);
        model_unref(v[i]);
    }
    for (size_t i = 0; i < cur_n; i++)
        metrics_model_ready(metrics, cur[i]->cfg.name, model_state(cur[i]) == MODEL_READY);
}

/* The set cfg asks for, into v: the models of cur whose entry did not change and are ready
 * (one more reference each), the others loaded. Returns how many, or -1 when one fails to
 * load (logged; v then holds nothing). */
static long load_set(const struct config *cfg, struct model **cur, size_t cur_n,
                     struct metrics *metrics, struct model **v)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_models; i++) {
        const struct model_config *mc = &cfg->models[i];
        struct model *old = find(cur, cur_n, mc->name);
        struct model_config resolved = *mc;
        resolved.threads = effective_threads(mc);
        if (old && model_state(old) == MODEL_READY && model_config_same(&old->cfg, &resolved)) {
            atomic_fetch_add(&old->refs, 1);
            v[n++] = old;
            continue;
        }
        struct model *m = model_new(cfg, i, metrics);
        if (m)
            model_load(m);
        if (m && model_state(m) == MODEL_READY) {
            v[n++] = m;
            continue;
        }
        log_msg(LOG_ERROR, "reload abandoned: model %s %s; the models stay as they were",
                mc->name, m ? "failed to load" : "could not be allocated");
        if (m)
            v[n++] = m; /* discarded with the others */
        discard_set(v, n, cur, cur_n, metrics);
        return -1;
    }
    return (long)n;
}

/* Publishes v (n models) in place of the current set; retires the models it drops. */
static void swap_in(struct registry *r, struct model **v, size_t n, struct metrics *metrics)
{
    size_t old_n;
    struct model **old = publish(r, v, n, &old_n);
    for (size_t i = 0; i < old_n; i++) {
        bool kept = false;
        for (size_t k = 0; k < n; k++)
            kept |= v[k] == old[i];
        if (kept)
            model_unref(old[i]);
        else
            model_retire(old[i]);
    }
    free(old);
    /* a kept model may have had its ready gauge dropped by the retirement of a namesake */
    for (size_t i = 0; i < n; i++)
        metrics_model_ready(metrics, v[i]->cfg.name, model_state(v[i]) == MODEL_READY);
}

/* Appends name to a comma-separated list (cap bytes). */
static void list_add(char *list, size_t cap, const char *name)
{
    size_t n = strlen(list);
    snprintf(list + n, cap - n, "%s%s", n ? "," : "", name);
}

/* The reload's changes, one line: the models added, removed, replaced (loaded again: their
 * entry changed, or the old one was not ready) and kept, cur being the set before and v the
 * set after. */
static void log_changes(struct model **cur, size_t cur_n, struct model **v, size_t n)
{
    size_t cap = (cur_n + n + 1) * 66; /* names are at most 64 bytes, then a comma */
    char *lists = calloc(4, cap);
    if (!lists)
        return;
    char *added = lists, *removed = lists + cap, *replaced = lists + 2 * cap;
    char *kept = lists + 3 * cap;
    for (size_t i = 0; i < n; i++) {
        struct model *old = find(cur, cur_n, v[i]->cfg.name);
        list_add(!old ? added : old == v[i] ? kept : replaced, cap, v[i]->cfg.name);
    }
    for (size_t i = 0; i < cur_n; i++)
        if (!find(v, n, cur[i]->cfg.name))
            list_add(removed, cap, cur[i]->cfg.name);
    struct log_field f[] = {
        LOG_S("added", *added ? added : NULL),
        LOG_S("removed", *removed ? removed : NULL),
        LOG_S("replaced", *replaced ? replaced : NULL),
        LOG_S("kept", *kept ? kept : NULL),
    };
    log_fields(LOG_INFO, "models changed", f, sizeof f / sizeof f[0]);
    free(lists);
}

bool registry_apply(struct registry *r, const struct config *cfg, struct metrics *metrics,
                    bool initial)
{
    struct model **v = calloc(cfg->n_models ? cfg->n_models : 1, sizeof *v);
    if (!v) {
        log_msg(LOG_ERROR, "out of memory while loading the config");
        return false;
    }
    if (initial)
        return apply_initial(r, cfg, metrics, v);
    size_t cur_n;
    struct model **cur = registry_models(r, &cur_n);
    long n = load_set(cfg, cur, cur_n, metrics, v);
    if (n >= 0)
        log_changes(cur, cur_n, v, (size_t)n);
    for (size_t i = 0; i < cur_n; i++)
        model_unref(cur[i]);
    free(cur);
    if (n < 0) {
        free(v);
        return false;
    }
    swap_in(r, v, (size_t)n, metrics);
    return true;
}

bool registry_ready(struct registry *r)
{
    pthread_mutex_lock(&r->mu);
    bool ok = r->loaded;
    for (size_t i = 0; ok && i < r->n; i++)
        ok = model_state(r->v[i]) == MODEL_READY;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

void registry_abort(struct registry *r)
{
    size_t n;
    struct model **v = registry_models(r, &n);
    for (size_t i = 0; v && i < n; i++) {
        if (v[i]->b)
            batcher_abort(v[i]->b);
        if (v[i]->gs)
            gen_sched_abort(v[i]->gs);
        model_unref(v[i]);
    }
    free(v);
}

void registry_clear(struct registry *r)
{
    size_t old_n;
    struct model **old = publish(r, NULL, 0, &old_n);
    for (size_t i = 0; i < old_n; i++)
        model_retire(old[i]);
    free(old);
}
