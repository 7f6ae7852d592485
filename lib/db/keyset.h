/* Pages of a list read through an index in the list's own order, for the
 * store modules.  A list is ordered by one or two key columns (a time and
 * the unique Id, or a unique Name); a page is found by seeking to a cursor
 * (the keys of the last row the client has) and reading the next rows in
 * index order, so its cost is the rows it returns whatever the table holds.
 * skip stays for Octopus clients but is capped (DB_LIST_MAX_SKIP), and
 * totals are counted up to DB_LIST_COUNT_CAP only.
 *
 * A filter that no single index serves in the list's order (a set of
 * states, "user" matching either of two columns) is given as several
 * branches, each one index range in that order; the page is their merge.
 *
 * The pattern for a new list (packages, …): an index per filter whose
 * columns are the filter's equality columns then the ORDER BY columns; a
 * db_list_t naming the table and keys; the filter as branches; then
 * db_list_page and db_list_count.  tests/unit/test_list_plans.c runs
 * EXPLAIN over every list query built this way and fails when one scans. */
#ifndef DB_KEYSET_H
#define DB_KEYSET_H

#include "db.h"

/* The deepest skip a list takes (the rest is reached with a cursor). */
#define DB_LIST_MAX_SKIP 10000
/* Totals are exact up to this many rows; above, they report this.  A
 * count reads up to this many index entries per request, so it stays
 * small: it was most of a first page's cost at 10000. */
#define DB_LIST_COUNT_CAP 1000

#define DB_SQL_MAX       8192
#define DB_SQL_PARAMS    64
#define DB_LIST_BRANCHES 8
#define DB_BRANCH_PARAMS 6

/* A statement being assembled from fixed fragments and bound values. */
typedef struct {
	char sql[DB_SQL_MAX];
	size_t len;
	db_param_t p[DB_SQL_PARAMS];
	size_t n;
	bool overflow; /* a fragment or parameter did not fit: do not run */
} db_sql_t;

void db_sql_init(db_sql_t *q);
/* Appends the fixed fragment TEXT (never user input). */
void db_sql_add(db_sql_t *q, const char *text);
/* Appends a bound value for a marker already in the text. */
void db_sql_bind(db_sql_t *q, db_param_t p);
/* Begins a SELECT of at most LIMIT rows: "SELECT TOP (?) " where the
 * dialect limits rows so (SQL Server), else "SELECT ".  End it, after its
 * ORDER BY, with db_sql_limit. */
void db_sql_select(db_sql_t *q, db_dialect_id_t dialect, int64_t limit);
/* Ends a SELECT begun with db_sql_select: " LIMIT ?" where the dialect
 * limits rows at the end, else nothing. */
void db_sql_limit(db_sql_t *q, db_dialect_id_t dialect, int64_t limit);
/* Ids per IN list: a longer list is read DB_IN_CHUNK ids per statement. */
#define DB_IN_CHUNK 32
/* Appends "(?, …)" with DB_IN_CHUNK markers bound to the first N ids of
 * IDS (at most DB_IN_CHUNK are used); a shorter list repeats its first id,
 * so the text is always the same statement. */
void db_sql_in(db_sql_t *q, const char *const *ids, size_t n);
/* Builds the statement over IDS[0..N) (at most DB_IN_CHUNK used). */
typedef void (*db_in_sql_fn)(const char *const *ids, size_t n, db_sql_t *q);
/* Runs the statement BUILD makes for each DB_IN_CHUNK ids of IDS, calling
 * FN per row.  DB_OK also when no row matched. */
db_status_t db_query_in_chunks(db_conn_t *c, const char *const *ids, size_t n, db_in_sql_fn build,
                               db_row_fn fn, void *ctx);
/* Runs Q as db_query; DB_ERROR when it overflowed. */
db_status_t db_sql_query(db_conn_t *c, const db_sql_t *q, db_row_fn fn, void *ctx);

/* A list's table and order. */
typedef struct {
	const char *table;   /* "ServerTasks" */
	const char *columns; /* the page's columns, unqualified */
	const char *k1;      /* first order column */
	const char *k2;      /* the unique Id that breaks ties, or NULL when k1 is unique */
	bool k1_text;        /* k1 is text (a Name), else BIGINT */
	bool desc;           /* newest first */
	bool k2_asc;         /* k2 ascending under a descending k1 (an order kept
	                      * from before keyset pages: maintenance runs) */
	bool distinct;       /* branches may overlap: merge them with UNION */
} db_list_t;

/* One index range: WHERE is a fixed fragment ("State = ? AND Name = ?")
 * whose values are P; NULL WHERE for the whole table. */
typedef struct {
	const char *where;
	db_param_t p[DB_BRANCH_PARAMS];
	size_t n;
} db_branch_t;

typedef struct {
	db_branch_t b[DB_LIST_BRANCHES];
	size_t n; /* 0 counts as one branch over the whole table */
	/* The cursor: the page starts after the row with these keys. */
	bool after;
	int64_t after_k1;
	const char *after_k1_text; /* when k1_text */
	const char *after_k2;
	int64_t skip, take;
} db_list_query_t;

/* Adds a branch to Q; returns it (its where and values to fill), or NULL
 * when Q already has DB_LIST_BRANCHES. */
db_branch_t *db_list_branch(db_list_query_t *q, const char *where);
void db_branch_bind(db_branch_t *b, db_param_t p);

/* Builds into OUT the statement that returns the page of Q: L's columns
 * in L's order.  Pure: for the store and for the plan test. */
void db_list_page_sql(db_dialect_id_t dialect, const db_list_t *l, const db_list_query_t *q,
                      db_sql_t *out);
/* Builds the statement whose one row is how many rows Q's branches match,
 * counted up to DB_LIST_COUNT_CAP + 1 per branch. */
void db_list_count_sql(db_dialect_id_t dialect, const db_list_t *l, const db_list_query_t *q,
                       db_sql_t *out);

/* Runs the page of Q, calling FN per row.  DB_OK also for an empty page. */
db_status_t db_list_page(db_conn_t *c, const db_list_t *l, const db_list_query_t *q, db_row_fn fn,
                         void *ctx);

/* *TOTAL: the rows Q matches, or DB_LIST_COUNT_CAP when more do. */
db_status_t db_list_count(db_conn_t *c, const db_list_t *l, const db_list_query_t *q,
                          int64_t *total);

/* Builds into OUT the statement db_list_anchor runs. */
void db_list_anchor_sql(const db_list_t *l, const char *id, db_sql_t *out);

/* Reads the order keys of the row whose Id is ID into Q's cursor (K1
 * from L->k1; the text form is kept in BUF of SIZE).  DB_NO_ROWS when
 * there is no such row. */
db_status_t db_list_anchor(db_conn_t *c, const db_list_t *l, const char *id, db_list_query_t *q,
                           char *buf, size_t size);

#endif
