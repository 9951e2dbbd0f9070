/* tool_grammar: OpenAI tool_choice "required" and a named function enforced by constrained
 * decoding. The call the parser of the model's family reads (tool_parse.h: force_open,
 * args_key, force_close) is built as one regex over the decoded text: for "required" an
 * alternative per tool, for a named function that tool alone; each call's arguments are its
 * `parameters` schema compiled by schema_regex.c (any JSON object when it has none), so the
 * answer is always exactly one call that parses, of a defined tool, with valid arguments.
 * The grammar goes through constraint.c's cache (keyed by the regex). */
#ifndef INFERD_TOOL_GRAMMAR_H
#define INFERD_TOOL_GRAMMAR_H

#include "constraint.h"
#include "tool_calls.h"

/* The grammar forcing r's call (r->tools still held, r->parser picked, r->choice required or
 * named). ERR_GEN_SCHEMA naming the tool for parameters the schema compiler does not support
 * ("tools[1].function.parameters: JSON schema keyword `minProperties` is not supported");
 * ERR_NOMEM. *out: a reference the caller owns. */
int tool_grammar(const struct tool_req *r, struct grammar **out, struct err *e);

#endif
