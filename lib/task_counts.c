/* Task counts: see task_counts.h. */
#include "task_counts.h"

#include "db/task_counts_store.h"
#include "db/tasks_store.h"

typedef struct {
	int64_t period_ms;
	bool ran;
} pass_ctx_t;

static db_status_t pass_txn(db_conn_t *c, void *vctx)
{
	pass_ctx_t *x = vctx;
	int64_t now;
	x->ran = false;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_take_slot(c, "task-counts", now, x->period_ms, &x->ran);
	if (s == DB_OK && x->ran)
		s = task_counts_store_advance(c, now - OH_TASK_COUNTS_LAG_MS);
	return s;
}

db_status_t oh_task_counts_pass(db_pool_t *pool, int64_t period_ms, bool *ran)
{
	pass_ctx_t x = {period_ms, false};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, pass_txn, &x);
	if (ran)
		*ran = s == DB_OK && x.ran;
	return s;
}
