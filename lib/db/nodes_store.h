/* SQL for the OctopusServerNodes and ClusterSettings tables.  Each function
 * runs inside a caller's transaction (see lib/nodes.c) and returns the
 * statement's db_status_t.  All statements are portable across dialects. */
#ifndef DB_NODES_STORE_H
#define DB_NODES_STORE_H

#include "../nodes.h"
#include "db.h"

/* Reads one node by Id (BY_NAME false) or Name (true).  DB_NO_ROWS if none. */
db_status_t nodes_store_get(db_conn_t *c, const char *key, bool by_name, oh_node_t *out);

/* Calls FN for every node ordered by Name. */
db_status_t nodes_store_each(db_conn_t *c, void (*fn)(void *ctx, const oh_node_t *n), void *ctx);

db_status_t nodes_store_insert(db_conn_t *c, const oh_node_t *n, const char *instance_id);

/* Takes over the row named N->name when it is stopped, older than
 * STALE_BEFORE, or already held by INSTANCE_ID.  MAX_TASKS < 0 keeps the
 * stored cap.  *ROWS receives 1 on success, 0 when a live node holds it. */
db_status_t nodes_store_take_over(db_conn_t *c, const oh_node_t *n, const char *instance_id,
                                  const char *prev_instance, int64_t stale_before, int64_t *rows);

/* LastSeen = NOW for Id held by INSTANCE_ID; *ROWS is 0 when not held. */
db_status_t nodes_store_touch(db_conn_t *c, const char *id, const char *instance_id, int64_t now,
                              int64_t *rows);

db_status_t nodes_store_mark_stopped(db_conn_t *c, const char *id, const char *instance_id);

/* Deletes Id when stopped or LastSeen < STALE_BEFORE; *ROWS = rows deleted. */
db_status_t nodes_store_delete_stale(db_conn_t *c, const char *id, int64_t stale_before,
                                     int64_t *rows);

/* Counts nodes not named NAME. */
db_status_t nodes_store_count_others(db_conn_t *c, const char *name, int64_t *count);

/* ClusterSettings: reads NAME into BUF ("" and DB_NO_ROWS when absent). */
db_status_t settings_store_get(db_conn_t *c, const char *name, char *buf, size_t size);
/* Inserts or updates NAME; a concurrent insert surfaces as DB_DUPLICATE. */
db_status_t settings_store_put(db_conn_t *c, const char *name, const char *value);
/* Calls FN(ctx, name, value) for each of the six settings NAMES that is set
 * (one statement instead of six). */
db_status_t settings_store_get_six(db_conn_t *c, const char *const names[6],
                                   void (*fn)(void *, const char *, const char *), void *ctx);

/* Sets drain mode (and who, why, when, which task) of node ID. */
db_status_t nodes_store_set_drain(db_conn_t *c, const char *id, bool on, const char *reason,
                                  const char *by, int64_t now, const char *task_id);
db_status_t nodes_store_set_cap(db_conn_t *c, const char *id, int cap, int64_t *rows);

/* Counts nodes other than EXCEPT_ID that are online, not draining and have
 * a task cap above 0. */
db_status_t nodes_store_count_taking_work(db_conn_t *c, const char *except_id, int64_t stale_before,
                                          int64_t *count);

#endif
