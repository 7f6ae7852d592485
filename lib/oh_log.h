/* Structured logging: one logfmt line per event on stderr.
 *
 * Lines look like `ts=2026-11-28T05:30:00.123Z level=info msg=ready k=v ...`.
 * Values that could contain spaces, quotes or '=' must go through oh_q(),
 * which quotes and escapes them.  Secrets are never passed to this module. */
#ifndef OH_LOG_H
#define OH_LOG_H

#include <stdbool.h>

typedef enum { OH_LOG_DEBUG = 0, OH_LOG_INFO, OH_LOG_WARN, OH_LOG_ERROR } oh_log_level_t;

/* Sets the lowest level written.  Thread-safe (atomic). */
void oh_log_set_level(oh_log_level_t level);

/* Parses "debug", "info", "warn" or "error".  Returns false on anything else
 * and leaves *out unchanged. */
bool oh_log_parse_level(const char *s, oh_log_level_t *out);

/* True when a line at LEVEL would be written: lets hot paths skip formatting. */
bool oh_log_enabled(oh_log_level_t level);

/* Writes one line: the timestamp, level and MSG (quoted as needed), then the
 * printf-formatted key=value pairs of FMT (may be NULL).  The line is written
 * with a single stdio call so lines of concurrent threads never interleave. */
void oh_log(oh_log_level_t level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns S quoted for logfmt when it needs it ("a b" -> "\"a b\""), else S
 * itself.  The result lives in a thread-local ring of 8 buffers of 512 bytes:
 * valid until 8 more calls on the same thread; longer values are cut. */
const char *oh_q(const char *s);

#endif
