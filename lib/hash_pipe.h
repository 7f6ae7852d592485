/* SHA-1 and SHA-256 of a byte stream computed on a thread of their own, so
 * that hashing an upload overlaps reading it from the socket and writing it
 * to disk instead of adding to them.  The reader fills one of a few fixed
 * buffers at a time (constant memory); the hasher hashes the pieces of it
 * it is handed, in order, and gives the buffer back. */
#ifndef OH_HASH_PIPE_H
#define OH_HASH_PIPE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct oh_hash_pipe oh_hash_pipe_t;

/* Starts a hasher with its buffers of BUFSIZE bytes.  NULL on failure (no
 * memory, no thread, OpenSSL refused). */
oh_hash_pipe_t *oh_hash_pipe_new(size_t bufsize);

/* The next buffer to read into (BUFSIZE bytes), once the hasher is done
 * with it; it is the current buffer until oh_hash_pipe_release. */
char *oh_hash_pipe_buffer(oh_hash_pipe_t *h);

/* Hashes the LEN bytes at P next.  Bytes inside the current buffer are
 * hashed in place (leave them alone until released); others are copied. */
void oh_hash_pipe_add(oh_hash_pipe_t *h, const char *p, size_t len);

/* Done with the current buffer: the hasher hands it back once it has
 * hashed what was added from it. */
void oh_hash_pipe_release(oh_hash_pipe_t *h);

/* Waits for everything added to be hashed and writes the digests as
 * lowercase hex.  False when OpenSSL failed.  Call once. */
bool oh_hash_pipe_finish(oh_hash_pipe_t *h, char sha1[41], char sha256[65]);

/* Stops the hasher (if still running) and frees everything.  NULL is
 * ignored. */
void oh_hash_pipe_free(oh_hash_pipe_t *h);

#endif
