/* The parts of RFC 9112 civetweb leaves to us, as pure functions over what
 * civetweb parsed (no civetweb types, so the fuzz target and unit tests call
 * them directly): decoding the request target's path segment by segment,
 * and the framing rules for Content-Length, Transfer-Encoding and Host that
 * keep a request from being read two ways (request smuggling). */
#ifndef API_HTTP_RULES_H
#define API_HTTP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_MAX_URI      8192
#define API_MAX_SEGMENTS 16

/* A request path split at '/' and percent-decoded segment by segment, so an
 * encoded "%2F" or "%00" stays inside its segment instead of changing the
 * route.  Segment I is SEG[I] (NUL-terminated) of LEN[I] bytes; a decoded NUL
 * makes LEN[I] larger than strlen(SEG[I]).  "/" has no segments. */
typedef struct {
	size_t n;
	const char *seg[API_MAX_SEGMENTS];
	size_t len[API_MAX_SEGMENTS];
	char buf[API_MAX_URI + API_MAX_SEGMENTS + 1];
} api_path_t;

typedef enum {
	API_PATH_OK = 0,
	API_PATH_BAD_ESCAPE, /* a '%' not followed by two hex digits: 400 */
	API_PATH_TOO_LONG,   /* longer than API_MAX_URI: 414 */
	API_PATH_TOO_DEEP,   /* more than API_MAX_SEGMENTS segments: no route has that */
	API_PATH_RELATIVE,   /* does not start with '/' */
} api_path_status_t;

/* Decodes RAW (the path of the request target, without its query, as the
 * client sent it but with dot segments removed) into *OUT.  Returns
 * API_PATH_OK or why not; *OUT is filled only on API_PATH_OK. */
api_path_status_t api_path_decode(const char *raw, api_path_t *out);

/* One header field as received. */
typedef struct {
	const char *name, *value;
} api_header_t;

typedef enum {
	API_FRAMING_OK = 0,
	API_FRAMING_BAD,       /* 400 BadRequest, then close the connection */
	API_FRAMING_TOO_LARGE, /* 413 PayloadTooLarge, then close the connection */
} api_framing_t;

/* Checks the N header fields H of a request in HTTP version VERSION ("1.0" or
 * "1.1") against RFC 9112 §6: at most one Content-Length, and it is digits
 * only; at most one Transfer-Encoding, and it is "chunked"; never both (a
 * proxy and this server could otherwise split the stream differently); no
 * Transfer-Encoding in an HTTP/1.0 request; and, in HTTP/1.1, exactly one
 * Host.  A Content-Length above MAX_BODY is API_FRAMING_TOO_LARGE.  On
 * anything but API_FRAMING_OK, *WHY is a static sentence for the error. */
api_framing_t api_framing_check(const api_header_t *h, size_t n, const char *version,
                                uint64_t max_body, const char **why);

#endif
