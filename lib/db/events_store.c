#include "events_store.h"

#include <stdlib.h>
#include <string.h>

#include "dialect.h"
#include "keyset.h"

#define EVENT_COLUMNS                                                                              \
	"Id, Occurred, Category, Operation, ResourceId, UserId, Username, RemoteAddress, "         \
	"ForwardedFor, Result, StatusCode, Message, Details"

static db_param_t text_or_null(const char *s)
{
	return s && *s ? DBP_TEXT(s) : DBP_NULL;
}

db_status_t events_store_insert(db_conn_t *c, const oh_event_t *e)
{
	db_param_t p[] = {
	    DBP_TEXT(e->id),
	    DBP_INT(e->occurred),
	    DBP_TEXT(e->category),
	    DBP_TEXT(e->operation),
	    text_or_null(e->resource_id),
	    text_or_null(e->user_id),
	    text_or_null(e->username),
	    text_or_null(e->remote),
	    text_or_null(e->forwarded),
	    DBP_TEXT(e->result),
	    e->status ? DBP_INT(e->status) : DBP_NULL,
	    DBP_TEXT(e->message),
	    text_or_null(e->details),
	};
	return db_exec(c,
	               "INSERT INTO Events (" EVENT_COLUMNS
	               ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               p, sizeof p / sizeof p[0], NULL);
}

static void read_event(db_row_t *r, oh_event_t *e)
{
	memset(e, 0, sizeof *e);
	db_row_copy(r, 0, e->id, sizeof e->id);
	e->occurred = db_row_int(r, 1, NULL);
	db_row_copy(r, 2, e->category, sizeof e->category);
	db_row_copy(r, 3, e->operation, sizeof e->operation);
	db_row_copy(r, 4, e->resource_id, sizeof e->resource_id);
	db_row_copy(r, 5, e->user_id, sizeof e->user_id);
	db_row_copy(r, 6, e->username, sizeof e->username);
	db_row_copy(r, 7, e->remote, sizeof e->remote);
	db_row_copy(r, 8, e->forwarded, sizeof e->forwarded);
	db_row_copy(r, 9, e->result, sizeof e->result);
	e->status = (int)db_row_int(r, 10, NULL);
	db_row_copy(r, 11, e->message, sizeof e->message);
	const char *d = db_row_text(r, 12);
	if (d) {
		e->details = strdup(d);
		if (!e->details)
			abort();
	}
}

static db_status_t one_event(void *ctx, db_row_t *r)
{
	read_event(r, ctx);
	return DB_OK;
}

db_status_t events_store_get(db_conn_t *c, const char *id, oh_event_t *out)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c, "SELECT " EVENT_COLUMNS " FROM Events WHERE Id = ?", p, 1, one_event,
	                out);
}

typedef struct {
	void (*fn)(void *, oh_event_t *);
	void *ctx;
} each_ctx_t;

static db_status_t each_event(void *vctx, db_row_t *r)
{
	each_ctx_t *x = vctx;
	oh_event_t e;
	read_event(r, &e);
	x->fn(x->ctx, &e);
	return DB_OK;
}

/* Newest first (IX_Events_Occurred); each filter has an index that leads
 * with its column and ends in this order (migration 0012). */
const db_list_t events_store_list_def = {.table = "Events",
                                         .columns = EVENT_COLUMNS,
                                         .k1 = "Occurred",
                                         .k2 = "Id",
                                         .desc = true,
                                         .distinct = true};

void events_store_list_query(const oh_event_filter_t *f, db_list_query_t *q, char (*where)[256])
{
	memset(q, 0, sizeof *q);
	q->skip = f->skip;
	q->take = f->take;
	/* "user" is a key's Id or its name: two columns, so two branches (one
	 * index each), merged without duplicates. */
	bool user = f->user && *f->user;
	static const char *const user_where[2] = {"UserId = ?", "Username = ?"};
	size_t nb = user ? 2 : 1;
	for (size_t i = 0; i < nb; i++) {
		/* Fixed fragments only; every value is bound. */
		char *w = where[i];
		w[0] = '\0';
		db_branch_t *b = db_list_branch(q, w);
		const char *and = "";
		if (user) {
			strcat(w, user_where[i]);
			db_branch_bind(b, DBP_TEXT(f->user));
			and = " AND ";
		}
		if (f->category && *f->category) {
			strcat(strcat(w, and), "Category = ?");
			db_branch_bind(b, DBP_TEXT(f->category));
			and = " AND ";
		}
		if (f->operation && *f->operation) {
			strcat(strcat(w, and), "Operation = ?");
			db_branch_bind(b, DBP_TEXT(f->operation));
			and = " AND ";
		}
		if (f->resource && *f->resource) {
			strcat(strcat(w, and), "ResourceId = ?");
			db_branch_bind(b, DBP_TEXT(f->resource));
			and = " AND ";
		}
		if (f->from > 0) {
			strcat(strcat(w, and), "Occurred >= ?");
			db_branch_bind(b, DBP_INT(f->from));
			and = " AND ";
		}
		if (f->to > 0) {
			strcat(strcat(w, and), "Occurred < ?");
			db_branch_bind(b, DBP_INT(f->to));
			and = " AND ";
		}
		if (!*and)
			b->where = NULL;
	}
	if (nb == 1 && !q->b[0].where)
		q->n = 0; /* the whole table */
}

db_status_t events_store_list(db_conn_t *c, const oh_event_filter_t *f,
                              void (*fn)(void *, oh_event_t *), void *ctx, int64_t *total)
{
	db_list_query_t q;
	char where[2][256];
	events_store_list_query(f, &q, where);
	char anchor[32];
	db_status_t s = DB_OK;
	if (f->after && *f->after)
		s = db_list_anchor(c, &events_store_list_def, f->after, &q, anchor, sizeof anchor);
	if (s == DB_OK)
		s = db_list_count(c, &events_store_list_def, &q, total);
	each_ctx_t x = {fn, ctx};
	if (s == DB_OK)
		s = db_list_page(c, &events_store_list_def, &q, each_event, &x);
	return s;
}

static db_status_t min_row(void *ctx, db_row_t *r)
{
	bool is_null = false;
	*(int64_t *)ctx = db_row_int(r, 0, &is_null);
	return is_null ? DB_NO_ROWS : DB_OK;
}

db_status_t events_store_oldest_time(db_conn_t *c, int64_t before, int64_t *out)
{
	db_param_t p[] = {DBP_INT(before)};
	return db_query(c, "SELECT MIN(Occurred) FROM Events WHERE Occurred < ?", p, 1, min_row,
	                out);
}

db_status_t events_store_range(db_conn_t *c, int64_t from, int64_t to, int64_t after_time,
                               const char *after_id, int64_t limit,
                               void (*fn)(void *, oh_event_t *), void *ctx)
{
	db_param_t p[] = {DBP_INT(from), DBP_INT(to), DBP_INT(after_time), DBP_INT(after_time),
	                  DBP_TEXT(after_id)};
	each_ctx_t x = {fn, ctx};
	db_status_t s = db_query_page(
	    c,
	    "SELECT " EVENT_COLUMNS " FROM Events WHERE Occurred >= ? AND Occurred < ? AND "
	    "Occurred >= ? AND (Occurred > ? OR Id > ?) ORDER BY Occurred, Id",
	    p, 5, limit, 0, each_event, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t events_store_delete(db_conn_t *c, const char *id, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(c, "DELETE FROM Events WHERE Id = ?", p, 1, rows);
}
