/* Validation of JSON values against the subset of JSON Schema (OpenAPI 3.0
 * flavour) that openapi.yaml uses.  Assertions: type (a name or a list of
 * names, with OpenAPI's nullable), enum, const, minimum, maximum, minLength,
 * maxLength (in characters), pattern, format (date-time, date, int32, int64,
 * uri), required, properties, additionalProperties (a boolean or a schema),
 * items, minItems, maxItems, and the combinations oneOf, anyOf, allOf and
 * not.  Annotations (description, example, default, title, deprecated and
 * x-* extensions) are accepted and ignored.  Any other keyword is one this
 * module does not implement: oh_schema_check finds it, so a spec that uses
 * one fails a test and the server's start rather than being half-checked.
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
 * when valid; otherwise fills *ERR with the first violation.  ERR's strings
 * are always valid UTF-8, however long the names in VALUE are. */
bool oh_schema_validate(const json_t *schema, const json_t *value, const char *root,
                        oh_schema_error_t *err);

/* Checks that SCHEMA (borrowed) uses only keywords and formats this module
 * implements, and that every pattern in it means the same in ECMA-262 (the
 * dialect OpenAPI names) and in the POSIX extended regular expressions the
 * validator runs (see oh_schema_pattern_check).  Returns true when it does;
 * otherwise writes where and what into WHERE (e.g. "properties.Name: unknown
 * keyword 'contains'") and returns false. */
bool oh_schema_check(const json_t *schema, char *where, size_t where_size);

/* Returns NULL when PATTERN keeps to the regular-expression subset whose
 * meaning is the same in ECMA-262 (with or without the u flag) and in POSIX
 * extended regular expressions over UTF-8 bytes; otherwise a static sentence
 * saying what it uses.  The subset: printable ASCII literals, ^ and $,
 * groups without ?, |, the quantifiers * + ? {m} {m,} {m,n} after an atom,
 * backslash only before one of .+*?()[]{}|^$\/, and bracket expressions of
 * ASCII characters and ranges without negation, backslash or '[' whose
 * first member is not ']' and whose '-' is first, last or in a range.  An
 * unescaped '.' and negated brackets are outside it: they match a byte in
 * one dialect and a character in the other. */
const char *oh_schema_pattern_check(const char *pattern);

/* Whether PATTERN (which must pass oh_schema_pattern_check) finds a match in
 * TEXT (NUL-terminated, UTF-8), as the validator decides it.  False too when
 * the pattern does not compile. */
bool oh_schema_pattern_matches(const char *pattern, const char *text);

/* The nesting depth of VALUE (a scalar is 1). */
size_t oh_json_depth(const json_t *value);

#endif
