/* routes: the route handlers of the API dialects (api_*.c) that router.c's table names. */
#ifndef INFERD_ROUTES_H
#define INFERD_ROUTES_H

struct call;
struct model;

typedef void (*route_fn)(struct call *c);

void route_health(struct call *c);
void route_ready(struct call *c);
void route_metrics(struct call *c);
void route_hf_models(struct call *c); /* POST /models/{name} */
void route_tei_embed(struct call *c);
void route_tei_predict(struct call *c);
void route_tei_rerank(struct call *c);
void route_tei_tokenize(struct call *c);
void route_tei_decode(struct call *c);
void route_tei_info(struct call *c);
void route_openai_embeddings(struct call *c);
void route_openai_models(struct call *c);
/* The OpenAI "model" field (api_openai.c): the model it names (404 model_not_found when none),
 * else the first of tasks (a registry_pick mask); NULL when answered. */
struct model *openai_field_model(struct call *c, unsigned tasks);
void route_tgi_generate(struct call *c);        /* POST /generate */
void route_tgi_generate_stream(struct call *c); /* POST /generate_stream */
void route_tgi_compat(struct call *c);          /* POST / (stream: /generate_stream) */
void route_openai_completions(struct call *c);  /* POST /v1/completions */
void route_openai_chat(struct call *c);         /* POST /v1/chat/completions */

#endif
