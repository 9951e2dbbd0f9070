/* json_check: an independent JSON Schema validator for the structured-output tests, written
 * from the JSON Schema validation specification (draft 2020-12) and sharing nothing with the
 * compiler under test (server/schema_regex.c, engine/generate/grammar.c): it walks a parsed
 * instance (jansson) against the schema, with PCRE2 for `pattern` and the formats. Keywords:
 * type, enum, const, properties, required, additionalProperties, items, minItems, maxItems,
 * minLength, maxLength (code points), pattern (searched), format (date, time, date-time,
 * uuid), minimum, maximum, exclusiveMinimum, exclusiveMaximum, anyOf, oneOf (exactly one),
 * allOf, $ref ("#", "#/$defs/X", "#/definitions/X"). */
#ifndef INFERD_TEST_JSON_CHECK_H
#define INFERD_TEST_JSON_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Whether instance validates against schema (root: the document $refs resolve in); when not,
 * why says where. */
bool json_check(const json_t *root, const json_t *schema, const json_t *instance, char *why,
                size_t why_size);

#endif
