#include "tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/task_counts_store.h"
#include "db/tasks_store.h"
#include "events.h"
#include "idempotency.h"
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

bool oh_task_new_id(char *id, size_t size)
{
	char rnd[21];
	if (!oh_random_hex(rnd, 10))
		return false;
	snprintf(id, size, OH_TASK_ID_PREFIX "%s", rnd);
	return true;
}

void oh_task_id_for_key(const char *key, char *id, size_t size)
{
	char hex[65];
	oh_sha256_hex(key, strlen(key), hex);
	snprintf(id, size, OH_TASK_ID_PREFIX "%.20s", hex);
}

/* Inserts SPEC's task with Id ID. */
static db_status_t insert_as(db_conn_t *c, const oh_task_spec_t *spec, const char *id,
                             oh_task_t *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", id);
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s != DB_OK)
		return s;
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
	snprintf(out->requested_by, sizeof out->requested_by, "%s",
	         spec->requested_by ? spec->requested_by : "");
	s = tasks_store_insert(c, out);
	if (s != DB_OK)
		oh_task_clear(out);
	return s;
}

db_status_t oh_task_insert(db_conn_t *c, const oh_task_spec_t *spec, oh_task_t *out)
{
	char id[64];
	if (!spec->id && !oh_task_new_id(id, sizeof id))
		return DB_ERROR;
	return insert_as(c, spec, spec->id ? spec->id : id, out);
}

db_status_t oh_task_get_tx(db_conn_t *c, const char *id, oh_task_t *out)
{
	return tasks_store_get(c, id, out);
}

/* Creates SPEC's task inside C: with SPEC's Id (found when it exists
 * already) or, without one, with FRESH_ID (or a new random Id when NULL). */
static db_status_t create_in(db_conn_t *c, const oh_task_spec_t *spec, const char *fresh_id,
                             oh_task_t *out, bool *existed)
{
	*existed = false;
	oh_task_clear(out);
	db_status_t s;
	char id[64];
	if (spec->id) { /* created at most once: it may be there already */
		s = tasks_store_get(c, spec->id, out);
		if (s == DB_OK) {
			*existed = true;
			return DB_OK;
		}
		if (s != DB_NO_ROWS)
			return s;
		fresh_id = spec->id;
	} else if (!fresh_id) {
		if (!oh_task_new_id(id, sizeof id))
			return DB_ERROR;
		fresh_id = id;
	}
	/* The key first: a request racing this one with the same key waits on
	 * it here, and is told so (409) once this one commits. */
	s = oh_idem_record_tx(c, spec->idem, fresh_id);
	if (s == DB_OK)
		s = insert_as(c, spec, fresh_id, out);
	if (s == DB_DUPLICATE && spec->id)
		return DB_TRANSIENT; /* created meanwhile: the retry reads it */
	if (s == DB_OK && spec->audit) {
		oh_event_spec_t ev = *spec->audit;
		if (!ev.resource_id)
			ev.resource_id = out->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	return s;
}

db_status_t oh_task_create_tx(db_conn_t *c, const oh_task_spec_t *spec, oh_task_t *out,
                              bool *existed)
{
	return create_in(c, spec, NULL, out, existed);
}

typedef struct {
	const oh_task_spec_t *spec;
	const char *id; /* chosen before the transaction */
	oh_task_t *out;
	bool *existed;
} create_ctx_t;

static db_status_t create_txn(db_conn_t *c, void *vctx)
{
	create_ctx_t *x = vctx;
	return create_in(c, x->spec, x->id, x->out, x->existed);
}

/* Whether the task a lost COMMIT was creating exists. */
static db_status_t create_verify(db_conn_t *c, void *vctx)
{
	create_ctx_t *x = vctx;
	oh_task_clear(x->out);
	return tasks_store_get(c, x->id, x->out);
}

db_status_t oh_tasks_create(db_pool_t *pool, const oh_task_spec_t *spec, oh_task_t *out,
                            bool *existed)
{
	memset(out, 0, sizeof *out);
	/* The Id is chosen before the transaction, so a COMMIT whose answer
	 * was lost is settled by looking it up, never by inserting again. */
	char id[64];
	if (spec->id)
		snprintf(id, sizeof id, "%s", spec->id);
	else if (!oh_task_new_id(id, sizeof id))
		return DB_ERROR;
	create_ctx_t x = {spec, id, out, existed};
	return db_txn_verified(pool, create_txn, create_verify, &x);
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

/* After a cancel whose COMMIT lost its answer: the task Canceled or
 * Cancelling means the cancel (this one or another) took effect. */
static db_status_t cancel_verify(db_conn_t *c, void *vctx)
{
	cancel_ctx_t *x = vctx;
	oh_task_clear(x->out);
	db_status_t s = tasks_store_get(c, x->id, x->out);
	if (s != DB_OK)
		return s;
	if (x->out->state == OH_TS_CANCELED)
		*x->outcome = OH_CANCEL_DONE;
	else if (x->out->state == OH_TS_CANCELLING)
		*x->outcome = OH_CANCEL_REQUESTED;
	else
		return DB_NO_ROWS;
	return DB_OK;
}

db_status_t oh_tasks_cancel(db_pool_t *pool, const char *id, oh_cancel_outcome_t *outcome,
                            oh_task_t *out, const oh_event_spec_t *audit)
{
	memset(out, 0, sizeof *out);
	cancel_ctx_t x = {id, outcome, out, audit};
	return db_txn_verified(pool, cancel_txn, cancel_verify, &x);
}

db_status_t oh_tasks_count_running_tx(db_conn_t *c, const char *node_id, const char *except_id,
                                      int64_t *count)
{
	return tasks_store_count_running(c, node_id, except_id, count);
}

typedef struct {
	const char *node, *owner;
	char token[33]; /* chosen before the transaction */
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
	s = tasks_store_claim(c, x->node, x->owner, x->token, now + x->lease_ms, now, true,
	                      sys_limit, x->out, x->n);
regular:
	if (s != DB_OK)
		return s;
	if (limit > x->limit - *x->n)
		limit = x->limit - *x->n;
	if (limit <= 0)
		return DB_OK;
	int got = 0;
	s = tasks_store_claim(c, x->node, x->owner, x->token, now + x->lease_ms, now, false, limit,
	                      x->out + *x->n, &got);
	*x->n += got;
	return s;
}

/* After a claim whose COMMIT lost its answer: the batch it holds, if it
 * was committed, found by its token (none: not committed, claim again). */
static db_status_t claim_verify(db_conn_t *c, void *vctx)
{
	claim_ctx_t *x = vctx;
	for (int i = 0; i < *x->n; i++)
		oh_claimed_clear(&x->out[i]);
	*x->n = 0;
	return tasks_store_claimed(c, x->owner, x->token, x->limit, x->out, x->n);
}

db_status_t oh_tasks_claim(db_pool_t *pool, const char *node_id, const char *owner,
                           int64_t lease_ms, int running, int running_system, int limit,
                           oh_claimed_t *out, int *n)
{
	*n = 0;
	if (limit <= 0)
		return DB_OK;
	claim_ctx_t x = {.node = node_id,
	                 .owner = owner,
	                 .lease_ms = lease_ms,
	                 .running = running,
	                 .running_system = running_system,
	                 .limit = limit,
	                 .out = out,
	                 .n = n};
	if (!oh_random_hex(x.token, 16))
		return DB_ERROR;
	db_status_t s = db_txn_verified(pool, claim_txn, claim_verify, &x);
	if (s != DB_OK) {
		for (int i = 0; i < *n; i++)
			oh_claimed_clear(&out[i]);
		*n = 0;
	}
	return s;
}

/* After a fenced end matched nothing: says whether the end this attempt
 * wanted is already there (the same transaction committed before its link
 * dropped and is being replayed), so a replay reports it recorded instead
 * of lost.  WANT is the state the end leaves. */
static db_status_t already_ended(db_conn_t *c, const char *owner, oh_finish_t *item,
                                 oh_task_state_t want)
{
	oh_task_state_t st;
	int attempt = 0;
	bool leased = false;
	char last_owner[65];
	db_status_t s =
	    tasks_store_state(c, item->id, &st, &attempt, &leased, last_owner, sizeof last_owner);
	if (s == DB_NO_ROWS)
		return DB_OK; /* purged meanwhile: lost */
	if (s != DB_OK)
		return s;
	if (attempt == item->attempt && st == want && !leased && strcmp(last_owner, owner) == 0) {
		item->final = want;
		item->status = DB_OK;
	}
	return DB_OK;
}

/* Records the TaskFailed event of ITEM's end. */
static db_status_t failed_event(db_conn_t *c, const oh_finish_t *item)
{
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

/* Ends one attempt inside the caller's transaction; sets ITEM's outputs.
 * A task found Cancelling ends Canceled when the attempt wanted a retry or
 * a failure: the cancel came first.  A success stands either way. */
static db_status_t finish_one(db_conn_t *c, int64_t now, const char *owner, oh_finish_t *item)
{
	int64_t rows = 0;
	db_status_t s;
	item->status = DB_NO_ROWS;
	oh_task_state_t st = item->end == OH_END_SUCCESS    ? OH_TS_SUCCESS
	                     : item->end == OH_END_CANCELED ? OH_TS_CANCELED
	                                                    : OH_TS_FAILED;
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
			if (rows == 1) {
				item->final = OH_TS_QUEUED;
				item->status = DB_OK;
				return DB_OK;
			}
			st = OH_TS_QUEUED; /* what a replay of this retry finds */
		}
	}
	oh_finish_from_t from = st == OH_TS_FAILED ? OH_FROM_EXECUTING : OH_FROM_RUNNING;
	if (st != OH_TS_QUEUED) {
		s = tasks_store_finish(c, item->id, owner, item->attempt, st, from, now,
		                       item->error, item->result, &rows);
		if (s != DB_OK)
			return s;
		if (rows == 1) {
			item->final = st;
			item->status = DB_OK;
			return st == OH_TS_FAILED ? failed_event(c, item) : DB_OK;
		}
	}
	if (st == OH_TS_FAILED || st == OH_TS_QUEUED) {
		s = tasks_store_finish(c, item->id, owner, item->attempt, OH_TS_CANCELED,
		                       OH_FROM_CANCELLING, now, "Canceled.", NULL, &rows);
		if (s != DB_OK)
			return s;
		if (rows == 1) {
			item->final = OH_TS_CANCELED;
			item->status = DB_OK;
			return DB_OK;
		}
	}
	/* Matched nothing: the lease is lost, or this end is a replay of one
	 * already committed (a COMMIT whose answer was lost). */
	s = already_ended(c, owner, item, st);
	if (s == DB_OK && item->status != DB_OK && st != OH_TS_CANCELED)
		s = already_ended(c, owner, item, OH_TS_CANCELED);
	return s;
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
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, finish_txn, &x);
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
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, progress_txn, &x);
}

typedef struct {
	const char *owner;
	int64_t lease_ms;
	const oh_held_t *hold;
	int n_hold;
	oh_held_t *out;
	int cap;
	int *n;
} renew_ctx_t;

static db_status_t renew_txn(db_conn_t *c, void *vctx)
{
	renew_ctx_t *x = vctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	int chunk = tasks_store_succeed_chunk();
	for (int i = 0; i < x->n_hold && s == DB_OK; i += chunk) {
		const char *ids[64];
		int attempts[64];
		int k = 0;
		for (; k < chunk && i + k < x->n_hold; k++) {
			ids[k] = x->hold[i + k].id;
			attempts[k] = x->hold[i + k].attempt;
		}
		s = tasks_store_renew_some(c, x->owner, now + x->lease_ms, ids, attempts, k);
	}
	if (s == DB_OK)
		s = tasks_store_held(c, x->owner, x->out, x->cap, x->n);
	return s;
}

db_status_t oh_tasks_renew(db_pool_t *pool, const char *owner, int64_t lease_ms,
                           const oh_held_t *hold, int n_hold, oh_held_t *out, int cap, int *n)
{
	*n = 0;
	renew_ctx_t x = {owner, lease_ms, hold, n_hold, out, cap, n};
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, renew_txn, &x);
}

#define PURGE_BATCH 200

typedef struct {
	int64_t period_ms, retention_ms;
	const char *self;
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
	s = tasks_store_expire(c, now, x->self, x->out);
	x->n_purge = 0;
	if (s != DB_OK)
		return s;
	/* Once a minute: expired idempotency keys, and tasks past retention. */
	bool purge = false;
	s = tasks_store_take_slot(c, "retention", now, 60000, &purge);
	if (s != DB_OK || !purge)
		return s;
	int64_t keys = 0;
	s = oh_idem_purge_tx(c, now, &keys);
	if (s != DB_OK || x->retention_ms <= 0)
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

db_status_t oh_tasks_housekeeping(db_pool_t *pool, const char *self, int64_t period_ms,
                                  int64_t retention_ms, const char *const *logs_dirs, size_t n_dirs,
                                  bool *ran, oh_expiry_t *out)
{
	char(*purge)[64] = calloc(PURGE_BATCH, 64);
	if (!purge)
		return DB_ERROR;
	hk_ctx_t x = {
	    period_ms > 0 ? period_ms : 1000, retention_ms, self ? self : "", ran, out, purge, 0};
	db_status_t s = db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, housekeeping_txn, &x);
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
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, evict_txn, &x);
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
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, release_txn, &x);
}
