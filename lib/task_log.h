/* Reading a task log back: each line as oh_task_log_fd wrote it,
 * "<time> <LEVEL> <text>", and where each attempt begins (the worker
 * writes "Attempt N of M on node X" first thing in every attempt; its
 * "Attempt N ended: …" is not a start). */
#ifndef OH_TASK_LOG_H
#define OH_TASK_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
	int64_t at;       /* epoch ms; 0 when the line has no time */
	char level[8];    /* "INFO", "WARN", "ERROR", …; "" when none */
	const char *text; /* the message, not NUL-terminated */
	size_t len;
	bool attempt_start; /* the first line of an attempt */
} oh_log_line_t;

/* Calls FN with each non-empty line of the LEN bytes at TEXT, in order.
 * Lines that do not follow the format are passed on whole as text. */
void oh_task_log_lines(const char *text, size_t len, void (*fn)(void *, const oh_log_line_t *),
                       void *ctx);

#endif
