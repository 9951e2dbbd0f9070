/* pipeline_env: an encoder pipeline opened on a fixture model with its worker (2 threads), for
 * the parity suites that run pipelines (pipelines_e2e, modernbert, decoder_embed), and the
 * flattening of nested JSON number lists their references are written in. */
#ifndef INFERD_TEST_PIPELINE_ENV_H
#define INFERD_TEST_PIPELINE_ENV_H

#include <jansson.h>
#include <stddef.h>

#include "engine.h"

struct env {
    struct pipeline_worker *w;
    struct pipeline *p;
};

/* Opens fixture_model(model) for task at dt; fails the test when it cannot. */
void env_open_dt(struct env *v, const char *model, const char *task, enum dtype_compute dt);
void env_close(struct env *v);
/* pipeline_run that fails the test (naming what) unless it succeeds; a new reference. */
json_t *run_ok(const struct env *v, const json_t *inputs, const json_t *params, const char *what);

/* Flattens nested JSON arrays of numbers into out (at most cap); returns the count. */
size_t json_flatten(const json_t *j, float *out, size_t cap);

#endif
