/* Paging of the list endpoints: skip capped, the `after` cursor, and the
 * Page.Next link that carries it (see lib/db/keyset.h). */
#include <stdio.h>
#include <string.h>

#include "../lib/db/keyset.h"
#include "../lib/oh_json.h"
#include "http.h"

bool api_paging(const api_req_t *req, api_resp_t *resp, api_paging_t *out)
{
	out->skip = api_query_int(req, "skip", 0);
	out->take = api_query_int(req, "take", 30);
	out->after = json_string_value(json_object_get(req->query, "after"));
	if (out->skip > DB_LIST_MAX_SKIP) {
		api_error(resp, OH_E_SKIP_TOO_DEEP, NULL, "skip");
		return false;
	}
	return true;
}

void api_paging_unknown_after(api_resp_t *resp, const char *what)
{
	char msg[200];
	snprintf(msg, sizeof msg,
	         "after names no %s in this list (it may have been deleted): start again "
	         "from the first page.",
	         what);
	api_error(resp, OH_E_VALIDATION, msg, "after");
}

/* Appends S percent-encoded (RFC 3986 unreserved kept) to BUF at *LEN. */
static void encode(char *buf, size_t size, size_t *len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p && *len + 4 < size; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			buf[(*len)++] = (char)*p;
		} else {
			buf[(*len)++] = '%';
			buf[(*len)++] = hex[*p >> 4];
			buf[(*len)++] = hex[*p & 15];
		}
	}
	buf[*len] = '\0';
}

void api_page_next(const api_req_t *req, json_t *page, const char *base, size_t n,
                   const api_paging_t *pg, const char *last_id)
{
	if (!last_id || n < (size_t)pg->take)
		return; /* a short page is the last one */
	char url[2048];
	size_t len = (size_t)snprintf(url, sizeof url, "%s?", base);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)req->query, k, v)
	{
		if (strcmp(k, "skip") == 0 || strcmp(k, "after") == 0 || strcmp(k, "take") == 0)
			continue;
		char val[64];
		const char *text = val;
		if (json_is_string(v))
			text = json_string_value(v);
		else if (json_is_integer(v))
			snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
		else if (json_is_boolean(v))
			snprintf(val, sizeof val, "%s", json_is_true(v) ? "true" : "false");
		else
			continue;
		encode(url, sizeof url, &len, k);
		if (len + 2 < sizeof url)
			url[len++] = '=';
		encode(url, sizeof url, &len, text);
		if (len + 2 < sizeof url)
			url[len++] = '&';
	}
	len += (size_t)snprintf(url + len, len < sizeof url ? sizeof url - len : 0,
	                        "take=%lld&after=", (long long)pg->take);
	if (len < sizeof url)
		encode(url, sizeof url, &len, last_id);
	json_t *links = json_object_get(page, "Links");
	if (links)
		oh_json_set_new(links, "Page.Next", json_string(url));
}
