#include "apikeys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/apikeys_store.h"
#include "db/nodes_store.h"
#include "oh_crypto.h"

#define KEY_ALPHABET     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#define TOUCH_EVERY_MS   60000
#define BOOTSTRAP_MARKER "BootstrapAdminKeySeeded"

static const char *const role_names[] = {"None", "Reader", "Operator", "Admin"};

const char *oh_role_name(oh_role_t r)
{
	return (unsigned)r <= OH_ROLE_ADMIN ? role_names[r] : "None";
}

bool oh_role_parse(const char *name, oh_role_t *out)
{
	for (int r = OH_ROLE_READER; r <= OH_ROLE_ADMIN; r++)
		if (strcmp(name, role_names[r]) == 0) {
			*out = (oh_role_t)r;
			return true;
		}
	return false;
}

bool oh_apikey_well_formed(const char *key)
{
	if (strncmp(key, "API-", 4) != 0)
		return false;
	size_t n = 0;
	for (const char *p = key + 4; *p; p++, n++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return false;
	return n >= 26 && n <= 64;
}

/* Fills K's id, hash and prefix from KEY. */
static bool derive(const char *key, oh_apikey_t *k)
{
	char rnd[21];
	if (!oh_random_hex(rnd, 10))
		return false;
	snprintf(k->id, sizeof k->id, OH_APIKEY_ID_PREFIX "%s", rnd);
	oh_sha256_hex(key, strlen(key), k->hash);
	snprintf(k->prefix, sizeof k->prefix, "%.8s", key);
	return true;
}

typedef struct {
	oh_apikey_t *key;
	const oh_event_spec_t *audit;
	bool bootstrap;
	bool *seeded;
} create_ctx_t;

static db_status_t create_txn(db_conn_t *c, void *vctx)
{
	create_ctx_t *x = vctx;
	db_status_t s;
	if (x->bootstrap) {
		char marker[32];
		*x->seeded = false;
		s = settings_store_get(c, BOOTSTRAP_MARKER, marker, sizeof marker);
		if (s == DB_OK)
			return DB_OK; /* seeded once already */
		if (s != DB_NO_ROWS)
			return s;
	}
	s = db_now_ms(c, &x->key->created_at);
	if (s == DB_OK)
		s = apikeys_store_insert(c, x->key);
	if (s == DB_OK && x->bootstrap)
		s = settings_store_put(c, BOOTSTRAP_MARKER, "1");
	if (s == DB_OK && x->audit) {
		oh_event_spec_t ev = *x->audit;
		ev.resource_id = x->key->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	if (s == DB_OK && x->bootstrap)
		*x->seeded = true;
	return s;
}

/* After a create whose COMMIT lost its answer: the key's hash is there
 * exactly when it was committed. */
static db_status_t create_verify(db_conn_t *c, void *vctx)
{
	create_ctx_t *x = vctx;
	oh_apikey_t found;
	return apikeys_store_by_hash(c, x->key->hash, &found);
}

db_status_t oh_apikeys_create(db_pool_t *pool, const char *name, oh_role_t role,
                              const char *created_by, const oh_event_spec_t *audit,
                              oh_apikey_t *out, char *key_out)
{
	memset(out, 0, sizeof *out);
	memcpy(key_out, "API-", 4);
	if (!oh_random_chars(key_out + 4, OH_APIKEY_CHARS, KEY_ALPHABET) || !derive(key_out, out))
		return DB_ERROR;
	snprintf(out->name, sizeof out->name, "%s", name);
	snprintf(out->created_by, sizeof out->created_by, "%s", created_by);
	out->role = role;
	create_ctx_t x = {out, audit, false, NULL};
	return db_txn_verified(pool, create_txn, create_verify, &x);
}

db_status_t oh_apikeys_bootstrap(db_pool_t *pool, const char *key, const char *name, bool *seeded)
{
	oh_apikey_t k;
	memset(&k, 0, sizeof k);
	*seeded = false;
	if (!derive(key, &k))
		return DB_ERROR;
	snprintf(k.name, sizeof k.name, "%s", name);
	snprintf(k.created_by, sizeof k.created_by, "OCTOHA_BOOTSTRAP_ADMIN_KEY");
	k.role = OH_ROLE_ADMIN;
	oh_event_spec_t ev = {.category = "ApiKeyCreated",
	                      .operation = "bootstrapApiKey",
	                      .result = "Success",
	                      .message = "The bootstrap Admin key was seeded."};
	create_ctx_t x = {&k, &ev, true, seeded};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, create_txn, &x);
	if (s == DB_DUPLICATE) { /* another node seeded it at the same moment */
		*seeded = false;
		return DB_OK;
	}
	return s;
}

typedef struct {
	const char *hash;
	oh_apikey_t *out;
	int64_t now;
} auth_ctx_t;

static db_status_t auth_txn(db_conn_t *c, void *vctx)
{
	auth_ctx_t *x = vctx;
	db_status_t s = apikeys_store_by_hash(c, x->hash, x->out);
	if (s != DB_OK)
		return s;
	/* The lookup went through an index on the hash; the final say is a
	 * constant-time comparison of the whole hash. */
	if (!oh_ct_equal(x->out->hash, x->hash, 64))
		return DB_NO_ROWS;
	return db_now_ms(c, &x->now);
}

static db_status_t touch_txn(db_conn_t *c, void *vctx)
{
	auth_ctx_t *x = vctx;
	return apikeys_store_touch(c, x->out->id, x->now);
}

db_status_t oh_apikeys_authenticate(db_pool_t *pool, const char *key, oh_apikey_t *out)
{
	char hash[65];
	memset(out, 0, sizeof *out);
	oh_sha256_hex(key, strlen(key), hash);
	auth_ctx_t x = {hash, out, 0};
	db_status_t s = db_txn(pool, DB_TXN_READ, auth_txn, &x);
	/* A read in the common case; the write of LastUsedAt comes at most
	 * once a minute per key and its failure does not refuse the key. */
	if (s == DB_OK && x.now - out->last_used_at >= TOUCH_EVERY_MS &&
	    db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, touch_txn, &x) == DB_OK)
		out->last_used_at = x.now;
	return s;
}

static void collect(void *vctx, const oh_apikey_t *k)
{
	oh_apikey_list_t *l = vctx;
	oh_apikey_t *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (!nv)
		abort();
	l->v = nv;
	l->v[l->n++] = *k;
}

static db_status_t list_txn(db_conn_t *c, void *vctx)
{
	oh_apikey_list_t *l = vctx;
	oh_apikey_list_free(l);
	return apikeys_store_each(c, collect, l);
}

db_status_t oh_apikeys_list(db_pool_t *pool, oh_apikey_list_t *out)
{
	memset(out, 0, sizeof *out);
	return db_txn(pool, DB_TXN_READ, list_txn, out);
}

void oh_apikey_list_free(oh_apikey_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

db_status_t oh_apikeys_revoke(db_pool_t *pool, const char *id, const oh_event_spec_t *audit)
{
	return oh_delete_audited(pool, apikeys_store_delete, id, audit);
}
