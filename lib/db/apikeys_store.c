#include "apikeys_store.h"

#include <string.h>

#define KEY_COLUMNS "Id, Name, Role, Prefix, KeyHash, CreatedBy, CreatedAt, LastUsedAt"

db_status_t apikeys_store_insert(db_conn_t *c, const oh_apikey_t *k)
{
	db_param_t p[] = {DBP_TEXT(k->id),       DBP_TEXT(k->name), DBP_TEXT(oh_role_name(k->role)),
	                  DBP_TEXT(k->prefix),   DBP_TEXT(k->hash), DBP_TEXT(k->created_by),
	                  DBP_INT(k->created_at)};
	return db_exec(
	    c,
	    "INSERT INTO ApiKeys (Id, Name, Role, Prefix, KeyHash, CreatedBy, CreatedAt) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?)",
	    p, 7, NULL);
}

static void read_key(db_row_t *r, oh_apikey_t *k)
{
	memset(k, 0, sizeof *k);
	db_row_copy(r, 0, k->id, sizeof k->id);
	db_row_copy(r, 1, k->name, sizeof k->name);
	const char *role = db_row_text(r, 2);
	if (!role || !oh_role_parse(role, &k->role))
		k->role = OH_ROLE_NONE; /* an unknown role grants nothing */
	db_row_copy(r, 3, k->prefix, sizeof k->prefix);
	db_row_copy(r, 4, k->hash, sizeof k->hash);
	db_row_copy(r, 5, k->created_by, sizeof k->created_by);
	k->created_at = db_row_int(r, 6, NULL);
	k->last_used_at = db_row_int(r, 7, NULL);
}

static db_status_t one_key(void *ctx, db_row_t *r)
{
	read_key(r, ctx);
	return DB_OK;
}

db_status_t apikeys_store_by_hash(db_conn_t *c, const char *hash, oh_apikey_t *out)
{
	db_param_t p[] = {DBP_TEXT(hash)};
	return db_query(c, "SELECT " KEY_COLUMNS " FROM ApiKeys WHERE KeyHash = ?", p, 1, one_key,
	                out);
}

db_status_t apikeys_store_touch(db_conn_t *c, const char *id, int64_t now)
{
	db_param_t p[] = {DBP_INT(now), DBP_TEXT(id)};
	return db_exec(c, "UPDATE ApiKeys SET LastUsedAt = ? WHERE Id = ?", p, 2, NULL);
}

typedef struct {
	void (*fn)(void *, const oh_apikey_t *);
	void *ctx;
} each_ctx_t;

static db_status_t each_row(void *vctx, db_row_t *r)
{
	each_ctx_t *x = vctx;
	oh_apikey_t k;
	read_key(r, &k);
	x->fn(x->ctx, &k);
	return DB_OK;
}

db_status_t apikeys_store_each(db_conn_t *c, void (*fn)(void *, const oh_apikey_t *), void *ctx)
{
	each_ctx_t x = {fn, ctx};
	db_status_t s = db_query(c, "SELECT " KEY_COLUMNS " FROM ApiKeys ORDER BY CreatedAt, Id",
	                         NULL, 0, each_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t apikeys_store_delete(db_conn_t *c, const char *id, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(c, "DELETE FROM ApiKeys WHERE Id = ?", p, 1, rows);
}
