/* engine: the engine-wide functions of the facade (engine.h): what the CPU and oneDNN offer,
 * a model directory's first check, load progress. Each forwards to the part that owns it. */
#include "engine.h"

#include "loader/files.h"
#include "models/weights.h"
#include "ops/dnnl.h"

const char *engine_describe(void)
{
    return dnn_describe();
}

void engine_onednn_version(int *major, int *minor, int *patch)
{
    const dnnl_version_t *v = dnnl_version();
    *major = v->major;
    *minor = v->minor;
    *patch = v->patch;
}

const char *engine_runtime_name(void)
{
    return dnn_runtime_name();
}

const char *engine_isa_name(void)
{
    return dnn_isa_name();
}

bool engine_dtype_native(enum dtype_compute dt)
{
    return dnn_dtype_native(dt);
}

int engine_check_dir(const char *dir, const char *label, struct err *e)
{
    return files_check_dir(dir, label, e);
}

void engine_set_load_progress(engine_progress_fn *fn, void *arg)
{
    weights_set_progress(fn, arg);
}
