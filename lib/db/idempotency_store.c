#include "idempotency_store.h"

#include <stdio.h>
#include <string.h>

#include "dialect.h"

static db_status_t one_row(void *ctx, db_row_t *r)
{
	idem_row_t *x = ctx;
	db_row_copy(r, 0, x->operation, sizeof x->operation);
	db_row_copy(r, 1, x->fingerprint, sizeof x->fingerprint);
	db_row_copy(r, 2, x->resource_id, sizeof x->resource_id);
	x->expires_at = db_row_int(r, 3, NULL);
	return DB_OK;
}

db_status_t idem_store_get(db_conn_t *c, const char *caller, const char *key, idem_row_t *out)
{
	memset(out, 0, sizeof *out);
	db_param_t p[] = {DBP_TEXT(caller), DBP_TEXT(key)};
	return db_query(c,
	                "SELECT Operation, Fingerprint, ResourceId, ExpiresAt FROM IdempotencyKeys "
	                "WHERE Caller = ? AND IdemKey = ?",
	                p, 2, one_row, out);
}

db_status_t idem_store_drop_expired(db_conn_t *c, const char *caller, const char *key, int64_t now)
{
	db_param_t p[] = {DBP_TEXT(caller), DBP_TEXT(key), DBP_INT(now)};
	return db_exec(
	    c, "DELETE FROM IdempotencyKeys WHERE Caller = ? AND IdemKey = ? AND ExpiresAt < ?", p,
	    3, NULL);
}

db_status_t idem_store_insert(db_conn_t *c, const char *caller, const char *key,
                              const char *operation, const char *fingerprint,
                              const char *resource_id, int64_t now, int64_t expires_at)
{
	db_param_t p[] = {DBP_TEXT(caller),      DBP_TEXT(key),         DBP_TEXT(operation),
	                  DBP_TEXT(fingerprint), DBP_TEXT(resource_id), DBP_INT(now),
	                  DBP_INT(expires_at)};
	return db_exec(c,
	               "INSERT INTO IdempotencyKeys (Caller, IdemKey, Operation, Fingerprint, "
	               "ResourceId, CreatedAt, ExpiresAt) VALUES (?, ?, ?, ?, ?, ?, ?)",
	               p, 7, NULL);
}

db_status_t idem_store_purge(db_conn_t *c, int64_t now, int64_t *rows)
{
	/* Keys expire as steadily as they were made: a purge each minute
	 * deletes a minute's worth, found by the expiry index. */
	db_param_t p[] = {DBP_INT(now)};
	return db_exec(c, "DELETE FROM IdempotencyKeys WHERE ExpiresAt < ?", p, 1, rows);
}
