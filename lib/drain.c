#include "drain.h"

#include <stdio.h>
#include <string.h>

#include "db/cluster_store.h"
#include "db/nodes_store.h"
#include "events.h"
#include "idempotency.h"
#include "oh_json.h"

typedef struct {
	const oh_drain_request_t *req;
	oh_drain_outcome_t *outcome;
	oh_task_t *task;
	const char *task_id; /* the new task's Id, chosen before the transaction */
} drain_ctx_t;

static db_status_t drain_txn(db_conn_t *c, void *vctx)
{
	drain_ctx_t *x = vctx;
	const oh_drain_request_t *r = x->req;
	oh_task_clear(x->task);
	memset(x->task, 0, sizeof *x->task);
	/* Every change that must see the nodes as they are takes this row
	 * first: the last-node check below cannot pass for two at once. */
	db_status_t s = cluster_store_lock(c, "nodes");
	if (s != DB_OK)
		return s;
	int64_t now;
	s = db_now_ms(c, &now);
	if (s != DB_OK)
		return s;
	oh_node_t node;
	s = nodes_store_get(c, r->node_id, false, &node);
	if (s == DB_NO_ROWS) {
		*x->outcome = OH_DRAIN_NOT_FOUND;
		return DB_ABORT;
	}
	if (s != DB_OK)
		return s;

	bool drain_change = r->drain >= 0 && (r->drain == 1) != node.maintenance;
	bool cap_change = r->task_cap >= 0 && r->task_cap != node.max_tasks;
	if (r->drain == 1 && node.maintenance && node.drain_task_id[0]) {
		s = oh_task_get_tx(c, node.drain_task_id, x->task);
		if (s == DB_OK) {
			*x->outcome = OH_DRAIN_ALREADY;
			return cap_change ? nodes_store_set_cap(c, r->node_id, r->task_cap, NULL)
			                  : DB_OK;
		}
		if (s != DB_NO_ROWS)
			return s;
		drain_change = true; /* its task was purged: drain afresh */
	}
	if (!drain_change && !cap_change) {
		*x->outcome = OH_DRAIN_UNCHANGED;
		return DB_ABORT;
	}
	/* Draining a node, or capping it to 0, takes it out of work: refused
	 * when it is the last one taking work, unless forced. */
	bool takes_work = !node.maintenance && node.max_tasks > 0;
	bool stops_work = (drain_change && r->drain == 1) || (cap_change && r->task_cap == 0);
	if (takes_work && stops_work && !r->force) {
		int64_t others = 0;
		s = nodes_store_count_taking_work(c, r->node_id, now - r->offline_timeout_ms,
		                                  &others);
		if (s != DB_OK)
			return s;
		if (others == 0) {
			*x->outcome = OH_DRAIN_LAST_NODE;
			return DB_ABORT;
		}
	}

	json_t *args = oh_json_check(json_object());
	oh_json_set_new(args, "NodeId", json_string(r->node_id));
	oh_task_spec_t spec = {.is_system = true,
	                       .arguments = args,
	                       .id = x->task_id,
	                       .requested_by = r->requested_by,
	                       .max_attempts = 5};
	char desc[400];
	if (drain_change && r->drain == 1) {
		oh_json_set_new(args, "DeadlineSeconds", json_integer(r->deadline_seconds));
		oh_json_set_new(args, "DeadlineAction",
		                json_string(r->cancel_at_deadline ? "Cancel" : "Requeue"));
		if (r->reason)
			oh_json_set_new(args, "Reason", json_string(r->reason));
		snprintf(desc, sizeof desc, "Drain node %s", node.name);
		spec.name = "Drain";
	} else if (drain_change) {
		snprintf(desc, sizeof desc, "Undrain node %s", node.name);
		spec.name = "Undrain";
	} else {
		snprintf(desc, sizeof desc, "Set the task cap of node %s to %d", node.name,
		         r->task_cap);
		spec.name = "SetTaskCap";
	}
	if (cap_change)
		oh_json_set_new(args, "MaxConcurrentTasks", json_integer(r->task_cap));
	spec.description = desc;
	s = oh_idem_record_tx(c, r->idem, x->task_id);
	if (s == DB_OK)
		s = oh_task_insert(c, &spec, x->task);
	json_decref(args);
	if (s != DB_OK)
		return s;
	if (drain_change)
		s = nodes_store_set_drain(c, r->node_id, r->drain == 1, r->reason, r->requested_by,
		                          now, r->drain == 1 ? x->task->id : NULL);
	if (s == DB_OK && cap_change)
		s = nodes_store_set_cap(c, r->node_id, r->task_cap, NULL);
	if (s == DB_OK && r->audit) {
		oh_event_spec_t ev = *r->audit;
		if (!ev.category)
			ev.category = strcmp(spec.name, "Drain") == 0     ? "NodeDrainRequested"
			              : strcmp(spec.name, "Undrain") == 0 ? "NodeUndrainRequested"
			                                                  : "NodeTaskCapChanged";
		if (!ev.message)
			ev.message = desc;
		ev.resource_id = r->node_id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	*x->outcome = OH_DRAIN_QUEUED;
	return s;
}

/* Whether the task a lost COMMIT was queueing exists (the change with it). */
static db_status_t drain_verify(db_conn_t *c, void *vctx)
{
	drain_ctx_t *x = vctx;
	oh_task_clear(x->task);
	db_status_t s = oh_task_get_tx(c, x->task_id, x->task);
	if (s == DB_OK)
		*x->outcome = OH_DRAIN_QUEUED;
	return s;
}

db_status_t oh_drain_request(db_pool_t *pool, const oh_drain_request_t *req,
                             oh_drain_outcome_t *outcome, oh_task_t *task)
{
	memset(task, 0, sizeof *task);
	char id[64];
	if (!oh_task_new_id(id, sizeof id))
		return DB_ERROR;
	drain_ctx_t x = {req, outcome, task, id};
	db_status_t s = db_txn_verified(pool, drain_txn, drain_verify, &x);
	return s == DB_ABORT && !(req->idem && req->idem->in_flight) ? DB_OK : s;
}
