/* constraint: the output constraints a generation request may carry (OpenAI response_format,
 * TGI parameters.grammar; tool_choice "required" / a named function through tool_grammar.c)
 * turned into the engine's compiled grammar (engine/generate/grammar.h), through a bounded
 * cache keyed by the hash of the constraint's canonical text, so a schema is compiled once
 * however many requests use it. Errors are ERR_GEN_SCHEMA (422 in every dialect) with a
 * message naming what is wrong (the unsupported keyword, the regex position). */
#ifndef INFERD_CONSTRAINT_H
#define INFERD_CONSTRAINT_H

#include <jansson.h>

#include "engine.h"

#define CONSTRAINT_CACHE_SIZE 64 /* compiled grammars kept (least recently used goes) */

/* A regex (the whole output matches it). *out: a reference the caller owns. */
int constraint_regex(const char *re, size_t len, struct grammar **out, struct err *e);
/* A JSON schema (schema_regex.c's subset); NULL: any JSON object. */
int constraint_schema(const json_t *schema, struct grammar **out, struct err *e);
/* Drops every cached grammar (tests, shutdown). */
void constraint_cache_clear(void);

#endif
