/* Drain, undrain and task-cap changes of a node, as Octopus's maintenance
 * mode.  The node's flag changes in the same transaction that queues the
 * task, so the target's ping turns 418 as soon as it next reads its row
 * (well under a second) while the task follows the drain to its end. */
#ifndef OH_DRAIN_H
#define OH_DRAIN_H

#include "nodes.h"
#include "tasks.h"

typedef enum {
	OH_DRAIN_QUEUED = 0, /* a new task was queued */
	OH_DRAIN_ALREADY,    /* the drain under way is returned */
	OH_DRAIN_UNCHANGED,  /* nothing to do (PUT with the same values) */
	OH_DRAIN_NOT_FOUND,
	OH_DRAIN_LAST_NODE /* refused: the last node taking work (drain or cap 0) */
} oh_drain_outcome_t;

typedef struct {
	const char *node_id;
	int drain;    /* 1 drain, 0 undrain, -1 leave as is */
	int task_cap; /* new cap, or -1 to leave as is */
	const char *reason;
	const char *requested_by;
	int deadline_seconds;    /* 0 = none */
	bool cancel_at_deadline; /* else requeue to other nodes */
	bool force;              /* allow draining (or capping to 0) the last node taking work */
	struct oh_idem *idem;    /* the request's idempotency key, or NULL */
	int64_t offline_timeout_ms;
	/* Recorded with the change when a task is queued; a NULL category or
	 * message is filled in from what was done.  May be NULL. */
	const struct oh_event_spec *audit;
} oh_drain_request_t;

/* Applies REQ and queues the task that carries it out.  *OUTCOME says
 * what happened; *TASK is the task (queued or already under way) unless
 * UNCHANGED, NOT_FOUND or LAST_NODE.  Concurrent requests are serialised
 * by the cluster's "nodes" lock row, so two drains cannot both pass the
 * last-node check.  Returns DB_OK, DB_ABORT with req->idem->in_flight set
 * when another request took its idempotency key meanwhile, or a failure. */
db_status_t oh_drain_request(db_pool_t *pool, const oh_drain_request_t *req,
                             oh_drain_outcome_t *outcome, oh_task_t *task);

#endif
