/* jansson helpers: allocation checks that abort loudly (as Redis does on
 * out-of-memory) and the small formatting helpers every resource uses. */
#ifndef OH_JSON_H
#define OH_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Returns J, or aborts the process when J is NULL (allocation failure). */
json_t *oh_json_check(json_t *j);

/* Aborts when RC is not 0 (a failed jansson setter means out of memory). */
void oh_json_check_rc(int rc);

/* Sets OBJ[KEY] to VALUE, stealing VALUE's reference; aborts when VALUE is
 * NULL or on allocation failure. */
void oh_json_set_new(json_t *obj, const char *key, json_t *value);

/* A timestamp in Octopus's format, ISO 8601 UTC with milliseconds:
 * "2026-11-28T05:30:00.123+00:00".  Returns a new reference. */
json_t *oh_json_time(int64_t epoch_ms);

/* Formats EPOCH_MS as above into BUF (at least 30 bytes; "" if smaller).
 * Times outside years 0-9999 print as the epoch. */
void oh_format_time(int64_t epoch_ms, char *buf, size_t size);

/* Parses an ISO 8601 time "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)"
 * (or a bare date, midnight UTC) into *EPOCH_MS.  False when malformed. */
bool oh_parse_time(const char *text, int64_t *epoch_ms);

/* Serialises J compactly.  Returns a malloc'd string owned by the caller;
 * aborts on allocation failure. */
char *oh_json_dump(const json_t *j);

/* Whether the LEN bytes at S are valid UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF).  NUL bytes count as valid. */
bool oh_utf8_valid(const char *s, size_t len);

/* Copies SRC into DST (SIZE bytes, SIZE > 0), cutting at a character
 * boundary so the result is valid UTF-8 whenever SRC is; a cut copy ends in
 * "...".  Returns DST. */
char *oh_utf8_copy(char *dst, size_t size, const char *src);

/* A new JSON string of TEXT in which bytes that are not part of valid UTF-8
 * became '?' (text that came from a client or a database row, cut or not
 * UTF-8 at all, must not make a response impossible to build).  Aborts on
 * allocation failure. */
json_t *oh_json_string_safe(const char *text);

/* Replaces every byte of S that is not part of a valid UTF-8 sequence with
 * '?', so S can go into a JSON string. */
void oh_utf8_sanitize(char *s);

#endif
