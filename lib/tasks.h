/* The task queue shared by every node: Octopus-compatible ServerTasks held
 * in the database.  Nodes claim queued tasks (safely under concurrency on
 * every dialect), hold them under a lease they renew, and complete them with
 * fenced updates that count only while the lease is still theirs, so a task
 * taken over from a node presumed dead is never completed twice. */
#ifndef OH_TASKS_H
#define OH_TASKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define OH_TASK_ID_PREFIX "ServerTasks-"

struct oh_event_spec; /* events.h */
struct oh_idem;       /* idempotency.h */

typedef enum {
	OH_TS_QUEUED = 0,
	OH_TS_EXECUTING,
	OH_TS_CANCELLING,
	OH_TS_SUCCESS,
	OH_TS_FAILED,
	OH_TS_CANCELED,
	OH_TS_TIMED_OUT,
	OH_TS__COUNT
} oh_task_state_t;

/* "Queued", "Executing", … as Octopus spells them. */
const char *oh_task_state_name(oh_task_state_t s);
/* Parses a state name; false when unknown. */
bool oh_task_state_parse(const char *name, oh_task_state_t *out);
bool oh_task_state_completed(oh_task_state_t s);

typedef struct {
	char id[64];
	char name[51];
	char description[401];
	char *arguments; /* JSON text, malloc'd */
	oh_task_state_t state;
	bool is_system;
	char target_node[101]; /* "" = any node */
	char server_node[101]; /* executing (or last executing) node, "" if none */
	int attempt, max_attempts;
	int64_t queue_time, start_time, last_updated, completed_time, next_run_at;
	char error_message[2001];
	int progress;
	char progress_message[401];
	char *result; /* JSON text or NULL, malloc'd */
	char requested_by[201];
} oh_task_t;

/* Frees the strings a task owns (not the struct). */
void oh_task_clear(oh_task_t *t);

/* What a new task is. */
typedef struct {
	const char *name; /* kind, e.g. "Diagnostic" */
	const char *description;
	const json_t *arguments; /* borrowed; NULL = {} */
	bool is_system;          /* claimable by draining nodes */
	const char *target_node; /* NULL = any */
	int max_attempts;        /* 0 = default (3) */
	const char *id;          /* the task's Id, or NULL for a new random one */
	struct oh_idem *idem;    /* the request's idempotency key, or NULL */
	const char *requested_by;
	/* When set, oh_tasks_create records this event (its resource the new
	 * task unless given) in the transaction that queues the task. */
	const struct oh_event_spec *audit;
} oh_task_spec_t;

/* Inserts a new task inside the caller's transaction (with SPEC's Id when
 * given: DB_DUPLICATE when that Id exists).  On DB_OK, *OUT holds the new
 * task (clear it). */
db_status_t oh_task_insert(db_conn_t *c, const oh_task_spec_t *spec, oh_task_t *out);

/* Creates a task in its own transaction, recording SPEC's idempotency key
 * and audit event with it.  With SPEC's Id already used, returns that task
 * and sets *EXISTED.  DB_ABORT with spec->idem->in_flight set when another
 * request took the idempotency key meanwhile.  A COMMIT whose answer is
 * lost is resolved by looking the new Id up, never by inserting twice. */
db_status_t oh_tasks_create(db_pool_t *pool, const oh_task_spec_t *spec, oh_task_t *out,
                            bool *existed);

/* As oh_tasks_create, inside the caller's transaction C. */
db_status_t oh_task_create_tx(db_conn_t *c, const oh_task_spec_t *spec, oh_task_t *out,
                              bool *existed);

/* A new random task Id ("ServerTasks-" and 20 hex characters) into ID
 * (size SIZE), for a caller that must know it before its transaction.
 * False without randomness. */
bool oh_task_new_id(char *id, size_t size);

/* The Id of the task an internal KEY names ("ServerTasks-" and 20 hex
 * characters of its SHA-256), for tasks created at most once per key. */
void oh_task_id_for_key(const char *key, char *id, size_t size);

/* Reads one task by Id.  DB_NO_ROWS if none. */
db_status_t oh_tasks_get(db_pool_t *pool, const char *id, oh_task_t *out);
db_status_t oh_task_get_tx(db_conn_t *c, const char *id, oh_task_t *out);

typedef struct {
	unsigned states;          /* bit mask of 1 << oh_task_state_t; 0 = all */
	const char *node;         /* ServerNode filter or NULL */
	const char *name;         /* kind filter or NULL */
	const char *partial_name; /* part of the Description (case-insensitive), or NULL */
	const char *after;        /* the page starts after this task Id, or NULL */
	int64_t skip, take;
} oh_task_filter_t;

typedef struct {
	oh_task_t *v;
	size_t n;
	int64_t total;
} oh_task_list_t;

db_status_t oh_tasks_list(db_pool_t *pool, const oh_task_filter_t *f, oh_task_list_t *out);
void oh_task_list_free(oh_task_list_t *l);

typedef enum {
	OH_CANCEL_DONE = 0,
	OH_CANCEL_REQUESTED,
	OH_CANCEL_COMPLETED,
	OH_CANCEL_NOT_FOUND
} oh_cancel_outcome_t;

/* Cancels: a queued task ends at once (Canceled); an executing one moves to
 * Cancelling and its worker stops at its next check.  *OUT is the task after.
 * AUDIT (may be NULL) is recorded in the same transaction when it did. */
db_status_t oh_tasks_cancel(db_pool_t *pool, const char *id, oh_cancel_outcome_t *outcome,
                            oh_task_t *out, const struct oh_event_spec *audit);

/* Counts the tasks under the cap (not system tasks: drains, undrains, caps,
 * checks) Executing or Cancelling on NODE_ID, other than EXCEPT_ID.  What a
 * drain waits for: two drains running on each other's node never wait on
 * each other. */
db_status_t oh_tasks_count_running_tx(db_conn_t *c, const char *node_id, const char *except_id,
                                      int64_t *count);

/* ---- the worker side ---------------------------------------------------- */

typedef struct {
	char id[64];
	char name[51];
	char *arguments; /* malloc'd JSON text */
	int attempt, max_attempts;
	bool is_system;
} oh_claimed_t;

/* How many system tasks (drain, undrain, task cap: the control plane's own
 * bookkeeping) a node runs at most beside its MaxConcurrentTasks, so that a
 * drain's deadline is handled even when every node is at its cap. */
#define OH_SYSTEM_TASK_SLOTS 4

/* Passed as RUNNING to oh_tasks_claim, claims system tasks only. */
#define OH_CLAIM_SYSTEM_ONLY (1 << 20)

/* Claims queued tasks for NODE_ID under lease OWNER for LEASE_MS.  In the
 * same transaction it reads the node's drain flag and task cap from the
 * database, under a lock that a concurrent drain waits for: ordinary tasks
 * up to the cap minus RUNNING (none while draining), system tasks up to
 * OH_SYSTEM_TASK_SLOTS minus RUNNING_SYSTEM (none with a cap of 0).  Fills
 * OUT (capacity LIMIT) and *N.  Each claim increments the task's attempt. */
db_status_t oh_tasks_claim(db_pool_t *pool, const char *node_id, const char *owner,
                           int64_t lease_ms, int running, int running_system, int limit,
                           oh_claimed_t *out, int *n);
void oh_claimed_clear(oh_claimed_t *c);

typedef enum { OH_END_SUCCESS = 0, OH_END_FAILED, OH_END_CANCELED, OH_END_RETRY } oh_end_t;

/* Ends an attempt, fenced by OWNER and ATTEMPT.  RETRY requeues with backoff
 * while attempts remain (else Failed).  RESULT (JSON text) may be NULL.
 * *FINAL (may be NULL) receives the state the task is left in (Queued for
 * a retry).
 * Returns DB_OK, or DB_NO_ROWS when the lease is no longer this owner's (the
 * outcome was discarded), or a failure. */
db_status_t oh_tasks_finish(db_pool_t *pool, const char *id, const char *owner, int attempt,
                            oh_end_t end, const char *error, const char *result,
                            oh_task_state_t *final);

/* One ended attempt, for oh_tasks_finish_many. */
typedef struct {
	const char *id;
	int attempt;
	oh_end_t end;
	const char *error, *result; /* may be NULL */
	bool quiet;                 /* a failure is recorded but not sent to webhooks */
	db_status_t status;         /* out: DB_OK, or DB_NO_ROWS when the lease was lost */
	oh_task_state_t final;      /* out: as oh_tasks_finish's *FINAL */
} oh_finish_t;

/* Ends N attempts held by OWNER in one transaction (one commit instead of
 * N), each fenced as oh_tasks_finish.  Returns DB_OK with each item's
 * status set, or the failure that left them all as they were. */
db_status_t oh_tasks_finish_many(db_pool_t *pool, const char *owner, oh_finish_t *items, size_t n);

/* Records progress, fenced as above. */
db_status_t oh_tasks_progress(db_pool_t *pool, const char *id, const char *owner, int attempt,
                              int percent, const char *message);

typedef struct {
	char id[64];
	int attempt;
	bool cancelling;
} oh_held_t;

/* Renews to now+LEASE_MS exactly the N_HOLD leases in HOLD (tasks OWNER
 * runs, or has finished and is still recording the end of) and no other
 * lease of OWNER's, then lists every task OWNER still holds, so a worker
 * whose task was taken over, or asked to cancel, learns it.  OUT has
 * capacity CAP; *N receives the count. */
db_status_t oh_tasks_renew(db_pool_t *pool, const char *owner, int64_t lease_ms,
                           const oh_held_t *hold, int n_hold, oh_held_t *out, int cap, int *n);

typedef struct {
	int64_t requeued, failed, canceled, purged;
} oh_expiry_t;

/* Cluster housekeeping: tasks whose lease expired (their node died) are
 * requeued, except those SELF (this process's lease owner) holds, or Failed when out of attempts;
 * expired Cancelling tasks end Canceled; once a minute, tasks that ended more than RETENTION_MS ago
 * are deleted with their logs, looked for in each of the N_DIRS folders LOGS_DIRS (the TaskLogs
 * folders this node has used: logs are not moved when the folder changes).  Runs only when this
 * call wins the period's slot, so once per PERIOD_MS however many nodes call it: *RAN says whether
 * it did. */
db_status_t oh_tasks_housekeeping(db_pool_t *pool, const char *self, int64_t period_ms,
                                  int64_t retention_ms, const char *const *logs_dirs, size_t n_dirs,
                                  bool *ran, oh_expiry_t *out);

/* Requeues (CANCEL false) or cancels every non-system task executing on
 * NODE_ID: the drain deadline's action.  *N receives the count. */
db_status_t oh_tasks_evict_node(db_pool_t *pool, const char *node_id, bool cancel, int64_t *n);

/* Non-system (capped) running task counts per node for the summary.
 * Calls FN per node. */
db_status_t oh_tasks_running_by_node(db_pool_t *pool, void (*fn)(void *, const char *, int64_t),
                                     void *ctx);

/* Requeues at once every task OWNER still executes: this node is stopping
 * cleanly, so other nodes need not wait for the lease to expire. */
db_status_t oh_tasks_release_owner(db_pool_t *pool, const char *owner, int64_t *n);

/* The backoff before retry ATTEMPT+1: 1 s, 2 s, 4 s … capped at 60 s. */
int64_t oh_task_backoff_ms(int attempt);

#endif
