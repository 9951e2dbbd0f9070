/* api_hf: the Hugging Face Inference API route, POST /models/{name} with
 * {"inputs", "parameters", "options"}: every encoder task of the named model, answered with
 * exactly what transformers.pipeline(task)(inputs, **parameters) returns (see
 * engine/pipelines/runner.h for the input forms each task takes). options.use_cache and
 * options.wait_for_model are accepted and have nothing to change here: results are never
 * cached and a loading model answers 503 at once. */
#include "serve.h"

static json_t *respond_pipeline(struct call *c, json_t *result, int *status, struct err *e)
{
    (void)c;
    (void)status;
    (void)e;
    return result;
}

static bool check_options(struct call *c, const json_t *options)
{
    if (!options || json_is_null(options))
        return true;
    if (!json_is_object(options)) {
        call_error(c, 422, "options", "`options` must be an object");
        return false;
    }
    static const char *const flags[] = {"use_cache", "wait_for_model"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const json_t *v = json_object_get(options, flags[i]);
        if (v && !json_is_boolean(v) && !json_is_null(v)) {
            call_error(c, 422, "options", "`options.%s` must be true or false", flags[i]);
            return false;
        }
    }
    return true;
}

void route_hf_models(struct call *c)
{
    const json_t *body = call_body(c);
    const json_t *inputs = json_object_get(body, "inputs");
    const json_t *parameters = json_object_get(body, "parameters");
    if (!inputs || json_is_null(inputs)) {
        call_error(c, 422, "inputs", "`inputs` is required");
        return;
    }
    if (parameters && !json_is_object(parameters) && !json_is_null(parameters)) {
        call_error(c, 422, "parameters", "`parameters` must be an object");
        return;
    }
    if (!check_options(c, json_object_get(body, "options")))
        return;
    struct model *m = server_model_for(call_server(c), c, call_arg(c), ~0u, NULL);
    if (!m)
        return;
    call_submit(c, m, inputs, parameters, respond_pipeline);
}
