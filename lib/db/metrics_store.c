#include "metrics_store.h"

#include "task_counts_store.h"

db_status_t metrics_store_tasks_by_state(db_conn_t *c, void (*fn)(void *, const char *, int64_t),
                                         void *ctx)
{
	/* Never a GROUP BY over the whole table: see task_counts_store.h. */
	return task_counts_store_read(c, fn, ctx);
}

db_status_t metrics_store_queue_depth(db_conn_t *c, int64_t now, int64_t *count)
{
	db_param_t p[] = {DBP_INT(now)};
	return db_query_int(c,
	                    "SELECT COUNT(*) FROM ServerTasks WHERE State = 'Queued' "
	                    "AND NextRunAt <= ?",
	                    p, 1, count);
}

typedef struct {
	void (*fn)(void *, const metrics_store_node_t *);
	void *ctx;
} node_ctx_t;

static db_status_t node_row(void *vctx, db_row_t *r)
{
	node_ctx_t *x = vctx;
	char name[101];
	db_row_copy(r, 0, name, sizeof name);
	metrics_store_node_t n = {.name = name,
	                          .draining = db_row_int(r, 1, NULL) != 0,
	                          .online = db_row_int(r, 2, NULL) != 0,
	                          .max_tasks = db_row_int(r, 3, NULL),
	                          .running = db_row_int(r, 4, NULL)};
	x->fn(x->ctx, &n);
	return DB_OK;
}

db_status_t metrics_store_nodes(db_conn_t *c, int64_t seen_since,
                                void (*fn)(void *, const metrics_store_node_t *), void *ctx)
{
	/* Running counts only capped tasks, as the summary's RunningTaskCount
	 * does, so the two agree and compare with MaxConcurrentTasks. */
	node_ctx_t x = {fn, ctx};
	db_param_t p[] = {DBP_INT(seen_since)};
	db_status_t s = db_query(c,
	                         "SELECT n.Name, n.IsInMaintenanceMode, "
	                         "CASE WHEN n.IsStopped = 0 AND n.LastSeen >= ? THEN 1 ELSE 0 END, "
	                         "n.MaxConcurrentTasks, "
	                         "(SELECT COUNT(*) FROM ServerTasks t WHERE t.ServerNodeId = n.Id "
	                         "AND t.State IN ('Executing', 'Cancelling') AND t.IsSystem = 0) "
	                         "FROM OctopusServerNodes n ORDER BY n.Name",
	                         p, 1, node_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}
