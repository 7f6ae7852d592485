#include "http_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void oh_http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t drop(char *ptr, size_t size, size_t n, void *ctx)
{
	(void)ptr;
	(void)ctx;
	return size * n;
}

static void common_opts(CURL *h, const char *url, long timeout_ms, char *errbuf);
static bool perform(CURL *h, const char *errbuf, oh_http_result_t *out);

bool oh_http_post(const char *url, const char *content_type, const char *body, size_t len,
                  const char *const *headers, long timeout_ms, oh_http_result_t *out)
{
	memset(out, 0, sizeof *out);
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(out->error, sizeof out->error, "libcurl could not start a transfer");
		return false;
	}
	struct curl_slist *hl = NULL;
	char ct[200];
	snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
	hl = curl_slist_append(hl, ct);
	hl = curl_slist_append(hl, "Expect:");
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	char errbuf[CURL_ERROR_SIZE] = "";
	common_opts(h, url, timeout_ms, errbuf);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	bool ok = perform(h, errbuf, out);
	curl_slist_free_all(hl);
	return ok;
}

/* The options every call shares. */
static void common_opts(CURL *h, const char *url, long timeout_ms, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, drop);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "octoha/" OCTOHA_VERSION);
}

static bool perform(CURL *h, const char *errbuf, oh_http_result_t *out)
{
	CURLcode rc = curl_easy_perform(h);
	double secs = 0;
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &secs);
	out->duration_ms = (long)(secs * 1000.0);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	else
		snprintf(out->error, sizeof out->error, "%s",
		         errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_easy_cleanup(h);
	return rc == CURLE_OK;
}

bool oh_http_get(const char *url, long timeout_ms, oh_http_result_t *out)
{
	memset(out, 0, sizeof *out);
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(out->error, sizeof out->error, "libcurl could not start a transfer");
		return false;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	common_opts(h, url, timeout_ms, errbuf);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	return perform(h, errbuf, out);
}

typedef struct {
	const char *want;
	oh_pin_t pin;
	char seen[41];
} pin_ctx_t;

/* Replaces OpenSSL's chain verification: the leaf certificate's SHA-1
 * must be the pinned thumbprint. */
static int pin_verify(X509_STORE_CTX *store, void *arg)
{
	pin_ctx_t *p = arg;
	X509 *cert = X509_STORE_CTX_get0_cert(store);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!cert || !X509_digest(cert, EVP_sha1(), md, &len) || len != 20) {
		X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	for (unsigned i = 0; i < len; i++)
		snprintf(p->seen + 2 * i, 3, "%02X", md[i]);
	p->pin = strcasecmp(p->seen, p->want) == 0 ? OH_PIN_MATCH : OH_PIN_MISMATCH;
	if (p->pin != OH_PIN_MATCH) {
		X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	X509_STORE_CTX_set_error(store, X509_V_OK);
	return 1;
}

static CURLcode pin_ctx(CURL *h, void *ssl_ctx, void *arg)
{
	(void)h;
	SSL_CTX_set_cert_verify_callback(ssl_ctx, pin_verify, arg);
	return CURLE_OK;
}

bool oh_http_get_pinned(const char *url, const char *thumbprint, long timeout_ms,
                        oh_http_result_t *out, oh_pin_t *pin, char seen[41])
{
	memset(out, 0, sizeof *out);
	pin_ctx_t p = {.want = thumbprint, .pin = OH_PIN_UNSEEN};
	*pin = OH_PIN_UNSEEN;
	seen[0] = '\0';
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(out->error, sizeof out->error, "libcurl could not start a transfer");
		return false;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	common_opts(h, url, timeout_ms, errbuf);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L); /* through pin_verify */
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L); /* the pin names the server */
	curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* straight to the Tentacle */
	curl_easy_setopt(h, CURLOPT_CAINFO, NULL); /* the pin, not a CA, decides */
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	/* Without this callback (a libcurl not built on OpenSSL) there is no
	 * pinning: refuse rather than fall back to CA checks. */
	if (curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, pin_ctx) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, &p) != CURLE_OK) {
		curl_easy_cleanup(h);
		snprintf(out->error, sizeof out->error,
		         "this libcurl cannot pin certificates (it is not built on OpenSSL)");
		return false;
	}
	bool ok = perform(h, errbuf, out);
	*pin = p.pin;
	snprintf(seen, 41, "%s", p.seen);
	return ok;
}

typedef struct {
	char *buf;
	size_t len, max;
	bool too_big;
} body_ctx_t;

static size_t keep(char *ptr, size_t size, size_t n, void *vctx)
{
	body_ctx_t *b = vctx;
	size_t add = size * n;
	if (b->len + add > b->max) {
		b->too_big = true;
		return 0; /* stops the transfer */
	}
	char *nb = realloc(b->buf, b->len + add + 1);
	if (!nb)
		return 0;
	b->buf = nb;
	memcpy(b->buf + b->len, ptr, add);
	b->len += add;
	b->buf[b->len] = '\0';
	return add;
}

bool oh_http_get_body(const char *url, long timeout_ms, size_t max_bytes, char **body, size_t *len,
                      oh_http_result_t *out)
{
	memset(out, 0, sizeof *out);
	*body = NULL;
	*len = 0;
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(out->error, sizeof out->error, "libcurl could not start a transfer");
		return false;
	}
	body_ctx_t b = {.max = max_bytes};
	char errbuf[CURL_ERROR_SIZE] = "";
	common_opts(h, url, timeout_ms, errbuf);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	bool ok = perform(h, errbuf, out);
	if (b.too_big) {
		snprintf(out->error, sizeof out->error, "the answer is larger than %zu bytes",
		         max_bytes);
		ok = false;
	}
	if (!ok) {
		free(b.buf);
		return false;
	}
	*body = b.buf ? b.buf : strdup("");
	*len = b.len;
	return *body != NULL;
}
