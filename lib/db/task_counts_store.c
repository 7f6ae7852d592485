#include "task_counts_store.h"

#include <string.h>

#include "dialect.h"
#include "keyset.h"

/* Rows one count reads at most.  The ORDER BY with this limit makes every
 * database read IX_ServerTasks_Completed from the bound on (a range of
 * recent completions); without it PostgreSQL's plan for a bound it cannot
 * see ahead (a prepared statement) read the whole table once per state. */
#define RANGE_CAP 1000000

static const char *const ended[] = {"Success", "Failed", "Canceled", "TimedOut"};
#define N_ENDED (sizeof ended / sizeof ended[0])

typedef struct {
	int64_t n[N_ENDED];
	void (*fn)(void *, const char *, int64_t);
	void *ctx;
} by_state_t;

static db_status_t state_row(void *vctx, db_row_t *r)
{
	by_state_t *x = vctx;
	char state[24];
	db_row_copy(r, 0, state, sizeof state);
	int64_t n = db_row_int(r, 1, NULL);
	for (size_t i = 0; i < N_ENDED; i++)
		if (strcmp(state, ended[i]) == 0)
			x->n[i] += n;
	if (x->fn && n > 0)
		x->fn(x->ctx, state, n);
	return DB_OK;
}

void task_counts_store_range_sql(db_dialect_id_t d, const char *where, const db_param_t *p,
                                 size_t n, db_sql_t *q)
{
	db_sql_init(q);
	db_sql_add(q, "SELECT State, COUNT(*) FROM (");
	db_sql_select(q, d, RANGE_CAP);
	db_sql_add(q, "State FROM ServerTasks WHERE ");
	db_sql_add(q, where);
	for (size_t i = 0; i < n; i++)
		db_sql_bind(q, p[i]);
	db_sql_add(q, " ORDER BY CompletedTime, Id");
	db_sql_limit(q, d, RANGE_CAP);
	db_sql_add(q, ") r GROUP BY State");
}

/* Adds to X the ended tasks per state in the CompletedTime range WHERE
 * (bounds P, N of them), read in index order. */
static db_status_t count_range(db_conn_t *c, const char *where, const db_param_t *p, size_t n,
                               by_state_t *x)
{
	db_sql_t q;
	task_counts_store_range_sql(db_conn_dialect(c), where, p, n, &q);
	db_status_t s = db_sql_query(c, &q, state_row, x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

typedef struct {
	int64_t total[N_ENDED];
	int64_t lo, hi; /* lowest and highest CountedTo */
} base_t;

static db_status_t base_row(void *vctx, db_row_t *r)
{
	base_t *x = vctx;
	char state[24];
	db_row_copy(r, 0, state, sizeof state);
	int64_t to = db_row_int(r, 2, NULL);
	for (size_t i = 0; i < N_ENDED; i++)
		if (strcmp(state, ended[i]) == 0)
			x->total[i] = db_row_int(r, 1, NULL);
	x->lo = x->lo < 0 || to < x->lo ? to : x->lo;
	x->hi = to > x->hi ? to : x->hi;
	return DB_OK;
}

static db_status_t read_base(db_conn_t *c, base_t *b)
{
	memset(b, 0, sizeof *b);
	b->lo = -1;
	db_status_t s =
	    db_query(c, "SELECT State, Total, CountedTo FROM TaskCounts", NULL, 0, base_row, b);
	if (b->lo < 0)
		b->lo = 0;
	return s == DB_NO_ROWS ? DB_OK : s;
}

typedef struct {
	void (*fn)(void *, const char *, int64_t);
	void *ctx;
} read_ctx_t;

static db_status_t read_row(void *vctx, db_row_t *r)
{
	read_ctx_t *x = vctx;
	char state[24];
	db_row_copy(r, 0, state, sizeof state);
	int64_t n = db_row_int(r, 1, NULL) + db_row_int(r, 2, NULL);
	if (n > 0)
		x->fn(x->ctx, state, n);
	return DB_OK;
}

void task_counts_store_read_sql(db_dialect_id_t d, db_sql_t *q)
{
	/* One statement, so the totals and what ended since they were counted
	 * come from one snapshot while a pass moves CountedTo; the recent
	 * range in index order (see RANGE_CAP); then the active states. */
	db_sql_init(q);
	db_sql_add(q, "SELECT c.State, c.Total, (SELECT COUNT(*) FROM (");
	db_sql_select(q, d, RANGE_CAP);
	db_sql_add(q, "State FROM ServerTasks WHERE CompletedTime >= (SELECT MIN(CountedTo) FROM "
	              "TaskCounts) ORDER BY CompletedTime, Id");
	db_sql_limit(q, d, RANGE_CAP);
	db_sql_add(q, ") r WHERE r.State = c.State) FROM TaskCounts c UNION ALL "
	              "SELECT State, COUNT(*), 0 FROM ServerTasks WHERE State IN ('Queued', "
	              "'Executing', 'Cancelling') GROUP BY State");
}

db_status_t task_counts_store_read(db_conn_t *c, void (*fn)(void *, const char *, int64_t),
                                   void *ctx)
{
	db_sql_t q;
	task_counts_store_read_sql(db_conn_dialect(c), &q);
	read_ctx_t x = {fn, ctx};
	db_status_t s = db_sql_query(c, &q, read_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

/* Serialises the writers of TaskCounts (the pass on every node, retention). */
static db_status_t lock_counts(db_conn_t *c)
{
	return db_exec(c, "UPDATE ClusterLocks SET Period = Period WHERE Name = 'task-counts'",
	               NULL, 0, NULL);
}

static db_status_t add_totals(db_conn_t *c, const by_state_t *x, int sign, int64_t counted_to)
{
	db_status_t s = DB_OK;
	for (size_t i = 0; i < N_ENDED && s == DB_OK; i++) {
		if (x->n[i] == 0 && counted_to < 0)
			continue;
		db_param_t p[] = {DBP_INT(sign * x->n[i]), DBP_TEXT(ended[i])};
		db_param_t q[] = {DBP_INT(sign * x->n[i]), DBP_INT(counted_to), DBP_TEXT(ended[i])};
		s = counted_to < 0
		        ? db_exec(c, "UPDATE TaskCounts SET Total = Total + ? WHERE State = ?", p,
		                  2, NULL)
		        : db_exec(c,
		                  "UPDATE TaskCounts SET Total = Total + ?, CountedTo = ? WHERE "
		                  "State = ?",
		                  q, 3, NULL);
	}
	return s;
}

db_status_t task_counts_store_advance(db_conn_t *c, int64_t to)
{
	base_t b = {.lo = 0};
	db_status_t s = lock_counts(c);
	if (s == DB_OK)
		s = read_base(c, &b);
	if (s != DB_OK || to <= b.lo)
		return s;
	by_state_t x;
	memset(&x, 0, sizeof x);
	db_param_t p[] = {DBP_INT(b.lo), DBP_INT(to)};
	s = count_range(c, "CompletedTime >= ? AND CompletedTime < ?", p, 2, &x);
	return s == DB_OK ? add_totals(c, &x, 1, to) : s;
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
	base_t b = {.lo = 0};
	db_status_t s = lock_counts(c);
	if (s == DB_OK)
		s = read_base(c, &b);
	if (s == DB_OK)
		s = db_query(c, "SELECT CompletedTime FROM ServerTasks WHERE Id = ?", k, 1,
		             time_row, &at);
	if (s != DB_OK)
		return s == DB_NO_ROWS ? DB_OK : s;
	/* Only what the totals hold: ended before CountedTo. */
	by_state_t x;
	memset(&x, 0, sizeof x);
	db_param_t p[] = {DBP_INT(at), DBP_INT(at), DBP_TEXT(last_id), DBP_INT(b.lo)};
	s = count_range(
	    c, "CompletedTime <= ? AND (CompletedTime < ? OR Id <= ?) AND CompletedTime < ?", p, 4,
	    &x);
	return s == DB_OK ? add_totals(c, &x, -1, -1) : s;
}

db_status_t task_counts_store_counted_to(db_conn_t *c, int64_t *out)
{
	return db_query_int(c, "SELECT MIN(CountedTo) FROM TaskCounts", NULL, 0, out);
}

typedef struct {
	int64_t rows, *end;
} chunk_ctx_t;

static db_status_t chunk_row(void *vctx, db_row_t *r)
{
	chunk_ctx_t *x = vctx;
	x->rows = db_row_int(r, 0, NULL);
	*x->end = db_row_int(r, 1, NULL);
	return DB_OK;
}

void task_counts_store_chunk_sql(db_dialect_id_t d, int64_t from, int64_t rows, db_sql_t *q)
{
	/* The last of the first ROWS + 1 keys from FROM: one index range. */
	db_sql_init(q);
	db_sql_add(q, "SELECT COUNT(*), MAX(CompletedTime) FROM (");
	db_sql_select(q, d, rows + 1);
	db_sql_add(q, "CompletedTime FROM ServerTasks WHERE CompletedTime >= ? "
	              "ORDER BY CompletedTime, Id");
	db_sql_bind(q, DBP_INT(from));
	db_sql_limit(q, d, rows + 1);
	db_sql_add(q, ") k");
}

db_status_t task_counts_store_chunk_end(db_conn_t *c, int64_t from, int64_t rows, int64_t *end,
                                        bool *found)
{
	db_sql_t q;
	task_counts_store_chunk_sql(db_conn_dialect(c), from, rows, &q);
	chunk_ctx_t x = {0, end};
	db_status_t s = db_sql_query(c, &q, chunk_row, &x);
	*found = s == DB_OK && x.rows > rows;
	return s == DB_NO_ROWS ? DB_OK : s;
}
