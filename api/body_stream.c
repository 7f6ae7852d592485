#include "body_stream.h"

#include <civetweb.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FILE_CHUNK (256 * 1024)

static ssize_t stream_read(oh_reader_t *r, void *buf, size_t len)
{
	api_body_stream_t *s = (api_body_stream_t *)r;
	if (s->failed)
		return -1;
	if (!s->continued) {
		s->continued = true;
		const char *expect = mg_get_header(s->conn, "Expect");
		const struct mg_request_info *ri = mg_get_request_info(s->conn);
		if (expect && strcasecmp(expect, "100-continue") == 0 && ri &&
		    strcmp(ri->http_version, "1.1") == 0)
			mg_printf(s->conn, "HTTP/1.1 100 Continue\r\n\r\n");
	}
	/* mg_read gives what the body has left (0 at its end, chunked bodies
	 * decoded) and -1 when the connection fails or times out; civetweb
	 * returns a short count when the peer closed mid-body, which the
	 * caller sees as an end before the body was complete. */
	int n = mg_read(s->conn, buf, len);
	if (n < 0) {
		s->failed = true;
		return -1;
	}
	return n;
}

void api_body_stream_init(api_body_stream_t *s, struct mg_connection *conn)
{
	memset(s, 0, sizeof *s);
	s->reader.read = stream_read;
	s->reader.ctx = s;
	s->conn = conn;
}

bool api_write_file(struct mg_connection *conn, int fd, long long off, long long len)
{
	char *buf = malloc(FILE_CHUNK);
	if (!buf)
		return false;
	bool ok = true;
	while (len > 0) {
		size_t want = len < FILE_CHUNK ? (size_t)len : FILE_CHUNK;
		ssize_t r = pread(fd, buf, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || mg_write(conn, buf, (size_t)r) != (int)r) {
			ok = false;
			break;
		}
		off += r;
		len -= r;
	}
	free(buf);
	return ok;
}
