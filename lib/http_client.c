#include "http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

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
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, drop);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "octoha/" OCTOHA_VERSION);
	CURLcode rc = curl_easy_perform(h);
	double secs = 0;
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &secs);
	out->duration_ms = (long)(secs * 1000.0);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	} else {
		snprintf(out->error, sizeof out->error, "%s",
		         errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	return rc == CURLE_OK;
}
