/* SQL behind the cluster figures of GET /metrics: tasks by state, the due
 * queue, and each node's drain flag, liveness, cap and running tasks.  Each
 * function runs in the caller's (read) transaction; see lib/metrics.c.
 * Every statement is portable across the three dialects. */
#ifndef DB_METRICS_STORE_H
#define DB_METRICS_STORE_H

#include "db.h"

/* Calls FN(CTX, state, count) once per task state present in ServerTasks,
 * from the maintained counts (task_counts_store.h): a scrape reads the
 * recent completions and the active tasks, never the whole table.
 * Returns DB_OK (also for an empty table) or a failure. */
db_status_t metrics_store_tasks_by_state(db_conn_t *c, void (*fn)(void *, const char *, int64_t),
                                         void *ctx);

/* *COUNT receives the number of Queued tasks whose NextRunAt is at or before
 * NOW (database clock, epoch ms): the work waiting for a free slot. */
db_status_t metrics_store_queue_depth(db_conn_t *c, int64_t now, int64_t *count);

/* One node's figures, as metrics_store_nodes hands them over. */
typedef struct {
	const char *name; /* borrowed for the duration of the callback */
	bool draining;
	bool online; /* not stopped and seen at or after SEEN_SINCE */
	int64_t max_tasks;
	int64_t running; /* capped (non-system) tasks Executing or Cancelling on it */
} metrics_store_node_t;

/* Calls FN(CTX, node) for every node ordered by Name; a node is online when
 * it has not stopped and its LastSeen is at or after SEEN_SINCE (database
 * clock minus the offline timeout, as lib/nodes.c decides it).  Returns
 * DB_OK (also when there are no nodes) or a failure. */
db_status_t metrics_store_nodes(db_conn_t *c, int64_t seen_since,
                                void (*fn)(void *, const metrics_store_node_t *), void *ctx);

#endif
