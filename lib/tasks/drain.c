/* Drain: follows a node in maintenance mode until it runs no task.  Its
 * flag was set when the drain was accepted; this task reports how many
 * tasks still run there, handles the deadline (requeue the rest to other
 * nodes, or cancel them) and ends when the node is idle, or Canceled when
 * the node is undrained first. */
#include <stdio.h>
#include <string.h>

#include "../events.h"
#include "../nodes.h"
#include "../oh_json.h"
#include "../task_run.h"

typedef struct {
	const char *node_id, *self;
	int64_t *count;
} count_ctx_t;

static db_status_t count_txn(db_conn_t *c, void *vctx)
{
	count_ctx_t *x = vctx;
	return oh_tasks_count_running_tx(c, x->node_id, x->self, x->count);
}

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	const char *node_id = json_string_value(json_object_get(r->args, "NodeId"));
	json_int_t deadline_s = json_integer_value(json_object_get(r->args, "DeadlineSeconds"));
	const char *action = json_string_value(json_object_get(r->args, "DeadlineAction"));
	bool cancel = action && strcmp(action, "Cancel") == 0;
	if (!node_id) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "The drain task names no node.");
		return;
	}
	oh_task_log(r, "Draining %s: it takes no new work; waiting for its tasks to finish%s",
	            node_id, deadline_s > 0 ? "" : " (no deadline)");
	int64_t last_reported = -1;
	bool deadline_handled = false;
	for (int64_t waited = 0;; waited += 250) {
		oh_node_t node;
		db_status_t s = oh_nodes_get(r->pool, node_id, r->offline_timeout_ms, &node);
		if (s == DB_NO_ROWS) {
			out->end = OH_END_FAILED;
			snprintf(out->error, sizeof out->error, "Node %s no longer exists.",
			         node_id);
			return;
		}
		if (s == DB_OK && !node.maintenance) {
			oh_task_log(r, "%s was undrained; this drain ends", node_id);
			out->end = OH_END_CANCELED;
			snprintf(out->error, sizeof out->error,
			         "The node was undrained before it drained.");
			return;
		}
		int64_t running = -1;
		count_ctx_t x = {node_id, r->task->id, &running};
		if (s == DB_OK)
			s = db_txn(r->pool, DB_TXN_READ, count_txn, &x);
		if (s == DB_OK) {
			if (running != last_reported) {
				oh_task_log(r, "%lld task(s) still running on %s",
				            (long long)running, node_id);
				oh_task_progress(r, running == 0 ? 100 : 50,
				                 "%lld task(s) still running", (long long)running);
				last_reported = running;
			}
			if (running == 0) {
				out->end = OH_END_SUCCESS;
				out->result = oh_json_check(json_object());
				oh_json_set_new(out->result, "NodeId", json_string(node_id));
				oh_json_set_new(out->result, "Drained", json_true());
				oh_task_log(r, "%s is drained", node_id);
				char msg[200];
				snprintf(msg, sizeof msg, "%s is drained: it runs no tasks.",
				         node_id);
				oh_event_spec_t ev = {.category = "NodeDrained",
				                      .operation = "Drain",
				                      .resource_id = node_id,
				                      .result = "Success",
				                      .message = msg};
				oh_event_record(r->pool, &ev);
				return;
			}
			if (deadline_s > 0 && !deadline_handled && waited >= deadline_s * 1000) {
				int64_t n = 0;
				if (oh_tasks_evict_node(r->pool, node_id, cancel, &n) == DB_OK) {
					oh_task_log(
					    r, "Deadline of %lld s reached: %s %lld task(s)",
					    (long long)deadline_s,
					    cancel ? "cancelling" : "requeued to other nodes",
					    (long long)n);
					deadline_handled = true;
				}
			}
		}
		if (!oh_task_sleep(r, 250)) {
			out->end = atomic_load(r->lost) ? OH_END_RETRY : OH_END_CANCELED;
			snprintf(out->error, sizeof out->error, "The drain task was stopped.");
			return;
		}
	}
}

const oh_task_kind_t oh_task_kind_drain = {"Drain", true, run, false};
