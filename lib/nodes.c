#include "nodes.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/nodes_store.h"
#include "db/tasks_store.h"
#include "events.h"

#define SETTING_PLATFORM "Platform"
#define DEFAULT_TASK_CAP 5

bool oh_node_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > OH_NODE_NAME_MAX || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!(isalnum(ch) || ch == '.' || ch == '_' || ch == '-') || ch > 0x7f)
			return false;
	}
	return true;
}

void oh_node_id_for(const char *name, char *id, size_t size)
{
	snprintf(id, size, "%s%s", OH_NODE_ID_PREFIX, name);
}

static void derive_offline(oh_node_t *n, int64_t now, int64_t timeout)
{
	n->offline = n->stopped || now - n->last_seen > timeout;
}

typedef struct {
	const oh_node_t *self;
	const char *instance, *prev;
	int64_t timeout;
	oh_reg_result_t *res;
} reg_ctx_t;

static db_status_t register_txn(db_conn_t *c, void *vctx)
{
	reg_ctx_t *x = vctx;
	oh_reg_result_t *res = x->res;
	memset(res, 0, sizeof *res);
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s != DB_OK)
		return s;
	res->db_now = now;

	/* One platform per cluster: the first node sets it; it may change only
	 * when no other node is registered. */
	char platform[16];
	s = settings_store_get(c, SETTING_PLATFORM, platform, sizeof platform);
	if (s != DB_OK && s != DB_NO_ROWS)
		return s;
	if (s == DB_OK && strcmp(platform, x->self->platform) != 0) {
		int64_t others = 0;
		s = nodes_store_count_others(c, x->self->name, &others);
		if (s != DB_OK)
			return s;
		if (others > 0) {
			res->outcome = OH_REG_PLATFORM_MISMATCH;
			snprintf(res->cluster_platform, sizeof res->cluster_platform, "%s",
			         platform);
			return DB_ABORT;
		}
	}
	if (s == DB_NO_ROWS || strcmp(platform, x->self->platform) != 0) {
		s = settings_store_put(c, SETTING_PLATFORM, x->self->platform);
		if (s == DB_DUPLICATE)
			return DB_TRANSIENT; /* another node set it first: look again */
		if (s != DB_OK)
			return s;
	}

	oh_node_t row = *x->self;
	oh_node_id_for(row.name, row.id, sizeof row.id);
	row.started_at = row.last_seen = now;
	int64_t rows = 0;
	s = nodes_store_take_over(c, &row, x->instance, x->prev, now - x->timeout, &rows);
	if (s != DB_OK)
		return s;
	if (rows == 0) {
		s = nodes_store_get(c, row.name, true, &res->holder);
		if (s == DB_OK) {
			derive_offline(&res->holder, now, x->timeout);
			res->outcome = OH_REG_NAME_IN_USE;
			return DB_ABORT;
		}
		if (s != DB_NO_ROWS)
			return s;
		if (row.max_tasks < 0)
			row.max_tasks = DEFAULT_TASK_CAP;
		s = nodes_store_insert(c, &row, x->instance);
		if (s == DB_DUPLICATE)
			return DB_TRANSIENT; /* a node of that name appeared: look again */
		if (s != DB_OK)
			return s;
	}
	s = nodes_store_get(c, row.id, false, &res->self);
	if (s == DB_OK)
		derive_offline(&res->self, now, x->timeout);
	if (s == DB_OK && x->prev && strcmp(x->prev, x->instance) != 0) {
		oh_expiry_t ex;
		s = tasks_store_take_over_owner(c, x->prev, now, &ex);
		res->requeued = ex.requeued;
		res->failed = ex.failed;
		res->canceled = ex.canceled;
	}
	return s;
}

db_status_t oh_nodes_register(db_pool_t *pool, const oh_node_t *self, const char *instance_id,
                              const char *prev_instance, int64_t offline_timeout_ms,
                              oh_reg_result_t *res)
{
	reg_ctx_t x = {self, instance_id, prev_instance && *prev_instance ? prev_instance : NULL,
	               offline_timeout_ms, res};
	db_status_t s = db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, register_txn, &x);
	return s == DB_ABORT ? DB_OK : s;
}

typedef struct {
	const char *id, *instance;
	int64_t timeout;
	oh_node_t *row;
} hb_ctx_t;

static db_status_t heartbeat_txn(db_conn_t *c, void *vctx)
{
	hb_ctx_t *x = vctx;
	int64_t now, rows = 0;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = nodes_store_touch(c, x->id, x->instance, now, &rows);
	if (s != DB_OK)
		return s;
	if (rows == 0)
		return DB_NO_ROWS;
	s = nodes_store_get(c, x->id, false, x->row);
	if (s == DB_OK)
		derive_offline(x->row, now, x->timeout);
	return s;
}

db_status_t oh_nodes_heartbeat(db_pool_t *pool, const char *id, const char *instance_id,
                               int64_t offline_timeout_ms, oh_node_t *row)
{
	hb_ctx_t x = {id, instance_id, offline_timeout_ms, row};
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, heartbeat_txn, &x);
}

typedef struct {
	const char *id, *instance;
} stop_ctx_t;

static db_status_t stop_txn(db_conn_t *c, void *vctx)
{
	stop_ctx_t *x = vctx;
	return nodes_store_mark_stopped(c, x->id, x->instance);
}

db_status_t oh_nodes_mark_stopped(db_pool_t *pool, const char *id, const char *instance_id)
{
	stop_ctx_t x = {id, instance_id};
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, stop_txn, &x);
}

typedef struct {
	int64_t timeout;
	oh_node_list_t *out;
	size_t cap;
	bool oom;
} list_ctx_t;

static void list_add(void *vctx, const oh_node_t *n)
{
	list_ctx_t *x = vctx;
	if (x->oom)
		return;
	if (x->out->n == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 8;
		oh_node_t *nv = realloc(x->out->v, ncap * sizeof *nv);
		if (!nv) {
			x->oom = true;
			return;
		}
		x->out->v = nv;
		x->cap = ncap;
	}
	oh_node_t *slot = &x->out->v[x->out->n++];
	*slot = *n;
	derive_offline(slot, x->out->db_now, x->timeout);
}

static db_status_t list_txn(db_conn_t *c, void *vctx)
{
	list_ctx_t *x = vctx;
	free(x->out->v); /* a retried attempt starts afresh */
	x->out->v = NULL;
	x->out->n = 0;
	x->cap = 0;
	x->oom = false;
	db_status_t s = db_now_ms(c, &x->out->db_now);
	if (s == DB_OK)
		s = nodes_store_each(c, list_add, x);
	if (s == DB_NO_ROWS)
		s = DB_OK;
	if (s == DB_OK && x->oom)
		s = DB_ERROR;
	return s;
}

db_status_t oh_nodes_list(db_pool_t *pool, int64_t offline_timeout_ms, oh_node_list_t *out)
{
	memset(out, 0, sizeof *out);
	list_ctx_t x = {.timeout = offline_timeout_ms, .out = out};
	db_status_t s = db_txn(pool, DB_TXN_READ, list_txn, &x);
	if (s != DB_OK)
		oh_node_list_free(out);
	return s;
}

db_status_t oh_nodes_list_tx(db_conn_t *c, int64_t offline_timeout_ms, oh_node_list_t *out)
{
	memset(out, 0, sizeof *out);
	list_ctx_t x = {.timeout = offline_timeout_ms, .out = out};
	db_status_t s = list_txn(c, &x);
	if (s != DB_OK)
		oh_node_list_free(out);
	return s;
}

void oh_node_list_free(oh_node_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

typedef struct {
	const char *id;
	int64_t timeout;
	oh_node_t *out;
	oh_del_outcome_t *outcome;
	const oh_event_spec_t *audit;
} get_ctx_t;

static db_status_t get_txn(db_conn_t *c, void *vctx)
{
	get_ctx_t *x = vctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = nodes_store_get(c, x->id, false, x->out);
	if (s == DB_OK)
		derive_offline(x->out, now, x->timeout);
	return s;
}

db_status_t oh_nodes_get(db_pool_t *pool, const char *id, int64_t offline_timeout_ms,
                         oh_node_t *out)
{
	get_ctx_t x = {id, offline_timeout_ms, out, NULL, NULL};
	return db_txn(pool, DB_TXN_READ, get_txn, &x);
}

static db_status_t delete_txn(db_conn_t *c, void *vctx)
{
	get_ctx_t *x = vctx;
	int64_t now, rows = 0;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = nodes_store_delete_stale(c, x->id, now - x->timeout, &rows);
	if (s != DB_OK)
		return s;
	if (rows > 0) {
		*x->outcome = OH_DEL_DELETED;
		return x->audit ? oh_event_record_tx(c, x->audit, NULL) : DB_OK;
	}
	oh_node_t n;
	s = nodes_store_get(c, x->id, false, &n);
	if (s == DB_NO_ROWS) {
		*x->outcome = OH_DEL_NOT_FOUND;
		return DB_OK;
	}
	if (s == DB_OK)
		*x->outcome = OH_DEL_ONLINE;
	return s;
}

db_status_t oh_nodes_delete_offline(db_pool_t *pool, const char *id, int64_t offline_timeout_ms,
                                    oh_del_outcome_t *outcome, const oh_event_spec_t *audit)
{
	get_ctx_t x = {id, offline_timeout_ms, NULL, outcome, audit};
	return db_txn(pool, DB_TXN_WRITE, delete_txn, &x);
}

const char *oh_nodes_platform(const oh_node_list_t *l, const char *fallback)
{
	for (size_t i = 0; i < l->n; i++) {
		if (!l->v[i].offline)
			return l->v[i].platform;
	}
	return l->n ? l->v[0].platform : fallback;
}

int oh_nodes_capacity(const oh_node_list_t *l, int *total, int *largest, double *lost_pct)
{
	int n = 0;
	*total = 0;
	*largest = 0;
	for (size_t i = 0; i < l->n; i++) {
		const oh_node_t *x = &l->v[i];
		if (x->offline || x->maintenance || x->max_tasks <= 0)
			continue;
		n++;
		*total += x->max_tasks;
		if (x->max_tasks > *largest)
			*largest = x->max_tasks;
	}
	*lost_pct = *total ? (double)(long)(1000.0 * *largest / *total + 0.5) / 10.0 : 100.0;
	return n;
}
