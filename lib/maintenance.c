#include "maintenance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_replies.h"
#include "db/cluster_store.h"
#include "events.h"
#include "idempotency.h"
#include "oh_crypto.h"
#include "oh_json.h"

#define DRIVER_MAX_ATTEMPTS 100

typedef struct {
	const oh_maint_spec_t *spec;
	oh_mrun_t *run;
	oh_task_t *task;
	char *busy_id;
} start_ctx_t;

static db_status_t start_txn(db_conn_t *c, void *vctx)
{
	start_ctx_t *x = vctx;
	const oh_maint_spec_t *sp = x->spec;
	oh_task_clear(x->task);
	x->busy_id[0] = '\0';
	db_status_t s = cluster_store_lock(c, "maintenance");
	if (s != DB_OK)
		return s;
	s = maint_store_active(c, sp->cluster_id, x->busy_id, 51);
	if (s == DB_OK)
		return DB_ABORT; /* another run of this cluster has not ended */
	if (s != DB_NO_ROWS)
		return s;
	s = db_now_ms(c, &x->run->created_at);
	if (s == DB_OK)
		s = oh_idem_record_tx(c, sp->idem, x->run->task_id);
	if (s == DB_OK)
		s = maint_store_insert_run(c, x->run);
	for (size_t i = 0; s == DB_OK && i < sp->n; i++) {
		oh_mstep_t st;
		memset(&st, 0, sizeof st);
		st.position = (int)i;
		snprintf(st.node_key, sizeof st.node_key, "%s", sp->node_keys[i]);
		snprintf(st.node_name, sizeof st.node_name, "%s", sp->node_names[i]);
		snprintf(st.state, sizeof st.state, "Pending");
		s = maint_store_insert_step(c, x->run->id, &st);
	}
	if (s != DB_OK)
		return s;
	json_t *args = oh_json_check(json_object());
	oh_json_set_new(args, "MaintenanceRunId", json_string(x->run->id));
	oh_json_set_new(args, "ClusterId", json_string(sp->cluster_id));
	char desc[300];
	snprintf(desc, sizeof desc, "Rolling maintenance of %s (%zu node%s)",
	         strcmp(sp->cluster_id, OH_MAINT_LOCAL) == 0 ? "this cluster" : sp->cluster_id,
	         sp->n, sp->n == 1 ? "" : "s");
	oh_task_spec_t ts = {.name = OH_MAINT_KIND,
	                     .description = desc,
	                     .arguments = args,
	                     .is_system = true,
	                     .max_attempts = DRIVER_MAX_ATTEMPTS,
	                     .id = x->run->task_id,
	                     .requested_by = sp->requested_by};
	s = oh_task_insert(c, &ts, x->task);
	json_decref(args);
	if (s == DB_OK && sp->audit) {
		oh_event_spec_t ev = *sp->audit;
		ev.category = "MaintenanceRunStarted";
		ev.resource_id = x->run->id;
		if (!ev.message)
			ev.message = desc;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	return s;
}

static db_status_t start_verify(db_conn_t *c, void *vctx)
{
	start_ctx_t *x = vctx;
	oh_task_clear(x->task);
	return oh_task_get_tx(c, x->run->task_id, x->task);
}

db_status_t oh_maint_start(db_pool_t *pool, const oh_maint_spec_t *spec, oh_mrun_t *run,
                           oh_task_t *task, char *busy_id)
{
	memset(run, 0, sizeof *run);
	memset(task, 0, sizeof *task);
	char rnd[21];
	if (!oh_random_hex(rnd, 10))
		return DB_ERROR;
	snprintf(run->id, sizeof run->id, OH_MAINT_ID_PREFIX "%s", rnd);
	/* The task's Id is the run's: one look-up settles a lost COMMIT. */
	snprintf(run->task_id, sizeof run->task_id, OH_TASK_ID_PREFIX "%s", rnd);
	snprintf(run->cluster_id, sizeof run->cluster_id, "%s", spec->cluster_id);
	snprintf(run->state, sizeof run->state, "Queued");
	snprintf(run->reason, sizeof run->reason, "%s", spec->reason ? spec->reason : "");
	run->min_online = spec->min_online;
	run->deadline_s = spec->deadline_s;
	snprintf(run->deadline_action, sizeof run->deadline_action, "%s",
	         spec->cancel_at_deadline ? "Cancel" : "Requeue");
	run->settle_s = spec->settle_s;
	run->balancer_delay_s = spec->balancer_delay_s;
	run->undrain_on_abort = spec->undrain_on_abort;
	run->current_step = -1;
	snprintf(run->requested_by, sizeof run->requested_by, "%s",
	         spec->requested_by ? spec->requested_by : "");
	start_ctx_t x = {spec, run, task, busy_id};
	db_status_t s = db_txn_verified(pool, start_txn, start_verify, &x);
	if (s == DB_ABORT && busy_id[0])
		return DB_OK;
	return s;
}

void oh_maint_view_free(oh_maint_view_t *v)
{
	free(v->steps);
	v->steps = NULL;
	v->n = 0;
}

static void add_step(void *vctx, const oh_mstep_t *s)
{
	oh_maint_view_t *v = vctx;
	oh_mstep_t *nv = realloc(v->steps, (v->n + 1) * sizeof *nv);
	if (!nv)
		abort();
	v->steps = nv;
	v->steps[v->n++] = *s;
}

typedef struct {
	const char *id;
	oh_maint_view_t *out;
} get_ctx_t;

static db_status_t get_in(db_conn_t *c, const char *id, oh_maint_view_t *out)
{
	oh_maint_view_free(out);
	db_status_t s = maint_store_get_run(c, id, &out->run);
	return s == DB_OK ? maint_store_each_step(c, id, add_step, out) : s;
}

static db_status_t get_txn(db_conn_t *c, void *vctx)
{
	get_ctx_t *x = vctx;
	return get_in(c, x->id, x->out);
}

db_status_t oh_maint_get(db_pool_t *pool, const char *id, oh_maint_view_t *out)
{
	memset(out, 0, sizeof *out);
	get_ctx_t x = {id, out};
	db_status_t s = db_txn(pool, DB_TXN_READ, get_txn, &x);
	if (s != DB_OK)
		oh_maint_view_free(out);
	return s;
}

static void add_run(void *vctx, const oh_mrun_t *r)
{
	oh_maint_list_t *l = vctx;
	oh_maint_view_t *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (!nv)
		abort(); /* out of memory: stop loudly rather than list half */
	l->v = nv;
	memset(&l->v[l->n], 0, sizeof l->v[0]);
	l->v[l->n++].run = *r;
}

/* Steps arrive by run: the page's runs are searched from the last one
 * matched, so a page costs its rows. */
typedef struct {
	oh_maint_list_t *l;
	size_t at;
} steps_ctx_t;

static void add_run_step(void *vctx, const char *run_id, const oh_mstep_t *s)
{
	steps_ctx_t *x = vctx;
	for (size_t k = 0; k < x->l->n; k++) {
		size_t i = (x->at + k) % x->l->n;
		if (strcmp(x->l->v[i].run.id, run_id) == 0) {
			x->at = i;
			add_step(&x->l->v[i], s);
			return;
		}
	}
}

typedef struct {
	const char *after;
	int64_t skip, take;
	oh_maint_list_t *out;
} list_ctx_t;

static db_status_t list_txn(db_conn_t *c, void *vctx)
{
	list_ctx_t *x = vctx;
	oh_maint_list_free(x->out);
	db_status_t s =
	    maint_store_page(c, x->after, x->skip, x->take, add_run, x->out, &x->out->total);
	if (s != DB_OK || x->out->n == 0)
		return s;
	const char **ids = malloc(x->out->n * sizeof *ids);
	if (!ids)
		abort();
	for (size_t i = 0; i < x->out->n; i++)
		ids[i] = x->out->v[i].run.id;
	steps_ctx_t sx = {x->out, 0};
	s = maint_store_steps_of(c, ids, x->out->n, add_run_step, &sx);
	free(ids);
	return s;
}

db_status_t oh_maint_list(db_pool_t *pool, const char *after, int64_t skip, int64_t take,
                          oh_maint_list_t *out)
{
	memset(out, 0, sizeof *out);
	list_ctx_t x = {after, skip, take, out};
	db_status_t s = db_txn(pool, DB_TXN_READ, list_txn, &x);
	if (s != DB_OK)
		oh_maint_list_free(out);
	return s;
}

typedef struct {
	const char *cluster_id;
	char *id;
	size_t size;
} active_ctx_t;

static db_status_t active_txn(db_conn_t *c, void *vctx)
{
	active_ctx_t *x = vctx;
	return maint_store_active(c, x->cluster_id, x->id, x->size);
}

db_status_t oh_maint_active(db_pool_t *pool, const char *cluster_id, char *id, size_t size)
{
	id[0] = '\0';
	active_ctx_t x = {cluster_id, id, size};
	return db_txn(pool, DB_TXN_READ, active_txn, &x);
}

void oh_maint_list_free(oh_maint_list_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		oh_maint_view_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->total = 0;
}

typedef struct {
	const char *id;
	oh_mctl_t ctl;
	int undrain;
	const oh_event_spec_t *audit;
	oh_mctl_outcome_t *outcome;
	oh_maint_view_t *out;
} ctl_ctx_t;

static db_status_t ctl_txn(db_conn_t *c, void *vctx)
{
	ctl_ctx_t *x = vctx;
	oh_mrun_t run;
	db_status_t s = maint_store_get_run(c, x->id, &run);
	if (s == DB_NO_ROWS) {
		*x->outcome = OH_MCTL_NOT_FOUND;
		return DB_ABORT;
	}
	if (s != DB_OK)
		return s;
	int64_t rows = 0;
	const char *category = "MaintenanceRunPaused";
	switch (x->ctl) {
	case OH_MCTL_PAUSE: s = maint_store_set_paused(c, x->id, true, &rows); break;
	case OH_MCTL_RESUME:
		category = "MaintenanceRunResumed";
		s = maint_store_set_paused(c, x->id, false, &rows);
		break;
	case OH_MCTL_ABORT:
		category = "MaintenanceRunAbortRequested";
		s = maint_store_request_abort(c, x->id, x->undrain, &rows);
		break;
	case OH_MCTL_CONTINUE:
		category = "MaintenanceRunContinued";
		rows = 0;
		if (strcmp(run.state, "Running") == 0 || strcmp(run.state, "Paused") == 0)
			s = maint_store_request_continue(c, x->id, &rows);
		break;
	}
	if (s != DB_OK)
		return s;
	if (rows == 0) {
		*x->outcome = OH_MCTL_WRONG_STATE;
		s = get_in(c, x->id, x->out);
		return s == DB_OK ? DB_ABORT : s;
	}
	*x->outcome = OH_MCTL_DONE;
	if (x->audit) {
		oh_event_spec_t ev = *x->audit;
		ev.category = category;
		ev.resource_id = x->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	return s == DB_OK ? get_in(c, x->id, x->out) : s;
}

db_status_t oh_maint_control(db_pool_t *pool, const char *id, oh_mctl_t ctl, int undrain,
                             const struct oh_event_spec *audit, oh_mctl_outcome_t *outcome,
                             oh_maint_view_t *out)
{
	memset(out, 0, sizeof *out);
	ctl_ctx_t x = {id, ctl, undrain, audit, outcome, out};
	/* Each control sets a state, so running it twice is harmless; the
	 * audit event would be recorded twice at worst. */
	db_status_t s = db_txn(pool, DB_TXN_WRITE, ctl_txn, &x);
	return s == DB_ABORT ? DB_OK : s;
}

/* ---- the driver's side --------------------------------------------------- */

static db_status_t now_txn(db_conn_t *c, void *vctx)
{
	return db_now_ms(c, vctx);
}

int64_t oh_maint_now(db_pool_t *pool)
{
	int64_t now = 0;
	return db_txn(pool, DB_TXN_READ, now_txn, &now) == DB_OK ? now : 0;
}

typedef struct {
	const char *id;
	int attempt;
	bool *mine;
} take_ctx_t;

static db_status_t take_txn(db_conn_t *c, void *vctx)
{
	take_ctx_t *x = vctx;
	int64_t rows = 0;
	db_status_t s = maint_store_take(c, x->id, x->attempt, &rows);
	if (s == DB_OK && rows == 0)
		s = maint_store_fence(c, x->id, x->attempt, &rows); /* already ours */
	*x->mine = s == DB_OK && rows == 1;
	return s;
}

db_status_t oh_maint_take(db_pool_t *pool, const char *id, int attempt, bool *mine)
{
	take_ctx_t x = {id, attempt, mine};
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, take_txn, &x);
}

typedef struct {
	const oh_mrun_t *run;
	const oh_mstep_t *step;
	const oh_event_spec_t *ev;
	const char *chat;
	bool *lost;
} save_ctx_t;

/* Queues a chat message TEXT to the reply address of TASK_ID, if any. */
static db_status_t chat_tx(db_conn_t *c, const char *task_id, const char *text)
{
	char url[2001];
	db_status_t s = cluster_store_reply_url(c, task_id, url, sizeof url);
	if (s == DB_NO_ROWS)
		return DB_OK;
	if (s != DB_OK)
		return s;
	json_t *args = oh_json_check(json_object());
	oh_json_set_new(args, "TaskId", json_string(task_id));
	oh_json_set_new(args, "Text", json_string(text));
	oh_task_spec_t spec = {.name = OH_CHAT_REPLY_KIND,
	                       .description = "Post a maintenance run's news to the chat",
	                       .arguments = args,
	                       .max_attempts = 5,
	                       .requested_by = "system"};
	oh_task_t t;
	s = oh_task_insert(c, &spec, &t);
	json_decref(args);
	if (s == DB_OK)
		oh_task_clear(&t);
	return s;
}

static db_status_t save_txn(db_conn_t *c, void *vctx)
{
	save_ctx_t *x = vctx;
	int64_t rows = 0;
	*x->lost = false;
	db_status_t s = maint_store_fence(c, x->run->id, x->run->driver_attempt, &rows);
	if (s != DB_OK)
		return s;
	if (rows == 0) {
		*x->lost = true;
		return DB_ABORT;
	}
	s = maint_store_save_run(c, x->run);
	if (s == DB_OK && x->step)
		s = maint_store_save_step(c, x->run->id, x->step);
	if (s == DB_OK && x->ev)
		s = oh_event_record_tx(c, x->ev, NULL);
	if (s == DB_OK && x->chat)
		s = chat_tx(c, x->run->task_id, x->chat);
	return s;
}

db_status_t oh_maint_save(db_pool_t *pool, const oh_mrun_t *run, const oh_mstep_t *step,
                          const struct oh_event_spec *ev, const char *chat, bool *lost)
{
	save_ctx_t x = {run, step, ev, chat, lost};
	/* An event is recorded with the save, so a lost COMMIT is not simply
	 * replayed (it would announce twice); the driver reads the run again
	 * and decides from what is there. */
	db_status_t s =
	    db_txn(pool, ev || chat ? DB_TXN_WRITE : DB_TXN_WRITE_IDEMPOTENT, save_txn, &x);
	return s == DB_ABORT && *lost ? DB_OK : s;
}
