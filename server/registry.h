/* registry: the models the daemon serves (registry.c). Route handlers pick one
 * (registry_pick, call_use_model: the call holds it to its end) and read it through the
 * model_* accessors; serve.c loads and reloads the set (registry_apply: each model's
 * pipeline and batcher, or generation model and scheduler; all or nothing on a reload),
 * publishes it, and retires replaced or removed models once no call holds them any more. */
#ifndef INFERD_REGISTRY_H
#define INFERD_REGISTRY_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "engine.h"
#include "err.h"

struct call;
struct server;
struct metrics;
struct gen_sched;
struct gen_model;
struct tokenizer;

/* ---- the served models (what handlers see) ---- */

enum model_state { MODEL_LOADING, MODEL_READY, MODEL_FAILED };

/* The model called name, with a reference the caller drops with model_unref; NULL when no
 * model has that name. */
struct model *server_model(struct server *s, const char *name);
/* The task names a config may use: the engine's task table (task_by_name, task_list), for
 * config_load and config_single. */
extern const struct config_tasks registry_tasks;
/* For a route that serves some tasks (tasks: a set of TASK_BIT(enum task_id)): the
 * model called name, else (name NULL) the first configured model of one of the tasks, with a
 * reference for the caller in *out. Errors, no HTTP: ERR_NOT_FOUND (no such model, none of
 * that task), ERR_INVALID (wrong task), ERR_UNAVAILABLE (still loading, or failed). */
int registry_pick(struct server *s, const char *name, unsigned tasks, struct model **out,
                  struct err *e);
/* registry_pick for a call: the call holds the model from here to its end (handlers never
 * drop it); NULL when there is none to use, the call answered (404, 422, 503; param names the
 * request field that named the model, for OpenAI errors). */
struct model *call_use_model(struct call *c, const char *name, unsigned tasks, const char *param);
void model_unref(struct model *m);
/* What the model registry_pick would take (whatever its state) is fetching from the Hub
 * while it loads: {"model", "repo", "revision", "commit", "files_done", "files_total",
 * "files": [{"file", "bytes", "total"}]} (the files being downloaded now); NULL when it is
 * not fetching (a path, fetched already, offline from the cache, no such model). */
json_t *registry_fetching(struct server *s, const char *name, unsigned tasks);

/* Its task, resolved once from its config's name. */
enum task_id model_task(const struct model *m);
/* A model of a generator task (text-generation, text2text-generation): a gen_sched serves
 * it instead of a pipeline. */
bool model_is_generation(const struct model *m);
/* Its scheduler and loaded model (NULL unless a generation model in MODEL_READY). */
struct gen_sched *model_gen_sched(const struct model *m);
const struct gen_model *model_gen_model(const struct model *m);
/* The tokenizer of either kind of model (NULL unless MODEL_READY). */
const struct tokenizer *model_tokenizer(const struct model *m);
/* A ready generation model's limits, the defaults resolved: max_total_tokens (prompt + new
 * tokens: gen_model_max_total_tokens) and max_input_tokens (max_input_tokens, else
 * max_total - 1). */
size_t model_gen_max_total(const struct model *m);
size_t model_gen_max_input(const struct model *m);
/* Queues a prepared job on m's batcher (ERR_BUSY when full, ERR_UNAVAILABLE when m is not
 * serving). */
struct job;
int model_push(struct model *m, struct job *j, struct err *e);

const char *model_name(const struct model *m);
enum model_state model_state(const struct model *m);
/* NULL unless MODEL_READY. */
const struct pipeline *model_pipeline(const struct model *m);
const struct model_config *model_config(const struct model *m);
/* Its limits.* with the defaults resolved (what pipeline_prepare enforces). */
struct pipeline_limits model_limits(const struct model *m);
/* Unix time the model finished loading (0 before). */
double model_loaded_at(const struct model *m);
/* Every model's reference, in config order (call model_unref on each, free the array). */
struct model **server_models(struct server *s, size_t *n);

/* ---- the set (serve.c's side) ---- */

struct registry {
    pthread_mutex_t mu;
    struct model **v; /* published models, config order; each holds one reference */
    size_t n;
    bool loaded; /* the first load finished */
};

void registry_init(struct registry *r);
/* Loads cfg's models. The first time (initial true) every model is published at once in the
 * loading state, then loaded one by one. Afterwards (a reload) the change is all or nothing:
 * models whose entry did not change are kept, the others loaded; when every one is ready
 * the new set is published at once and models no longer in it are retired (they finish the
 * calls holding them, then stop); when one fails to load, the loaded ones are dropped and
 * the current set stays as it was. Messages go to stderr. Returns whether the set was
 * applied; for the initial load, whether every model loaded (all are published either way). */
bool registry_apply(struct registry *r, const struct config *cfg, struct metrics *metrics,
                    bool initial);
/* Every model loaded and none failed. */
bool registry_ready(struct registry *r);
/* Ends the work of every published model now (batcher_abort, gen_sched_abort): queued and
 * running requests are answered at once. For a drain that ran out of time. */
void registry_abort(struct registry *r);
/* Retires every model (waits for their calls) and empties the registry. */
void registry_clear(struct registry *r);

#endif
