#include "oh_crypto.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

bool oh_random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[64];
	out[0] = '\0';
	if (nbytes > sizeof buf || RAND_bytes(buf, (int)nbytes) != 1)
		return false;
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[buf[i] >> 4];
		out[2 * i + 1] = hex[buf[i] & 15];
	}
	out[2 * nbytes] = '\0';
	return true;
}

bool oh_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
