/* schema_regex: a JSON Schema -> the regular expression (engine/generate/grammar.h's syntax)
 * of the compact JSON texts that validate against it; the subset and what is generated are in
 * schema_regex.c's header. */
#ifndef INFERD_SCHEMA_REGEX_H
#define INFERD_SCHEMA_REGEX_H

#include <jansson.h>

#include "err.h"

/* *out malloc'ed. ERR_INVALID naming the keyword for an unsupported or malformed schema (or
 * one nothing satisfies); ERR_NOMEM. */
int schema_to_regex(const json_t *schema, char **out, struct err *e);
/* Any JSON object (OpenAI's response_format json_object). */
int schema_any_object_regex(char **out, struct err *e);

#endif
