/* Outbound HTTP over libcurl: webhook deliveries, chat replies, node probes
 * and Tentacle health checks.  Only http and https, no redirects followed,
 * certificates verified (or pinned, for Tentacles), a hard time limit per
 * call; the answer's body is read and dropped. */
#ifndef OH_HTTP_CLIENT_H
#define OH_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
	long status;      /* HTTP status, 0 when there was no answer */
	long duration_ms; /* time the call took */
	char error[256];  /* why there was no answer, "" otherwise */
} oh_http_result_t;

/* Initialises libcurl once per process (call before threads start). */
void oh_http_global_init(void);

/* POSTs LEN bytes of BODY to URL with CONTENT_TYPE and the extra header
 * lines HEADERS (NULL-terminated "Name: value" strings, may be NULL),
 * waiting at most TIMEOUT_MS.  Returns true when an HTTP answer came back
 * (any status), false with OUT->error set otherwise. */
bool oh_http_post(const char *url, const char *content_type, const char *body, size_t len,
                  const char *const *headers, long timeout_ms, oh_http_result_t *out);

/* GETs URL (http or https, certificates verified) within TIMEOUT_MS.
 * Returns as oh_http_post. */
bool oh_http_get(const char *url, long timeout_ms, oh_http_result_t *out);

/* GETs URL as oh_http_get and keeps the answer's body: *BODY (malloc'd,
 * NUL-terminated, owned by the caller) and *LEN.  A body over MAX_BYTES
 * ends the call (false, OUT->error says so).  Returns true with the body
 * for any HTTP status; false, *BODY NULL, otherwise. */
bool oh_http_get_body(const char *url, long timeout_ms, size_t max_bytes, char **body, size_t *len,
                      oh_http_result_t *out);

typedef enum {
	OH_PIN_UNSEEN = 0, /* no certificate came back (no TLS connection) */
	OH_PIN_MATCH,      /* the server's certificate has the expected thumbprint */
	OH_PIN_MISMATCH    /* it has another: SEEN holds it */
} oh_pin_t;

/* GETs the https URL, trusting exactly the server certificate whose SHA-1
 * thumbprint is THUMBPRINT (40 hex digits, any case) in place of the CA
 * chain and host name checks, as Octopus trusts a Tentacle.  A mismatch
 * stops the handshake before any request is sent.  *PIN says what was seen,
 * SEEN (41 bytes) the thumbprint presented.  Returns as oh_http_post. */
bool oh_http_get_pinned(const char *url, const char *thumbprint, long timeout_ms,
                        oh_http_result_t *out, oh_pin_t *pin, char seen[41]);

#endif
