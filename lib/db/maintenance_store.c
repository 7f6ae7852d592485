#include "maintenance_store.h"

#include <stdlib.h>
#include <string.h>

#define RUN_COLUMNS                                                                                \
	"Id, ClusterId, TaskId, State, Reason, MinOnlineNodes, DrainDeadlineSeconds, "             \
	"DeadlineAction, SettleSeconds, UndrainOnAbort, AbortRequested, CurrentStep, "             \
	"DriverAttempt, RequestedBy, CreatedAt, StartedAt, EndedAt, Message, BalancerDelaySeconds"

#define STEP_COLUMNS                                                                               \
	"Position, NodeKey, NodeName, State, DrainTaskId, UndrainTaskId, BaselineStartedAt, "      \
	"PingLost, ContinueRequested, DrainRequestedAt, DrainedAt, ReadyAt, RestartedAt, "         \
	"UndrainRequestedAt, OnlineAt, DoneAt, Message"

#define ACTIVE "State IN ('Queued', 'Running', 'Paused')"

static db_param_t opt_text(const char *s)
{
	return s && *s ? DBP_TEXT(s) : DBP_NULL;
}

static db_param_t opt_time(int64_t t)
{
	return t > 0 ? DBP_INT(t) : DBP_NULL;
}

db_status_t maint_store_insert_run(db_conn_t *c, const oh_mrun_t *r)
{
	db_param_t p[] = {DBP_TEXT(r->id),
	                  DBP_TEXT(r->cluster_id),
	                  DBP_TEXT(r->task_id),
	                  DBP_TEXT(r->state),
	                  DBP_TEXT(r->reason),
	                  DBP_INT(r->min_online),
	                  DBP_INT(r->deadline_s),
	                  DBP_TEXT(r->deadline_action),
	                  DBP_INT(r->settle_s),
	                  DBP_INT(r->undrain_on_abort),
	                  DBP_INT(r->abort_requested),
	                  DBP_INT(r->current_step),
	                  DBP_INT(r->driver_attempt),
	                  DBP_TEXT(r->requested_by),
	                  DBP_INT(r->created_at),
	                  DBP_INT(r->balancer_delay_s)};
	return db_exec(c,
	               "INSERT INTO MaintenanceRuns (Id, ClusterId, TaskId, State, Reason, "
	               "MinOnlineNodes, DrainDeadlineSeconds, DeadlineAction, SettleSeconds, "
	               "UndrainOnAbort, AbortRequested, CurrentStep, DriverAttempt, RequestedBy, "
	               "CreatedAt, BalancerDelaySeconds) "
	               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               p, 16, NULL);
}

db_status_t maint_store_insert_step(db_conn_t *c, const char *run_id, const oh_mstep_t *s)
{
	db_param_t p[] = {DBP_TEXT(run_id), DBP_INT(s->position), DBP_TEXT(s->node_key),
	                  DBP_TEXT(s->node_name), DBP_TEXT(s->state)};
	return db_exec(c,
	               "INSERT INTO MaintenanceSteps (RunId, Position, NodeKey, NodeName, State, "
	               "PingLost, ContinueRequested) VALUES (?, ?, ?, ?, ?, 0, 0)",
	               p, 5, NULL);
}

static void read_run(db_row_t *row, oh_mrun_t *r)
{
	memset(r, 0, sizeof *r);
	db_row_copy(row, 0, r->id, sizeof r->id);
	db_row_copy(row, 1, r->cluster_id, sizeof r->cluster_id);
	db_row_copy(row, 2, r->task_id, sizeof r->task_id);
	db_row_copy(row, 3, r->state, sizeof r->state);
	db_row_copy(row, 4, r->reason, sizeof r->reason);
	r->min_online = (int)db_row_int(row, 5, NULL);
	r->deadline_s = (int)db_row_int(row, 6, NULL);
	db_row_copy(row, 7, r->deadline_action, sizeof r->deadline_action);
	r->settle_s = (int)db_row_int(row, 8, NULL);
	r->undrain_on_abort = db_row_int(row, 9, NULL) != 0;
	r->abort_requested = db_row_int(row, 10, NULL) != 0;
	r->current_step = (int)db_row_int(row, 11, NULL);
	r->driver_attempt = (int)db_row_int(row, 12, NULL);
	db_row_copy(row, 13, r->requested_by, sizeof r->requested_by);
	r->created_at = db_row_int(row, 14, NULL);
	r->started_at = db_row_int(row, 15, NULL);
	r->ended_at = db_row_int(row, 16, NULL);
	db_row_copy(row, 17, r->message, sizeof r->message);
	r->balancer_delay_s = (int)db_row_int(row, 18, NULL);
}

static db_status_t one_run(void *ctx, db_row_t *row)
{
	read_run(row, ctx);
	return DB_OK;
}

db_status_t maint_store_get_run(db_conn_t *c, const char *id, oh_mrun_t *out)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c, "SELECT " RUN_COLUMNS " FROM MaintenanceRuns WHERE Id = ?", p, 1,
	                one_run, out);
}

typedef struct {
	void (*fn)(void *, const oh_mstep_t *);
	void *ctx;
} each_step_t;

/* Reads a step from ROW's columns OFF.. (STEP_COLUMNS). */
static void read_step(db_row_t *row, unsigned off, oh_mstep_t *s)
{
	memset(s, 0, sizeof *s);
	s->position = (int)db_row_int(row, off + 0, NULL);
	db_row_copy(row, off + 1, s->node_key, sizeof s->node_key);
	db_row_copy(row, off + 2, s->node_name, sizeof s->node_name);
	db_row_copy(row, off + 3, s->state, sizeof s->state);
	db_row_copy(row, off + 4, s->drain_task, sizeof s->drain_task);
	db_row_copy(row, off + 5, s->undrain_task, sizeof s->undrain_task);
	s->baseline_started_at = db_row_int(row, off + 6, NULL);
	s->ping_lost = db_row_int(row, off + 7, NULL) != 0;
	s->continue_requested = db_row_int(row, off + 8, NULL) != 0;
	s->drain_requested_at = db_row_int(row, off + 9, NULL);
	s->drained_at = db_row_int(row, off + 10, NULL);
	s->ready_at = db_row_int(row, off + 11, NULL);
	s->restarted_at = db_row_int(row, off + 12, NULL);
	s->undrain_requested_at = db_row_int(row, off + 13, NULL);
	s->online_at = db_row_int(row, off + 14, NULL);
	s->done_at = db_row_int(row, off + 15, NULL);
	db_row_copy(row, off + 16, s->message, sizeof s->message);
}

static db_status_t step_row(void *vctx, db_row_t *row)
{
	each_step_t *x = vctx;
	oh_mstep_t s;
	read_step(row, 0, &s);
	x->fn(x->ctx, &s);
	return DB_OK;
}

db_status_t maint_store_each_step(db_conn_t *c, const char *run_id,
                                  void (*fn)(void *, const oh_mstep_t *), void *ctx)
{
	db_param_t p[] = {DBP_TEXT(run_id)};
	each_step_t x = {fn, ctx};
	db_status_t s = db_query(
	    c, "SELECT " STEP_COLUMNS " FROM MaintenanceSteps WHERE RunId = ? ORDER BY Position", p,
	    1, step_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

typedef struct {
	void (*fn)(void *, const oh_mrun_t *);
	void *ctx;
} each_run_t;

static db_status_t run_row(void *vctx, db_row_t *row)
{
	each_run_t *x = vctx;
	oh_mrun_t r;
	read_run(row, &r);
	x->fn(x->ctx, &r);
	return DB_OK;
}

/* Newest first as the list always was; IX_MaintenanceRuns_List (migration
 * 0012) is in this order. */
const db_list_t maint_store_list_def = {.table = "MaintenanceRuns",
                                        .columns = RUN_COLUMNS,
                                        .k1 = "CreatedAt",
                                        .k2 = "Id",
                                        .desc = true,
                                        .k2_asc = true};

void maint_store_list_query(int64_t skip, int64_t take, db_list_query_t *q)
{
	memset(q, 0, sizeof *q);
	q->skip = skip;
	q->take = take;
}

db_status_t maint_store_page(db_conn_t *c, const char *after, int64_t skip, int64_t take,
                             void (*fn)(void *, const oh_mrun_t *), void *ctx, int64_t *total)
{
	db_list_query_t q;
	maint_store_list_query(skip, take, &q);
	char anchor[32];
	db_status_t s = DB_OK;
	if (after && *after)
		s = db_list_anchor(c, &maint_store_list_def, after, &q, anchor, sizeof anchor);
	if (s == DB_OK)
		s = db_list_count(c, &maint_store_list_def, &q, total);
	each_run_t x = {fn, ctx};
	if (s == DB_OK)
		s = db_list_page(c, &maint_store_list_def, &q, run_row, &x);
	return s;
}

void maint_store_steps_of_sql(const char *const *ids, size_t n, db_sql_t *q)
{
	db_sql_init(q);
	db_sql_add(q, "SELECT RunId, " STEP_COLUMNS " FROM MaintenanceSteps WHERE RunId IN ");
	db_sql_in(q, ids, n);
	db_sql_add(q, " ORDER BY RunId, Position");
}

typedef struct {
	void (*fn)(void *, const char *, const oh_mstep_t *);
	void *ctx;
} steps_of_t;

static db_status_t steps_of_row(void *vctx, db_row_t *row)
{
	steps_of_t *x = vctx;
	char run_id[51];
	oh_mstep_t s;
	db_row_copy(row, 0, run_id, sizeof run_id);
	read_step(row, 1, &s);
	x->fn(x->ctx, run_id, &s);
	return DB_OK;
}

db_status_t maint_store_steps_of(db_conn_t *c, const char *const *ids, size_t n,
                                 void (*fn)(void *, const char *, const oh_mstep_t *), void *ctx)
{
	steps_of_t x = {fn, ctx};
	return db_query_in_chunks(c, ids, n, maint_store_steps_of_sql, steps_of_row, &x);
}

typedef struct {
	char *id;
	size_t size;
} id_ctx_t;

static db_status_t id_row(void *vctx, db_row_t *row)
{
	id_ctx_t *x = vctx;
	db_row_copy(row, 0, x->id, x->size);
	return DB_OK;
}

db_status_t maint_store_active(db_conn_t *c, const char *cluster_id, char *id, size_t size)
{
	db_param_t p[] = {DBP_TEXT(cluster_id)};
	id_ctx_t x = {id, size};
	return db_query(c, "SELECT Id FROM MaintenanceRuns WHERE ClusterId = ? AND " ACTIVE, p, 1,
	                id_row, &x);
}

db_status_t maint_store_count_active(db_conn_t *c, const char *cluster_id, int64_t *n)
{
	db_param_t p[] = {DBP_TEXT(cluster_id)};
	return db_query_int(
	    c, "SELECT COUNT(*) FROM MaintenanceRuns WHERE ClusterId = ? AND " ACTIVE, p, 1, n);
}

db_status_t maint_store_take(db_conn_t *c, const char *id, int attempt, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(attempt), DBP_TEXT(id), DBP_INT(attempt)};
	return db_exec(
	    c,
	    "UPDATE MaintenanceRuns SET DriverAttempt = ? WHERE Id = ? AND DriverAttempt "
	    "< ?",
	    p, 3, rows);
}

db_status_t maint_store_fence(db_conn_t *c, const char *id, int attempt, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id), DBP_INT(attempt)};
	return db_exec(c,
	               "UPDATE MaintenanceRuns SET DriverAttempt = DriverAttempt WHERE Id = ? AND "
	               "DriverAttempt = ?",
	               p, 2, rows);
}

db_status_t maint_store_save_run(db_conn_t *c, const oh_mrun_t *r)
{
	/* Paused and the requests are the API's: a driver's write keeps them. */
	db_param_t p[] = {DBP_TEXT(r->state),      DBP_TEXT(r->state),    DBP_INT(r->current_step),
	                  opt_time(r->started_at), opt_time(r->ended_at), opt_text(r->message),
	                  DBP_TEXT(r->id)};
	return db_exec(c,
	               "UPDATE MaintenanceRuns SET State = CASE WHEN State = 'Paused' AND ? = "
	               "'Running' THEN State ELSE ? END, CurrentStep = ?, StartedAt = ?, EndedAt = "
	               "?, Message = ? WHERE Id = ?",
	               p, 7, NULL);
}

db_status_t maint_store_save_step(db_conn_t *c, const char *run_id, const oh_mstep_t *s)
{
	db_param_t p[] = {DBP_TEXT(s->state),        opt_text(s->drain_task),
	                  opt_text(s->undrain_task), opt_time(s->baseline_started_at),
	                  DBP_INT(s->ping_lost),     opt_time(s->drain_requested_at),
	                  opt_time(s->drained_at),   opt_time(s->ready_at),
	                  opt_time(s->restarted_at), opt_time(s->undrain_requested_at),
	                  opt_time(s->online_at),    opt_time(s->done_at),
	                  opt_text(s->message),      DBP_TEXT(run_id),
	                  DBP_INT(s->position)};
	return db_exec(c,
	               "UPDATE MaintenanceSteps SET State = ?, DrainTaskId = ?, UndrainTaskId = ?, "
	               "BaselineStartedAt = ?, PingLost = ?, DrainRequestedAt = ?, DrainedAt = ?, "
	               "ReadyAt = ?, RestartedAt = ?, UndrainRequestedAt = ?, OnlineAt = ?, DoneAt "
	               "= ?, Message = ? WHERE RunId = ? AND Position = ?",
	               p, 15, NULL);
}

db_status_t maint_store_set_paused(db_conn_t *c, const char *id, bool paused, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	if (paused)
		return db_exec(
		    c,
		    "UPDATE MaintenanceRuns SET State = 'Paused' WHERE Id = ? AND State IN "
		    "('Queued', 'Running') AND AbortRequested = 0",
		    p, 1, rows);
	return db_exec(c,
	               "UPDATE MaintenanceRuns SET State = 'Running' WHERE Id = ? AND State = "
	               "'Paused'",
	               p, 1, rows);
}

db_status_t maint_store_request_abort(db_conn_t *c, const char *id, int undrain, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(undrain), DBP_INT(undrain), DBP_TEXT(id)};
	return db_exec(
	    c,
	    "UPDATE MaintenanceRuns SET AbortRequested = 1, UndrainOnAbort = CASE WHEN ? "
	    "< 0 THEN UndrainOnAbort ELSE ? END WHERE Id = ? AND " ACTIVE,
	    p, 3, rows);
}

db_status_t maint_store_request_continue(db_conn_t *c, const char *id, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(
	    c,
	    "UPDATE MaintenanceSteps SET ContinueRequested = 1 WHERE RunId = ? AND State "
	    "= 'ReadyForMaintenance'",
	    p, 1, rows);
}
