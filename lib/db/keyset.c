/* Keyset pages: see keyset.h. */
#include "keyset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialect.h"

void db_sql_init(db_sql_t *q)
{
	q->sql[0] = '\0';
	q->len = 0;
	q->n = 0;
	q->overflow = false;
}

void db_sql_add(db_sql_t *q, const char *text)
{
	size_t n = strlen(text);
	if (q->len + n >= sizeof q->sql) {
		q->overflow = true;
		return;
	}
	memcpy(q->sql + q->len, text, n + 1);
	q->len += n;
}

void db_sql_bind(db_sql_t *q, db_param_t p)
{
	if (q->n >= DB_SQL_PARAMS) {
		q->overflow = true;
		return;
	}
	q->p[q->n++] = p;
}

void db_sql_select(db_sql_t *q, db_dialect_id_t dialect, int64_t limit)
{
	db_sql_add(q, "SELECT ");
	if (db_dialect(dialect)->top_limit) {
		db_sql_add(q, "TOP (?) ");
		db_sql_bind(q, DBP_INT(limit));
	}
}

void db_sql_limit(db_sql_t *q, db_dialect_id_t dialect, int64_t limit)
{
	if (!db_dialect(dialect)->top_limit) {
		db_sql_add(q, " LIMIT ?");
		db_sql_bind(q, DBP_INT(limit));
	}
}

void db_sql_in(db_sql_t *q, const char *const *ids, size_t n)
{
	db_sql_add(q, "(");
	for (size_t i = 0; i < DB_IN_CHUNK; i++) {
		db_sql_add(q, i ? ", ?" : "?");
		db_sql_bind(q, DBP_TEXT(ids[i < n ? i : 0]));
	}
	db_sql_add(q, ")");
}

db_status_t db_sql_query(db_conn_t *c, const db_sql_t *q, db_row_fn fn, void *ctx)
{
	if (q->overflow)
		return DB_ERROR;
	return db_query(c, q->sql, q->p, q->n, fn, ctx);
}

db_status_t db_query_in_chunks(db_conn_t *c, const char *const *ids, size_t n, db_in_sql_fn build,
                               db_row_fn fn, void *ctx)
{
	db_sql_t *q = malloc(sizeof *q);
	if (!q)
		return DB_ERROR;
	db_status_t s = DB_OK;
	for (size_t i = 0; i < n && (s == DB_OK || s == DB_NO_ROWS); i += DB_IN_CHUNK) {
		build(ids + i, n - i, q);
		s = db_sql_query(c, q, fn, ctx);
	}
	free(q);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_branch_t *db_list_branch(db_list_query_t *q, const char *where)
{
	if (q->n >= DB_LIST_BRANCHES)
		return NULL;
	db_branch_t *b = &q->b[q->n++];
	memset(b, 0, sizeof *b);
	b->where = where;
	return b;
}

void db_branch_bind(db_branch_t *b, db_param_t p)
{
	if (b->n < DB_BRANCH_PARAMS)
		b->p[b->n++] = p;
}

/* " ORDER BY k1 DESC, k2 DESC" (or ascending). */
static void order_by(db_sql_t *s, const db_list_t *l)
{
	const char *dir = l->desc ? " DESC" : "";
	db_sql_add(s, " ORDER BY ");
	db_sql_add(s, l->k1);
	db_sql_add(s, dir);
	if (l->k2) {
		db_sql_add(s, ", ");
		db_sql_add(s, l->k2);
		db_sql_add(s, l->k2_asc ? "" : dir);
	}
}

/* The keys selected by a branch: "k1, k2", or "k1, Id" when k1 alone is
 * unique: the page's rows are then found by their Id (the primary key). */
static void keys(db_sql_t *s, const db_list_t *l)
{
	db_sql_add(s, l->k1);
	db_sql_add(s, ", ");
	db_sql_add(s, l->k2 ? l->k2 : "Id");
}

/* WHERE of branch B with the cursor of Q (when WITH_CURSOR).  The cursor is
 * written as a bound on k1 (an index range) and a tie-break that only rows
 * with k1 equal to the cursor's can fail, so the seek never reads the rows
 * before it. */
static void branch_where(db_sql_t *s, const db_list_t *l, const db_branch_t *b,
                         const db_list_query_t *q, bool with_cursor)
{
	bool any = false;
	if (b && b->where) {
		db_sql_add(s, " WHERE ");
		db_sql_add(s, b->where);
		for (size_t i = 0; i < b->n; i++)
			db_sql_bind(s, b->p[i]);
		any = true;
	}
	if (!with_cursor || !q->after)
		return;
	db_param_t k1 = l->k1_text ? DBP_TEXT(q->after_k1_text) : DBP_INT(q->after_k1);
	db_sql_add(s, any ? " AND " : " WHERE ");
	db_sql_add(s, l->k1);
	if (!l->k2) {
		db_sql_add(s, l->desc ? " < ?" : " > ?");
		db_sql_bind(s, k1);
		return;
	}
	db_sql_add(s, l->desc ? " <= ? AND (" : " >= ? AND (");
	db_sql_bind(s, k1);
	db_sql_add(s, l->k1);
	db_sql_add(s, l->desc ? " < ? OR " : " > ? OR ");
	db_sql_bind(s, k1);
	db_sql_add(s, l->k2);
	db_sql_add(s, l->desc && !l->k2_asc ? " < ?)" : " > ?)");
	db_sql_bind(s, DBP_TEXT(q->after_k2));
}

/* One branch's keys in the list's order, LIMIT rows from the cursor.
 * Counts keep the order too: it makes the database read the filter's own
 * index instead of guessing how dense the matches are in the table. */
static void branch_keys(db_sql_t *s, db_dialect_id_t d, const db_list_t *l, const db_branch_t *b,
                        const db_list_query_t *q, bool with_cursor, int64_t limit)
{
	db_sql_select(s, d, limit);
	keys(s, l);
	db_sql_add(s, " FROM ");
	db_sql_add(s, l->table);
	branch_where(s, l, b, q, with_cursor);
	order_by(s, l);
	db_sql_limit(s, d, limit);
}

/* " FROM <the rows the page is cut from>": one branch's range, or every
 * branch limited to what the page can need and merged. */
static void page_source(db_sql_t *s, db_dialect_id_t d, const db_list_t *l,
                        const db_list_query_t *q)
{
	size_t n = q->n ? q->n : 1;
	if (n == 1) {
		db_sql_add(s, " FROM ");
		db_sql_add(s, l->table);
		branch_where(s, l, q->n ? &q->b[0] : NULL, q, true);
		return;
	}
	db_sql_add(s, " FROM (");
	for (size_t i = 0; i < n; i++) {
		char alias[32];
		snprintf(alias, sizeof alias, ") b%zu", i);
		if (i)
			db_sql_add(s, l->distinct ? " UNION " : " UNION ALL ");
		db_sql_add(s, "SELECT ");
		keys(s, l);
		db_sql_add(s, " FROM (");
		branch_keys(s, d, l, &q->b[i], q, true, q->skip + q->take);
		db_sql_add(s, alias);
	}
	db_sql_add(s, ") m");
}

/* The keys of the page: TAKE rows of the source after SKIP, in order.  Where
 * rows are limited by TOP, those past SKIP are picked by ROW_NUMBER(). */
static void page_keys(db_sql_t *s, db_dialect_id_t d, const db_list_t *l, const db_list_query_t *q)
{
	const char *key = l->k2 ? l->k2 : "Id";
	if (q->skip > 0 && db_dialect(d)->top_limit) {
		db_sql_add(s, "SELECT ");
		db_sql_add(s, key);
		db_sql_add(s, " FROM (");
		db_sql_select(s, d, q->skip + q->take);
		db_sql_add(s, key);
		db_sql_add(s, ", ROW_NUMBER() OVER (");
		order_by(s, l);
		db_sql_add(s, ") AS PageRow");
		page_source(s, d, l, q);
		order_by(s, l);
		db_sql_add(s, ") p WHERE PageRow > ?");
		db_sql_bind(s, DBP_INT(q->skip));
		return;
	}
	db_sql_select(s, d, q->take);
	db_sql_add(s, key);
	page_source(s, d, l, q);
	order_by(s, l);
	db_sql_limit(s, d, q->take);
	if (q->skip > 0) {
		db_sql_add(s, " OFFSET ?");
		db_sql_bind(s, DBP_INT(q->skip));
	}
}

void db_list_page_sql(db_dialect_id_t dialect, const db_list_t *l, const db_list_query_t *q,
                      db_sql_t *out)
{
	db_sql_init(out);
	db_sql_add(out, "SELECT ");
	db_sql_add(out, l->columns);
	db_sql_add(out, " FROM ");
	db_sql_add(out, l->table);
	db_sql_add(out, " WHERE ");
	db_sql_add(out, l->k2 ? l->k2 : "Id");
	db_sql_add(out, " IN (");
	page_keys(out, dialect, l, q);
	db_sql_add(out, ")");
	order_by(out, l);
}

void db_list_count_sql(db_dialect_id_t dialect, const db_list_t *l, const db_list_query_t *q,
                       db_sql_t *out)
{
	db_sql_init(out);
	size_t n = q->n ? q->n : 1;
	db_sql_add(out, "SELECT COUNT(*) FROM (");
	for (size_t i = 0; i < n; i++) {
		char alias[32];
		snprintf(alias, sizeof alias, ") c%zu", i);
		if (i)
			db_sql_add(out, l->distinct ? " UNION " : " UNION ALL ");
		db_sql_add(out, "SELECT ");
		keys(out, l);
		db_sql_add(out, " FROM (");
		branch_keys(out, dialect, l, q->n ? &q->b[i] : NULL, q, false,
		            DB_LIST_COUNT_CAP + 1);
		db_sql_add(out, alias);
	}
	db_sql_add(out, ") c");
}

typedef struct {
	db_row_fn fn;
	void *ctx;
} page_ctx_t;

db_status_t db_list_page(db_conn_t *c, const db_list_t *l, const db_list_query_t *q, db_row_fn fn,
                         void *ctx)
{
	db_sql_t *s = malloc(sizeof *s);
	if (!s)
		return DB_ERROR;
	db_list_page_sql(db_conn_dialect(c), l, q, s);
	db_status_t st = db_sql_query(c, s, fn, ctx);
	free(s);
	return st == DB_NO_ROWS ? DB_OK : st;
}

db_status_t db_list_count(db_conn_t *c, const db_list_t *l, const db_list_query_t *q,
                          int64_t *total)
{
	db_sql_t *s = malloc(sizeof *s);
	if (!s)
		return DB_ERROR;
	db_list_count_sql(db_conn_dialect(c), l, q, s);
	*total = 0;
	db_status_t st = s->overflow ? DB_ERROR : db_query_int(c, s->sql, s->p, s->n, total);
	free(s);
	if (*total > DB_LIST_COUNT_CAP)
		*total = DB_LIST_COUNT_CAP;
	return st;
}

typedef struct {
	const db_list_t *l;
	db_list_query_t *q;
	char *buf;
	size_t size;
} anchor_ctx_t;

static db_status_t anchor_row(void *vctx, db_row_t *r)
{
	anchor_ctx_t *x = vctx;
	if (x->l->k1_text) {
		db_row_copy(r, 0, x->buf, x->size);
		x->q->after_k1_text = x->buf;
	} else {
		bool is_null = false;
		x->q->after_k1 = db_row_int(r, 0, &is_null);
		if (is_null)
			return DB_NO_ROWS; /* not in this list's order at all */
	}
	x->q->after = true;
	return DB_OK;
}

void db_list_anchor_sql(const db_list_t *l, const char *id, db_sql_t *out)
{
	db_sql_init(out);
	db_sql_add(out, "SELECT ");
	db_sql_add(out, l->k1);
	db_sql_add(out, " FROM ");
	db_sql_add(out, l->table);
	db_sql_add(out, " WHERE Id = ?");
	db_sql_bind(out, DBP_TEXT(id));
}

db_status_t db_list_anchor(db_conn_t *c, const db_list_t *l, const char *id, db_list_query_t *q,
                           char *buf, size_t size)
{
	db_sql_t *s = malloc(sizeof *s);
	if (!s)
		return DB_ERROR;
	db_list_anchor_sql(l, id, s);
	anchor_ctx_t x = {l, q, buf, size};
	q->after_k2 = id;
	db_status_t st = db_sql_query(c, s, anchor_row, &x);
	free(s);
	return st;
}
