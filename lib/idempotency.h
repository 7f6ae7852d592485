/* Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a key is
 * bound to its caller, the operation and the request (a fingerprint of the
 * path and body).  The same request again gets the first one's resource;
 * the key reused for another operation or body is refused; keys expire.
 * A key is recorded in the transaction that makes the change, so it exists
 * exactly when the change does. */
#ifndef OH_IDEMPOTENCY_H
#define OH_IDEMPOTENCY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define OH_IDEM_KEY_MAX 200

typedef struct oh_idem {
	char caller[201]; /* who: an API key's id, a chat user … */
	char key[OH_IDEM_KEY_MAX + 1];
	char operation[101];
	char fingerprint[65]; /* SHA-256 hex of operation, path and body */
	int64_t ttl_ms;
	/* Set by oh_idem_record_tx when another request with this key made its
	 * change first, while this one was under way. */
	bool in_flight;
} oh_idem_t;

typedef enum {
	OH_IDEM_NEW = 0,  /* unknown or expired: go on, and record it */
	OH_IDEM_REPLAY,   /* the same request again: answer with its resource */
	OH_IDEM_MISMATCH, /* used for another operation or another request */
} oh_idem_verdict_t;

/* Fills K for CALLER's KEY on OPERATION, fingerprinting PATH and BODY (the
 * parsed JSON body, may be NULL; RAW and RAW_LEN for a non-JSON body, may be
 * NULL/0).  TTL_MS is how long the key is kept. */
void oh_idem_init(oh_idem_t *k, const char *caller, const char *key, const char *operation,
                  const char *path, const json_t *body, const char *raw, size_t raw_len,
                  int64_t ttl_ms);

/* Looks K up in a read transaction.  On DB_OK *V says what to do; with
 * OH_IDEM_REPLAY, RESOURCE (size N) receives the first request's resource
 * id.  Otherwise a database failure. */
db_status_t oh_idem_check(db_pool_t *pool, const oh_idem_t *k, oh_idem_verdict_t *v, char *resource,
                          size_t n);

/* Records K for RESOURCE_ID inside the caller's transaction (an expired
 * row of the same key is replaced).  When another request holds the key,
 * sets K->in_flight and returns DB_ABORT: the caller rolls back.  K may be
 * NULL (no key): DB_OK. */
db_status_t oh_idem_record_tx(db_conn_t *c, oh_idem_t *k, const char *resource_id);

/* Housekeeping: deletes expired keys; *N how many. */
db_status_t oh_idem_purge_tx(db_conn_t *c, int64_t now, int64_t *n);

#endif
