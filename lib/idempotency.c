#include "idempotency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/idempotency_store.h"
#include "oh_crypto.h"

void oh_idem_init(oh_idem_t *k, const char *caller, const char *key, const char *operation,
                  const char *path, const json_t *body, const char *raw, size_t raw_len,
                  int64_t ttl_ms)
{
	memset(k, 0, sizeof *k);
	snprintf(k->caller, sizeof k->caller, "%s", caller);
	snprintf(k->key, sizeof k->key, "%s", key);
	snprintf(k->operation, sizeof k->operation, "%s", operation);
	k->ttl_ms = ttl_ms;
	/* The body in a canonical form (keys sorted, no spaces): the same JSON
	 * written differently is the same request. */
	char *canon =
	    body ? json_dumps(body, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	const char *b = canon ? canon : raw ? raw : "";
	size_t blen = canon ? strlen(canon) : raw ? raw_len : 0;
	size_t olen = strlen(operation) + 1, plen = strlen(path) + 1;
	char *all = malloc(olen + plen + blen + 1);
	if (!all) {
		fputs("fatal: out of memory fingerprinting a request\n", stderr);
		abort();
	}
	/* NUL-separated, so no two different triples hash alike. */
	memcpy(all, operation, olen);
	memcpy(all + olen, path, plen);
	memcpy(all + olen + plen, b, blen);
	oh_sha256_hex(all, olen + plen + blen, k->fingerprint);
	free(all);
	free(canon);
}

typedef struct {
	const oh_idem_t *k;
	oh_idem_verdict_t *v;
	char *resource;
	size_t n;
} check_ctx_t;

static db_status_t check_txn(db_conn_t *c, void *vctx)
{
	check_ctx_t *x = vctx;
	*x->v = OH_IDEM_NEW;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	idem_row_t row;
	if (s == DB_OK)
		s = idem_store_get(c, x->k->caller, x->k->key, &row);
	if (s == DB_NO_ROWS)
		return DB_OK;
	if (s != DB_OK)
		return s;
	if (row.expires_at < now)
		return DB_OK;
	if (strcmp(row.operation, x->k->operation) != 0 ||
	    strcmp(row.fingerprint, x->k->fingerprint) != 0) {
		*x->v = OH_IDEM_MISMATCH;
		return DB_OK;
	}
	*x->v = OH_IDEM_REPLAY;
	snprintf(x->resource, x->n, "%s", row.resource_id);
	return DB_OK;
}

db_status_t oh_idem_check(db_pool_t *pool, const oh_idem_t *k, oh_idem_verdict_t *v, char *resource,
                          size_t n)
{
	check_ctx_t x = {k, v, resource, n};
	return db_txn(pool, DB_TXN_READ, check_txn, &x);
}

db_status_t oh_idem_record_tx(db_conn_t *c, oh_idem_t *k, const char *resource_id)
{
	if (!k)
		return DB_OK;
	k->in_flight = false;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = idem_store_drop_expired(c, k->caller, k->key, now);
	if (s == DB_OK)
		s = idem_store_insert(c, k->caller, k->key, k->operation, k->fingerprint,
		                      resource_id, now, now + k->ttl_ms);
	if (s == DB_DUPLICATE) {
		k->in_flight = true;
		return DB_ABORT;
	}
	return s;
}

db_status_t oh_idem_purge_tx(db_conn_t *c, int64_t now, int64_t *n)
{
	return idem_store_purge(c, now, n);
}
