/* API keys and roles.  A key is "API-" and 32 characters of [A-Z0-9] from
 * OpenSSL's generator (about 165 bits), shown once at creation.  The
 * database keeps its SHA-256 (a key has too much entropy to guess from its
 * hash, so no server-side secret is needed) and a short prefix for display;
 * a presented key is found by its hash and the stored hash is then
 * compared in constant time. */
#ifndef OH_APIKEYS_H
#define OH_APIKEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "events.h"

#define OH_APIKEY_ID_PREFIX "ApiKeys-"
#define OH_APIKEY_CHARS     32
#define OH_APIKEY_LEN       (4 + OH_APIKEY_CHARS) /* "API-" + chars */

typedef enum {
	OH_ROLE_NONE = 0, /* the ping and the spec: no key needed */
	OH_ROLE_READER,
	OH_ROLE_OPERATOR,
	OH_ROLE_ADMIN,
} oh_role_t;

const char *oh_role_name(oh_role_t r);
/* Parses "Reader", "Operator" or "Admin". */
bool oh_role_parse(const char *name, oh_role_t *out);

typedef struct {
	char id[51];
	char name[201];
	oh_role_t role;
	char prefix[17];
	char hash[65];
	char created_by[201];
	int64_t created_at, last_used_at; /* last_used_at 0 = never */
} oh_apikey_t;

typedef struct {
	oh_apikey_t *v;
	size_t n;
} oh_apikey_list_t;

/* True when KEY has the form of an octoha/Octopus API key:
 * "API-" and at least 26 characters of [A-Z0-9]. */
bool oh_apikey_well_formed(const char *key);

/* Creates a key named NAME with ROLE, recording AUDIT (may be NULL; its
 * resource id is filled in) in the same transaction.  KEY_OUT receives the
 * key itself (OH_APIKEY_LEN + 1 bytes): shown once, never stored.  Returns
 * DB_OK and fills *OUT, or a failure. */
db_status_t oh_apikeys_create(db_pool_t *pool, const char *name, oh_role_t role,
                              const char *created_by, const oh_event_spec_t *audit,
                              oh_apikey_t *out, char *key_out);

/* Stores the given well-formed KEY as an Admin key named NAME, unless the
 * cluster was already seeded once (a ClusterSettings marker), so a key
 * revoked later is never brought back by a restart.  *SEEDED says whether
 * it was stored now.  DB_OK or a failure. */
db_status_t oh_apikeys_bootstrap(db_pool_t *pool, const char *key, const char *name, bool *seeded);

/* Finds the key KEY.  DB_OK and *OUT, DB_NO_ROWS when it is unknown.
 * Updates LastUsedAt when it is older than a minute. */
db_status_t oh_apikeys_authenticate(db_pool_t *pool, const char *key, oh_apikey_t *out);

db_status_t oh_apikeys_list(db_pool_t *pool, oh_apikey_list_t *out);
void oh_apikey_list_free(oh_apikey_list_t *l);

/* Revokes (deletes) key ID, recording AUDIT.  DB_NO_ROWS if none. */
db_status_t oh_apikeys_revoke(db_pool_t *pool, const char *id, const oh_event_spec_t *audit);

#endif
