/* SQL for ChatReplies, replay rows in ClusterLocks and the node-offline
 * bookkeeping, in the caller's transaction. */
#ifndef DB_CLUSTER_STORE_H
#define DB_CLUSTER_STORE_H

#include "db.h"

db_status_t cluster_store_add_reply(db_conn_t *c, const char *task_id, const char *url);

/* Calls FN(ctx, task_id, url) for replies whose task has ended and that
 * were not queued yet. */
db_status_t cluster_store_due_replies(db_conn_t *c, void (*fn)(void *, const char *, const char *),
                                      void *ctx);
/* Marks a reply queued; *ROWS 0 when another node did it first. */
db_status_t cluster_store_mark_reply(db_conn_t *c, const char *task_id, int64_t now, int64_t *rows);

/* Inserts the replay row NAME; DB_DUPLICATE when it exists. */
db_status_t cluster_store_add_replay(db_conn_t *c, const char *name, int64_t now);
db_status_t cluster_store_purge_replays(db_conn_t *c, int64_t before);

/* Calls FN(ctx, node_id) for nodes silent since before SILENT_BEFORE that
 * have no offline event since they were last seen. */
db_status_t cluster_store_newly_offline(db_conn_t *c, int64_t silent_before,
                                        void (*fn)(void *, const char *), void *ctx);
db_status_t cluster_store_mark_offline(db_conn_t *c, const char *node_id, int64_t now);

/* *N: 1 when an event occurred before BEFORE, else 0. */
db_status_t cluster_store_count_events_before(db_conn_t *c, int64_t before, int64_t *n);

#endif
