#include "tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/task_counts_store.h"
#include "db/tasks_store.h"
#include "events.h"
#include "oh_crypto.h"
#include "oh_json.h"
#include "task_run.h"

#define DEFAULT_MAX_ATTEMPTS 3

static const char *const state_names[OH_TS__COUNT] = {
    "Queued", "Executing", "Cancelling", "Success", "Failed", "Canceled", "TimedOut",
};

const char *oh_task_state_name(oh_task_state_t s)
{
	return (unsigned)s < OH_TS__COUNT ? state_names[s] : "Failed";
}

bool oh_task_state_parse(const char *name, oh_task_state_t *out)
{
	for (int i = 0; i < OH_TS__COUNT; i++)
		if (strcmp(name, state_names[i]) == 0) {
			*out = (oh_task_state_t)i;
			return true;
		}
	return false;
}

bool oh_task_state_completed(oh_task_state_t s)
{
	return s == OH_TS_SUCCESS || s == OH_TS_FAILED || s == OH_TS_CANCELED ||
	       s == OH_TS_TIMED_OUT;
}

void oh_task_clear(oh_task_t *t)
{
	free(t->arguments);
	free(t->result);
	t->arguments = t->result = NULL;
}

void oh_claimed_clear(oh_claimed_t *c)
{
	free(c->arguments);
	c->arguments = NULL;
}

int64_t oh_task_backoff_ms(int attempt)
{
	int64_t ms = 1000;
	for (int i = 1; i < attempt && ms < 60000; i++)
		ms *= 2;
	return ms > 60000 ? 60000 : ms;
}

db_status_t oh_task_insert(db_conn_t *c, const oh_task_spec_t *spec, oh_task_t *out)
{
	memset(out, 0, sizeof *out);
	char rnd[21];
	if (!oh_random_hex(rnd, 10))
		return DB_ERROR;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s != DB_OK)
		return s;
	snprintf(out->id, sizeof out->id, OH_TASK_ID_PREFIX "%s", rnd);
	snprintf(out->name, sizeof out->name, "%s", spec->name);
	snprintf(out->description, sizeof out->description, "%s",
	         spec->description ? spec->description : spec->name);
	out->arguments = spec->arguments ? oh_json_dump(spec->arguments) : strdup("{}");
	if (!out->arguments)
		abort();
	out->state = OH_TS_QUEUED;
	out->is_system = spec->is_system;
	snprintf(out->target_node, sizeof out->target_node, "%s",
	         spec->target_node ? spec->target_node : "");
	out->max_attempts = spec->max_attempts > 0 ? spec->max_attempts : DEFAULT_MAX_ATTEMPTS;
	out->queue_time = out->last_updated = out->next_run_at = now;
	snprintf(out->idempotency_key, sizeof out->idempotency_key, "%s",
	         spec->idempotency_key ? spec->idempotency_key : "");
	snprintf(out->requested_by, sizeof out->requested_by, "%s",
	         spec->requested_by ? spec->requested_by : "");
	s = tasks_store_insert(c, out);
	if (s != DB_OK)
		oh_task_clear(out);
	return s;
}

db_status_t oh_task_get_tx(db_conn_t *c, const char *id, oh_task_t *out)
{
	return tasks_store_get(c, id, out);
}

db_status_t oh_task_get_by_key_tx(db_conn_t *c, const char *key, oh_task_t *out)
{
	return tasks_store_get_by_key(c, key, out);
}

typedef struct {
	const oh_task_spec_t *spec;
	oh_task_t *out;
	bool *existed;
} create_ctx_t;

db_status_t oh_task_create_tx(db_conn_t *c, const oh_task_spec_t *spec, oh_task_t *out,
                              bool *existed)
{
	*existed = false;
	oh_task_clear(out);
	if (spec->idempotency_key) {
		db_status_t s = tasks_store_get_by_key(c, spec->idempotency_key, out);
		if (s == DB_OK) {
			*existed = true;
			return DB_OK;
		}
		if (s != DB_NO_ROWS)
			return s;
	}
	db_status_t s = oh_task_insert(c, spec, out);
	if (s == DB_OK && spec->audit) {
		oh_event_spec_t ev = *spec->audit;
		if (!ev.resource_id)
			ev.resource_id = out->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	/* Another request with the same key won the race: read its task. */
	return s == DB_DUPLICATE && spec->idempotency_key ? DB_TRANSIENT : s;
}

static db_status_t create_txn(db_conn_t *c, void *vctx)
{
	create_ctx_t *x = vctx;
	return oh_task_create_tx(c, x->spec, x->out, x->existed);
}

db_status_t oh_tasks_create(db_pool_t *pool, const oh_task_spec_t *spec, oh_task_t *out,
                            bool *existed)
{
	memset(out, 0, sizeof *out);
	create_ctx_t x = {spec, out, existed};
	return db_txn(pool, DB_TXN_WRITE, create_txn, &x);
}

typedef struct {
	const char *id;
	oh_task_t *out;
} get_ctx_t;

static db_status_t get_txn(db_conn_t *c, void *vctx)
{
	get_ctx_t *x = vctx;
	return tasks_store_get(c, x->id, x->out);
}

db_status_t oh_tasks_get(db_pool_t *pool, const char *id, oh_task_t *out)
{
	memset(out, 0, sizeof *out);
	get_ctx_t x = {id, out};
	return db_txn(pool, DB_TXN_READ, get_txn, &x);
}

static db_status_t get_by_key_txn(db_conn_t *c, void *vctx)
{
	get_ctx_t *x = vctx;
	oh_task_clear(x->out);
	return tasks_store_get_by_key(c, x->id, x->out);
}

db_status_t oh_tasks_get_by_key(db_pool_t *pool, const char *key, oh_task_t *out)
{
	memset(out, 0, sizeof *out);
	get_ctx_t x = {key, out};
	return db_txn(pool, DB_TXN_READ, get_by_key_txn, &x);
}

typedef struct {
	const oh_task_filter_t *f;
	oh_task_list_t *out;
	size_t cap;
} list_ctx_t;

static void list_add(void *vctx, oh_task_t *t)
{
	list_ctx_t *x = vctx;
	if (x->out->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 16;
		x->out->v = realloc(x->out->v, x->cap * sizeof *x->out->v);
		if (!x->out->v)
			abort();
	}
	x->out->v[x->out->n++] = *t;
}

static db_status_t list_txn(db_conn_t *c, void *vctx)
{
	list_ctx_t *x = vctx;
	oh_task_list_free(x->out);
	x->cap = 0;
	return tasks_store_list(c, x->f, list_add, x, &x->out->total);
}

db_status_t oh_tasks_list(db_pool_t *pool, const oh_task_filter_t *f, oh_task_list_t *out)
{
	memset(out, 0, sizeof *out);
	list_ctx_t x = {f, out, 0};
	db_status_t s = db_txn(pool, DB_TXN_READ, list_txn, &x);
	if (s != DB_OK)
		oh_task_list_free(out);
	return s;
}

void oh_task_list_free(oh_task_list_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		oh_task_clear(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

typedef struct {
	const char *id;
	oh_cancel_outcome_t *outcome;
	oh_task_t *out;
	const oh_event_spec_t *audit;
} cancel_ctx_t;

static db_status_t cancel_txn(db_conn_t *c, void *vctx)
{
	cancel_ctx_t *x = vctx;
	int64_t now, rows = 0;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_cancel_queued(c, x->id, now, &rows);
	if (s != DB_OK)
		return s;
	*x->outcome = OH_CANCEL_DONE;
	if (rows == 0) {
		s = tasks_store_request_cancel(c, x->id, now, &rows);
		if (s != DB_OK)
			return s;
		*x->outcome = OH_CANCEL_REQUESTED;
	}
	s = tasks_store_get(c, x->id, x->out);
	if (s == DB_NO_ROWS) {
		*x->outcome = OH_CANCEL_NOT_FOUND;
		return DB_OK;
	}
	if (s == DB_OK && rows == 0)
		*x->outcome =
		    x->out->state == OH_TS_CANCELLING ? OH_CANCEL_REQUESTED : OH_CANCEL_COMPLETED;
	if (s == DB_OK && rows > 0 && x->audit)
		s = oh_event_record_tx(c, x->audit, NULL);
	return s;
}

db_status_t oh_tasks_cancel(db_pool_t *pool, const char *id, oh_cancel_outcome_t *outcome,
                            oh_task_t *out, const oh_event_spec_t *audit)
{
	memset(out, 0, sizeof *out);
	cancel_ctx_t x = {id, outcome, out, audit};
	return db_txn(pool, DB_TXN_WRITE, cancel_txn, &x);
}

db_status_t oh_tasks_count_running_tx(db_conn_t *c, const char *node_id, const char *except_id,
                                      int64_t *count)
{
	return tasks_store_count_running(c, node_id, except_id, count);
}

typedef struct {
	const char *node, *owner;
	int64_t lease_ms;
	int running, running_system, limit;
	oh_claimed_t *out;
	int *n;
} claim_ctx_t;

static db_status_t claim_txn(db_conn_t *c, void *vctx)
{
	claim_ctx_t *x = vctx;
	for (int i = 0; i < *x->n; i++)
		oh_claimed_clear(&x->out[i]);
	*x->n = 0;
	bool draining = false;
	int cap = 0;
	db_status_t s = tasks_store_node_flags(c, x->node, &draining, &cap);
	if (s == DB_NO_ROWS)
		return DB_OK; /* not registered (any more): claim nothing */
	if (s != DB_OK)
		return s;
	int sys_limit = cap > 0 ? OH_SYSTEM_TASK_SLOTS - x->running_system : 0;
	int limit = draining ? 0 : cap - x->running;
	if (sys_limit > x->limit)
		sys_limit = x->limit;
	if (sys_limit <= 0 && limit <= 0)
		return DB_OK;
	int64_t now;
	s = db_now_ms(c, &now);
	if (s != DB_OK || sys_limit <= 0)
		goto regular;
	s = tasks_store_claim(c, x->node, x->owner, now + x->lease_ms, now, true, sys_limit, x->out,
	                      x->n);
regular:
	if (s != DB_OK)
		return s;
	if (limit > x->limit - *x->n)
		limit = x->limit - *x->n;
	if (limit <= 0)
		return DB_OK;
	int got = 0;
	s = tasks_store_claim(c, x->node, x->owner, now + x->lease_ms, now, false, limit,
	                      x->out + *x->n, &got);
	*x->n += got;
	return s;
}

db_status_t oh_tasks_claim(db_pool_t *pool, const char *node_id, const char *owner,
                           int64_t lease_ms, int running, int running_system, int limit,
                           oh_claimed_t *out, int *n)
{
	*n = 0;
	if (limit <= 0)
		return DB_OK;
	claim_ctx_t x = {node_id, owner, lease_ms, running, running_system, limit, out, n};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, claim_txn, &x);
	if (s != DB_OK) {
		for (int i = 0; i < *n; i++)
			oh_claimed_clear(&out[i]);
		*n = 0;
	}
	return s;
}

/* Ends one attempt inside the caller's transaction; sets ITEM's outputs. */
static db_status_t finish_one(db_conn_t *c, int64_t now, const char *owner, oh_finish_t *item)
{
	int64_t rows = 0;
	db_status_t s;
	item->status = DB_NO_ROWS;
	if (item->end == OH_END_RETRY) {
		int attempt = 0, max = 0;
		s = tasks_store_get_attempts(c, item->id, &attempt, &max);
		if (s != DB_OK)
			return s;
		if (attempt < max) {
			s = tasks_store_retry(c, item->id, owner, item->attempt, now,
			                      now + oh_task_backoff_ms(item->attempt), item->error,
			                      &rows);
			if (s != DB_OK)
				return s;
			item->final = OH_TS_QUEUED;
			item->status = rows == 1 ? DB_OK : DB_NO_ROWS;
			return DB_OK;
		}
	}
	oh_task_state_t st = item->end == OH_END_SUCCESS    ? OH_TS_SUCCESS
	                     : item->end == OH_END_CANCELED ? OH_TS_CANCELED
	                                                    : OH_TS_FAILED;
	s = tasks_store_finish(c, item->id, owner, item->attempt, st, now, item->error,
	                       item->result, &rows);
	if (s != DB_OK)
		return s;
	item->final = st;
	item->status = rows == 1 ? DB_OK : DB_NO_ROWS;
	if (st == OH_TS_FAILED && rows == 1) {
		char msg[600];
		snprintf(msg, sizeof msg, "Task %s failed: %.500s", item->id,
		         item->error ? item->error : "no reason given");
		oh_event_spec_t ev = {.category = "TaskFailed",
		                      .operation = "finishTask",
		                      .resource_id = item->id,
		                      .result = "Success",
		                      .message = msg,
		                      .no_webhooks = item->quiet};
		return oh_event_record_tx(c, &ev, NULL);
	}
	return DB_OK;
}

typedef struct {
	const char *owner;
	oh_finish_t *items;
	size_t n;
	bool per_item; /* a chunk met a lost lease: record one by one */
} finish_ctx_t;

/* Plain successes (no error, no result) are recorded a chunk per
 * statement; the rest one by one. */
static bool plain_success(const oh_finish_t *it)
{
	return it->end == OH_END_SUCCESS && !it->error && !it->result;
}

/* Records a chunk of plain successes in one statement.  When fewer rows
 * changed than asked (a lease was lost), which ones changed cannot be told
 * apart, so the transaction is rolled back and run again item by item. */
static db_status_t succeed_chunk(db_conn_t *c, int64_t now, finish_ctx_t *x, oh_finish_t **its,
                                 int n)
{
	const char *ids[64] = {0};
	int attempts[64] = {0};
	for (int i = 0; i < n; i++) {
		ids[i] = its[i]->id;
		attempts[i] = its[i]->attempt;
	}
	int64_t rows = 0;
	db_status_t s = tasks_store_succeed_many(c, x->owner, now, ids, attempts, n, &rows);
	if (s != DB_OK)
		return s;
	if (rows != n) {
		x->per_item = true;
		return DB_TRANSIENT;
	}
	for (int i = 0; i < n; i++) {
		its[i]->final = OH_TS_SUCCESS;
		its[i]->status = DB_OK;
	}
	return DB_OK;
}

static db_status_t finish_txn(db_conn_t *c, void *vctx)
{
	finish_ctx_t *x = vctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	oh_finish_t *chunk[64];
	int n = 0, max = tasks_store_succeed_chunk();
	for (size_t i = 0; i < x->n && s == DB_OK; i++) {
		if (x->per_item || !plain_success(&x->items[i])) {
			s = finish_one(c, now, x->owner, &x->items[i]);
			continue;
		}
		chunk[n++] = &x->items[i];
		if (n == max) {
			s = succeed_chunk(c, now, x, chunk, n);
			n = 0;
		}
	}
	if (s == DB_OK && n > 0)
		s = succeed_chunk(c, now, x, chunk, n);
	return s;
}

db_status_t oh_tasks_finish_many(db_pool_t *pool, const char *owner, oh_finish_t *items, size_t n)
{
	if (n == 0)
		return DB_OK;
	finish_ctx_t x = {owner, items, n, false};
	return db_txn(pool, DB_TXN_WRITE, finish_txn, &x);
}

db_status_t oh_tasks_finish(db_pool_t *pool, const char *id, const char *owner, int attempt,
                            oh_end_t end, const char *error, const char *result,
                            oh_task_state_t *final)
{
	oh_finish_t item = {id, attempt, end, error, result, false, DB_NO_ROWS, OH_TS_FAILED};
	db_status_t s = oh_tasks_finish_many(pool, owner, &item, 1);
	if (final)
		*final = item.final;
	return s == DB_OK ? item.status : s;
}

typedef struct {
	const char *id, *owner;
	int attempt, percent;
	const char *message;
} progress_ctx_t;

static db_status_t progress_txn(db_conn_t *c, void *vctx)
{
	progress_ctx_t *x = vctx;
	int64_t now, rows = 0;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_progress(c, x->id, x->owner, x->attempt, now, x->percent,
		                         x->message, &rows);
	if (s != DB_OK)
		return s;
	return rows == 1 ? DB_OK : DB_NO_ROWS;
}

db_status_t oh_tasks_progress(db_pool_t *pool, const char *id, const char *owner, int attempt,
                              int percent, const char *message)
{
	progress_ctx_t x = {id, owner, attempt, percent, message};
	return db_txn(pool, DB_TXN_WRITE, progress_txn, &x);
}

typedef struct {
	const char *owner;
	int64_t lease_ms;
	oh_held_t *out;
	int cap;
	int *n;
} renew_ctx_t;

static db_status_t renew_txn(db_conn_t *c, void *vctx)
{
	renew_ctx_t *x = vctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_renew(c, x->owner, now + x->lease_ms);
	if (s == DB_OK)
		s = tasks_store_held(c, x->owner, x->out, x->cap, x->n);
	return s;
}

db_status_t oh_tasks_renew(db_pool_t *pool, const char *owner, int64_t lease_ms, oh_held_t *out,
                           int cap, int *n)
{
	*n = 0;
	renew_ctx_t x = {owner, lease_ms, out, cap, n};
	return db_txn(pool, DB_TXN_WRITE, renew_txn, &x);
}

#define PURGE_BATCH 200

typedef struct {
	int64_t period_ms, retention_ms;
	bool *ran;
	oh_expiry_t *out;
	char (*purge)[64];
	int n_purge;
} hk_ctx_t;

static db_status_t housekeeping_txn(db_conn_t *c, void *vctx)
{
	hk_ctx_t *x = vctx;
	*x->ran = false;
	memset(x->out, 0, sizeof *x->out);
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_take_slot(c, "housekeeping", now, x->period_ms, x->ran);
	if (s != DB_OK || !*x->ran)
		return s;
	s = tasks_store_expire(c, now, x->out);
	x->n_purge = 0;
	if (s != DB_OK || x->retention_ms <= 0)
		return s;
	bool purge = false;
	s = tasks_store_take_slot(c, "retention", now, 60000, &purge);
	if (s != DB_OK || !purge)
		return s;
	s = tasks_store_completed_before(c, now - x->retention_ms, x->purge, PURGE_BATCH,
	                                 &x->n_purge);
	if (s == DB_OK && x->n_purge > 0) /* the batch is a prefix in CompletedTime order */
		s = task_counts_store_forget_through(c, x->purge[x->n_purge - 1]);
	for (int i = 0; i < x->n_purge && s == DB_OK; i++)
		s = tasks_store_delete(c, x->purge[i]);
	x->out->purged = x->n_purge;
	return s;
}

db_status_t oh_tasks_housekeeping(db_pool_t *pool, int64_t period_ms, int64_t retention_ms,
                                  const char *const *logs_dirs, size_t n_dirs, bool *ran,
                                  oh_expiry_t *out)
{
	char(*purge)[64] = calloc(PURGE_BATCH, 64);
	if (!purge)
		return DB_ERROR;
	hk_ctx_t x = {period_ms > 0 ? period_ms : 1000, retention_ms, ran, out, purge, 0};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, housekeeping_txn, &x);
	/* Logs go after their rows are gone; a crash in between leaves only
	 * an orphaned log file, never a task without its log. */
	if (s == DB_OK)
		for (int i = 0; i < x.n_purge; i++)
			for (size_t d = 0; d < n_dirs; d++)
				oh_task_log_remove(logs_dirs[d], purge[i]);
	free(purge);
	return s;
}

typedef struct {
	const char *node;
	bool cancel;
	int64_t *n;
} evict_ctx_t;

static db_status_t evict_txn(db_conn_t *c, void *vctx)
{
	evict_ctx_t *x = vctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_evict_node(c, x->node, x->cancel, now, x->n);
	return s;
}

db_status_t oh_tasks_evict_node(db_pool_t *pool, const char *node_id, bool cancel, int64_t *n)
{
	*n = 0;
	evict_ctx_t x = {node_id, cancel, n};
	return db_txn(pool, DB_TXN_WRITE, evict_txn, &x);
}

typedef struct {
	void (*fn)(void *, const char *, int64_t);
	void *ctx;
} by_node_t;

static db_status_t by_node_txn(db_conn_t *c, void *vctx)
{
	by_node_t *x = vctx;
	return tasks_store_running_by_node(c, x->fn, x->ctx);
}

db_status_t oh_tasks_running_by_node(db_pool_t *pool, void (*fn)(void *, const char *, int64_t),
                                     void *ctx)
{
	by_node_t x = {fn, ctx};
	return db_txn(pool, DB_TXN_READ, by_node_txn, &x);
}

typedef struct {
	const char *owner;
	int64_t *n;
} release_ctx_t;

static db_status_t release_txn(db_conn_t *c, void *vctx)
{
	release_ctx_t *x = vctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_release_owner(c, x->owner, now, x->n);
	return s;
}

db_status_t oh_tasks_release_owner(db_pool_t *pool, const char *owner, int64_t *n)
{
	*n = 0;
	release_ctx_t x = {owner, n};
	return db_txn(pool, DB_TXN_WRITE, release_txn, &x);
}
