/* A streaming multipart/form-data parser (RFC 7578 over RFC 2046): bytes go
 * in as they arrive, in chunks of any size, and each part's headers and
 * data come out through callbacks, so a body of any size is parsed in
 * constant memory (the parser holds at most one part's headers and a
 * delimiter's length of look-behind).  No I/O of its own. */
#ifndef OH_MULTIPART_H
#define OH_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#define OH_MULTIPART_BOUNDARY_MAX 70 /* RFC 2046 */
/* A part's header block (all its lines) may be this long at most. */
#define OH_MULTIPART_HEADERS_MAX 8192

/* What a part's headers say (the fields the callers use). */
typedef struct {
	char name[256];     /* Content-Disposition name, "" when absent */
	char filename[256]; /* Content-Disposition filename (folder parts dropped), "" when none */
	bool has_filename;  /* a filename parameter was present */
	char content_type[128]; /* "" when absent */
} oh_part_t;

/* Callbacks; each returns 0 to go on, anything else to stop the parse
 * (oh_multipart_feed then returns OH_MP_STOPPED). */
typedef struct {
	int (*part_begin)(void *ctx, const oh_part_t *part);
	int (*part_data)(void *ctx, const char *data, size_t len);
	int (*part_end)(void *ctx);
} oh_multipart_cb_t;

typedef enum {
	OH_MP_OK = 0,      /* go on feeding */
	OH_MP_DONE,        /* the close delimiter was seen; the rest is epilogue */
	OH_MP_STOPPED,     /* a callback asked to stop */
	OH_MP_BAD_HEADERS, /* a part's headers are malformed or too long */
	OH_MP_TRUNCATED /* (from oh_multipart_finish) the body ended before the close delimiter */
} oh_mp_status_t;

typedef struct oh_multipart oh_multipart_t;

/* Reads the boundary parameter of the Content-Type value CT into OUT
 * (OH_MULTIPART_BOUNDARY_MAX + 1 bytes), quoted or not.  False when CT is
 * not multipart/form-data or its boundary is missing or invalid. */
bool oh_multipart_boundary(const char *ct, char *out, size_t outlen);

/* A parser for BOUNDARY (borrowed only during the call) calling CB with
 * CTX.  Returns NULL on OOM or an invalid boundary; free with
 * oh_multipart_free. */
oh_multipart_t *oh_multipart_new(const char *boundary, const oh_multipart_cb_t *cb, void *ctx);
void oh_multipart_free(oh_multipart_t *mp);

/* Parses the next LEN bytes of the body.  Returns OH_MP_OK to go on,
 * OH_MP_DONE once the body is complete (further bytes are ignored), or an
 * error; after an error the parser stays failed. */
oh_mp_status_t oh_multipart_feed(oh_multipart_t *mp, const char *buf, size_t len);

/* The body has ended: OH_MP_DONE when it was complete, else
 * OH_MP_TRUNCATED (or the earlier error). */
oh_mp_status_t oh_multipart_finish(oh_multipart_t *mp);

#endif
