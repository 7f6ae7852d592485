/* SQL for IdempotencyKeys, in the caller's transaction. */
#ifndef DB_IDEMPOTENCY_STORE_H
#define DB_IDEMPOTENCY_STORE_H

#include "db.h"

typedef struct {
	char operation[101];
	char fingerprint[65];
	char resource_id[101];
	int64_t expires_at;
} idem_row_t;

/* The row of CALLER's KEY.  DB_NO_ROWS when there is none. */
db_status_t idem_store_get(db_conn_t *c, const char *caller, const char *key, idem_row_t *out);

/* Deletes CALLER's KEY when it expired before NOW. */
db_status_t idem_store_drop_expired(db_conn_t *c, const char *caller, const char *key, int64_t now);

/* Inserts a row; DB_DUPLICATE when CALLER's KEY exists. */
db_status_t idem_store_insert(db_conn_t *c, const char *caller, const char *key,
                              const char *operation, const char *fingerprint,
                              const char *resource_id, int64_t now, int64_t expires_at);

/* Deletes the rows that expired before NOW; *ROWS how many. */
db_status_t idem_store_purge(db_conn_t *c, int64_t now, int64_t *rows);

#endif
