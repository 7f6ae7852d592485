#include "nodes_store.h"

#include <stdio.h>
#include <string.h>

#define NODE_COLUMNS                                                                               \
	"Id, Name, PublicUrl, CommunicationsAddress, CommunicationsPort, MaxConcurrentTasks, "     \
	"Platform, Version, IsInMaintenanceMode, IsStopped, StartedAt, LastSeen, DrainReason, "    \
	"DrainRequestedBy, DrainRequestedAt, DrainTaskId, PollingPort"

static void read_node(db_row_t *r, oh_node_t *n)
{
	memset(n, 0, sizeof *n);
	db_row_copy(r, 0, n->id, sizeof n->id);
	db_row_copy(r, 1, n->name, sizeof n->name);
	db_row_copy(r, 2, n->public_url, sizeof n->public_url);
	db_row_copy(r, 3, n->comms_address, sizeof n->comms_address);
	n->comms_port = (int)db_row_int(r, 4, NULL);
	n->max_tasks = (int)db_row_int(r, 5, NULL);
	db_row_copy(r, 6, n->platform, sizeof n->platform);
	db_row_copy(r, 7, n->version, sizeof n->version);
	n->maintenance = db_row_int(r, 8, NULL) != 0;
	n->stopped = db_row_int(r, 9, NULL) != 0;
	n->started_at = db_row_int(r, 10, NULL);
	n->last_seen = db_row_int(r, 11, NULL);
	db_row_copy(r, 12, n->drain_reason, sizeof n->drain_reason);
	db_row_copy(r, 13, n->drain_requested_by, sizeof n->drain_requested_by);
	n->drain_requested_at = db_row_int(r, 14, NULL);
	db_row_copy(r, 15, n->drain_task_id, sizeof n->drain_task_id);
	n->polling_port = (int)db_row_int(r, 16, NULL);
}

static db_status_t one_node(void *ctx, db_row_t *r)
{
	read_node(r, ctx);
	return DB_OK;
}

db_status_t nodes_store_get(db_conn_t *c, const char *key, bool by_name, oh_node_t *out)
{
	db_param_t p[] = {DBP_TEXT(key)};
	return db_query(c,
	                by_name ? "SELECT " NODE_COLUMNS " FROM OctopusServerNodes WHERE Name = ?"
	                        : "SELECT " NODE_COLUMNS " FROM OctopusServerNodes WHERE Id = ?",
	                p, 1, one_node, out);
}

typedef struct {
	void (*fn)(void *, const oh_node_t *);
	void *ctx;
} each_ctx_t;

static db_status_t each_row(void *ctx, db_row_t *r)
{
	each_ctx_t *e = ctx;
	oh_node_t n;
	read_node(r, &n);
	e->fn(e->ctx, &n);
	return DB_OK;
}

db_status_t nodes_store_each(db_conn_t *c, void (*fn)(void *ctx, const oh_node_t *n), void *ctx)
{
	each_ctx_t e = {fn, ctx};
	return db_query(c, "SELECT " NODE_COLUMNS " FROM OctopusServerNodes ORDER BY Name", NULL, 0,
	                each_row, &e);
}

db_status_t nodes_store_insert(db_conn_t *c, const oh_node_t *n, const char *instance_id)
{
	db_param_t p[] = {
	    DBP_TEXT(n->id),         DBP_TEXT(n->name),          DBP_TEXT(instance_id),
	    DBP_TEXT(n->public_url), DBP_TEXT(n->comms_address), DBP_INT(n->comms_port),
	    DBP_INT(n->max_tasks),   DBP_TEXT(n->platform),      DBP_TEXT(n->version),
	    DBP_INT(n->started_at),  DBP_INT(n->last_seen),
	};
	return db_exec(c,
	               "INSERT INTO OctopusServerNodes (Id, Name, InstanceId, PublicUrl, "
	               "CommunicationsAddress, CommunicationsPort, MaxConcurrentTasks, Platform, "
	               "Version, IsInMaintenanceMode, IsStopped, StartedAt, LastSeen) "
	               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
	               p, sizeof p / sizeof p[0], NULL);
}

db_status_t nodes_store_take_over(db_conn_t *c, const oh_node_t *n, const char *instance_id,
                                  const char *prev_instance, int64_t stale_before, int64_t *rows)
{
	db_param_t p[] = {
	    DBP_TEXT(instance_id),      DBP_TEXT(n->public_url),
	    DBP_TEXT(n->comms_address), DBP_INT(n->comms_port),
	    DBP_INT(n->max_tasks),      DBP_INT(n->max_tasks),
	    DBP_TEXT(n->platform),      DBP_TEXT(n->version),
	    DBP_INT(n->started_at),     DBP_INT(n->last_seen),
	    DBP_TEXT(n->name),          DBP_INT(stale_before),
	    DBP_TEXT(instance_id),      DBP_TEXT(prev_instance ? prev_instance : instance_id),
	};
	return db_exec(c,
	               "UPDATE OctopusServerNodes SET InstanceId = ?, PublicUrl = ?, "
	               "CommunicationsAddress = ?, CommunicationsPort = ?, "
	               "MaxConcurrentTasks = CASE WHEN ? < 0 THEN MaxConcurrentTasks ELSE ? END, "
	               "Platform = ?, Version = ?, IsStopped = 0, StartedAt = ?, LastSeen = ? "
	               "WHERE Name = ? AND (IsStopped = 1 OR LastSeen < ? OR InstanceId = ? "
	               "OR InstanceId = ?)",
	               p, sizeof p / sizeof p[0], rows);
}

db_status_t nodes_store_touch(db_conn_t *c, const char *id, const char *instance_id, int64_t now,
                              int64_t *rows)
{
	db_param_t p[] = {DBP_INT(now), DBP_TEXT(id), DBP_TEXT(instance_id)};
	return db_exec(c,
	               "UPDATE OctopusServerNodes SET LastSeen = ?, IsStopped = 0 "
	               "WHERE Id = ? AND InstanceId = ?",
	               p, 3, rows);
}

db_status_t nodes_store_mark_stopped(db_conn_t *c, const char *id, const char *instance_id)
{
	db_param_t p[] = {DBP_TEXT(id), DBP_TEXT(instance_id)};
	return db_exec(
	    c, "UPDATE OctopusServerNodes SET IsStopped = 1 WHERE Id = ? AND InstanceId = ?", p, 2,
	    NULL);
}

db_status_t nodes_store_delete_stale(db_conn_t *c, const char *id, int64_t stale_before,
                                     int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id), DBP_INT(stale_before)};
	return db_exec(
	    c, "DELETE FROM OctopusServerNodes WHERE Id = ? AND (IsStopped = 1 OR LastSeen < ?)", p,
	    2, rows);
}

db_status_t nodes_store_count_others(db_conn_t *c, const char *name, int64_t *count)
{
	db_param_t p[] = {DBP_TEXT(name)};
	return db_query_int(c, "SELECT COUNT(*) FROM OctopusServerNodes WHERE Name <> ?", p, 1,
	                    count);
}

static db_status_t one_text(void *ctx, db_row_t *r)
{
	char **buf = ctx;
	db_row_copy(r, 0, buf[0], (size_t)(uintptr_t)buf[1]);
	return DB_OK;
}

db_status_t settings_store_get(db_conn_t *c, const char *name, char *buf, size_t size)
{
	buf[0] = '\0';
	char *ctx[2] = {buf, (char *)(uintptr_t)size};
	db_param_t p[] = {DBP_TEXT(name)};
	return db_query(c, "SELECT Value FROM ClusterSettings WHERE Name = ?", p, 1, one_text, ctx);
}

typedef struct {
	void (*fn)(void *, const char *, const char *);
	void *ctx;
} setting_ctx_t;

static db_status_t setting_row(void *vctx, db_row_t *r)
{
	setting_ctx_t *x = vctx;
	char name[101], value[4001];
	db_row_copy(r, 0, name, sizeof name);
	db_row_copy(r, 1, value, sizeof value);
	x->fn(x->ctx, name, value);
	return DB_OK;
}

db_status_t settings_store_get_six(db_conn_t *c, const char *const names[6],
                                   void (*fn)(void *, const char *, const char *), void *ctx)
{
	db_param_t p[6];
	for (int i = 0; i < 6; i++)
		p[i] = DBP_TEXT(names[i]);
	setting_ctx_t x = {fn, ctx};
	db_status_t s = db_query(c,
	                         "SELECT Name, Value FROM ClusterSettings WHERE Name IN "
	                         "(?, ?, ?, ?, ?, ?)",
	                         p, 6, setting_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t settings_store_put(db_conn_t *c, const char *name, const char *value)
{
	int64_t rows = 0;
	db_param_t p[] = {DBP_TEXT(value), DBP_TEXT(name)};
	db_status_t s =
	    db_exec(c, "UPDATE ClusterSettings SET Value = ? WHERE Name = ?", p, 2, &rows);
	if (s != DB_OK || rows > 0)
		return s;
	db_param_t q[] = {DBP_TEXT(name), DBP_TEXT(value)};
	return db_exec(c, "INSERT INTO ClusterSettings (Name, Value) VALUES (?, ?)", q, 2, NULL);
}

db_status_t nodes_store_set_drain(db_conn_t *c, const char *id, bool on, const char *reason,
                                  const char *by, int64_t now, const char *task_id)
{
	db_param_t p[] = {DBP_INT(on ? 1 : 0),
	                  reason && *reason ? DBP_TEXT(reason) : DBP_NULL,
	                  by && *by ? DBP_TEXT(by) : DBP_NULL,
	                  DBP_INT(now),
	                  task_id && *task_id ? DBP_TEXT(task_id) : DBP_NULL,
	                  DBP_TEXT(id)};
	return db_exec(c,
	               "UPDATE OctopusServerNodes SET IsInMaintenanceMode = ?, DrainReason = ?, "
	               "DrainRequestedBy = ?, DrainRequestedAt = ?, DrainTaskId = ? WHERE Id = ?",
	               p, 6, NULL);
}

db_status_t nodes_store_set_cap(db_conn_t *c, const char *id, int cap, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(cap), DBP_TEXT(id)};
	return db_exec(c, "UPDATE OctopusServerNodes SET MaxConcurrentTasks = ? WHERE Id = ?", p, 2,
	               rows);
}

db_status_t nodes_store_count_taking_work(db_conn_t *c, const char *except_id, int64_t stale_before,
                                          int64_t *count)
{
	db_param_t p[] = {DBP_TEXT(except_id), DBP_INT(stale_before)};
	return db_query_int(
	    c,
	    "SELECT COUNT(*) FROM OctopusServerNodes WHERE Id <> ? AND IsStopped = 0 "
	    "AND LastSeen >= ? AND IsInMaintenanceMode = 0 AND MaxConcurrentTasks > 0",
	    p, 2, count);
}
