/* SQL for the ServerTasks and ClusterLocks tables.  Each function runs in
 * the caller's transaction; lib/tasks.c composes them.  Everything here is
 * portable SQL except the claim and paging, which come from the dialect
 * table. */
#ifndef DB_TASKS_STORE_H
#define DB_TASKS_STORE_H

#include "../tasks.h"
#include "db.h"
#include "keyset.h"

db_status_t tasks_store_insert(db_conn_t *c, const oh_task_t *t);
db_status_t tasks_store_get(db_conn_t *c, const char *id, oh_task_t *out);

/* Calls FN for each task of F's page, newest first (after the task F->after
 * when given: DB_NO_ROWS when there is no such task); *TOTAL receives the
 * count of all matches: exact from TaskCounts when F filters by states only,
 * else up to DB_LIST_COUNT_CAP. */
db_status_t tasks_store_list(db_conn_t *c, const oh_task_filter_t *f,
                             void (*fn)(void *, oh_task_t *), void *ctx, int64_t *total);

/* The list's table and order, and F as its branches (for the store and
 * the plan test).  LIKE (LIKE_SIZE bytes, at least 410) receives F's
 * partialName pattern, which Q's branches borrow: keep it while Q is used. */
extern const db_list_t tasks_store_list_def;
void tasks_store_list_query(const oh_task_filter_t *f, db_list_query_t *q, char *like,
                            size_t like_size);

/* State transitions; each sets *ROWS to the rows changed. */
db_status_t tasks_store_cancel_queued(db_conn_t *c, const char *id, int64_t now, int64_t *rows);
db_status_t tasks_store_request_cancel(db_conn_t *c, const char *id, int64_t now, int64_t *rows);

/* Claims up to LIMIT queued tasks of one kind (SYSTEM or not), marking
 * them with the claim's TOKEN. */
db_status_t tasks_store_claim(db_conn_t *c, const char *node_id, const char *owner,
                              const char *token, int64_t lease_until, int64_t now, bool system,
                              int limit, oh_claimed_t *out, int *n);

/* The tasks OWNER still holds from the claim TOKEN (up to LIMIT): what a
 * claim whose COMMIT lost its answer did claim.  DB_NO_ROWS when none. */
db_status_t tasks_store_claimed(db_conn_t *c, const char *owner, const char *token, int limit,
                                oh_claimed_t *out, int *n);

/* Which states an end may leave from. */
typedef enum { OH_FROM_RUNNING = 0, OH_FROM_EXECUTING, OH_FROM_CANCELLING } oh_finish_from_t;

/* Fenced by owner and attempt: ends the attempt in STATE when the task is
 * in one of the states FROM names (Executing or Cancelling for RUNNING). */
db_status_t tasks_store_finish(db_conn_t *c, const char *id, const char *owner, int attempt,
                               oh_task_state_t state, oh_finish_from_t from, int64_t now,
                               const char *error, const char *result, int64_t *rows);
db_status_t tasks_store_retry(db_conn_t *c, const char *id, const char *owner, int attempt,
                              int64_t now, int64_t next_run, const char *error, int64_t *rows);
db_status_t tasks_store_progress(db_conn_t *c, const char *id, const char *owner, int attempt,
                                 int64_t now, int percent, const char *message, int64_t *rows);
db_status_t tasks_store_get_attempts(db_conn_t *c, const char *id, int *attempt, int *max);
/* A task's state, attempt, whether it holds a lease, and its lease owner
 * (the last one: an ended attempt keeps its owner, so the end can be told
 * to be its own).  DB_NO_ROWS if none. */
db_status_t tasks_store_state(db_conn_t *c, const char *id, oh_task_state_t *state, int *attempt,
                              bool *leased, char *owner, size_t owner_size);

/* Renews to LEASE_UNTIL the leases OWNER holds on the N (at most
 * tasks_store_succeed_chunk()) tasks IDS at ATTEMPTS, and no others. */
db_status_t tasks_store_renew_some(db_conn_t *c, const char *owner, int64_t lease_until,
                                   const char *const *ids, const int *attempts, int n);
db_status_t tasks_store_held(db_conn_t *c, const char *owner, oh_held_t *out, int cap, int *n);

/* Housekeeping: takes lock NAME's slot for the PERIOD_MS from NOW if the
 * previous slot has ended (*WON). */
db_status_t tasks_store_take_slot(db_conn_t *c, const char *name, int64_t now, int64_t period_ms,
                                  bool *won);
/* Takes over the tasks whose lease expired before NOW, except those SELF
 * (the calling process's lease owner) holds: it is alive and ends or
 * renews them itself, also after a database outage longer than a lease.
 * Cancelling ones end Canceled, those on their last attempt Failed, the
 * rest are requeued in their place (NextRunAt unchanged). */
db_status_t tasks_store_expire(db_conn_t *c, int64_t now, const char *self, oh_expiry_t *out);
/* The same for every task OWNER (a process known to be gone) holds. */
db_status_t tasks_store_take_over_owner(db_conn_t *c, const char *owner, int64_t now,
                                        oh_expiry_t *out);

db_status_t tasks_store_evict_node(db_conn_t *c, const char *node_id, bool cancel, int64_t now,
                                   int64_t *rows);
db_status_t tasks_store_count_running(db_conn_t *c, const char *node_id, const char *except_id,
                                      int64_t *count);
db_status_t tasks_store_running_by_node(db_conn_t *c, void (*fn)(void *, const char *, int64_t),
                                        void *ctx);

/* Requeues every task OWNER still executes (a clean stop). */
db_status_t tasks_store_release_owner(db_conn_t *c, const char *owner, int64_t now, int64_t *rows);

/* Up to CAP ids of tasks that ended before BEFORE, oldest first. */
db_status_t tasks_store_completed_before(db_conn_t *c, int64_t before, char (*ids)[64], int cap,
                                         int *n);
db_status_t tasks_store_delete(db_conn_t *c, const char *id);

/* The node's drain flag and task cap, read under a lock a drain waits for. */
db_status_t tasks_store_node_flags(db_conn_t *c, const char *node_id, bool *draining, int *cap);

/* Marks up to tasks_store_succeed_chunk() attempts (IDS, ATTEMPTS) held by
 * OWNER Success in one statement; *ROWS is how many it changed. */
int tasks_store_succeed_chunk(void);
db_status_t tasks_store_succeed_many(db_conn_t *c, const char *owner, int64_t now,
                                     const char *const *ids, const int *attempts, int n,
                                     int64_t *rows);

/* Calls FN for up to LIMIT tasks whose LastUpdatedTime and Id come after
 * (AFTER_TIME, AFTER_ID) in that order (AFTER_ID "" from the start of
 * AFTER_TIME), oldest change first: what changed since a position, for the
 * event stream (IX_ServerTasks_Updated). */
db_status_t tasks_store_changed(db_conn_t *c, int64_t after_time, const char *after_id,
                                int64_t limit, void (*fn)(void *, oh_task_t *), void *ctx);
#endif
