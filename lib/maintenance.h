/* Rolling maintenance of a whole cluster, the local one or a managed one:
 * node by node, in a given order, each drained with a deadline, announced
 * ready (NodeReadyForMaintenance), waited on until it is restarted (or an
 * operator says continue), undrained, and watched answering 200 for a
 * settle period before the next node starts.  A node is drained only while
 * MinOnlineNodes other nodes serve, so two nodes are never out together.
 *
 * A run is a resource with its steps kept in the database.  One task (the
 * MaintenanceRun kind, lib/tasks/maintenance_run.c) drives it; when its node
 * dies another node takes the task over and resumes at the step reached.
 * Every write of a driver is fenced by its attempt, so a driver whose task
 * was taken over can change nothing. */
#ifndef OH_MAINTENANCE_H
#define OH_MAINTENANCE_H

#include <stdbool.h>

#include "db/db.h"
#include "db/maintenance_store.h"
#include "tasks.h"

struct oh_event_spec; /* events.h */
struct oh_idem;       /* idempotency.h */

#define OH_MAINT_ID_PREFIX "MaintenanceRuns-"
#define OH_MAINT_LOCAL     "local"
#define OH_MAINT_KIND      "MaintenanceRun"
#define OH_MAINT_MAX_NODES 64

/* A run to start (all borrowed). */
typedef struct {
	const char *cluster_id; /* OH_MAINT_LOCAL or a ManagedClusters- Id */
	const char *reason;
	int min_online;
	int deadline_s;
	bool cancel_at_deadline;
	int settle_s;
	int balancer_delay_s;
	bool undrain_on_abort;
	const char *node_keys[OH_MAINT_MAX_NODES]; /* in maintenance order */
	const char *node_names[OH_MAINT_MAX_NODES];
	size_t n;
	const char *requested_by;
	struct oh_idem *idem;
	const struct oh_event_spec *audit;
} oh_maint_spec_t;

/* Creates the run with its steps and queues its task (*TASK) in one
 * transaction, under the "maintenance" lock: when CLUSTER_ID has a run that
 * has not ended, nothing is created and *BUSY_ID (size 51) names it.
 * Returns DB_OK (check *BUSY_ID), DB_ABORT with SPEC->idem->in_flight, or a
 * failure. */
db_status_t oh_maint_start(db_pool_t *pool, const oh_maint_spec_t *spec, oh_mrun_t *run,
                           oh_task_t *task, char *busy_id);

typedef struct {
	oh_mrun_t run;
	oh_mstep_t *steps; /* malloc'd */
	size_t n;
} oh_maint_view_t;
void oh_maint_view_free(oh_maint_view_t *v);

/* Reads run ID and its steps.  DB_NO_ROWS when there is none. */
db_status_t oh_maint_get(db_pool_t *pool, const char *id, oh_maint_view_t *out);

typedef struct {
	oh_maint_view_t *v; /* each run with its steps */
	size_t n;
	int64_t total; /* runs in the whole list, up to DB_LIST_COUNT_CAP */
} oh_maint_list_t;
/* Reads into *OUT a page of runs newest first (CreatedAt DESC, Id), each
 * with its steps, in one transaction: the runs after run AFTER (NULL or
 * "" from the start), SKIP, TAKE (lib/db/keyset.h).  DB_OK, DB_NO_ROWS
 * when AFTER names no run, or a failure (*OUT then empty).  Free with
 * oh_maint_list_free. */
db_status_t oh_maint_list(db_pool_t *pool, const char *after, int64_t skip, int64_t take,
                          oh_maint_list_t *out);
void oh_maint_list_free(oh_maint_list_t *l);

/* The Id of CLUSTER_ID's run that has not ended, into ID (size SIZE):
 * DB_OK with it, DB_NO_ROWS when there is none (ID ""), or a failure.  A
 * read for a clear answer before other checks; oh_maint_start decides. */
db_status_t oh_maint_active(db_pool_t *pool, const char *cluster_id, char *id, size_t size);

typedef enum { OH_MCTL_PAUSE = 0, OH_MCTL_RESUME, OH_MCTL_ABORT, OH_MCTL_CONTINUE } oh_mctl_t;

typedef enum {
	OH_MCTL_DONE = 0,
	OH_MCTL_NOT_FOUND,
	OH_MCTL_WRONG_STATE /* ended, not paused, not waiting for maintenance … */
} oh_mctl_outcome_t;

/* Pause, resume, abort (UNDRAIN: 1 undrain the node in maintenance, 0 leave
 * it, -1 as the run said) or continue (the node in maintenance is done),
 * recording AUDIT (its category filled in) in the same transaction.
 * *OUT is the run afterwards. */
db_status_t oh_maint_control(db_pool_t *pool, const char *id, oh_mctl_t ctl, int undrain,
                             const struct oh_event_spec *audit, oh_mctl_outcome_t *outcome,
                             oh_maint_view_t *out);

/* ---- for the driving task ------------------------------------------------ */

/* The database's clock (ms), or 0 when it cannot be read. */
int64_t oh_maint_now(db_pool_t *pool);

/* The driver of attempt ATTEMPT takes run ID over.  *MINE is false when a
 * newer driver holds it. */
db_status_t oh_maint_take(db_pool_t *pool, const char *id, int attempt, bool *mine);

/* Saves RUN and STEP (may be NULL), recording EV (may be NULL) and, when
 * the run was started from a chat with a reply address, queueing CHAT
 * (may be NULL) to it, all in one transaction fenced by RUN->driver_attempt.
 * *LOST is set when the run is no longer this driver's (nothing saved). */
db_status_t oh_maint_save(db_pool_t *pool, const oh_mrun_t *run, const oh_mstep_t *step,
                          const struct oh_event_spec *ev, const char *chat, bool *lost);

#endif
