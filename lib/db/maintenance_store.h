/* SQL for rolling maintenance runs (MaintenanceRuns, MaintenanceSteps), in
 * the caller's transaction.  The row types are this store's. */
#ifndef DB_MAINTENANCE_STORE_H
#define DB_MAINTENANCE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "keyset.h"

typedef struct {
	char id[51];
	char cluster_id[51]; /* "local" or a ManagedClusters- Id */
	char task_id[64];    /* the MaintenanceRun task that drives it */
	char state[21];      /* Queued, Running, Paused, Completed, Failed, Aborted */
	char reason[401];
	int min_online;
	int deadline_s;
	char deadline_action[21]; /* Requeue or Cancel */
	int settle_s;
	int balancer_delay_s; /* after a node drained, before it is announced ready */
	bool undrain_on_abort;
	bool abort_requested;
	int current_step; /* -1 before the first */
	int driver_attempt;
	char requested_by[201];
	int64_t created_at, started_at, ended_at; /* 0 = not yet */
	char message[1001];
} oh_mrun_t;

typedef struct {
	int position;
	char node_key[101]; /* local: the node's Id; managed: its configured name */
	char node_name[101];
	char state[31];
	char drain_task[64];
	char undrain_task[64];
	int64_t baseline_started_at; /* local: the node's StartedAt when it drained */
	bool ping_lost;              /* its ping went away after it was ready */
	bool continue_requested;
	int64_t drain_requested_at, drained_at, ready_at, restarted_at, undrain_requested_at,
	    online_at, done_at; /* database clock, 0 = not yet */
	char message[1001];
} oh_mstep_t;

db_status_t maint_store_insert_run(db_conn_t *c, const oh_mrun_t *r);
db_status_t maint_store_insert_step(db_conn_t *c, const char *run_id, const oh_mstep_t *s);
/* DB_NO_ROWS when there is no such run. */
db_status_t maint_store_get_run(db_conn_t *c, const char *id, oh_mrun_t *out);
/* Calls FN for every step of RUN_ID in order. */
db_status_t maint_store_each_step(db_conn_t *c, const char *run_id,
                                  void (*fn)(void *, const oh_mstep_t *), void *ctx);

/* The list of runs: newest first (CreatedAt DESC, Id), read through
 * IX_MaintenanceRuns_List (lib/db/keyset.h). */
extern const db_list_t maint_store_list_def;
/* Fills Q for a page of SKIP, TAKE runs (the plan test builds it too). */
void maint_store_list_query(int64_t skip, int64_t take, db_list_query_t *q);
/* Calls FN for the runs of the page after run AFTER (NULL or "" from the
 * start), SKIP, TAKE, in the list's order; *TOTAL the runs of the whole
 * list, up to DB_LIST_COUNT_CAP.  DB_NO_ROWS when AFTER names no run. */
db_status_t maint_store_page(db_conn_t *c, const char *after, int64_t skip, int64_t take,
                             void (*fn)(void *, const oh_mrun_t *), void *ctx, int64_t *total);
/* Builds into Q the statement that reads the steps of up to 32 runs IDS
 * (N of them), by run then position. */
void maint_store_steps_of_sql(const char *const *ids, size_t n, db_sql_t *q);
/* Calls FN (run Id, step) for every step of the N runs IDS, by run then
 * position, 32 runs a statement. */
db_status_t maint_store_steps_of(db_conn_t *c, const char *const *ids, size_t n,
                                 void (*fn)(void *, const char *, const oh_mstep_t *), void *ctx);
/* The Id of CLUSTER_ID's run that has not ended, into ID (size SIZE);
 * DB_NO_ROWS when none. */
db_status_t maint_store_active(db_conn_t *c, const char *cluster_id, char *id, size_t size);
/* Counts the runs of CLUSTER_ID that have not ended. */
db_status_t maint_store_count_active(db_conn_t *c, const char *cluster_id, int64_t *n);

/* The driver of attempt ATTEMPT takes the run over (only from an older
 * attempt); *ROWS 0 when a newer driver holds it. */
db_status_t maint_store_take(db_conn_t *c, const char *id, int attempt, int64_t *rows);
/* Locks the run's row for its driver ATTEMPT; *ROWS 0 when it is not the
 * holder any more (its writes must stop). */
db_status_t maint_store_fence(db_conn_t *c, const char *id, int attempt, int64_t *rows);
/* The driver's view of the run: state, current step, message, times. */
db_status_t maint_store_save_run(db_conn_t *c, const oh_mrun_t *r);
db_status_t maint_store_save_step(db_conn_t *c, const char *run_id, const oh_mstep_t *s);

/* The API's controls.  *ROWS 0 when the run is not in a state that allows it. */
db_status_t maint_store_set_paused(db_conn_t *c, const char *id, bool paused, int64_t *rows);
db_status_t maint_store_request_abort(db_conn_t *c, const char *id, int undrain, int64_t *rows);
db_status_t maint_store_request_continue(db_conn_t *c, const char *id, int64_t *rows);

#endif
