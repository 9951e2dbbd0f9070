/* api_misc: the operational routes: /health (the process is alive), /ready (every model
 * loaded and not draining: what a load balancer or Kubernetes readiness probe asks) and
 * /metrics (Prometheus text). */
#include <stdlib.h>

#include "metrics.h"
#include "handler.h"
#include "registry.h"
#include "server.h"
#include "routes.h"

void route_health(struct call *c)
{
    call_reply(c, 200, json_pack("{s:s}", "status", "ok"));
}

void route_ready(struct call *c)
{
    struct server *s = call_server(c);
    if (server_ready(s)) {
        call_reply(c, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    if (server_draining(s)) {
        call_error(c, ERR_UNAVAILABLE, NULL, "draining: the server is shutting down");
        return;
    }
    /* name what is missing: loading or failed models */
    size_t n;
    struct model **all = server_models(s, &n);
    json_t *loading = json_array(), *failed = json_array();
    for (size_t i = 0; i < n; i++) {
        enum model_state st = model_state(all[i]);
        if (st != MODEL_READY)
            json_array_append_new(st == MODEL_LOADING ? loading : failed,
                                  json_string(model_name(all[i])));
        model_unref(all[i]);
    }
    free(all);
    json_t *body = json_pack("{s:s, s:s, s:o, s:o}", "error", "not ready", "error_type",
                             "Unhealthy", "loading", loading, "failed", failed);
    call_error_body(c, ERR_UNAVAILABLE, body);
}

void route_metrics(struct call *c)
{
    size_t len = 0;
    char *text = metrics_render(server_metrics(call_server(c)), &len);
    if (!text) {
        call_error(c, ERR_NOMEM, NULL, "out of memory");
        return;
    }
    call_reply_text(c, 200, text, len, "text/plain; version=0.0.4; charset=utf-8");
}
