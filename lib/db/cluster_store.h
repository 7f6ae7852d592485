/* SQL for ChatReplies, replay rows in ClusterLocks and the node-offline
 * bookkeeping, in the caller's transaction. */
#ifndef DB_CLUSTER_STORE_H
#define DB_CLUSTER_STORE_H

#include "db.h"
#include "keyset.h"

db_status_t cluster_store_add_reply(db_conn_t *c, const char *task_id, const char *url);

/* Calls FN(ctx, task_id, url) for replies whose task has ended and that
 * were not queued yet. */
db_status_t cluster_store_due_replies(db_conn_t *c, void (*fn)(void *, const char *, const char *),
                                      void *ctx);
/* The response_url of TASK_ID's reply into URL (size SIZE); DB_NO_ROWS if none. */
db_status_t cluster_store_reply_url(db_conn_t *c, const char *task_id, char *url, size_t size);

/* Marks a reply queued; *ROWS 0 when another node did it first. */
db_status_t cluster_store_mark_reply(db_conn_t *c, const char *task_id, int64_t now, int64_t *rows);

/* Locks the ClusterLocks row NAME to the end of the transaction (a row lock
 * on PostgreSQL and SQL Server; SQLite's write transaction already holds
 * the whole database).  Changes that must not interleave take it first. */
db_status_t cluster_store_lock(db_conn_t *c, const char *name);

/* Inserts the replay row NAME; DB_DUPLICATE when it exists. */
db_status_t cluster_store_add_replay(db_conn_t *c, const char *name, int64_t now);
db_status_t cluster_store_purge_replays(db_conn_t *c, int64_t before);
/* DB_OK when the replay row NAME written at AT exists, else DB_NO_ROWS. */
db_status_t cluster_store_has_replay(db_conn_t *c, const char *name, int64_t at);

/* Calls FN(ctx, node_id) for nodes silent since before SILENT_BEFORE that
 * have no offline event since they were last seen. */
db_status_t cluster_store_newly_offline(db_conn_t *c, int64_t silent_before,
                                        void (*fn)(void *, const char *), void *ctx);
db_status_t cluster_store_mark_offline(db_conn_t *c, const char *node_id, int64_t now);

/* *N: 1 when an event occurred before BEFORE, else 0. */
db_status_t cluster_store_count_events_before(db_conn_t *c, int64_t before, int64_t *n);

/* The statement of cluster_store_count_events_before, into Q (for the
 * T-SQL check, tests/tsql_page.c). */
void cluster_store_events_before_sql(db_dialect_id_t d, int64_t before, db_sql_t *q);

#endif
