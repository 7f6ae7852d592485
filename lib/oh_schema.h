/* Validation of JSON values against the subset of JSON Schema that
 * openapi.yaml uses: type (with OpenAPI's nullable), enum, minimum, maximum,
 * minLength, maxLength (in characters), pattern, required, properties,
 * additionalProperties (false or a schema), items, minItems, maxItems.
 * $refs are resolved by the generator before schemas reach this module. */
#ifndef OH_SCHEMA_H
#define OH_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
	char field[128];   /* path of the offending value: "Reason", "Items[2].Name" */
	char message[256]; /* what is wrong, for ErrorMessage */
} oh_schema_error_t;

/* Validates VALUE (borrowed) against SCHEMA (borrowed).  ROOT names the value
 * in messages ("" for a request body, or a parameter name).  Returns true
 * when valid; otherwise fills *ERR with the first violation. */
bool oh_schema_validate(const json_t *schema, const json_t *value, const char *root,
                        oh_schema_error_t *err);

/* The nesting depth of VALUE (a scalar is 1). */
size_t oh_json_depth(const json_t *value);

#endif
