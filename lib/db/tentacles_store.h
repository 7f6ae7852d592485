/* SQL for Tentacles, TentacleServers, TentaclePolls and the polling columns
 * of OctopusServerNodes, in the caller's transaction. */
#ifndef DB_TENTACLES_STORE_H
#define DB_TENTACLES_STORE_H

#include "../tentacles.h"
#include "db.h"

db_status_t tentacles_store_insert(db_conn_t *c, const oh_tentacle_t *t);
db_status_t tentacles_store_delete(db_conn_t *c, const char *id, int64_t *rows);

/* Reads tentacle ID.  DB_NO_ROWS when there is none. */
db_status_t tentacles_store_get(db_conn_t *c, const char *id, oh_tentacle_t *out);

/* Calls FN(ctx, t) for every Tentacle ordered by Name (all, or only those
 * that need re-registration). */
db_status_t tentacles_store_each(db_conn_t *c, bool only_rereg,
                                 void (*fn)(void *, const oh_tentacle_t *), void *ctx);

/* Calls FN(ctx, tentacle_id, node_id, address, port) for the server
 * entries of ID (all Tentacles when ID is NULL). */
db_status_t tentacles_store_servers(db_conn_t *c, const char *id,
                                    void (*fn)(void *, const char *, const char *, const char *,
                                               int),
                                    void *ctx);
db_status_t tentacles_store_clear_servers(db_conn_t *c, const char *id);
db_status_t tentacles_store_add_server(db_conn_t *c, const char *id, const char *node_id,
                                       const char *address, int port, int64_t now);
/* Sets ServersChangedAt and NeedsReRegistration of ID. */
db_status_t tentacles_store_mark_changed(db_conn_t *c, const char *id, int64_t now, bool rereg);
db_status_t tentacles_store_clear_rereg(db_conn_t *c, const char *id);
/* Takes the lock every writer of polling settings and ports holds. */
db_status_t tentacles_store_lock_polling(db_conn_t *c);
/* Counts the polling Tentacles. */
db_status_t tentacles_store_count_polling(db_conn_t *c, int64_t *n);
/* DB_OK when a Tentacle is named NAME, else DB_NO_ROWS. */
db_status_t tentacles_store_name_used(db_conn_t *c, const char *name);
/* Locks the row of ID until the transaction ends (a no-op update). */
db_status_t tentacles_store_lock(db_conn_t *c, const char *id);

/* Calls FN(ctx, tentacle_id, node_id, last_poll) for the polls of ID (all
 * when NULL). */
db_status_t tentacles_store_polls(db_conn_t *c, const char *id,
                                  void (*fn)(void *, const char *, const char *, int64_t),
                                  void *ctx);
db_status_t tentacles_store_put_poll(db_conn_t *c, const char *id, const char *node_id,
                                     int64_t now);

db_status_t tentacles_store_set_health(db_conn_t *c, const char *id, const char *status,
                                       const char *detail, int64_t now);
db_status_t tentacles_store_set_warned(db_conn_t *c, const char *id, int64_t at);

/* PollingPort of node ID (0 = NULL). */
db_status_t tentacles_store_set_node_port(db_conn_t *c, const char *node_id, int port);

#endif
