/* What a handler sees and produces.  Handlers never touch civetweb: they read
 * an already parsed and validated request and fill a response that the
 * dispatcher writes and logs. */
#ifndef API_HTTP_H
#define API_HTTP_H

#include <jansson.h>
#include <stdbool.h>

#include "../lib/apikeys.h"
#include "../lib/events.h"
#include "../lib/metrics.h"
#include "../lib/oh_error.h"
#include "../lib/oh_reader.h"
#include "api.h"

#define API_MAX_PATH_PARAMS 4

typedef struct {
	const api_config_t *cfg; /* borrowed */
	const char *method;
	const char *path; /* decoded path, no query string */
	const char *rid;  /* request id */
	const char *remote_addr;
	size_t n_path;
	const char *path_names[API_MAX_PATH_PARAMS];
	const char *path_values[API_MAX_PATH_PARAMS]; /* decoded; checked UTF-8 without NUL */
	size_t path_lens[API_MAX_PATH_PARAMS];        /* bytes, as decoded */
	const json_t *query;  /* object of typed, validated query values, defaults applied */
	const json_t *body;   /* validated JSON body or NULL; owned by the dispatcher */
	struct oh_idem *idem; /* the request's Idempotency-Key, or NULL (owned by the dispatcher) */
	const char *operation_id; /* the route's operationId */
	oh_actor_t actor;         /* who asks: the key's id and name, addresses */
	oh_role_t role;           /* the key's role; OH_ROLE_NONE on public routes */
	const char *content_type; /* the request's Content-Type, or NULL */
	const char *raw_body;     /* a non-JSON body (form posts), NUL-terminated */
	size_t raw_body_len;
	const char *accept; /* the Accept header, or NULL */
	void *conn;         /* civetweb connection, for headers only */
	/* The body as a stream, for operations with x-octoha-stream-body (the
	 * dispatcher has read none of it); NULL otherwise.  Valid during the
	 * handler. */
	oh_reader_t *body_in;
	oh_metrics_t *metrics; /* this server's request counters (GET /metrics) */
} api_req_t;

typedef struct {
	int status;
	json_t *json;    /* owned: freed by the dispatcher */
	const char *raw; /* or a static/borrowed raw body */
	size_t raw_len;
	char *raw_owned;          /* or a malloc'd raw body, freed by the dispatcher */
	const char *content_type; /* for raw bodies */
	char headers[1024];       /* extra header lines, each ending in \r\n */
	/* Or a body streamed from a file: FILE_LEN bytes of FILE_FD from
	 * FILE_OFF.  The dispatcher owns FILE_FD once HAS_FILE is set and
	 * closes it after writing. */
	bool has_file;
	int file_fd;
	int64_t file_off, file_len;
	/* An event stream to serve in place of a body (api/events_stream.c):
	 * the dispatcher hands it to api_stream_serve, which owns it. */
	void *stream;
} api_resp_t;

/* The value of path parameter NAME, or "" if there is none. */
const char *api_path_param(const api_req_t *req, const char *name);

/* The integer query parameter NAME (validated and defaulted), or DEF. */
long long api_query_int(const api_req_t *req, const char *name, long long def);

/* Sets a JSON response, stealing BODY. */
void api_json(api_resp_t *resp, int status, json_t *body);

/* Sets the registry's error EC with MESSAGE (NULL for the hint) and FIELD. */
void api_error(api_resp_t *resp, oh_ec_t ec, const char *message, const char *field);

/* Maps a failed database call to 503 with Retry-After (unreachable, busy,
 * a commit of unknown outcome) or 500 (a bug). */
void api_db_error(api_resp_t *resp, db_status_t status);

/* Octopus's paged collection around ITEMS (stolen): ItemType, TotalResults,
 * ItemsPerPage, NumberOfPages, LastPageNumber, Items, Links.Self (BASE with
 * the paging).  Returns a new reference. */
json_t *api_page(const char *item_type, const char *base, json_t *items, long long total,
                 long long skip, long long take);

/* ---- paging (api/paging.c) ---- */

typedef struct {
	long long skip, take;
	const char *after; /* borrowed from the request, or NULL */
} api_paging_t;

/* Reads skip, take and after; answers 400 SkipTooDeep (and returns false)
 * when skip is past DB_LIST_MAX_SKIP. */
bool api_paging(const api_req_t *req, api_resp_t *resp, api_paging_t *out);

/* Answers 400 on "after" when the store found no such WHAT ("task"). */
void api_paging_unknown_after(api_resp_t *resp, const char *what);

/* Adds Links["Page.Next"] to PAGE (a full page of N items ending with
 * LAST_ID): BASE with the request's filters, take and after=LAST_ID. */
void api_page_next(const api_req_t *req, json_t *page, const char *base, size_t n,
                   const api_paging_t *pg, const char *last_id);

/* Appends a header line ("Name: value") to the response; a line that does
 * not fit in full is left out. */
void api_header(api_resp_t *resp, const char *name, const char *value);

/* ---- tasks (api/task_json.c) ---- */

#include "../lib/tasks.h"

/* The Octopus-shaped task resource (new reference). */
json_t *api_task_json(const oh_task_t *t);

/* Answers 202 with TASK and a Location header; when the request asked for
 * waitSeconds, first waits (polling the database) for the task to end.
 * Wakes this node's workers so it can claim the task at once. */
void api_task_accepted(const api_req_t *req, api_resp_t *resp, oh_task_t *task);

/* Creates the task SPEC (an existing one for a reused idempotency key) and
 * answers as api_task_accepted, or with the database's error. */
void api_create_task(const api_req_t *req, api_resp_t *resp, const oh_task_spec_t *spec);

/* Queues SPEC for the requester (its requested_by, idempotency key and
 * audit filled in from REQ: a TaskQueued event with MESSAGE) and answers as
 * api_create_task. */
void api_queue_task(const api_req_t *req, api_resp_t *resp, oh_task_spec_t spec,
                    const char *message);

/* Re-reads TASK until it has ended or SECONDS have passed.  Returns the
 * last database status. */
db_status_t api_task_wait(const api_req_t *req, oh_task_t *task, long long seconds);

/* ---- storage (api/storage.c) ---- */

#include "../lib/nodes.h"
#include "../lib/storage.h"

/* The StorageConfiguration resource for NODES, the active paths A and the
 * CHECKS (all borrowed); returns a new reference.  *ALL_VERIFIED (may be
 * NULL) says whether every online node proved every current folder;
 * NODE_OK[i] (NODES->n entries) whether node i did. */
json_t *api_storage_json(const oh_node_list_t *nodes, const oh_storage_active_t *a,
                         const oh_storage_check_list_t *checks, bool *all_verified, bool node_ok[]);

/* ---- nodes (api/nodes.c) ---- */

#include "../lib/drain.h"

/* Drains, undrains or caps NODE_ID as R asks (its node, requester,
 * idempotency key, timeout and audit are filled in from REQ; DETAILS is
 * the audit's "fields changed", borrowed).  When it queued or found the
 * task and NODE_ID is this node, this node's ping follows at once.  As
 * oh_drain_request. */
db_status_t api_node_change(const api_req_t *req, const char *node_id, const oh_drain_request_t *r,
                            const json_t *details, oh_drain_outcome_t *outcome, oh_task_t *task);

/* Who is asking, for the records: "key name (key id)", or the remote
 * address on a public route. */
void api_requester(const api_req_t *req, char *buf, size_t size);

/* Fills EV for the change REQ makes: actor, operation, the path's id as
 * resource, CATEGORY and MESSAGE, and the request body as the fields
 * changed (with any "Secret" field masked).  DETAILS_OUT receives the
 * details to release with json_decref after EV was recorded. */
void api_audit(const api_req_t *req, oh_event_spec_t *ev, const char *category, const char *message,
               json_t **details_out);

/* ---- idempotency keys (api/idempotency.c) ---- */

#include "../lib/idempotency.h"

/* Looks up REQ's Idempotency-Key KEY for its caller and operation.  Returns
 * true when it answered RESP itself: the first request's task again (a
 * replay), 422 for a key used with another request, or a database error.
 * Otherwise fills IDEM and points REQ->idem at it, and the handler runs. */
bool api_idem_begin(api_req_t *req, const char *key, oh_idem_t *idem, api_resp_t *resp);

/* After the handler: 409 when another request took the key meanwhile. */
void api_idem_end(const api_req_t *req, api_resp_t *resp);

/* The value of request header NAME, or NULL. */
const char *api_header_in(const api_req_t *req, const char *name);

/* ---- spaces (api/spaces.c) ---- */

/* True when the path's spaceId names a space; else answers 404 naming it
 * and returns false. */
bool api_space_check(const api_req_t *req, api_resp_t *resp);

#endif
