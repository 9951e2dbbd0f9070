/* api_tei: the request fields the TEI route files (api_tei.c: the queued routes /embed,
 * /predict, /rerank; api_tei_sync.c: /tokenize, /decode, /info, answered at once) read alike.
 * Each answers the call with a 422 naming the field and returns false / NULL when invalid. */
#ifndef INFERD_API_TEI_H
#define INFERD_API_TEI_H

#include <jansson.h>
#include <stdbool.h>

#include "handler.h"
#include "registry.h"

#define TEI_ALL_TASKS TASKS_ALL

/* body[key] as a boolean; absent or null gives def. */
bool tei_field_bool(struct call *c, const char *key, bool def, bool *out);
/* The model named by the body's "model", else the first one of tasks (NULL: answered, 404,
 * 422 or 503 included). */
struct model *tei_field_model(struct call *c, unsigned tasks);
/* TEI's truncation_direction (only "right") and prompt_name: a string or null when prompts
 * (the route passes it on: /embed), else unsupported unless null. */
bool tei_fields_unsupported(struct call *c, bool prompts);
/* "inputs": "text" | ["a", "b"] as a new list of strings (token ids refused); empty texts
 * are refused unless allow_empty. */
json_t *tei_field_texts(struct call *c, bool allow_empty);

#endif
