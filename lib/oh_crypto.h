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

/* SHA-256 of LEN bytes at DATA as 64 lowercase hex characters and a NUL
 * (OUT holds 65). */
void oh_sha256_hex(const void *data, size_t len, char out[65]);

/* HMAC-SHA-256 of MSG under KEY as 64 lowercase hex characters and a NUL. */
void oh_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                        char out[65]);

/* Fills OUT with N characters drawn uniformly from ALPHABET (by rejection,
 * so no character is favoured) and a NUL.  False when the generator fails. */
bool oh_random_chars(char *out, size_t n, const char *alphabet);

/* Seals the NUL-terminated SECRET with AES-256-GCM under the 32-byte KEY:
 * "v1:" + base64(nonce | ciphertext | tag), written to OUT (size OUTLEN).
 * False when OUT is too small or OpenSSL fails. */
bool oh_seal(const unsigned char key[32], const char *secret, char *out, size_t outlen);

/* Opens what oh_seal wrote.  Returns the secret (malloc'd, NUL-terminated),
 * or NULL when SEALED was not sealed under KEY or is malformed. */
char *oh_unseal(const unsigned char key[32], const char *sealed);

#endif
