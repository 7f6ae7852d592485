#include "tentacles_store.h"

#include <string.h>

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

db_status_t tentacles_store_each(db_conn_t *c, bool only_rereg,
                                 void (*fn)(void *, const oh_tentacle_t *), void *ctx)
{
	each_ctx_t x = {fn, ctx};
	return db_query(c,
	                only_rereg ? "SELECT " TENTACLE_COLUMNS
	                             " FROM Tentacles WHERE NeedsReRegistration = 1 ORDER BY Name"
	                           : "SELECT " TENTACLE_COLUMNS " FROM Tentacles ORDER BY Name",
	                NULL, 0, each_row, &x);
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
