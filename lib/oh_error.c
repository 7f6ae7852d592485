#include "oh_error.h"

#include "oh_json.h"

static const oh_error_def_t defs[OH_E__COUNT] = {
    [OH_E_NOT_FOUND] = {"NotFound", 404, "The resource you requested was not found."},
    [OH_E_METHOD_NOT_ALLOWED] = {"MethodNotAllowed", 405,
                                 "This method is not allowed on this resource."},
    [OH_E_INVALID_JSON] = {"InvalidJson", 400, "The request body is not valid UTF-8 JSON."},
    [OH_E_VALIDATION] = {"ValidationFailed", 400, "A request field is not valid."},
    [OH_E_PAYLOAD_TOO_LARGE] = {"PayloadTooLarge", 413,
                                "The request body is larger than this server accepts."},
    [OH_E_UNSUPPORTED_MEDIA_TYPE] = {"UnsupportedMediaType", 415,
                                     "Request bodies must be sent as application/json."},
    [OH_E_URI_TOO_LONG] = {"UriTooLong", 414, "The request URI is too long."},
    [OH_E_NODE_IS_ONLINE] = {"NodeIsOnline", 409,
                             "The node is online; only an offline node can be deleted."},
    [OH_E_DB_UNAVAILABLE] = {"DatabaseUnavailable", 503,
                             "The database cannot be reached right now; try again shortly."},
    [OH_E_SHUTTING_DOWN] = {"ShuttingDown", 503, "This node is shutting down."},
    [OH_E_INTERNAL] = {"InternalError", 500, "An internal error occurred; see the node's log."},
    [OH_E_BAD_REQUEST] = {"BadRequest", 400, "The request is malformed."},
    [OH_E_TASK_COMPLETED] = {"TaskAlreadyCompleted", 409, "The task has already ended."},
    [OH_E_LAST_NODE] = {"LastNodeTakingWork", 409,
                        "This is the last node that takes work; draining it or setting its "
                        "task cap to 0 would stop the cluster. Send Force to do it anyway."},
    [OH_E_KEY_MISSING] = {"ApiKeyMissing", 401,
                          "An API key is required: send it in the X-Octopus-ApiKey header "
                          "or as Authorization: Bearer."},
    [OH_E_KEY_INVALID] = {"ApiKeyInvalid", 401, "The API key is not known or was revoked."},
    [OH_E_ROLE_NOT_ALLOWED] = {"RoleNotAllowed", 403,
                               "The API key's role does not allow this operation."},
    [OH_E_KEY_IN_QUERY] = {"ApiKeyInQueryString", 400,
                           "API keys are not accepted in the query string (it ends up in "
                           "logs); send the X-Octopus-ApiKey header instead."},
    [OH_E_SIGNATURE_INVALID] = {"SignatureInvalid", 401,
                                "The request signature is missing, wrong or too old."},
    [OH_E_NOT_CONFIGURED] = {"NotConfigured", 503, "This feature is not configured on this node."},
    [OH_E_INVALID_STORAGE_PATH] = {"InvalidStoragePath", 400,
                                   "The path has a form the cluster's platform does not accept."},
    [OH_E_TENTACLE_NAME_IN_USE] = {"TentacleNameInUse", 409,
                                   "A Tentacle with this name is already registered."},
    [OH_E_NOT_POLLING] = {"NotAPollingTentacle", 409,
                          "This is a listening Tentacle: it polls no server."},
    [OH_E_PORT_CLASH] = {"CommsPortClash", 409, "Two nodes would use the same port."},
    [OH_E_STORAGE_CHANGE_BUSY] = {"StorageChangeInProgress", 409,
                                  "Another storage change is under way; retry when it has ended."},
    [OH_E_IDEM_REUSED] = {"IdempotencyKeyReused", 422,
                          "This Idempotency-Key was used for another operation or another "
                          "request body; use a new key for a new request."},
    [OH_E_IDEM_IN_FLIGHT] = {"IdempotencyKeyInFlight", 409,
                             "A request with this Idempotency-Key was being processed at the "
                             "same time; retry it to get its result."},
    [OH_E_OUTCOME_UNKNOWN] = {"OutcomeUnknown", 503,
                              "The database connection dropped while the change was being "
                              "committed: it may or may not have been made. Read the resource "
                              "before you retry, or retry with the same Idempotency-Key."},
    [OH_E_PACKAGE_EXISTS] = {"PackageExists", 409, "This package version already exists."},
    [OH_E_INSUFFICIENT_STORAGE] = {"InsufficientStorage", 507,
                                   "The Packages folder is full; nothing of the upload was kept."},
    [OH_E_RANGE_NOT_SATISFIABLE] = {"RangeNotSatisfiable", 416,
                                    "The requested range is outside the file."},
    [OH_E_STORAGE_UNAVAILABLE] = {"StorageUnavailable", 503,
                                  "A storage folder cannot be used right now; see the node's log."},
    [OH_E_INVALID_PACKAGE] = {"InvalidPackage", 400,
                              "The upload is not a package this server takes."},
    [OH_E_HTTP_VERSION] = {"HttpVersionNotSupported", 505,
                           "This server speaks HTTP/1.1 (and 1.0) only."},
    [OH_E_TOO_MANY_CONNECTIONS] = {"TooManyConnections", 503,
                                   "Your address has too many connections open to this node; "
                                   "close some and retry."},
    [OH_E_TOKEN_INVALID] = {"TokenInvalid", 401, "The bearer token is not valid."},
    [OH_E_IDP_UNAVAILABLE] = {"IdentityProviderUnavailable", 503,
                              "The identity provider's signing keys cannot be fetched right now; "
                              "try again shortly."},
    [OH_E_TOO_MANY_STREAMS] = {"TooManyStreams", 503,
                               "This node serves as many event streams as it allows; retry "
                               "later or through another node."},
    [OH_E_MANAGED_NAME_IN_USE] = {"ManagedClusterNameInUse", 409,
                                  "Another managed cluster has this name."},
    [OH_E_MAINT_IN_PROGRESS] = {"MaintenanceRunInProgress", 409,
                                "A maintenance run of this cluster has not ended."},
    [OH_E_INSUFFICIENT_CAPACITY] = {"InsufficientCapacity", 409,
                                    "Too few nodes serve to take one out of service and keep "
                                    "MinOnlineNodes serving."},
    [OH_E_MAINT_WRONG_STATE] = {"MaintenanceRunNotInThatState", 409,
                                "The maintenance run is not in a state that allows this."},
    [OH_E_SKIP_TOO_DEEP] = {"SkipTooDeep", 400,
                            "skip goes up to 10000: page further with after (Links.Page.Next)."},
};

const oh_error_def_t *oh_error_def(oh_ec_t ec)
{
	if ((unsigned)ec >= OH_E__COUNT)
		ec = OH_E_INTERNAL;
	return &defs[ec];
}

json_t *oh_error_body(oh_ec_t ec, const char *message, const char *field)
{
	const oh_error_def_t *d = oh_error_def(ec);
	const char *msg = message ? message : d->hint;
	json_t *body = oh_json_check(json_object());
	oh_json_set_new(body, "ErrorMessage", oh_json_string_safe(msg));
	json_t *errors = oh_json_check(json_array());
	oh_json_check_rc(json_array_append_new(errors, oh_json_string_safe(msg)));
	oh_json_set_new(body, "Errors", errors);
	oh_json_set_new(body, "Code", json_string(d->code));
	if (field)
		oh_json_set_new(body, "Field", oh_json_string_safe(field));
	return body;
}
