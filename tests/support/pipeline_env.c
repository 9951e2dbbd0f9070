/* pipeline_env: see pipeline_env.h. */
#include "pipeline_env.h"

#include <check.h>

#include "support/support.h"

void env_open_dt(struct env *v, const char *model, const char *task, enum dtype_compute dt)
{
    struct err e = {0};
    ck_assert_msg(pipeline_worker_new(2, &v->w, &e) == 0, "%s", e.msg);
    ck_assert_msg(pipeline_open(fixture_model(model), task, dt, 2, &v->p, &e) == 0, "%s %s: %s",
                  model, task, e.msg);
}

void env_close(struct env *v)
{
    pipeline_close(v->p);
    pipeline_worker_free(v->w);
}

json_t *run_ok(const struct env *v, const json_t *inputs, const json_t *params, const char *what)
{
    json_t *out = NULL;
    struct err e = {0};
    int rc = pipeline_run(v->p, v->w, inputs, params, &out, &e);
    ck_assert_msg(rc == 0, "%s: %s (%s)", what, e.msg, err_kind_name(rc));
    return out;
}

size_t json_flatten(const json_t *j, float *out, size_t cap)
{
    if (json_is_number(j)) {
        if (cap)
            out[0] = (float)json_number_value(j);
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(j); i++)
        n += json_flatten(json_array_get(j, i), out ? out + n : NULL, cap > n ? cap - n : 0);
    return n;
}
