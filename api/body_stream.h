/* The request body of a streaming operation (x-octoha-stream-body) as an
 * oh_reader_t over the civetweb connection, so lib/ can consume a body of
 * any size without knowing civetweb; and the file-backed response body. */
#ifndef API_BODY_STREAM_H
#define API_BODY_STREAM_H

#include <stdbool.h>

#include "../lib/oh_reader.h"

struct mg_connection;

typedef struct {
	oh_reader_t reader; /* first: the reader hands itself to read() */
	struct mg_connection *conn;
	bool continued; /* "100 Continue" answered (or not needed) */
	bool failed;
} api_body_stream_t;

/* Sets S up to read the body of the request on CONN.  A client that sent
 * "Expect: 100-continue" is told to go on at the first read, so a request
 * refused before its body is read never makes it send the body. */
void api_body_stream_init(api_body_stream_t *s, struct mg_connection *conn);

/* Writes LEN bytes of FD from OFF to CONN.  Returns false when the
 * connection or the file failed part way (the connection is then useless). */
bool api_write_file(struct mg_connection *conn, int fd, long long off, long long len);

#endif
