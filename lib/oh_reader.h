/* A source of bytes that lib/ reads without knowing where they come from:
 * a request body on an HTTP connection (api/ supplies the reader), a file,
 * a test's buffer. */
#ifndef OH_READER_H
#define OH_READER_H

#include <stddef.h>
#include <sys/types.h>

typedef struct oh_reader {
	/* Reads up to LEN bytes into BUF.  Returns how many (> 0), 0 at the
	 * end of the data, or -1 when the source failed (a connection cut or
	 * timed out). */
	ssize_t (*read)(struct oh_reader *r, void *buf, size_t len);
	void *ctx;
} oh_reader_t;

#endif
