/* Randomness and hashing over OpenSSL. */
#ifndef OH_CRYPTO_H
#define OH_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

/* Fills OUT with 2*NBYTES lowercase hex characters of OpenSSL randomness and
 * a terminating NUL (OUT must hold 2*NBYTES+1).  Returns false only when the
 * generator fails, leaving OUT an empty string. */
bool oh_random_hex(char *out, size_t nbytes);

/* Constant-time comparison of two buffers of equal length LEN. */
bool oh_ct_equal(const void *a, const void *b, size_t len);

#endif
