#include "task_counts_store.h"

#include "dialect.h"

typedef struct {
	void (*fn)(void *, const char *, int64_t);
	void *ctx;
} state_ctx_t;

static db_status_t state_row(void *vctx, db_row_t *r)
{
	state_ctx_t *x = vctx;
	char state[24];
	db_row_copy(r, 0, state, sizeof state);
	int64_t n = db_row_int(r, 1, NULL);
	if (n > 0)
		x->fn(x->ctx, state, n);
	return DB_OK;
}

db_status_t task_counts_store_read(db_conn_t *c, void (*fn)(void *, const char *, int64_t),
                                   void *ctx)
{
	state_ctx_t x = {fn, ctx};
	/* One statement, so the totals and what ended since come from one
	 * snapshot even while a pass moves CountedTo. */
	db_status_t s =
	    db_query(c,
	             "SELECT c.State, c.Total + (SELECT COUNT(*) FROM ServerTasks t WHERE "
	             "t.CompletedTime >= c.CountedTo AND t.State = c.State) FROM TaskCounts c",
	             NULL, 0, state_row, &x);
	if (s == DB_OK || s == DB_NO_ROWS)
		s = db_query(c,
		             "SELECT State, COUNT(*) FROM ServerTasks WHERE State IN ('Queued', "
		             "'Executing', 'Cancelling') GROUP BY State",
		             NULL, 0, state_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t task_counts_store_advance(db_conn_t *c, int64_t to)
{
	db_param_t p[] = {DBP_INT(to), DBP_INT(to), DBP_INT(to)};
	return db_exec(c,
	               "UPDATE TaskCounts SET Total = Total + (SELECT COUNT(*) FROM ServerTasks t "
	               "WHERE t.CompletedTime >= TaskCounts.CountedTo AND t.CompletedTime < ? "
	               "AND t.State = TaskCounts.State), CountedTo = ? WHERE CountedTo < ?",
	               p, 3, NULL);
}

static db_status_t time_row(void *ctx, db_row_t *r)
{
	bool is_null = false;
	*(int64_t *)ctx = db_row_int(r, 0, &is_null);
	return is_null ? DB_NO_ROWS : DB_OK;
}

db_status_t task_counts_store_forget_through(db_conn_t *c, const char *last_id)
{
	int64_t at = 0;
	db_param_t k[] = {DBP_TEXT(last_id)};
	db_status_t s =
	    db_query(c, "SELECT CompletedTime FROM ServerTasks WHERE Id = ?", k, 1, time_row, &at);
	if (s != DB_OK)
		return s == DB_NO_ROWS ? DB_OK : s;
	db_param_t p[] = {DBP_INT(at), DBP_INT(at), DBP_TEXT(last_id)};
	return db_exec(c,
	               "UPDATE TaskCounts SET Total = Total - (SELECT COUNT(*) FROM ServerTasks t "
	               "WHERE t.CompletedTime < TaskCounts.CountedTo AND t.CompletedTime <= ? "
	               "AND (t.CompletedTime < ? OR t.Id <= ?) AND t.State = TaskCounts.State)",
	               p, 3, NULL);
}

db_status_t task_counts_store_counted_to(db_conn_t *c, int64_t *out)
{
	return db_query_int(c, "SELECT MIN(CountedTo) FROM TaskCounts", NULL, 0, out);
}

typedef struct {
	int64_t *out;
	bool found;
} chunk_ctx_t;

static db_status_t chunk_row(void *vctx, db_row_t *r)
{
	chunk_ctx_t *x = vctx;
	*x->out = db_row_int(r, 0, NULL);
	x->found = true;
	return DB_OK;
}

db_status_t task_counts_store_chunk_end(db_conn_t *c, int64_t from, int64_t rows, int64_t *end,
                                        bool *found)
{
	db_param_t p[] = {DBP_INT(from)};
	chunk_ctx_t x = {end, false};
	db_status_t s =
	    db_query_page(c,
	                  "SELECT CompletedTime FROM ServerTasks WHERE CompletedTime >= ? "
	                  "ORDER BY CompletedTime, Id",
	                  p, 1, 1, rows, chunk_row, &x);
	*found = x.found;
	return s == DB_NO_ROWS ? DB_OK : s;
}
