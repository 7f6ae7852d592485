/* Outbound HTTP over libcurl: webhook deliveries and chat replies.  Only
 * http and https, no redirects followed, certificates verified, a hard time
 * limit per call; the answer's body is read and dropped. */
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

#endif
