#include "cluster_store.h"

#include <string.h>

#include "dialect.h"
#include "keyset.h"

db_status_t cluster_store_add_reply(db_conn_t *c, const char *task_id, const char *url)
{
	db_param_t p[] = {DBP_TEXT(task_id), DBP_TEXT(url)};
	return db_exec(c, "INSERT INTO ChatReplies (TaskId, ResponseUrl) VALUES (?, ?)", p, 2,
	               NULL);
}

typedef struct {
	void (*fn)(void *, const char *, const char *);
	void *ctx;
} reply_ctx_t;

static db_status_t reply_row(void *vctx, db_row_t *r)
{
	reply_ctx_t *x = vctx;
	char id[64], url[2001];
	db_row_copy(r, 0, id, sizeof id);
	db_row_copy(r, 1, url, sizeof url);
	x->fn(x->ctx, id, url);
	return DB_OK;
}

db_status_t cluster_store_due_replies(db_conn_t *c, void (*fn)(void *, const char *, const char *),
                                      void *ctx)
{
	reply_ctx_t x = {fn, ctx};
	db_status_t s = db_query(
	    c,
	    "SELECT r.TaskId, r.ResponseUrl FROM ChatReplies r JOIN ServerTasks t ON t.Id = "
	    "r.TaskId WHERE r.QueuedAt IS NULL AND t.State IN ('Success', 'Failed', 'Canceled', "
	    "'TimedOut')",
	    NULL, 0, reply_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t cluster_store_mark_reply(db_conn_t *c, const char *task_id, int64_t now, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(now), DBP_TEXT(task_id)};
	return db_exec(c,
	               "UPDATE ChatReplies SET QueuedAt = ? WHERE TaskId = ? AND QueuedAt IS NULL",
	               p, 2, rows);
}

typedef struct {
	char *buf;
	size_t size;
} text_ctx_t;

static db_status_t text_row(void *vctx, db_row_t *r)
{
	text_ctx_t *x = vctx;
	db_row_copy(r, 0, x->buf, x->size);
	return DB_OK;
}

db_status_t cluster_store_reply_url(db_conn_t *c, const char *task_id, char *url, size_t size)
{
	text_ctx_t x = {url, size};
	db_param_t p[] = {DBP_TEXT(task_id)};
	return db_query(c, "SELECT ResponseUrl FROM ChatReplies WHERE TaskId = ?", p, 1, text_row,
	                &x);
}

db_status_t cluster_store_lock(db_conn_t *c, const char *name)
{
	db_param_t p[] = {DBP_TEXT(name)};
	return db_exec(c, "UPDATE ClusterLocks SET Period = Period WHERE Name = ?", p, 1, NULL);
}

db_status_t cluster_store_add_replay(db_conn_t *c, const char *name, int64_t now)
{
	db_param_t p[] = {DBP_TEXT(name), DBP_INT(now)};
	return db_exec(c, "INSERT INTO ClusterLocks (Name, Period) VALUES (?, ?)", p, 2, NULL);
}

db_status_t cluster_store_has_replay(db_conn_t *c, const char *name, int64_t at)
{
	db_param_t p[] = {DBP_TEXT(name), DBP_INT(at)};
	return db_query(c, "SELECT 1 FROM ClusterLocks WHERE Name = ? AND Period = ?", p, 2, NULL,
	                NULL);
}

db_status_t cluster_store_purge_replays(db_conn_t *c, int64_t before)
{
	db_param_t p[] = {DBP_INT(before)};
	return db_exec(c, "DELETE FROM ClusterLocks WHERE Name LIKE 'replay:%' AND Period < ?", p,
	               1, NULL);
}

typedef struct {
	void (*fn)(void *, const char *);
	void *ctx;
} node_ctx_t;

static db_status_t node_row(void *vctx, db_row_t *r)
{
	node_ctx_t *x = vctx;
	char id[128];
	db_row_copy(r, 0, id, sizeof id);
	x->fn(x->ctx, id);
	return DB_OK;
}

db_status_t cluster_store_newly_offline(db_conn_t *c, int64_t silent_before,
                                        void (*fn)(void *, const char *), void *ctx)
{
	node_ctx_t x = {fn, ctx};
	db_param_t p[] = {DBP_INT(silent_before)};
	db_status_t s = db_query(c,
	                         "SELECT Id FROM OctopusServerNodes WHERE LastSeen < ? AND "
	                         "(OfflineEventAt IS NULL OR OfflineEventAt < LastSeen)",
	                         p, 1, node_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t cluster_store_mark_offline(db_conn_t *c, const char *node_id, int64_t now)
{
	db_param_t p[] = {DBP_INT(now), DBP_TEXT(node_id)};
	return db_exec(c, "UPDATE OctopusServerNodes SET OfflineEventAt = ? WHERE Id = ?", p, 2,
	               NULL);
}

static db_status_t seen_row(void *ctx, db_row_t *r)
{
	(void)r;
	*(int64_t *)ctx = 1;
	return DB_OK;
}

void cluster_store_events_before_sql(db_dialect_id_t d, int64_t before, db_sql_t *q)
{
	/* Whether there is one, not how many: the oldest event, one seek. */
	db_sql_init(q);
	db_sql_select(q, d, 1);
	db_sql_add(q, "Id FROM Events WHERE Occurred < ? ORDER BY Occurred, Id");
	db_sql_bind(q, DBP_INT(before));
	db_sql_limit(q, d, 1);
}

db_status_t cluster_store_count_events_before(db_conn_t *c, int64_t before, int64_t *n)
{
	db_sql_t q;
	cluster_store_events_before_sql(db_conn_dialect(c), before, &q);
	*n = 0;
	db_status_t s = db_sql_query(c, &q, seen_row, n);
	return s == DB_NO_ROWS ? DB_OK : s;
}
