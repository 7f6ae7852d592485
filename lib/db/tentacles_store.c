#include "tentacles_store.h"

#include <stdint.h>
#include <string.h>

#include "dialect.h"
#include "keyset.h"

#define TENTACLE_COLUMNS                                                                           \
	"Id, Name, Thumbprint, CommunicationStyle, SubscriptionId, Uri, RegisteredAt, "            \
	"RegisteredBy, ServersChangedAt, NeedsReRegistration, HealthStatus, HealthCheckedAt, "     \
	"HealthDetail, CoverageWarnedAt"

static db_param_t text_or_null(const char *s)
{
	return s && *s ? DBP_TEXT(s) : DBP_NULL;
}

db_status_t tentacles_store_insert(db_conn_t *c, const oh_tentacle_t *t)
{
	db_param_t p[] = {DBP_TEXT(t->id),
	                  DBP_TEXT(t->name),
	                  DBP_TEXT(t->thumbprint),
	                  DBP_TEXT(t->polling ? "TentacleActive" : "TentaclePassive"),
	                  text_or_null(t->subscription_id),
	                  text_or_null(t->uri),
	                  DBP_INT(t->registered_at),
	                  text_or_null(t->registered_by)};
	return db_exec(c,
	               "INSERT INTO Tentacles (Id, Name, Thumbprint, CommunicationStyle, "
	               "SubscriptionId, Uri, RegisteredAt, RegisteredBy, NeedsReRegistration) "
	               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
	               p, 8, NULL);
}

db_status_t tentacles_store_delete(db_conn_t *c, const char *id, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	db_status_t s = db_exec(c, "DELETE FROM TentacleServers WHERE TentacleId = ?", p, 1, NULL);
	if (s == DB_OK)
		s = db_exec(c, "DELETE FROM TentaclePolls WHERE TentacleId = ?", p, 1, NULL);
	if (s == DB_OK)
		s = db_exec(c, "DELETE FROM Tentacles WHERE Id = ?", p, 1, rows);
	return s;
}

static void read_tentacle(db_row_t *r, oh_tentacle_t *t)
{
	memset(t, 0, sizeof *t);
	db_row_copy(r, 0, t->id, sizeof t->id);
	db_row_copy(r, 1, t->name, sizeof t->name);
	db_row_copy(r, 2, t->thumbprint, sizeof t->thumbprint);
	const char *style = db_row_text(r, 3);
	t->polling = style && strcmp(style, "TentacleActive") == 0;
	db_row_copy(r, 4, t->subscription_id, sizeof t->subscription_id);
	db_row_copy(r, 5, t->uri, sizeof t->uri);
	t->registered_at = db_row_int(r, 6, NULL);
	db_row_copy(r, 7, t->registered_by, sizeof t->registered_by);
	t->servers_changed_at = db_row_int(r, 8, NULL);
	t->needs_rereg = db_row_int(r, 9, NULL) != 0;
	db_row_copy(r, 10, t->health_status, sizeof t->health_status);
	t->health_checked_at = db_row_int(r, 11, NULL);
	db_row_copy(r, 12, t->health_detail, sizeof t->health_detail);
	t->coverage_warned_at = db_row_int(r, 13, NULL);
}

static db_status_t one_tentacle(void *ctx, db_row_t *r)
{
	read_tentacle(r, ctx);
	return DB_OK;
}

db_status_t tentacles_store_get(db_conn_t *c, const char *id, oh_tentacle_t *out)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c, "SELECT " TENTACLE_COLUMNS " FROM Tentacles WHERE Id = ?", p, 1,
	                one_tentacle, out);
}

typedef struct {
	void (*fn)(void *, const oh_tentacle_t *);
	void *ctx;
} each_ctx_t;

static db_status_t each_row(void *vctx, db_row_t *r)
{
	each_ctx_t *x = vctx;
	oh_tentacle_t t;
	read_tentacle(r, &t);
	x->fn(x->ctx, &t);
	return DB_OK;
}

typedef struct {
	void (*fn)(void *, const char *, const char *, const char *, int);
	void *ctx;
} server_ctx_t;

static db_status_t server_row(void *vctx, db_row_t *r)
{
	server_ctx_t *x = vctx;
	char tid[51], nid[101], addr[256];
	db_row_copy(r, 0, tid, sizeof tid);
	db_row_copy(r, 1, nid, sizeof nid);
	db_row_copy(r, 2, addr, sizeof addr);
	x->fn(x->ctx, tid, nid, addr, (int)db_row_int(r, 3, NULL));
	return DB_OK;
}

db_status_t tentacles_store_servers(db_conn_t *c, const char *id,
                                    void (*fn)(void *, const char *, const char *, const char *,
                                               int),
                                    void *ctx)
{
	server_ctx_t x = {fn, ctx};
	db_param_t p[] = {DBP_TEXT(id)};
	return id ? db_query(c,
	                     "SELECT TentacleId, NodeId, Address, Port FROM TentacleServers "
	                     "WHERE TentacleId = ? ORDER BY NodeId",
	                     p, 1, server_row, &x)
	          : db_query(c,
	                     "SELECT TentacleId, NodeId, Address, Port FROM TentacleServers "
	                     "ORDER BY TentacleId, NodeId",
	                     NULL, 0, server_row, &x);
}

db_status_t tentacles_store_clear_servers(db_conn_t *c, const char *id)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(c, "DELETE FROM TentacleServers WHERE TentacleId = ?", p, 1, NULL);
}

db_status_t tentacles_store_add_server(db_conn_t *c, const char *id, const char *node_id,
                                       const char *address, int port, int64_t now)
{
	db_param_t p[] = {DBP_TEXT(id), DBP_TEXT(node_id), DBP_TEXT(address), DBP_INT(port),
	                  DBP_INT(now)};
	return db_exec(c,
	               "INSERT INTO TentacleServers (TentacleId, NodeId, Address, Port, AddedAt) "
	               "VALUES (?, ?, ?, ?, ?)",
	               p, 5, NULL);
}

db_status_t tentacles_store_mark_changed(db_conn_t *c, const char *id, int64_t now, bool rereg)
{
	db_param_t p[] = {DBP_INT(now), DBP_INT(rereg ? 1 : 0), DBP_TEXT(id)};
	return db_exec(c,
	               "UPDATE Tentacles SET ServersChangedAt = ?, NeedsReRegistration = ? "
	               "WHERE Id = ?",
	               p, 3, NULL);
}

db_status_t tentacles_store_clear_rereg(db_conn_t *c, const char *id)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(c, "UPDATE Tentacles SET NeedsReRegistration = 0 WHERE Id = ?", p, 1, NULL);
}

typedef struct {
	void (*fn)(void *, const char *, const char *, int64_t);
	void *ctx;
} poll_ctx_t;

static db_status_t poll_row(void *vctx, db_row_t *r)
{
	poll_ctx_t *x = vctx;
	char tid[51], nid[101];
	db_row_copy(r, 0, tid, sizeof tid);
	db_row_copy(r, 1, nid, sizeof nid);
	x->fn(x->ctx, tid, nid, db_row_int(r, 2, NULL));
	return DB_OK;
}

db_status_t tentacles_store_polls(db_conn_t *c, const char *id,
                                  void (*fn)(void *, const char *, const char *, int64_t),
                                  void *ctx)
{
	poll_ctx_t x = {fn, ctx};
	db_param_t p[] = {DBP_TEXT(id)};
	return id ? db_query(c,
	                     "SELECT TentacleId, NodeId, LastPollAt FROM TentaclePolls "
	                     "WHERE TentacleId = ? ORDER BY NodeId",
	                     p, 1, poll_row, &x)
	          : db_query(c,
	                     "SELECT TentacleId, NodeId, LastPollAt FROM TentaclePolls "
	                     "ORDER BY TentacleId, NodeId",
	                     NULL, 0, poll_row, &x);
}

db_status_t tentacles_store_put_poll(db_conn_t *c, const char *id, const char *node_id, int64_t now)
{
	int64_t rows = 0;
	db_param_t u[] = {DBP_INT(now), DBP_TEXT(id), DBP_TEXT(node_id)};
	db_status_t s = db_exec(c,
	                        "UPDATE TentaclePolls SET LastPollAt = ? "
	                        "WHERE TentacleId = ? AND NodeId = ?",
	                        u, 3, &rows);
	if (s != DB_OK || rows > 0)
		return s;
	db_param_t p[] = {DBP_TEXT(id), DBP_TEXT(node_id), DBP_INT(now)};
	return db_exec(
	    c, "INSERT INTO TentaclePolls (TentacleId, NodeId, LastPollAt) VALUES (?, ?, ?)", p, 3,
	    NULL);
}

db_status_t tentacles_store_set_health(db_conn_t *c, const char *id, const char *status,
                                       const char *detail, int64_t now)
{
	db_param_t p[] = {DBP_TEXT(status), text_or_null(detail), DBP_INT(now), DBP_TEXT(id)};
	return db_exec(
	    c,
	    "UPDATE Tentacles SET HealthStatus = ?, HealthDetail = ?, HealthCheckedAt = ? "
	    "WHERE Id = ?",
	    p, 4, NULL);
}

db_status_t tentacles_store_set_warned(db_conn_t *c, const char *id, int64_t at)
{
	db_param_t p[] = {at ? DBP_INT(at) : DBP_NULL, DBP_TEXT(id)};
	return db_exec(c, "UPDATE Tentacles SET CoverageWarnedAt = ? WHERE Id = ?", p, 2, NULL);
}

db_status_t tentacles_store_set_node_port(db_conn_t *c, const char *node_id, int port)
{
	db_param_t p[] = {port ? DBP_INT(port) : DBP_NULL, DBP_TEXT(node_id)};
	return db_exec(c, "UPDATE OctopusServerNodes SET PollingPort = ? WHERE Id = ?", p, 2, NULL);
}

db_status_t tentacles_store_lock(db_conn_t *c, const char *id)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(
	    c, "UPDATE Tentacles SET NeedsReRegistration = NeedsReRegistration WHERE Id = ?", p, 1,
	    NULL);
}

db_status_t tentacles_store_lock_polling(db_conn_t *c)
{
	return db_exec(c, "UPDATE ClusterLocks SET Period = Period + 1 WHERE Name = 'polling'",
	               NULL, 0, NULL);
}

db_status_t tentacles_store_name_used(db_conn_t *c, const char *name)
{
	int64_t n = 0;
	db_param_t p[] = {DBP_TEXT(name)};
	db_status_t s = db_query_int(c, "SELECT COUNT(*) FROM Tentacles WHERE Name = ?", p, 1, &n);
	return s == DB_OK && n == 0 ? DB_NO_ROWS : s;
}

db_status_t tentacles_store_count_polling(db_conn_t *c, int64_t *n)
{
	return db_query_int(c,
	                    "SELECT COUNT(*) FROM Tentacles WHERE CommunicationStyle = "
	                    "'TentacleActive'",
	                    NULL, 0, n);
}

/* ---- pages and coverage (migration 0012) -------------------------------- */

typedef struct {
	int64_t *v;
	bool *is_null;
} min_null_t;

static db_status_t min_row_null(void *vctx, db_row_t *r)
{
	min_null_t *x = vctx;
	*x->v = db_row_int(r, 0, x->is_null);
	return DB_OK;
}

/* Keeps the last Id of the rows in x[0] (size x[1]) and counts them in x[2]. */
static db_status_t last_id_row(void *vctx, db_row_t *r)
{
	void **x = vctx;
	db_row_copy(r, 0, x[0], (size_t)(uintptr_t)x[1]);
	(*(int *)x[2])++;
	return DB_OK;
}

const db_list_t tentacles_store_list_def = {
    .table = "Tentacles", .columns = TENTACLE_COLUMNS, .k1 = "Name", .k1_text = true};

const db_list_t tentacles_store_missing_def = {
    .table = "Tentacles", .columns = TENTACLE_COLUMNS, .k1 = "OldestPollAt", .k2 = "Id"};

const db_list_t *tentacles_store_list_query(const oh_tentacle_filter_t *f, db_list_query_t *q,
                                            char *text)
{
	memset(q, 0, sizeof *q);
	q->skip = f->skip;
	q->take = f->take;
	/* TEXT: the WHERE (fixed fragments) then the LIKE pattern.  Each filter
	 * has an index in the list's order (migration 0012); a combination
	 * reads one of them and checks the rest.  partialName, a substring no
	 * index finds, is checked on the rows read in order. */
	char *where = text, *like = text + 200;
	where[0] = '\0';
	db_param_t p[4];
	size_t n = 0;
#define ADD_TERM(t) strcat(strcat(where, where[0] ? " AND " : ""), t)
	if (f->missing) {
		ADD_TERM("OldestPollAt < ?");
		p[n++] = DBP_INT(f->missing_before);
	}
	if (f->only_rereg)
		ADD_TERM("NeedsReRegistration = 1");
	if (f->style != OH_STYLE_ANY) {
		ADD_TERM("CommunicationStyle = ?");
		p[n++] =
		    DBP_TEXT(f->style == OH_STYLE_POLLING ? "TentacleActive" : "TentaclePassive");
	}
	if (f->thumbprint && *f->thumbprint) {
		ADD_TERM("Thumbprint = ?");
		p[n++] = DBP_TEXT(f->thumbprint);
	}
	if (f->partial_name && *f->partial_name) {
		db_like_pattern(f->partial_name, like, TENTACLES_QUERY_TEXT - 200);
		ADD_TERM("LOWER(Name) LIKE ? ESCAPE '!'");
		p[n++] = DBP_TEXT(like);
	}
#undef ADD_TERM
	if (where[0]) {
		db_branch_t *b = db_list_branch(q, where);
		for (size_t i = 0; i < n; i++)
			db_branch_bind(b, p[i]);
	}
	return f->missing ? &tentacles_store_missing_def : &tentacles_store_list_def;
}

db_status_t tentacles_store_page(db_conn_t *c, const oh_tentacle_filter_t *f,
                                 void (*fn)(void *, const oh_tentacle_t *), void *ctx,
                                 int64_t *total)
{
	db_list_query_t q;
	char text[TENTACLES_QUERY_TEXT];
	const db_list_t *l = tentacles_store_list_query(f, &q, text);
	char anchor[201];
	db_status_t s = DB_OK;
	if (f->after && *f->after)
		s = db_list_anchor(c, l, f->after, &q, anchor, sizeof anchor);
	if (s == DB_OK)
		s = db_list_count(c, l, &q, total);
	each_ctx_t x = {fn, ctx};
	if (s == DB_OK)
		s = db_list_page(c, l, &q, each_row, &x);
	return s;
}

void tentacles_store_polls_of_sql(const char *const *ids, size_t n, db_sql_t *q)
{
	db_sql_init(q);
	/* The polls at the nodes coverage is kept for (the online ones), each
	 * one seek of the primary key (CROSS JOIN keeps SQLite to that order):
	 * a Tentacle also keeps a poll row for every node that ever was,
	 * scattered over the table. */
	db_sql_add(q, "SELECT p.TentacleId, p.NodeId, p.LastPollAt FROM CoverageNodes c "
	              "CROSS JOIN TentaclePolls p WHERE p.NodeId = c.NodeId AND "
	              "p.TentacleId IN ");
	db_sql_in(q, ids, n);
}

db_status_t tentacles_store_polls_of(db_conn_t *c, const char *const *ids, size_t n,
                                     void (*fn)(void *, const char *, const char *, int64_t),
                                     void *ctx)
{
	poll_ctx_t x = {fn, ctx};
	return db_query_in_chunks(c, ids, n, tentacles_store_polls_of_sql, poll_row, &x);
}

typedef struct {
	void (*fn)(void *, const char *, int64_t);
	void *ctx;
} count_ctx_t;

static db_status_t count_row(void *vctx, db_row_t *r)
{
	count_ctx_t *x = vctx;
	char tid[51];
	db_row_copy(r, 0, tid, sizeof tid);
	x->fn(x->ctx, tid, db_row_int(r, 1, NULL));
	return DB_OK;
}

void tentacles_store_server_counts_sql(const char *const *ids, size_t n, db_sql_t *q)
{
	db_sql_init(q);
	db_sql_add(q, "SELECT TentacleId, COUNT(*) FROM TentacleServers WHERE TentacleId IN ");
	db_sql_in(q, ids, n);
	db_sql_add(q, " GROUP BY TentacleId");
}

db_status_t tentacles_store_server_counts(db_conn_t *c, const char *const *ids, size_t n,
                                          void (*fn)(void *, const char *, int64_t), void *ctx)
{
	count_ctx_t x = {fn, ctx};
	return db_query_in_chunks(c, ids, n, tentacles_store_server_counts_sql, count_row, &x);
}

static db_status_t counts_row(void *ctx, db_row_t *r)
{
	oh_tentacle_counts_t *o = ctx;
	o->polling = db_row_int(r, 0, NULL);
	o->listening = db_row_int(r, 1, NULL);
	o->rereg = db_row_int(r, 2, NULL);
	o->missing = db_row_int(r, 3, NULL);
	return DB_OK;
}

void tentacles_store_counts_sql(db_dialect_id_t d, int64_t missing_before, db_sql_t *q)
{
	/* One statement, one index range each.  The missing ones in index
	 * order, so the plan reads that range whatever the bound. */
	db_sql_init(q);
	db_sql_add(q,
	           "SELECT (SELECT COUNT(*) FROM Tentacles WHERE CommunicationStyle = "
	           "'TentacleActive'), (SELECT COUNT(*) FROM Tentacles WHERE CommunicationStyle = "
	           "'TentaclePassive'), (SELECT COUNT(*) FROM Tentacles WHERE "
	           "NeedsReRegistration = 1), (SELECT COUNT(*) FROM (");
	db_sql_select(q, d, 1000000000);
	db_sql_add(q, "Id FROM Tentacles WHERE OldestPollAt < ? ORDER BY OldestPollAt, Id");
	db_sql_bind(q, DBP_INT(missing_before));
	db_sql_limit(q, d, 1000000000);
	db_sql_add(q, ") m)");
}

db_status_t tentacles_store_counts(db_conn_t *c, int64_t missing_before, oh_tentacle_counts_t *out)
{
	memset(out, 0, sizeof *out);
	db_sql_t q;
	tentacles_store_counts_sql(db_conn_dialect(c), missing_before, &q);
	db_status_t s = db_sql_query(c, &q, counts_row, out);
	out->total = out->polling + out->listening;
	return s;
}

typedef struct {
	void (*fn)(void *, const char *, const char *, const char *);
	void *ctx;
} missing_ctx_t;

static db_status_t missing_row(void *vctx, db_row_t *r)
{
	missing_ctx_t *x = vctx;
	char tid[51], name[201], node[65];
	db_row_copy(r, 0, tid, sizeof tid);
	db_row_copy(r, 1, name, sizeof name);
	db_row_copy(r, 2, node, sizeof node);
	x->fn(x->ctx, tid, name, node);
	return DB_OK;
}

void tentacles_store_missing_sql(db_dialect_id_t d, int64_t missing_before,
                                 int64_t registered_before, bool unwarned_only, int limit,
                                 db_sql_t *q)
{
	/* The first LIMIT Tentacles missing a node (longest first), one row
	 * per node each misses.  Fixed fragments only; values are bound. */
	db_sql_init(q);
	db_sql_add(q, "SELECT t.Id, t.Name, n.Name FROM (");
	db_sql_select(q, d, limit);
	db_sql_add(q, "Id, Name, OldestPollAt FROM Tentacles WHERE ");
	db_sql_add(q, unwarned_only ? "CoverageWarnedAt IS NULL AND OldestPollAt < ?"
	                            : "OldestPollAt < ?");
	db_sql_bind(q, DBP_INT(missing_before));
	if (registered_before > 0) {
		db_sql_add(q, " AND RegisteredAt < ?");
		db_sql_bind(q, DBP_INT(registered_before));
	}
	/* CoverageWarnedAt leads the order when it is fixed (IS NULL does not
	 * fix a column's order for PostgreSQL's planner). */
	db_sql_add(q, unwarned_only ? " ORDER BY CoverageWarnedAt, OldestPollAt, Id"
	                            : " ORDER BY OldestPollAt, Id");
	db_sql_limit(q, d, limit);
	db_sql_add(q, ") t CROSS JOIN CoverageNodes c JOIN OctopusServerNodes n ON n.Id = c.NodeId "
	              "LEFT JOIN TentaclePolls p ON p.TentacleId = t.Id AND p.NodeId = c.NodeId "
	              "WHERE p.LastPollAt IS NULL OR p.LastPollAt < ? "
	              "ORDER BY t.OldestPollAt, t.Id, n.Name");
	db_sql_bind(q, DBP_INT(missing_before));
}

db_status_t tentacles_store_missing(db_conn_t *c, int64_t missing_before, int64_t registered_before,
                                    bool unwarned_only, int limit,
                                    void (*fn)(void *, const char *, const char *, const char *),
                                    void *ctx)
{
	db_sql_t q;
	tentacles_store_missing_sql(db_conn_dialect(c), missing_before, registered_before,
	                            unwarned_only, limit, &q);
	missing_ctx_t x = {fn, ctx};
	db_status_t s = db_sql_query(c, &q, missing_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

static db_status_t node_id_row(void *vctx, db_row_t *r)
{
	void **x = vctx;
	char id[101];
	db_row_copy(r, 0, id, sizeof id);
	((void (*)(void *, const char *))x[0])(x[1], id);
	return DB_OK;
}

db_status_t tentacles_store_coverage_nodes(db_conn_t *c, void (*fn)(void *, const char *),
                                           void *ctx)
{
	void *x[2] = {(void *)fn, ctx};
	db_status_t s = db_query(c, "SELECT NodeId FROM CoverageNodes ORDER BY NodeId", NULL, 0,
	                         node_id_row, x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t tentacles_store_set_coverage_nodes(db_conn_t *c, const char *const *ids, size_t n)
{
	db_status_t s = db_exec(c, "DELETE FROM CoverageNodes", NULL, 0, NULL);
	for (size_t i = 0; s == DB_OK && i < n; i++) {
		db_param_t p[] = {DBP_TEXT(ids[i])};
		s = db_exec(c, "INSERT INTO CoverageNodes (NodeId) VALUES (?)", p, 1, NULL);
	}
	return s;
}

/* The oldest of a Tentacle's last polls at the coverage nodes; 0 when it
 * has not polled one of them, NULL when there are none. */
#define OLDEST_POLL                                                                                \
	"(SELECT CASE WHEN COUNT(p.LastPollAt) < COUNT(*) THEN 0 ELSE MIN(p.LastPollAt) END "      \
	"FROM CoverageNodes c LEFT JOIN TentaclePolls p ON p.NodeId = c.NodeId "                   \
	"AND p.TentacleId = Tentacles.Id)"

db_status_t tentacles_store_update_coverage(db_conn_t *c, const char *id, int64_t covered_since,
                                            int64_t *oldest)
{
	db_param_t p[] = {DBP_TEXT(id)};
	db_status_t s = db_exec(c,
	                        "UPDATE Tentacles SET OldestPollAt = " OLDEST_POLL
	                        " WHERE Id = ? AND CommunicationStyle = 'TentacleActive'",
	                        p, 1, NULL);
	bool is_null = false;
	if (s == DB_OK)
		s = db_query(c, "SELECT OldestPollAt FROM Tentacles WHERE Id = ?", p, 1,
		             min_row_null, &(min_null_t){oldest, &is_null});
	if (s == DB_OK && is_null)
		*oldest = INT64_MAX;
	if (s == DB_OK && *oldest >= covered_since) {
		db_param_t q[] = {DBP_TEXT(id)};
		s = db_exec(c,
		            "UPDATE Tentacles SET CoverageWarnedAt = NULL WHERE Id = ? "
		            "AND CoverageWarnedAt IS NOT NULL",
		            q, 1, NULL);
	}
	return s == DB_NO_ROWS ? DB_OK : s;
}

void tentacles_store_next_polling_sql(db_dialect_id_t d, const char *after, int limit, db_sql_t *q)
{
	db_sql_init(q);
	db_sql_select(q, d, limit);
	db_sql_add(q, "Id FROM Tentacles WHERE CommunicationStyle = 'TentacleActive' "
	              "AND Id > ? ORDER BY Id");
	db_sql_bind(q, DBP_TEXT(after));
	db_sql_limit(q, d, limit);
}

db_status_t tentacles_store_next_polling(db_conn_t *c, const char *after, int limit, char *last,
                                         size_t size, int *n)
{
	db_sql_t q;
	tentacles_store_next_polling_sql(db_conn_dialect(c), after, limit, &q);
	void *x[3] = {last, (void *)(uintptr_t)size, n};
	*n = 0;
	db_status_t s = db_sql_query(c, &q, last_id_row, x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t tentacles_store_update_coverage_range(db_conn_t *c, const char *after, const char *last,
                                                  int64_t covered_since)
{
	db_param_t p[] = {DBP_TEXT(after), DBP_TEXT(last)};
	db_status_t s =
	    db_exec(c,
	            "UPDATE Tentacles SET OldestPollAt = " OLDEST_POLL
	            " WHERE CommunicationStyle = 'TentacleActive' AND Id > ? AND Id <= ?",
	            p, 2, NULL);
	db_param_t q[] = {DBP_TEXT(after), DBP_TEXT(last), DBP_INT(covered_since)};
	if (s == DB_OK)
		s = db_exec(
		    c,
		    "UPDATE Tentacles SET CoverageWarnedAt = NULL WHERE CommunicationStyle = "
		    "'TentacleActive' AND Id > ? AND Id <= ? AND CoverageWarnedAt IS NOT NULL "
		    "AND (OldestPollAt IS NULL OR OldestPollAt >= ?)",
		    q, 3, NULL);
	return s;
}

db_status_t tentacles_store_lock_coverage(db_conn_t *c)
{
	return db_exec(c, "UPDATE ClusterLocks SET Period = Period + 1 WHERE Name = 'coverage'",
	               NULL, 0, NULL);
}

void tentacles_store_by_style_sql(db_dialect_id_t d, bool polling, const char *after, int limit,
                                  db_sql_t *q)
{
	db_sql_init(q);
	db_sql_select(q, d, limit);
	db_sql_add(q, TENTACLE_COLUMNS " FROM Tentacles WHERE CommunicationStyle = ? "
	                               "AND Id > ? ORDER BY Id");
	db_sql_bind(q, DBP_TEXT(polling ? "TentacleActive" : "TentaclePassive"));
	db_sql_bind(q, DBP_TEXT(after));
	db_sql_limit(q, d, limit);
}

db_status_t tentacles_store_by_style(db_conn_t *c, bool polling, const char *after, int limit,
                                     void (*fn)(void *, const oh_tentacle_t *), void *ctx)
{
	db_sql_t q;
	tentacles_store_by_style_sql(db_conn_dialect(c), polling, after, limit, &q);
	each_ctx_t x = {fn, ctx};
	db_status_t s = db_sql_query(c, &q, each_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

void tentacles_store_servers_of_sql(const char *const *ids, size_t n, db_sql_t *q)
{
	db_sql_init(q);
	db_sql_add(q, "SELECT TentacleId, NodeId, Address, Port FROM TentacleServers "
	              "WHERE TentacleId IN ");
	db_sql_in(q, ids, n);
}

db_status_t tentacles_store_servers_of(db_conn_t *c, const char *const *ids, size_t n,
                                       void (*fn)(void *, const char *, const char *, const char *,
                                                  int),
                                       void *ctx)
{
	server_ctx_t x = {fn, ctx};
	return db_query_in_chunks(c, ids, n, tentacles_store_servers_of_sql, server_row, &x);
}
