/* SQL for the ApiKeys table, in the caller's transaction. */
#ifndef DB_APIKEYS_STORE_H
#define DB_APIKEYS_STORE_H

#include "../apikeys.h"
#include "db.h"

db_status_t apikeys_store_insert(db_conn_t *c, const oh_apikey_t *k);
/* DB_NO_ROWS when no key has HASH. */
db_status_t apikeys_store_by_hash(db_conn_t *c, const char *hash, oh_apikey_t *out);
db_status_t apikeys_store_touch(db_conn_t *c, const char *id, int64_t now);
db_status_t apikeys_store_each(db_conn_t *c, void (*fn)(void *, const oh_apikey_t *), void *ctx);
db_status_t apikeys_store_delete(db_conn_t *c, const char *id, int64_t *rows);

#endif
