#include "spaces.h"

#include <string.h>

#include "db/nodes_store.h"

bool oh_space_exists(const char *id)
{
	return id && strcmp(id, OH_DEFAULT_SPACE_ID) == 0;
}

typedef struct {
	char *out;
	size_t len;
} id_t_;

static db_status_t id_txn(db_conn_t *c, void *vctx)
{
	id_t_ *x = vctx;
	return settings_store_get(c, "InstallationId", x->out, x->len);
}

db_status_t oh_installation_id(db_pool_t *pool, char *out, size_t outlen)
{
	id_t_ x = {out, outlen};
	return db_txn(pool, DB_TXN_READ, id_txn, &x);
}
