/* Request target decoding and RFC 9112 framing rules: see http_rules.h. */
#include "http_rules.h"

#include <string.h>
#include <strings.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

api_path_status_t api_path_decode(const char *raw, api_path_t *out)
{
	if (raw[0] != '/')
		return API_PATH_RELATIVE;
	if (strlen(raw) > API_MAX_URI)
		return API_PATH_TOO_LONG;
	size_t o = 0, n = 0;
	const char *p = raw + 1;
	if (*p == '\0') {
		out->n = 0;
		return API_PATH_OK;
	}
	for (;;) {
		if (n == API_MAX_SEGMENTS)
			return API_PATH_TOO_DEEP;
		size_t start = o;
		while (*p && *p != '/') {
			if (*p == '%') {
				int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
				if (hi < 0 || lo < 0)
					return API_PATH_BAD_ESCAPE;
				out->buf[o++] = (char)(hi * 16 + lo);
				p += 3;
			} else {
				out->buf[o++] = *p++;
			}
		}
		out->buf[o++] = '\0';
		out->seg[n] = out->buf + start;
		out->len[n] = o - 1 - start;
		n++;
		if (*p == '\0')
			break;
		p++; /* the '/'; a trailing one gives an empty last segment */
	}
	out->n = n;
	return API_PATH_OK;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

api_framing_t api_framing_check(const api_header_t *h, size_t n, const char *version,
                                uint64_t max_body, const char **why)
{
	size_t cl = 0, te = 0, host = 0;
	const char *cl_value = NULL, *te_value = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!h[i].name || !h[i].value)
			continue;
		if (strcasecmp(h[i].name, "Content-Length") == 0) {
			cl++;
			cl_value = h[i].value;
		} else if (strcasecmp(h[i].name, "Transfer-Encoding") == 0) {
			te++;
			te_value = h[i].value;
		} else if (strcasecmp(h[i].name, "Host") == 0) {
			host++;
		}
	}
	bool http10 = version && strcmp(version, "1.0") == 0;
	if (te && cl) {
		*why = "The request has both Content-Length and Transfer-Encoding; send one.";
		return API_FRAMING_BAD;
	}
	if (te > 1 || (te && strcasecmp(te_value, "chunked") != 0)) {
		*why = "Transfer-Encoding must be chunked, given once.";
		return API_FRAMING_BAD;
	}
	if (te && http10) {
		*why = "An HTTP/1.0 request cannot use Transfer-Encoding.";
		return API_FRAMING_BAD;
	}
	if (cl > 1) {
		*why = "The request has more than one Content-Length.";
		return API_FRAMING_BAD;
	}
	if (cl && !all_digits(cl_value)) {
		*why = "Content-Length must be a decimal number of bytes.";
		return API_FRAMING_BAD;
	}
	if (!http10 && host != 1) {
		*why = "An HTTP/1.1 request needs exactly one Host header.";
		return API_FRAMING_BAD;
	}
	if (cl) {
		/* Compared as text first: no number of any length overflows. */
		const char *v = cl_value;
		while (*v == '0' && v[1])
			v++;
		uint64_t value = 0;
		bool over = strlen(v) > 19;
		for (; !over && *v; v++) {
			value = value * 10 + (uint64_t)(*v - '0');
			over = value > max_body;
		}
		if (over || value > max_body) {
			*why = NULL;
			return API_FRAMING_TOO_LARGE;
		}
	}
	*why = NULL;
	return API_FRAMING_OK;
}
