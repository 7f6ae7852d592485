/* What the dispatcher does for internal portals: CORS on every answer
 * (api/cors.c) and event streams served in place of a body
 * (api/events_stream.c).  server.c calls each from one place. */
#ifndef API_PORTAL_H
#define API_PORTAL_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* Applies CORS to RESP for REQ, just before it is written.  With no origins
 * configured it does nothing.  Otherwise every answer varies by Origin; an
 * allowed Origin gets Access-Control-Allow-Origin and the exposed headers,
 * and a preflight from it (OPTIONS with Access-Control-Request-Method, to a
 * path that exists) becomes 204 with the path's methods, the request headers
 * a portal sends and Max-Age.  An origin not on the list gets no CORS
 * header at all.  ALLOW is the path's methods as the router listed them
 * for an OPTIONS request ("" when no route has the path). */
void api_cors(const api_req_t *req, api_resp_t *resp, const char *allow);

/* The event streams of this node: their cap and the change feed they read.
 * Returns NULL on OOM. */
api_streams_t *api_streams_new(const api_config_t *cfg);

/* Ends every stream at once (the node is stopping); new ones end at once
 * too.  Call before stopping the HTTP server so that it never waits for a
 * stream. */
void api_streams_close(api_streams_t *s);
void api_streams_free(api_streams_t *s);

/* Writes the stream RESP->stream (which it frees, releasing its slot) to
 * REQ's connection until the client goes away or the streams are closed.
 * RID and RESP's extra headers go into the answer's head. */
void api_stream_serve(const api_req_t *req, const char *rid, api_resp_t *resp);

#endif
