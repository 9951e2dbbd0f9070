/* models: the registry of configured models (serve.c's side of it; the route handlers use
 * the accessors in serve.h). Owns loading a model (pipeline + batcher), publishing the set of
 * models, and retiring replaced or removed ones once no call holds them any more. */
#ifndef INFERD_MODELS_H
#define INFERD_MODELS_H

#include <pthread.h>
#include <stdbool.h>

#include "serve.h"

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

/* The server's registry (serve.c). */
struct registry *server_registry(struct server *s);

#endif
