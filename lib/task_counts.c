/* Task counts: see task_counts.h. */
#include "task_counts.h"

#include "db/task_counts_store.h"
#include "db/tasks_store.h"

/* Ended tasks counted per transaction: a database upgraded with a long
 * history catches up in bounded steps, never one statement over it all. */
#define COUNT_CHUNK 50000

typedef struct {
	int64_t period_ms;
	bool ran;  /* this node took the period's slot */
	bool more; /* the chunk stopped short of now - lag */
} pass_ctx_t;

static db_status_t slot_txn(db_conn_t *c, void *vctx)
{
	pass_ctx_t *x = vctx;
	int64_t now;
	x->ran = false;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_take_slot(c, "task-counts", now, x->period_ms, &x->ran);
	return s;
}

static db_status_t chunk_txn(db_conn_t *c, void *vctx)
{
	pass_ctx_t *x = vctx;
	int64_t now, from = 0, end = 0;
	bool found = false;
	x->more = false;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = task_counts_store_counted_to(c, &from);
	if (s == DB_OK)
		s = task_counts_store_chunk_end(c, from, COUNT_CHUNK, &end, &found);
	int64_t to = now - OH_TASK_COUNTS_LAG_MS;
	if (s == DB_OK && found && end < to) {
		to = end > from ? end : from + 1;
		x->more = true;
	}
	if (s == DB_OK && to > from)
		s = task_counts_store_advance(c, to);
	return s;
}

db_status_t oh_task_counts_pass(db_pool_t *pool, int64_t period_ms, bool *ran)
{
	pass_ctx_t x = {period_ms, false, false};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, slot_txn, &x);
	if (ran)
		*ran = s == DB_OK && x.ran;
	if (s != DB_OK || !x.ran)
		return s;
	do
		s = db_txn(pool, DB_TXN_WRITE, chunk_txn, &x);
	while (s == DB_OK && x.more);
	return s;
}
