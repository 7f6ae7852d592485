/* ManagedDrain: drains a node of a managed Octopus cluster as a local drain
 * does.  The node resource is read and PUT back whole with
 * IsInMaintenanceMode on; the task then ends when the cluster's summary
 * shows no running task on the node and the node's own ping answers 418.
 * At DeadlineSeconds with tasks still running: Cancel cancels them through
 * the API; Requeue means, for Octopus, leave them running, and the drain
 * ends with them listed.  A node whose ping stays unanswered for
 * UnreachableSeconds fails the drain.  Draining the last node that takes
 * work is refused unless Force. */
#include <stdio.h>
#include <string.h>

#include "../node_state.h"
#include "../oh_json.h"
#include "managed_common.h"

#define POLL_MS             300
#define DEFAULT_UNREACHABLE 120
#define MAX_CANCEL          64

/* Turns maintenance mode on: GET the node resource, PUT it back whole with
 * IsInMaintenanceMode set.  FORCE adds octoha's own Force field (Octopus
 * ignores what it does not know; an octoha node would otherwise refuse to
 * drain its cluster's last node taking work). */
static bool put_maintenance(oh_mc_session_t *s, const char *id, bool force, oh_task_outcome_t *out)
{
	json_t *res = NULL;
	long http = 0;
	oh_octo_status_t st = oh_octo_get_node(&s->o, id, &res, &http);
	if (st != OH_OCTO_OK) {
		oh_mc_fail(out, st, http, "Reading the node resource");
		return false;
	}
	json_object_set_new(res, "IsInMaintenanceMode", json_true());
	if (force)
		json_object_set_new(res, "Force", json_true());
	st = oh_octo_put_node(&s->o, id, res, &http);
	json_decref(res);
	if (st != OH_OCTO_OK) {
		oh_mc_fail(out, st, http, "Updating the node resource");
		return false;
	}
	return true;
}

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	oh_mc_session_t s;
	if (!oh_mc_session_open(r, "Node", &s, out)) {
		oh_mc_session_close(&s);
		return;
	}
	json_int_t deadline_s = json_integer_value(json_object_get(r->args, "DeadlineSeconds"));
	const char *action = json_string_value(json_object_get(r->args, "DeadlineAction"));
	bool cancel = action && strcmp(action, "Cancel") == 0;
	bool force = json_is_true(json_object_get(r->args, "Force"));
	json_int_t unreachable_s =
	    json_integer_value(json_object_get(r->args, "UnreachableSeconds"));
	if (unreachable_s <= 0)
		unreachable_s = DEFAULT_UNREACHABLE;
	oh_octo_node_t node;
	oh_octo_nodes_t all;
	if (!oh_mc_find_remote(r, &s, s.node, &node, &all, out))
		goto done;
	if (!force && !node.maintenance && node.max_tasks > 0 &&
	    oh_mc_last_taking_work(&all, node.id)) {
		oh_octo_nodes_free(&all);
		out->end = OH_END_FAILED;
		snprintf(
		    out->error, sizeof out->error,
		    "LastNodeTakingWork: %s is the last node of %s that takes work; draining it "
		    "would stop the cluster. Send Force to drain it anyway.",
		    s.node->name, s.m->name);
		goto done;
	}
	oh_octo_nodes_free(&all);
	oh_task_log(r, "Draining %s (%s) of %s%s", s.node->name, node.id, s.m->name,
	            deadline_s > 0 ? "" : " (no deadline)");
	/* The tasks running before the drain are the ones its deadline acts
	 * on: what starts on the node afterwards is the cluster's own
	 * bookkeeping (a node in maintenance takes no new work). */
	char before[MAX_CANCEL][64];
	size_t n_before = 0;
	long http0 = 0;
	if (deadline_s > 0) {
		oh_octo_status_t st0 = oh_octo_running_tasks(&s.o, node.id, node.name, before,
		                                             MAX_CANCEL, &n_before, &http0);
		if (st0 != OH_OCTO_OK) {
			oh_mc_fail(out, st0, http0, "Reading the node's running tasks");
			goto done;
		}
	}
	if (!node.maintenance && !put_maintenance(&s, node.id, force, out))
		goto done;
	int64_t t0 = oh_mono_ms(), unreachable_since = 0;
	bool deadline_handled = false;
	long last_running = -2, last_ping = -1;
	for (;;) {
		oh_octo_nodes_t l;
		long http = 0;
		oh_octo_status_t st = oh_octo_list_nodes(&s.o, &l, &http);
		if (st == OH_OCTO_AUTH || st == OH_OCTO_BAD_ANSWER || st == OH_OCTO_REFUSED) {
			oh_mc_fail(out, st, http, "Reading the cluster's summary");
			goto done;
		}
		long running = -1;
		bool still = true;
		if (st == OH_OCTO_OK) {
			const oh_octo_node_t *n = oh_mc_match(&l, s.node);
			running = n ? n->running : -1;
			still = !n || n->maintenance;
			oh_octo_nodes_free(&l);
		}
		if (!still) {
			out->end = OH_END_CANCELED;
			snprintf(out->error, sizeof out->error,
			         "The node was taken out of maintenance mode before it drained.");
			goto done;
		}
		char why[120];
		long ping = oh_octo_ping(&s.o, s.node->url, 2000, why, sizeof why);
		if (running != last_running || ping != last_ping) {
			oh_task_log(r, "%s: %ld task(s) running, its ping answers %s%ld%s%s",
			            s.node->name, running, ping ? "" : "nothing ", ping,
			            ping ? "" : ": ", why);
			oh_task_progress(r, running == 0 ? 90 : 50, "%ld task(s) running, ping %ld",
			                 running, ping);
			last_running = running;
			last_ping = ping;
		}
		int64_t now = oh_mono_ms();
		if (ping == 0) {
			if (!unreachable_since)
				unreachable_since = now;
			if (now - unreachable_since >= unreachable_s * 1000) {
				out->end = OH_END_FAILED;
				snprintf(out->error, sizeof out->error,
				         "%s stopped answering its ping (%s) for %lld s during the "
				         "drain; "
				         "it stays in maintenance mode.",
				         s.node->name, why, (long long)unreachable_s);
				goto done;
			}
		} else {
			unreachable_since = 0;
		}
		if (running == 0 && ping == 418) {
			out->end = OH_END_SUCCESS;
			out->result = oh_json_check(json_object());
			oh_json_set_new(out->result, "ClusterId", json_string(s.m->id));
			oh_json_set_new(out->result, "Node", json_string(s.node->name));
			oh_json_set_new(out->result, "OctopusNodeId", json_string(node.id));
			oh_json_set_new(out->result, "Drained", json_true());
			oh_json_set_new(out->result, "TasksLeftRunning", json_array());
			oh_task_log(r, "%s is drained: no task runs there and its ping answers 418",
			            s.node->name);
			goto done;
		}
		if (deadline_s > 0 && !deadline_handled && running > 0 &&
		    now - t0 >= deadline_s * 1000) {
			char now_ids[MAX_CANCEL][64], ids[MAX_CANCEL][64];
			size_t n_now = 0, n = 0;
			st = oh_octo_running_tasks(&s.o, node.id, node.name, now_ids, MAX_CANCEL,
			                           &n_now, &http);
			for (size_t i = 0; i < n_now; i++)
				for (size_t k = 0; k < n_before; k++)
					if (strcmp(now_ids[i], before[k]) == 0)
						snprintf(ids[n++], sizeof ids[0], "%s", now_ids[i]);
			if (st == OH_OCTO_OK && !cancel) {
				/* Octopus cannot move a running task to another node:
				 * "Requeue" leaves them running and the drain ends. */
				oh_task_log(
				    r,
				    "Deadline of %lld s reached: leaving %zu task(s) running on %s "
				    "(Octopus cannot requeue a running task)",
				    (long long)deadline_s, n, s.node->name);
				json_t *left = oh_json_check(json_array());
				for (size_t i = 0; i < n; i++)
					oh_json_check_rc(
					    json_array_append_new(left, json_string(ids[i])));
				out->end = OH_END_SUCCESS;
				out->result = oh_json_check(json_object());
				oh_json_set_new(out->result, "ClusterId", json_string(s.m->id));
				oh_json_set_new(out->result, "Node", json_string(s.node->name));
				oh_json_set_new(out->result, "OctopusNodeId", json_string(node.id));
				oh_json_set_new(out->result, "Drained", json_false());
				oh_json_set_new(out->result, "TasksLeftRunning", left);
				goto done;
			}
			if (st == OH_OCTO_OK) {
				oh_task_log(
				    r, "Deadline of %lld s reached: cancelling %zu task(s) on %s",
				    (long long)deadline_s, n, s.node->name);
				for (size_t i = 0; i < n; i++)
					oh_octo_cancel_task(&s.o, ids[i], &http);
				deadline_handled = true;
			}
		}
		if (!oh_task_sleep(r, POLL_MS)) {
			out->end = atomic_load(r->lost) || (r->shutdown && atomic_load(r->shutdown))
			               ? OH_END_RETRY
			               : OH_END_CANCELED;
			snprintf(out->error, sizeof out->error, "The drain task was stopped.");
			goto done;
		}
	}
done:
	oh_mc_session_close(&s);
}

const oh_task_kind_t oh_task_kind_managed_drain = {"ManagedDrain", true, run, false};
