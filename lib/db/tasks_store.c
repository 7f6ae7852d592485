#include "tasks_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialect.h"
#include "keyset.h"
#include "task_counts_store.h"

#define TASK_COLUMNS                                                                               \
	"Id, Name, Description, Arguments, State, IsSystem, TargetNodeId, ServerNodeId, Attempt, " \
	"MaxAttempts, QueueTime, StartTime, LastUpdatedTime, CompletedTime, NextRunAt, "           \
	"ErrorMessage, Progress, ProgressMessage, Result, RequestedBy"

static char *dup_or_null(const char *s)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

static void read_task(db_row_t *r, oh_task_t *t)
{
	memset(t, 0, sizeof *t);
	db_row_copy(r, 0, t->id, sizeof t->id);
	db_row_copy(r, 1, t->name, sizeof t->name);
	db_row_copy(r, 2, t->description, sizeof t->description);
	t->arguments = dup_or_null(db_row_text(r, 3));
	char state[24];
	db_row_copy(r, 4, state, sizeof state);
	oh_task_state_parse(state, &t->state);
	t->is_system = db_row_int(r, 5, NULL) != 0;
	db_row_copy(r, 6, t->target_node, sizeof t->target_node);
	db_row_copy(r, 7, t->server_node, sizeof t->server_node);
	t->attempt = (int)db_row_int(r, 8, NULL);
	t->max_attempts = (int)db_row_int(r, 9, NULL);
	t->queue_time = db_row_int(r, 10, NULL);
	t->start_time = db_row_int(r, 11, NULL);
	t->last_updated = db_row_int(r, 12, NULL);
	t->completed_time = db_row_int(r, 13, NULL);
	t->next_run_at = db_row_int(r, 14, NULL);
	db_row_copy(r, 15, t->error_message, sizeof t->error_message);
	t->progress = (int)db_row_int(r, 16, NULL);
	db_row_copy(r, 17, t->progress_message, sizeof t->progress_message);
	t->result = dup_or_null(db_row_text(r, 18));
	db_row_copy(r, 19, t->requested_by, sizeof t->requested_by);
}

static db_status_t one_task(void *ctx, db_row_t *r)
{
	oh_task_clear(ctx);
	read_task(r, ctx);
	return DB_OK;
}

static db_param_t text_or_null(const char *s)
{
	return s && *s ? DBP_TEXT(s) : DBP_NULL;
}

db_status_t tasks_store_insert(db_conn_t *c, const oh_task_t *t)
{
	db_param_t p[] = {
	    DBP_TEXT(t->id),
	    DBP_TEXT(t->name),
	    DBP_TEXT(t->description),
	    DBP_TEXT(t->arguments ? t->arguments : "{}"),
	    DBP_TEXT(oh_task_state_name(t->state)),
	    DBP_INT(t->is_system ? 1 : 0),
	    text_or_null(t->target_node),
	    DBP_INT(t->max_attempts),
	    DBP_INT(t->next_run_at),
	    DBP_INT(t->queue_time),
	    DBP_INT(t->last_updated),
	    text_or_null(t->requested_by),
	};
	return db_exec(
	    c,
	    "INSERT INTO ServerTasks (Id, Name, Description, Arguments, State, IsSystem, "
	    "TargetNodeId, Attempt, MaxAttempts, NextRunAt, QueueTime, LastUpdatedTime, "
	    "Progress, RequestedBy) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, 0, ?)",
	    p, sizeof p / sizeof p[0], NULL);
}

db_status_t tasks_store_get(db_conn_t *c, const char *id, oh_task_t *out)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c, "SELECT " TASK_COLUMNS " FROM ServerTasks WHERE Id = ?", p, 1, one_task,
	                out);
}

typedef struct {
	void (*fn)(void *, oh_task_t *);
	void *ctx;
} list_ctx_t;

static db_status_t list_row(void *vctx, db_row_t *r)
{
	list_ctx_t *x = vctx;
	oh_task_t t;
	read_task(r, &t);
	x->fn(x->ctx, &t); /* takes ownership of t's strings */
	return DB_OK;
}

/* Newest first; each filter is read through an index that ends in this
 * order (migration 0012). */
const db_list_t tasks_store_list_def = {
    .table = "ServerTasks", .columns = TASK_COLUMNS, .k1 = "QueueTime", .k2 = "Id", .desc = true};

typedef struct {
	unsigned states;
	int64_t total;
} state_total_t;

static void add_state_total(void *ctx, const char *state, int64_t n)
{
	state_total_t *t = ctx;
	oh_task_state_t s;
	if (oh_task_state_parse(state, &s) && (t->states & (1u << s)))
		t->total += n;
}

void tasks_store_list_query(const oh_task_filter_t *f, db_list_query_t *q, char *like,
                            size_t like_size)
{
	memset(q, 0, sizeof *q);
	q->skip = f->skip;
	q->take = f->take;
	bool node = f->node && *f->node, name = f->name && *f->name;
	bool part = f->partial_name && *f->partial_name;
	unsigned states = f->states;
	if (part)
		db_like_pattern(f->partial_name, like, like_size);
	if (!states && !node && !name) {
		/* The whole table, IX_ServerTasks_List; partialName (a substring,
		 * which no index finds) filters the rows read in that order. */
		if (part)
			db_branch_bind(db_list_branch(q, "LOWER(Description) LIKE ? ESCAPE '!'"),
			               DBP_TEXT(like));
		return;
	}
	/* One branch per state: (State, …, QueueTime, Id) is in the list's
	 * order only for one state at a time. */
	if (!states)
		states = (1u << OH_TS__COUNT) - 1;
	static const char *const where[8] = {
	    "State = ?",
	    "State = ? AND ServerNodeId = ?",
	    "State = ? AND Name = ?",
	    "State = ? AND ServerNodeId = ? AND Name = ?",
	    "State = ? AND LOWER(Description) LIKE ? ESCAPE '!'",
	    "State = ? AND ServerNodeId = ? AND LOWER(Description) LIKE ? ESCAPE '!'",
	    "State = ? AND Name = ? AND LOWER(Description) LIKE ? ESCAPE '!'",
	    "State = ? AND ServerNodeId = ? AND Name = ? AND LOWER(Description) LIKE ? ESCAPE '!'",
	};
	for (int s = 0; s < OH_TS__COUNT; s++) {
		if (!(states & (1u << s)))
			continue;
		db_branch_t *b =
		    db_list_branch(q, where[(node ? 1 : 0) + (name ? 2 : 0) + (part ? 4 : 0)]);
		if (!b)
			break;
		db_branch_bind(b, DBP_TEXT(oh_task_state_name((oh_task_state_t)s)));
		if (node)
			db_branch_bind(b, DBP_TEXT(f->node));
		if (name)
			db_branch_bind(b, DBP_TEXT(f->name));
		if (part)
			db_branch_bind(b, DBP_TEXT(like));
	}
}

db_status_t tasks_store_list(db_conn_t *c, const oh_task_filter_t *f,
                             void (*fn)(void *, oh_task_t *), void *ctx, int64_t *total)
{
	db_list_query_t q;
	char like[410];
	tasks_store_list_query(f, &q, like, sizeof like);
	char anchor[32];
	db_status_t s = DB_OK;
	if (f->after && *f->after)
		s = db_list_anchor(c, &tasks_store_list_def, f->after, &q, anchor, sizeof anchor);
	/* Filtered by states only (or not at all), the total is exact from the
	 * maintained counts; with node, name or partialName it is counted up to
	 * the cap. */
	if (s == DB_OK && !(f->node && *f->node) && !(f->name && *f->name) &&
	    !(f->partial_name && *f->partial_name)) {
		state_total_t t = {f->states ? f->states : (1u << OH_TS__COUNT) - 1, 0};
		s = task_counts_store_read(c, add_state_total, &t);
		*total = t.total;
	} else if (s == DB_OK) {
		s = db_list_count(c, &tasks_store_list_def, &q, total);
	}
	list_ctx_t x = {fn, ctx};
	if (s == DB_OK)
		s = db_list_page(c, &tasks_store_list_def, &q, list_row, &x);
	return s;
}

db_status_t tasks_store_cancel_queued(db_conn_t *c, const char *id, int64_t now, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(now), DBP_INT(now), DBP_TEXT(id)};
	return db_exec(c,
	               "UPDATE ServerTasks SET State = 'Canceled', CompletedTime = ?, "
	               "LastUpdatedTime = ?, ErrorMessage = 'Canceled before it started.' "
	               "WHERE Id = ? AND State = 'Queued'",
	               p, 3, rows);
}

db_status_t tasks_store_request_cancel(db_conn_t *c, const char *id, int64_t now, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(now), DBP_TEXT(id)};
	return db_exec(c,
	               "UPDATE ServerTasks SET State = 'Cancelling', LastUpdatedTime = ? "
	               "WHERE Id = ? AND State = 'Executing'",
	               p, 2, rows);
}

typedef struct {
	oh_claimed_t *out;
	int cap, n;
} claim_ctx_t;

static db_status_t claim_row(void *vctx, db_row_t *r)
{
	claim_ctx_t *x = vctx;
	if (x->n >= x->cap)
		return DB_OK;
	oh_claimed_t *t = &x->out[x->n++];
	memset(t, 0, sizeof *t);
	db_row_copy(r, 0, t->id, sizeof t->id);
	db_row_copy(r, 1, t->name, sizeof t->name);
	t->arguments = dup_or_null(db_row_text(r, 2));
	t->attempt = (int)db_row_int(r, 3, NULL);
	t->max_attempts = (int)db_row_int(r, 4, NULL);
	t->is_system = db_row_int(r, 5, NULL) != 0;
	return DB_OK;
}

static db_status_t candidate_row(void *vctx, db_row_t *r)
{
	claim_ctx_t *x = vctx;
	if (x->n < x->cap) {
		memset(&x->out[x->n], 0, sizeof x->out[x->n]);
		db_row_copy(r, 0, x->out[x->n].id, sizeof x->out[x->n].id);
		x->n++;
	}
	return DB_OK;
}

db_status_t tasks_store_claim(db_conn_t *c, const char *node_id, const char *owner,
                              const char *token, int64_t lease_until, int64_t now, bool system_only,
                              int limit, oh_claimed_t *out, int *n)
{
	db_param_t p[] = {DBP_TEXT(node_id),
	                  DBP_TEXT(owner),
	                  DBP_INT(lease_until),
	                  DBP_INT(now),
	                  DBP_INT(system_only ? 1 : 0),
	                  DBP_INT(limit),
	                  DBP_TEXT(token)};
	claim_ctx_t x = {out, limit, 0};
	*n = 0;
	if (!db_dialect(db_conn_dialect(c))->claim_is_select) {
		db_status_t s = db_query_dialect(c, DB_STMT_CLAIM_TASKS, p, 7, claim_row, &x);
		*n = x.n;
		return s == DB_NO_ROWS ? DB_OK : s;
	}
	/* Select the candidates, then claim each; the transaction already holds
	 * the database's write lock, so nobody claims them in between. */
	db_status_t s = db_query_dialect(c, DB_STMT_CLAIM_TASKS, p, 7, candidate_row, &x);
	if (s == DB_NO_ROWS)
		return DB_OK;
	if (s != DB_OK)
		return s;
	int got = 0;
	for (int i = 0; i < x.n && s == DB_OK; i++) {
		int64_t rows = 0;
		db_param_t u[] = {DBP_TEXT(node_id),  DBP_TEXT(owner), DBP_INT(lease_until),
		                  DBP_TEXT(token),    DBP_INT(now),    DBP_INT(now),
		                  DBP_TEXT(out[i].id)};
		s = db_exec(c,
		            "UPDATE ServerTasks SET State = 'Executing', ServerNodeId = ?, "
		            "LeaseOwner = ?, LeaseExpiresAt = ?, ClaimToken = ?, "
		            "Attempt = Attempt + 1, "
		            "StartTime = COALESCE(StartTime, ?), LastUpdatedTime = ? "
		            "WHERE Id = ? AND State = 'Queued'",
		            u, 7, &rows);
		if (s != DB_OK || rows != 1)
			continue;
		claim_ctx_t one = {&out[got], 1, 0};
		char id[64];
		snprintf(id, sizeof id, "%s", out[i].id);
		db_param_t q[] = {DBP_TEXT(id)};
		s = db_query(c,
		             "SELECT Id, Name, Arguments, Attempt, MaxAttempts, IsSystem "
		             "FROM ServerTasks WHERE Id = ?",
		             q, 1, claim_row, &one);
		if (s == DB_OK)
			got++;
	}
	*n = got;
	if (s != DB_OK) {
		for (int i = 0; i < got; i++)
			oh_claimed_clear(&out[i]);
		*n = 0;
	}
	return s;
}

db_status_t tasks_store_claimed(db_conn_t *c, const char *owner, const char *token, int limit,
                                oh_claimed_t *out, int *n)
{
	claim_ctx_t x = {out, limit, 0};
	db_param_t p[] = {DBP_TEXT(token), DBP_TEXT(owner)};
	db_status_t s = db_query(c,
	                         "SELECT Id, Name, Arguments, Attempt, MaxAttempts, IsSystem "
	                         "FROM ServerTasks WHERE ClaimToken = ? AND LeaseOwner = ? "
	                         "AND State IN ('Executing', 'Cancelling')",
	                         p, 2, claim_row, &x);
	*n = x.n;
	return s;
}

db_status_t tasks_store_finish(db_conn_t *c, const char *id, const char *owner, int attempt,
                               oh_task_state_t state, oh_finish_from_t from, int64_t now,
                               const char *error, const char *result, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(oh_task_state_name(state)),
	                  DBP_INT(now),
	                  DBP_INT(now),
	                  text_or_null(error),
	                  text_or_null(result),
	                  DBP_INT(state == OH_TS_SUCCESS ? 100 : 0),
	                  DBP_TEXT(id),
	                  DBP_TEXT(owner),
	                  DBP_INT(attempt)};
#define FINISH_SQL(states)                                                                         \
	"UPDATE ServerTasks SET State = ?, CompletedTime = ?, LastUpdatedTime = ?, "               \
	"ErrorMessage = ?, Result = ?, "                                                           \
	"Progress = CASE WHEN ? = 100 THEN 100 ELSE Progress END, "                                \
	"LeaseExpiresAt = NULL "                                                                   \
	"WHERE Id = ? AND LeaseOwner = ? AND Attempt = ? AND State " states
	const char *sql = from == OH_FROM_EXECUTING ? FINISH_SQL("= 'Executing'")
	                  : from == OH_FROM_CANCELLING
	                      ? FINISH_SQL("= 'Cancelling'")
	                      : FINISH_SQL("IN ('Executing', 'Cancelling')");
#undef FINISH_SQL
	return db_exec(c, sql, p, 9, rows);
}

db_status_t tasks_store_retry(db_conn_t *c, const char *id, const char *owner, int attempt,
                              int64_t now, int64_t next_run, const char *error, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(next_run), DBP_INT(now),    text_or_null(error),
	                  DBP_TEXT(id),      DBP_TEXT(owner), DBP_INT(attempt)};
	return db_exec(
	    c,
	    "UPDATE ServerTasks SET State = 'Queued', NextRunAt = ?, LastUpdatedTime = ?, "
	    "ErrorMessage = ?, ServerNodeId = NULL, "
	    "LeaseExpiresAt = NULL WHERE Id = ? AND LeaseOwner = ? AND Attempt = ? "
	    "AND State = 'Executing'",
	    p, 6, rows);
}

db_status_t tasks_store_progress(db_conn_t *c, const char *id, const char *owner, int attempt,
                                 int64_t now, int percent, const char *message, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(percent), text_or_null(message), DBP_INT(now),
	                  DBP_TEXT(id),     DBP_TEXT(owner),       DBP_INT(attempt)};
	return db_exec(
	    c,
	    "UPDATE ServerTasks SET Progress = ?, ProgressMessage = ?, LastUpdatedTime = ? "
	    "WHERE Id = ? AND LeaseOwner = ? AND Attempt = ?",
	    p, 6, rows);
}

static db_status_t two_ints(void *ctx, db_row_t *r)
{
	int **v = ctx;
	*v[0] = (int)db_row_int(r, 0, NULL);
	*v[1] = (int)db_row_int(r, 1, NULL);
	return DB_OK;
}

db_status_t tasks_store_get_attempts(db_conn_t *c, const char *id, int *attempt, int *max)
{
	int *v[2] = {attempt, max};
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c, "SELECT Attempt, MaxAttempts FROM ServerTasks WHERE Id = ?", p, 1,
	                two_ints, v);
}

typedef struct {
	oh_task_state_t *state;
	int *attempt;
	bool *leased;
	char *owner;
	size_t owner_size;
} state_ctx_t;

static db_status_t state_row(void *vctx, db_row_t *r)
{
	state_ctx_t *x = vctx;
	char state[24];
	db_row_copy(r, 0, state, sizeof state);
	if (!oh_task_state_parse(state, x->state))
		*x->state = OH_TS_FAILED;
	*x->attempt = (int)db_row_int(r, 1, NULL);
	bool null = false;
	db_row_int(r, 2, &null);
	*x->leased = !null;
	db_row_copy(r, 3, x->owner, x->owner_size);
	return DB_OK;
}

db_status_t tasks_store_state(db_conn_t *c, const char *id, oh_task_state_t *state, int *attempt,
                              bool *leased, char *owner, size_t owner_size)
{
	state_ctx_t x = {state, attempt, leased, owner, owner_size};
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c,
	                "SELECT State, Attempt, LeaseExpiresAt, LeaseOwner FROM ServerTasks "
	                "WHERE Id = ?",
	                p, 1, state_row, &x);
}

typedef struct {
	oh_held_t *out;
	int cap, n;
} held_ctx_t;

static db_status_t held_row(void *vctx, db_row_t *r)
{
	held_ctx_t *x = vctx;
	if (x->n >= x->cap)
		return DB_OK;
	oh_held_t *h = &x->out[x->n++];
	db_row_copy(r, 0, h->id, sizeof h->id);
	h->attempt = (int)db_row_int(r, 1, NULL);
	char state[24];
	db_row_copy(r, 2, state, sizeof state);
	h->cancelling = strcmp(state, "Cancelling") == 0;
	return DB_OK;
}

db_status_t tasks_store_held(db_conn_t *c, const char *owner, oh_held_t *out, int cap, int *n)
{
	held_ctx_t x = {out, cap, 0};
	db_param_t p[] = {DBP_TEXT(owner)};
	db_status_t s = db_query(c,
	                         "SELECT Id, Attempt, State FROM ServerTasks WHERE LeaseOwner = ? "
	                         "AND State IN ('Executing', 'Cancelling')",
	                         p, 1, held_row, &x);
	*n = x.n;
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t tasks_store_take_slot(db_conn_t *c, const char *name, int64_t now, int64_t period_ms,
                                  bool *won)
{
	/* Period holds when the current slot ends: whoever finds it over takes
	 * the next one, so nodes configured with different periods still agree. */
	int64_t rows = 0;
	db_param_t p[] = {DBP_INT(now + period_ms), DBP_TEXT(name), DBP_INT(now)};
	db_status_t s = db_exec(
	    c, "UPDATE ClusterLocks SET Period = ? WHERE Name = ? AND Period <= ?", p, 3, &rows);
	*won = s == DB_OK && rows == 1;
	return s;
}

/* The three steps of a takeover, for the tasks WHO selects: Cancelling
 * ends Canceled; Executing on its last attempt ends Failed; the rest go
 * back to the queue in their place (NextRunAt is left as it was: a task
 * taken over does not go behind what was queued after it). */
#define TAKEOVER_CANCELED(who)                                                                     \
	"UPDATE ServerTasks SET State = 'Canceled', CompletedTime = ?, "                           \
	"LastUpdatedTime = ?, LeaseOwner = NULL, LeaseExpiresAt = NULL, "                          \
	"ErrorMessage = 'Canceled; its node stopped answering.' "                                  \
	"WHERE State = 'Cancelling' AND " who
#define TAKEOVER_FAILED(who)                                                                       \
	"UPDATE ServerTasks SET State = 'Failed', CompletedTime = ?, LastUpdatedTime = ?, "        \
	"LeaseOwner = NULL, LeaseExpiresAt = NULL, "                                               \
	"ErrorMessage = 'Its node stopped answering on the last allowed attempt.' "                \
	"WHERE State = 'Executing' AND Attempt >= MaxAttempts AND " who
#define TAKEOVER_REQUEUED(who)                                                                     \
	"UPDATE ServerTasks SET State = 'Queued', LastUpdatedTime = ?, "                           \
	"ServerNodeId = NULL, LeaseOwner = NULL, LeaseExpiresAt = NULL, "                          \
	"ErrorMessage = 'Requeued: its node stopped answering.' "                                  \
	"WHERE State = 'Executing' AND " who

static db_status_t take_over(db_conn_t *c, const char *sql_canceled, const char *sql_failed,
                             const char *sql_requeued, int64_t now, db_param_t who,
                             oh_expiry_t *out)
{
	memset(out, 0, sizeof *out);
	db_param_t p[] = {DBP_INT(now), DBP_INT(now), who};
	db_status_t s = db_exec(c, sql_canceled, p, 3, &out->canceled);
	if (s == DB_OK)
		s = db_exec(c, sql_failed, p, 3, &out->failed);
	if (s == DB_OK)
		s = db_exec(c, sql_requeued, p + 1, 2, &out->requeued);
	return s;
}

db_status_t tasks_store_expire(db_conn_t *c, int64_t now, const char *self, oh_expiry_t *out)
{
#define EXPIRED "LeaseExpiresAt < ? AND LeaseOwner <> ?"
	memset(out, 0, sizeof *out);
	db_param_t p[] = {DBP_INT(now), DBP_INT(now), DBP_INT(now), DBP_TEXT(self)};
	db_status_t s = db_exec(c, TAKEOVER_CANCELED(EXPIRED), p, 4, &out->canceled);
	if (s == DB_OK)
		s = db_exec(c, TAKEOVER_FAILED(EXPIRED), p, 4, &out->failed);
	if (s == DB_OK)
		s = db_exec(c, TAKEOVER_REQUEUED(EXPIRED), p + 1, 3, &out->requeued);
	return s;
#undef EXPIRED
}

db_status_t tasks_store_take_over_owner(db_conn_t *c, const char *owner, int64_t now,
                                        oh_expiry_t *out)
{
	return take_over(c, TAKEOVER_CANCELED("LeaseOwner = ?"), TAKEOVER_FAILED("LeaseOwner = ?"),
	                 TAKEOVER_REQUEUED("LeaseOwner = ?"), now, DBP_TEXT(owner), out);
}

db_status_t tasks_store_evict_node(db_conn_t *c, const char *node_id, bool cancel, int64_t now,
                                   int64_t *rows)
{
	if (cancel) {
		db_param_t q[] = {DBP_INT(now), DBP_TEXT(node_id)};
		return db_exec(c,
		               "UPDATE ServerTasks SET State = 'Cancelling', LastUpdatedTime = ?, "
		               "ErrorMessage = 'Canceled at the drain deadline.' "
		               "WHERE ServerNodeId = ? AND State = 'Executing' AND IsSystem = 0",
		               q, 2, rows);
	}
	/* Back in its place in the queue: NextRunAt stays as it was. */
	db_param_t p[] = {DBP_INT(now), DBP_TEXT(node_id)};
	return db_exec(c,
	               "UPDATE ServerTasks SET State = 'Queued', LastUpdatedTime = ?, "
	               "ServerNodeId = NULL, LeaseOwner = NULL, LeaseExpiresAt = NULL, "
	               "ErrorMessage = 'Requeued from a draining node at its deadline.' "
	               "WHERE ServerNodeId = ? AND State = 'Executing' AND IsSystem = 0",
	               p, 2, rows);
}

db_status_t tasks_store_count_running(db_conn_t *c, const char *node_id, const char *except_id,
                                      int64_t *count)
{
	db_param_t p[] = {DBP_TEXT(node_id), DBP_TEXT(except_id ? except_id : "")};
	return db_query_int(c,
	                    "SELECT COUNT(*) FROM ServerTasks WHERE ServerNodeId = ? AND Id <> ? "
	                    "AND State IN ('Executing', 'Cancelling') AND IsSystem = 0",
	                    p, 2, count);
}

typedef struct {
	void (*fn)(void *, const char *, int64_t);
	void *ctx;
} by_node_ctx_t;

static db_status_t by_node_row(void *vctx, db_row_t *r)
{
	by_node_ctx_t *x = vctx;
	char node[101];
	db_row_copy(r, 0, node, sizeof node);
	x->fn(x->ctx, node, db_row_int(r, 1, NULL));
	return DB_OK;
}

db_status_t tasks_store_running_by_node(db_conn_t *c, void (*fn)(void *, const char *, int64_t),
                                        void *ctx)
{
	by_node_ctx_t x = {fn, ctx};
	/* Per node, one seek into IX_ServerTasks_NodeList: a GROUP BY over
	 * ServerTasks reads the whole node index on SQLite. */
	db_status_t s = db_query(c,
	                         "SELECT n.Id, (SELECT COUNT(*) FROM ServerTasks t WHERE "
	                         "t.ServerNodeId = n.Id AND t.State IN ('Executing', 'Cancelling') "
	                         "AND t.IsSystem = 0) FROM OctopusServerNodes n",
	                         NULL, 0, by_node_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t tasks_store_release_owner(db_conn_t *c, const char *owner, int64_t now, int64_t *rows)
{
	/* Attempt is given back: a clean stop is not the task's failure.  The
	 * task keeps its place in the queue (NextRunAt stays). */
	db_param_t p[] = {DBP_INT(now), DBP_TEXT(owner)};
	return db_exec(c,
	               "UPDATE ServerTasks SET State = 'Queued', LastUpdatedTime = ?, "
	               "Attempt = Attempt - 1, ServerNodeId = NULL, LeaseOwner = NULL, "
	               "LeaseExpiresAt = NULL, ErrorMessage = 'Requeued: its node stopped.' "
	               "WHERE LeaseOwner = ? AND State = 'Executing'",
	               p, 2, rows);
}

typedef struct {
	char (*ids)[64];
	int cap, n;
} ids_ctx_t;

static db_status_t id_row(void *vctx, db_row_t *r)
{
	ids_ctx_t *x = vctx;
	if (x->n < x->cap)
		db_row_copy(r, 0, x->ids[x->n++], 64);
	return DB_OK;
}

db_status_t tasks_store_completed_before(db_conn_t *c, int64_t before, char (*ids)[64], int cap,
                                         int *n)
{
	ids_ctx_t x = {ids, cap, 0};
	db_param_t p[] = {DBP_INT(before)};
	db_status_t s = db_query_page(c,
	                              "SELECT Id FROM ServerTasks WHERE CompletedTime IS NOT NULL "
	                              "AND CompletedTime < ? ORDER BY CompletedTime, Id",
	                              p, 1, cap, 0, id_row, &x);
	*n = x.n;
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t tasks_store_delete(db_conn_t *c, const char *id)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(c, "DELETE FROM ServerTasks WHERE Id = ?", p, 1, NULL);
}

static db_status_t flags_row(void *ctx, db_row_t *r)
{
	int *v = ctx;
	v[0] = (int)db_row_int(r, 0, NULL);
	v[1] = (int)db_row_int(r, 1, NULL);
	return DB_OK;
}

db_status_t tasks_store_node_flags(db_conn_t *c, const char *node_id, bool *draining, int *cap)
{
	int v[2] = {0, 0};
	db_param_t p[] = {DBP_TEXT(node_id)};
	db_status_t s = db_query_dialect(c, DB_STMT_NODE_FLAGS_LOCKED, p, 1, flags_row, v);
	*draining = v[0] != 0;
	*cap = v[1];
	return s;
}

/* Pairs per multi-row statement (successes, renewals).  Fixed, so the
 * statement's text is always the same and stays prepared; a shorter batch
 * repeats its first pair (a row matched twice is updated once). */
#define PAIR_CHUNK 16

static char succeed_sql[1200], renew_sql[1200];
static pthread_once_t pairs_once = PTHREAD_ONCE_INIT;

/* Appends " AND ((Id = ? AND Attempt = ?) OR …)" for PAIR_CHUNK pairs to
 * BUF (which holds O bytes).  Fixed fragments only: every value is a bound
 * parameter. */
static void append_pairs(char *buf, size_t size, size_t o)
{
	o += (size_t)snprintf(buf + o, size - o, " AND (");
	for (int i = 0; i < PAIR_CHUNK && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s(Id = ? AND Attempt = ?)",
		                      i ? " OR " : "");
	if (o < size)
		snprintf(buf + o, size - o, ")");
}

static void build_pair_sql(void)
{
	size_t o = (size_t)snprintf(succeed_sql, sizeof succeed_sql,
	                            "UPDATE ServerTasks SET State = 'Success', CompletedTime = ?, "
	                            "LastUpdatedTime = ?, Progress = 100, ErrorMessage = NULL, "
	                            "LeaseExpiresAt = NULL WHERE LeaseOwner = ? "
	                            "AND State IN ('Executing', 'Cancelling')");
	append_pairs(succeed_sql, sizeof succeed_sql, o);
	o = (size_t)snprintf(renew_sql, sizeof renew_sql,
	                     "UPDATE ServerTasks SET LeaseExpiresAt = ? WHERE LeaseOwner = ? "
	                     "AND State IN ('Executing', 'Cancelling')");
	append_pairs(renew_sql, sizeof renew_sql, o);
}

/* Binds N (at most PAIR_CHUNK) pairs after the first K parameters of P. */
static void bind_pairs(db_param_t *p, size_t k, const char *const *ids, const int *attempts, int n)
{
	for (int i = 0; i < PAIR_CHUNK; i++) {
		int at = i < n ? i : 0;
		p[k + 2 * (size_t)i] = DBP_TEXT(ids[at]);
		p[k + 2 * (size_t)i + 1] = DBP_INT(attempts[at]);
	}
}

int tasks_store_succeed_chunk(void)
{
	return PAIR_CHUNK;
}

db_status_t tasks_store_succeed_many(db_conn_t *c, const char *owner, int64_t now,
                                     const char *const *ids, const int *attempts, int n,
                                     int64_t *rows)
{
	if (n < 1 || n > PAIR_CHUNK)
		return DB_ERROR;
	pthread_once(&pairs_once, build_pair_sql);
	db_param_t p[3 + 2 * PAIR_CHUNK];
	p[0] = DBP_INT(now);
	p[1] = DBP_INT(now);
	p[2] = DBP_TEXT(owner);
	bind_pairs(p, 3, ids, attempts, n);
	return db_exec(c, succeed_sql, p, 3 + 2 * PAIR_CHUNK, rows);
}

db_status_t tasks_store_renew_some(db_conn_t *c, const char *owner, int64_t lease_until,
                                   const char *const *ids, const int *attempts, int n)
{
	if (n < 1 || n > PAIR_CHUNK)
		return DB_ERROR;
	pthread_once(&pairs_once, build_pair_sql);
	db_param_t p[2 + 2 * PAIR_CHUNK];
	p[0] = DBP_INT(lease_until);
	p[1] = DBP_TEXT(owner);
	bind_pairs(p, 2, ids, attempts, n);
	return db_exec(c, renew_sql, p, 2 + 2 * PAIR_CHUNK, NULL);
}

db_status_t tasks_store_changed(db_conn_t *c, int64_t after_time, const char *after_id,
                                int64_t limit, void (*fn)(void *, oh_task_t *), void *ctx)
{
	/* The first bound lets IX_ServerTasks_Updated seek; the second is the
	 * keyset position within it. */
	db_param_t p[] = {DBP_INT(after_time), DBP_INT(after_time), DBP_INT(after_time),
	                  DBP_TEXT(after_id)};
	list_ctx_t x = {fn, ctx};
	db_status_t s =
	    db_query_page(c,
	                  "SELECT " TASK_COLUMNS " FROM ServerTasks "
	                  "WHERE LastUpdatedTime >= ? AND (LastUpdatedTime > ? OR "
	                  "(LastUpdatedTime = ? AND Id > ?)) ORDER BY LastUpdatedTime, Id",
	                  p, 4, limit, 0, list_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}
