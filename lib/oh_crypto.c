#include "oh_crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

bool oh_random_hex(char *out, size_t nbytes)
{
	unsigned char buf[64];
	out[0] = '\0';
	if (nbytes > sizeof buf || RAND_bytes(buf, (int)nbytes) != 1)
		return false;
	to_hex(buf, nbytes, out);
	return true;
}

bool oh_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void oh_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	SHA256(data, len, md);
	to_hex(md, sizeof md, out);
}

void oh_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t msglen,
                        char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, md, &mdlen) || mdlen != 32) {
		out[0] = '\0';
		return;
	}
	to_hex(md, 32, out);
}

bool oh_random_chars(char *out, size_t n, const char *alphabet)
{
	size_t k = strlen(alphabet);
	/* Bytes at or above LIMIT are drawn again so every character is
	 * equally likely. */
	unsigned limit = 256 - 256 % (unsigned)k;
	size_t i = 0;
	unsigned char buf[64];
	out[0] = '\0';
	while (i < n) {
		if (RAND_bytes(buf, sizeof buf) != 1) {
			out[0] = '\0';
			return false;
		}
		for (size_t j = 0; j < sizeof buf && i < n; j++)
			if (buf[j] < limit)
				out[i++] = alphabet[buf[j] % k];
	}
	out[n] = '\0';
	OPENSSL_cleanse(buf, sizeof buf);
	return true;
}

#define SEAL_NONCE 12
#define SEAL_TAG   16

bool oh_seal(const unsigned char key[32], const char *secret, char *out, size_t outlen)
{
	size_t len = strlen(secret);
	size_t raw_len = SEAL_NONCE + len + SEAL_TAG;
	unsigned char *raw = malloc(raw_len);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	bool ok = false;
	int n = 0, fin = 0;
	if (!raw || !ctx || 4 * ((raw_len + 2) / 3) + 4 > outlen)
		goto done;
	if (RAND_bytes(raw, SEAL_NONCE) != 1 ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
	    EVP_EncryptUpdate(ctx, raw + SEAL_NONCE, &n, (const unsigned char *)secret, (int)len) !=
	        1 ||
	    EVP_EncryptFinal_ex(ctx, raw + SEAL_NONCE + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, raw + SEAL_NONCE + len) != 1)
		goto done;
	memcpy(out, "v1:", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, raw, (int)raw_len);
	ok = true;
done:
	EVP_CIPHER_CTX_free(ctx);
	if (raw)
		OPENSSL_clear_free(raw, raw_len);
	return ok;
}

char *oh_unseal(const unsigned char key[32], const char *sealed)
{
	if (strncmp(sealed, "v1:", 3) != 0)
		return NULL;
	const char *b64 = sealed + 3;
	size_t blen = strlen(b64);
	if (blen == 0 || blen % 4 != 0)
		return NULL;
	unsigned char *raw = malloc(blen / 4 * 3);
	char *plain = NULL;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!raw || !ctx)
		goto fail;
	int raw_len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)blen);
	if (raw_len < 0)
		goto fail;
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	if (blen >= 1 && b64[blen - 1] == '=')
		raw_len--;
	if (blen >= 2 && b64[blen - 2] == '=')
		raw_len--;
	if (raw_len < SEAL_NONCE + SEAL_TAG)
		goto fail;
	size_t len = (size_t)raw_len - SEAL_NONCE - SEAL_TAG;
	plain = malloc(len + 1);
	int n = 0, fin = 0;
	if (!plain || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n, raw + SEAL_NONCE, (int)len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, raw + SEAL_NONCE + len) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &fin) != 1)
		goto fail;
	plain[len] = '\0';
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	return plain;
fail:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	free(plain);
	return NULL;
}
