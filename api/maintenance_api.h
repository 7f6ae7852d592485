/* Rolling maintenance as the API and the chat commands both start and steer
 * it (api/maintenance_runs.c). */
#ifndef API_MAINTENANCE_API_H
#define API_MAINTENANCE_API_H

#include "../lib/maintenance.h"
#include "http.h"

typedef enum {
	API_MAINT_STARTED = 0,
	API_MAINT_NO_CLUSTER,     /* ClusterId names no managed cluster */
	API_MAINT_BAD_NODE,       /* NodeOrder names a node the cluster has not (DETAIL) */
	API_MAINT_CAPACITY,       /* too few nodes serve (DETAIL) */
	API_MAINT_BUSY,           /* a run of the cluster has not ended (DETAIL) */
	API_MAINT_IDEM_IN_FLIGHT, /* another request took the Idempotency-Key meanwhile */
	API_MAINT_DB              /* the database failed: *DB */
} api_maint_start_t;

/* Starts the run BODY (a MaintenanceRunCreate, borrowed) asks for, for
 * REQUESTED_BY, with REQ's idempotency key and actor.  On STARTED fills
 * *RUN and *TASK (clear it); otherwise DETAIL (size DETAIL_LEN) or *DB says
 * why. */
api_maint_start_t api_maintenance_start(const api_req_t *req, const json_t *body,
                                        const char *requested_by, oh_mrun_t *run, oh_task_t *task,
                                        db_status_t *db, char *detail, size_t detail_len);

/* Applies CTL to run ID (UNDRAIN as oh_maint_control), recording it with
 * DETAILS (borrowed, may be NULL).  *ST is the database's status; on DB_OK
 * the outcome is returned and *OUT is the run afterwards (free it). */
oh_mctl_outcome_t api_maintenance_control(const api_req_t *req, const char *id, oh_mctl_t ctl,
                                          int undrain, const json_t *details, db_status_t *st,
                                          oh_maint_view_t *out);

/* The MaintenanceRun resource (new reference). */
json_t *api_maintenance_json(const oh_mrun_t *r, const oh_mstep_t *steps, size_t n);

#endif
