/* The error registry: every error a client can see, defined once with its
 * stable code, HTTP status and default message.  Bodies always have the shape
 * {"ErrorMessage": str, "Errors": [str], "Code": str[, "Field": str]}
 * (Octopus's shape plus a stable code and the offending field). */
#ifndef OH_ERROR_H
#define OH_ERROR_H

#include <jansson.h>

typedef enum {
	OH_E_NOT_FOUND = 0,
	OH_E_METHOD_NOT_ALLOWED,
	OH_E_INVALID_JSON,
	OH_E_VALIDATION,
	OH_E_PAYLOAD_TOO_LARGE,
	OH_E_UNSUPPORTED_MEDIA_TYPE,
	OH_E_URI_TOO_LONG,
	OH_E_NODE_IS_ONLINE,
	OH_E_DB_UNAVAILABLE,
	OH_E_SHUTTING_DOWN,
	OH_E_INTERNAL,
	OH_E_BAD_REQUEST,
	OH_E_TASK_COMPLETED,
	OH_E_LAST_NODE,
	OH_E_KEY_MISSING,
	OH_E_KEY_INVALID,
	OH_E_ROLE_NOT_ALLOWED,
	OH_E_KEY_IN_QUERY,
	OH_E_SIGNATURE_INVALID,
	OH_E_NOT_CONFIGURED,
	OH_E_INVALID_STORAGE_PATH,
	OH_E_TENTACLE_NAME_IN_USE,
	OH_E_NOT_POLLING,
	OH_E_PORT_CLASH,
	OH_E_STORAGE_CHANGE_BUSY,
	OH_E_IDEM_REUSED,
	OH_E_IDEM_IN_FLIGHT,
	OH_E_OUTCOME_UNKNOWN,
	OH_E_PACKAGE_EXISTS,
	OH_E_INSUFFICIENT_STORAGE,
	OH_E_RANGE_NOT_SATISFIABLE,
	OH_E_STORAGE_UNAVAILABLE,
	OH_E_INVALID_PACKAGE,
	OH_E_HTTP_VERSION,         /* 505: the request line names a version other than 1.0/1.1 */
	OH_E_TOO_MANY_CONNECTIONS, /* 503: the client address holds its share of the workers */
	OH_E_TOKEN_INVALID,
	OH_E_IDP_UNAVAILABLE,
	OH_E_TOO_MANY_STREAMS,
	OH_E_MANAGED_NAME_IN_USE,
	OH_E_MAINT_IN_PROGRESS,
	OH_E_INSUFFICIENT_CAPACITY,
	OH_E_MAINT_WRONG_STATE,
	OH_E_SKIP_TOO_DEEP,
	OH_E__COUNT
} oh_ec_t;

typedef struct {
	const char *code; /* stable, PascalCase, asserted on by tests */
	int status;       /* HTTP status */
	const char *hint; /* default ErrorMessage */
} oh_error_def_t;

/* Returns the definition of EC; never NULL for a valid EC. */
const oh_error_def_t *oh_error_def(oh_ec_t ec);

/* Builds an error body.  MESSAGE may be NULL (the hint is used); FIELD may be
 * NULL.  Returns a new reference (owned by the caller); aborts on OOM. */
json_t *oh_error_body(oh_ec_t ec, const char *message, const char *field);

#endif
