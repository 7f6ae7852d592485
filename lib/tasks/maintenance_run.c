/* MaintenanceRun: drives a rolling maintenance run (lib/maintenance.h) of
 * the local cluster or of a managed one, one node at a time:
 *
 *   Pending -> (WaitingForCapacity) -> Draining (-> drained, BalancerDelaySeconds)
 *           -> ReadyForMaintenance
 *           -> Undraining -> Settling -> Done      (or Skipped)
 *
 * Each state is saved before the action it leads to is taken, and every
 * save is fenced by this driver's attempt, so a driver taken over (its
 * node died, its lease went to another node) stops at its next save and
 * the new one resumes at the state reached.  A node is drained only while
 * MinOnlineNodes other nodes answer their ping with 200, and the next node
 * starts only after this one answered 200 for the whole settle period: two
 * nodes are never out of service together. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../drain.h"
#include "../events.h"
#include "../http_client.h"
#include "../maintenance.h"
#include "../node_state.h"
#include "../nodes.h"
#include "../oh_json.h"
#include "managed_common.h"

#define POLL_MS        200
#define PING_MS        2000
#define CAPACITY_EVERY 1000 /* ms between two capacity checks while waiting */

typedef struct {
	oh_task_run_t *r;
	bool managed;
	oh_mc_session_t s;
	oh_maint_view_t v;
	oh_mrun_t run;        /* the driver's copy: its attempt, state, step */
	int64_t streak_since; /* Settling: monotonic ms of the first 200 of this streak */
	int64_t last_capacity;
	char last_logged[64];
	bool lost; /* the run is another driver's now */
} drv_t;

/* What a node looks like now. */
typedef struct {
	bool exists;
	bool offline, maintenance; /* local only */
	int64_t started_at;        /* local only */
	long ping;                 /* its own ping, 0 when it did not answer */
} probe_t;

static long ping_url(drv_t *d, const char *base)
{
	char url[600];
	snprintf(url, sizeof url, "%s/api/octopusservernodes/ping", base);
	oh_http_result_t res;
	/* The local cluster's own nodes at the URLs they registered: not under
	 * the outbound policy, as the cluster probe. */
	(void)d;
	return oh_http_get(url, PING_MS, NULL, &res) ? res.status : 0;
}

static void probe(drv_t *d, const char *key, probe_t *p)
{
	memset(p, 0, sizeof *p);
	if (d->managed) {
		const oh_mc_node_t *n = oh_mc_node_find(d->s.m, key);
		if (!n)
			return;
		p->exists = true;
		p->ping = oh_octo_ping(&d->s.o, n->url, PING_MS, NULL, 0);
		return;
	}
	oh_node_t n;
	if (oh_nodes_get(d->r->pool, key, d->r->offline_timeout_ms, &n) != DB_OK)
		return;
	p->exists = true;
	p->offline = n.offline;
	p->maintenance = n.maintenance;
	p->started_at = n.started_at;
	p->ping = n.public_url[0] ? ping_url(d, n.public_url) : 0;
}

/* How many nodes other than KEY serve (their own ping answers 200). */
static int serving_others(drv_t *d, const char *key)
{
	int n = 0;
	if (d->managed) {
		for (size_t i = 0; i < d->s.m->n_nodes; i++) {
			const oh_mc_node_t *m = &d->s.m->nodes[i];
			if (strcasecmp(m->name, key) != 0 &&
			    oh_octo_ping(&d->s.o, m->url, PING_MS, NULL, 0) == 200)
				n++;
		}
		return n;
	}
	oh_node_list_t l;
	if (oh_nodes_list(d->r->pool, d->r->offline_timeout_ms, &l) != DB_OK)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		const oh_node_t *m = &l.v[i];
		if (strcmp(m->id, key) != 0 && !m->offline && !m->maintenance && m->max_tasks > 0 &&
		    ping_url(d, m->public_url) == 200)
			n++;
	}
	oh_node_list_free(&l);
	return n;
}

/* Saves the run and STEP with EV and CHAT.  False when the run is not this
 * driver's any more, or the database refused (then the loop tries again). */
static bool save(drv_t *d, const oh_mstep_t *step, const oh_event_spec_t *ev, const char *chat)
{
	bool lost = false;
	db_status_t s = oh_maint_save(d->r->pool, &d->run, step, ev, chat, &lost);
	if (lost) {
		d->lost = true;
		oh_task_log(d->r, "The run was taken over by a newer driver; this one stops");
		return false;
	}
	if (s != DB_OK) {
		oh_task_log(d->r, "Cannot save the run's progress (%s); trying again",
		            db_status_name(s));
		return false;
	}
	return true;
}

/* Queues (or finds) the drain or undrain of STEP's node.  Writes the task
 * Id into TASK_ID ("" when none was needed).  Returns 1 done, 0 to wait
 * (the last node check refused it: capacity), -1 the node is gone. */
static int issue(drv_t *d, const oh_mstep_t *step, bool drain, char *task_id, size_t size)
{
	task_id[0] = '\0';
	char who[200], reason[500];
	snprintf(who, sizeof who, "maintenance run %s", d->run.id);
	snprintf(reason, sizeof reason, "Rolling maintenance %s%s%s", d->run.id,
	         d->run.reason[0] ? ": " : "", d->run.reason);
	if (!d->managed) {
		oh_drain_request_t rq = {.node_id = step->node_key,
		                         .drain = drain ? 1 : 0,
		                         .task_cap = -1,
		                         .reason = reason,
		                         .requested_by = who,
		                         .deadline_seconds = d->run.deadline_s,
		                         .cancel_at_deadline =
		                             strcmp(d->run.deadline_action, "Cancel") == 0,
		                         .offline_timeout_ms = d->r->offline_timeout_ms};
		oh_drain_outcome_t oc;
		oh_task_t t;
		db_status_t s = oh_drain_request(d->r->pool, &rq, &oc, &t);
		if (s != DB_OK) {
			oh_task_clear(&t);
			return 0;
		}
		if (oc == OH_DRAIN_QUEUED || oc == OH_DRAIN_ALREADY)
			snprintf(task_id, size, "%s", t.id);
		oh_task_clear(&t);
		if (oc == OH_DRAIN_LAST_NODE)
			return 0;
		return oc == OH_DRAIN_NOT_FOUND ? -1 : 1;
	}
	char key[200], id[64];
	snprintf(key, sizeof key, "maintenance:%s:%d:%s", d->run.id, step->position,
	         drain ? "drain" : "undrain");
	oh_task_id_for_key(key, id, sizeof id);
	json_t *args = oh_json_check(json_object());
	oh_json_set_new(args, "ClusterId", json_string(d->s.m->id));
	oh_json_set_new(args, "Node", json_string(step->node_key));
	if (drain) {
		oh_json_set_new(args, "Reason", json_string(reason));
		oh_json_set_new(args, "DeadlineSeconds", json_integer(d->run.deadline_s));
		oh_json_set_new(args, "DeadlineAction", json_string(d->run.deadline_action));
	}
	char desc[300];
	snprintf(desc, sizeof desc, "%s node %.64s of %.150s", drain ? "Drain" : "Undrain",
	         step->node_name, d->s.m->name);
	oh_task_spec_t spec = {.name = drain ? "ManagedDrain" : "ManagedUndrain",
	                       .description = desc,
	                       .arguments = args,
	                       .is_system = true,
	                       .max_attempts = 5,
	                       .id = id,
	                       .requested_by = who};
	oh_task_t t;
	bool existed = false;
	db_status_t s = oh_tasks_create(d->r->pool, &spec, &t, &existed);
	json_decref(args);
	if (s == DB_OK)
		snprintf(task_id, size, "%s", t.id);
	oh_task_clear(&t);
	return s == DB_OK ? 1 : 0;
}

/* The state of task ID: Success, Failed, … into T (cleared by the caller).
 * False when it cannot be read. */
static bool task_state(drv_t *d, const char *id, oh_task_t *t)
{
	return oh_tasks_get(d->r->pool, id, t) == DB_OK;
}

static void progress(drv_t *d, const oh_mstep_t *step)
{
	char now[64];
	snprintf(now, sizeof now, "%d:%s", step->position, step->state);
	if (strcmp(now, d->last_logged) == 0)
		return;
	snprintf(d->last_logged, sizeof d->last_logged, "%s", now);
	size_t done = 0;
	for (size_t i = 0; i < d->v.n; i++)
		done += strcmp(d->v.steps[i].state, "Done") == 0 ||
		        strcmp(d->v.steps[i].state, "Skipped") == 0;
	oh_task_log(d->r, "Node %d of %zu, %s: %s", step->position + 1, d->v.n, step->node_name,
	            step->state);
	oh_task_progress(d->r, (int)(done * 100 / (d->v.n ? d->v.n : 1)), "node %d of %zu (%s): %s",
	                 step->position + 1, d->v.n, step->node_name, step->state);
}

/* Ends the run in STATE with MESSAGE, announced as CATEGORY. */
static bool finish(drv_t *d, const char *state, const char *category, const char *message)
{
	snprintf(d->run.state, sizeof d->run.state, "%s", state);
	snprintf(d->run.message, sizeof d->run.message, "%s", message);
	d->run.ended_at = oh_maint_now(d->r->pool);
	oh_event_spec_t ev = {.category = category,
	                      .operation = OH_MAINT_KIND,
	                      .resource_id = d->run.id,
	                      .result = strcmp(state, "Completed") == 0 ? "Success" : "Failed",
	                      .message = message};
	char chat[1200];
	snprintf(chat, sizeof chat, "Maintenance run %s: %s", d->run.id, message);
	oh_task_log(d->r, "%s", message);
	return save(d, NULL, &ev, chat);
}

typedef enum { STEP_WAIT = 0, STEP_NEXT, STEP_END } step_rc_t;

static step_rc_t fail_run(drv_t *d, oh_task_outcome_t *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static step_rc_t fail_run(drv_t *d, oh_task_outcome_t *out, const char *fmt, ...)
{
	char msg[800];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!finish(d, "Failed", "MaintenanceRunFailed", msg))
		return STEP_WAIT;
	out->end = OH_END_FAILED;
	snprintf(out->error, sizeof out->error, "%.500s", msg);
	return STEP_END;
}

/* One look at the current step; moves it on when it can. */
static step_rc_t drive(drv_t *d, oh_mstep_t *st, oh_task_outcome_t *out)
{
	bool paused = strcmp(d->v.run.state, "Paused") == 0;
	probe_t p;
	progress(d, st);
	if (strcmp(st->state, "Pending") == 0 || strcmp(st->state, "WaitingForCapacity") == 0) {
		if (paused)
			return STEP_WAIT;
		probe(d, st->node_key, &p);
		if (!p.exists || (!d->managed && p.offline) || (d->managed && p.ping == 0)) {
			snprintf(st->state, sizeof st->state, "Skipped");
			snprintf(st->message, sizeof st->message,
			         "%s was %s at its turn: nothing to drain.", st->node_name,
			         !p.exists ? "gone" : "offline");
			st->done_at = oh_maint_now(d->r->pool);
			oh_task_log(d->r, "%s", st->message);
			return save(d, st, NULL, NULL) ? STEP_NEXT : STEP_WAIT;
		}
		int64_t now = oh_mono_ms();
		if (now - d->last_capacity < CAPACITY_EVERY &&
		    strcmp(st->state, "WaitingForCapacity") == 0)
			return STEP_WAIT;
		d->last_capacity = now;
		int others = serving_others(d, st->node_key);
		if (others < d->run.min_online) {
			if (strcmp(st->state, "WaitingForCapacity") != 0) {
				snprintf(st->state, sizeof st->state, "WaitingForCapacity");
				snprintf(
				    st->message, sizeof st->message,
				    "%d other node(s) serve; MinOnlineNodes is %d: waiting before "
				    "draining %s.",
				    others, d->run.min_online, st->node_name);
				oh_task_log(d->r, "%s", st->message);
				save(d, st, NULL, NULL);
			}
			return STEP_WAIT;
		}
		snprintf(st->state, sizeof st->state, "Draining");
		st->message[0] = '\0';
		st->drain_requested_at = oh_maint_now(d->r->pool);
		if (!save(d, st, NULL, NULL))
			return STEP_WAIT;
		oh_task_log(d->r, "Draining %s (%d other node(s) serve)", st->node_name, others);
	}
	if (strcmp(st->state, "Draining") == 0) {
		if (!st->drain_task[0]) {
			int rc = issue(d, st, true, st->drain_task, sizeof st->drain_task);
			if (rc < 0)
				return fail_run(d, out, "%s no longer exists.", st->node_name);
			if (rc == 0)
				return STEP_WAIT;
			if (st->drain_task[0] && !save(d, st, NULL, NULL))
				return STEP_WAIT;
		}
		if (st->drain_task[0]) {
			oh_task_t t;
			if (!task_state(d, st->drain_task, &t))
				return STEP_WAIT;
			oh_task_state_t ts = t.state;
			char err[400];
			snprintf(err, sizeof err, "%.399s", t.error_message);
			oh_task_clear(&t);
			if (!oh_task_state_completed(ts))
				return STEP_WAIT;
			if (ts != OH_TS_SUCCESS)
				return fail_run(d, out, "The drain of %s ended %s: %s",
				                st->node_name, oh_task_state_name(ts),
				                err[0] ? err : "no reason given");
		}
		probe(d, st->node_key, &p);
		if (p.ping == 200)
			return STEP_WAIT; /* its ping has not turned yet */
		int64_t now = oh_maint_now(d->r->pool);
		if (!now)
			return STEP_WAIT;
		if (!st->drained_at) {
			/* Saved, so that a driver taking over waits only the rest. */
			st->drained_at = now;
			if (d->run.balancer_delay_s > 0) {
				oh_task_log(
				    d->r,
				    "%s is drained; waiting %d s for the load balancer to stop "
				    "routing to it",
				    st->node_name, d->run.balancer_delay_s);
				save(d, st, NULL, NULL);
				return STEP_WAIT;
			}
		}
		if (now - st->drained_at < (int64_t)d->run.balancer_delay_s * 1000)
			return STEP_WAIT;
		st->ready_at = now;
		st->baseline_started_at = p.started_at;
		st->ping_lost = p.ping != 418;
		snprintf(st->state, sizeof st->state, "ReadyForMaintenance");
		char msg[600], chat[900];
		snprintf(
		    msg, sizeof msg,
		    "%s is drained and ready for maintenance (run %s, node %d of %zu); restart "
		    "it, or POST /api/maintenance-runs/%s/continue.",
		    st->node_name, d->run.id, st->position + 1, d->v.n, d->run.id);
		snprintf(
		    chat, sizeof chat,
		    "%s is drained and ready for maintenance (node %d of %zu). Patch and restart "
		    "it, or say: maintenance continue %s",
		    st->node_name, st->position + 1, d->v.n, d->run.id);
		json_t *details = oh_json_check(json_object());
		oh_json_set_new(details, "MaintenanceRunId", json_string(d->run.id));
		oh_json_set_new(details, "ClusterId", json_string(d->run.cluster_id));
		oh_json_set_new(details, "Node", json_string(st->node_key));
		oh_json_set_new(details, "NodeName", json_string(st->node_name));
		oh_json_set_new(details, "Position", json_integer(st->position));
		oh_event_spec_t ev = {.category = "NodeReadyForMaintenance",
		                      .operation = OH_MAINT_KIND,
		                      .resource_id = st->node_key,
		                      .result = "Success",
		                      .message = msg,
		                      .details = details};
		bool ok = save(d, st, &ev, chat);
		json_decref(details);
		if (ok)
			oh_task_log(d->r, "%s", msg);
		return STEP_WAIT;
	}
	if (strcmp(st->state, "ReadyForMaintenance") == 0) {
		probe(d, st->node_key, &p);
		bool answering = p.ping == 200 || p.ping == 418;
		if (!answering && !st->ping_lost) {
			st->ping_lost = true;
			oh_task_log(d->r, "%s stopped answering its ping: it is restarting",
			            st->node_name);
			save(d, st, NULL, NULL);
			return STEP_WAIT;
		}
		bool restarted = !d->managed && st->baseline_started_at > 0 && p.exists &&
		                 p.started_at != st->baseline_started_at && answering;
		bool back = st->ping_lost && answering;
		if (!st->continue_requested && !restarted && !back)
			return STEP_WAIT;
		oh_task_log(d->r, "%s: %s", st->node_name,
		            st->continue_requested ? "an operator said continue"
		            : restarted            ? "it restarted (its StartedAt changed)"
		                                   : "its ping went away and came back");
		st->restarted_at = oh_maint_now(d->r->pool);
		snprintf(st->state, sizeof st->state, "Undraining");
		if (!save(d, st, NULL, NULL))
			return STEP_WAIT;
	}
	if (strcmp(st->state, "Undraining") == 0) {
		if (paused)
			return STEP_WAIT;
		if (!st->undrain_requested_at) {
			st->undrain_requested_at = oh_maint_now(d->r->pool);
			if (!save(d, st, NULL, NULL))
				return STEP_WAIT;
		}
		if (!st->undrain_task[0]) {
			int rc = issue(d, st, false, st->undrain_task, sizeof st->undrain_task);
			if (rc < 0)
				return fail_run(d, out, "%s no longer exists.", st->node_name);
			if (rc == 0)
				return STEP_WAIT;
			snprintf(st->state, sizeof st->state, "Settling");
			if (!save(d, st, NULL, NULL))
				return STEP_WAIT;
			oh_task_log(d->r, "Undraining %s", st->node_name);
		} else {
			snprintf(st->state, sizeof st->state, "Settling");
			if (!save(d, st, NULL, NULL))
				return STEP_WAIT;
		}
		d->streak_since = 0;
	}
	if (strcmp(st->state, "Settling") == 0) {
		if (st->undrain_task[0]) {
			oh_task_t t;
			if (!task_state(d, st->undrain_task, &t))
				return STEP_WAIT;
			oh_task_state_t ts = t.state;
			char err[400];
			snprintf(err, sizeof err, "%.399s", t.error_message);
			oh_task_clear(&t);
			if (oh_task_state_completed(ts) && ts != OH_TS_SUCCESS)
				return fail_run(d, out, "The undrain of %s ended %s: %s",
				                st->node_name, oh_task_state_name(ts),
				                err[0] ? err : "no reason given");
		}
		probe(d, st->node_key, &p);
		int64_t now = oh_mono_ms();
		if (p.ping != 200) {
			d->streak_since = 0;
			return STEP_WAIT;
		}
		if (!st->online_at) {
			st->online_at = oh_maint_now(d->r->pool);
			if (!save(d, st, NULL, NULL))
				return STEP_WAIT;
		}
		if (!d->streak_since)
			d->streak_since = now;
		if (now - d->streak_since < (int64_t)d->run.settle_s * 1000)
			return STEP_WAIT;
		snprintf(st->state, sizeof st->state, "Done");
		st->done_at = oh_maint_now(d->r->pool);
		oh_task_log(d->r, "%s answered 200 for %d s: done", st->node_name, d->run.settle_s);
		return save(d, st, NULL, NULL) ? STEP_NEXT : STEP_WAIT;
	}
	return STEP_WAIT;
}

/* The run was asked to abort: the node in maintenance is undrained when
 * the run says so, and the run ends Aborted. */
static void do_abort(drv_t *d, oh_mstep_t *st, oh_task_outcome_t *out, const char *why)
{
	char msg[600];
	bool out_of_service = st && (strcmp(st->state, "Draining") == 0 ||
	                             strcmp(st->state, "ReadyForMaintenance") == 0 ||
	                             strcmp(st->state, "Undraining") == 0);
	if (out_of_service && d->v.run.undrain_on_abort && !st->undrain_task[0]) {
		issue(d, st, false, st->undrain_task, sizeof st->undrain_task);
		st->undrain_requested_at = oh_maint_now(d->r->pool);
		snprintf(st->state, sizeof st->state, "Aborted");
		snprintf(msg, sizeof msg, "Aborted (%s); %s was undrained.", why, st->node_name);
	} else if (out_of_service) {
		snprintf(st->state, sizeof st->state, "Aborted");
		snprintf(msg, sizeof msg, "Aborted (%s); %s is left drained.", why, st->node_name);
	} else {
		snprintf(msg, sizeof msg, "Aborted (%s).", why);
	}
	if (st && out_of_service && !save(d, st, NULL, NULL))
		return;
	if (!finish(d, "Aborted", "MaintenanceRunAborted", msg))
		return;
	out->end = OH_END_CANCELED;
	snprintf(out->error, sizeof out->error, "%.500s", msg);
}

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	drv_t d;
	memset(&d, 0, sizeof d);
	d.r = r;
	const char *id = json_string_value(json_object_get(r->args, "MaintenanceRunId"));
	if (!id) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "The task names no maintenance run.");
		return;
	}
	bool mine = false;
	db_status_t s = oh_maint_take(r->pool, id, r->task->attempt, &mine);
	if (s == DB_OK && mine)
		s = oh_maint_get(r->pool, id, &d.v);
	if (s != DB_OK || !mine) {
		out->end = s == DB_NO_ROWS || (s == DB_OK && !mine) ? OH_END_FAILED : OH_END_RETRY;
		snprintf(out->error, sizeof out->error,
		         s == DB_OK ? "A newer driver holds maintenance run %s."
		                    : "Maintenance run %s cannot be read.",
		         id);
		oh_maint_view_free(&d.v);
		return;
	}
	d.run = d.v.run;
	d.run.driver_attempt = r->task->attempt;
	if (strcmp(d.run.state, "Completed") == 0 || strcmp(d.run.state, "Failed") == 0 ||
	    strcmp(d.run.state, "Aborted") == 0) {
		out->end = OH_END_SUCCESS;
		oh_task_log(r, "Maintenance run %s has already ended (%s)", id, d.run.state);
		oh_maint_view_free(&d.v);
		return;
	}
	d.managed = strcmp(d.run.cluster_id, OH_MAINT_LOCAL) != 0;
	if (d.managed) {
		/* The session reads ClusterId from the task's arguments. */
		if (!oh_mc_session_open(r, NULL, &d.s, out)) {
			oh_mc_session_close(&d.s);
			oh_maint_view_free(&d.v);
			return;
		}
	}
	oh_task_log(r, "Driving maintenance run %s of %s (attempt %d), %zu node(s)", id,
	            d.managed ? d.s.m->name : "this cluster", r->task->attempt, d.v.n);
	if (!d.run.started_at)
		d.run.started_at = oh_maint_now(r->pool);
	snprintf(d.run.state, sizeof d.run.state, "Running");
	save(&d, NULL, NULL, NULL);
	for (;;) {
		if (d.lost) {
			out->end = OH_END_RETRY;
			snprintf(out->error, sizeof out->error, "Taken over by a newer driver.");
			break;
		}
		if (oh_task_should_stop(r)) {
			if (atomic_load(r->cancel) && !atomic_load(r->lost)) {
				oh_mstep_t *cur =
				    d.run.current_step >= 0 && (size_t)d.run.current_step < d.v.n
				        ? &d.v.steps[d.run.current_step]
				        : NULL;
				do_abort(&d, cur, out, "its task was cancelled");
				if (out->end != OH_END_CANCELED) {
					out->end = OH_END_CANCELED;
					snprintf(out->error, sizeof out->error,
					         "The task was cancelled.");
				}
			} else {
				out->end = OH_END_RETRY;
				snprintf(
				    out->error, sizeof out->error,
				    "This node stopped driving the run; another takes it over at "
				    "the step reached.");
			}
			break;
		}
		oh_maint_view_t fresh;
		if (oh_maint_get(r->pool, id, &fresh) != DB_OK) {
			oh_task_sleep(r, POLL_MS);
			continue;
		}
		oh_maint_view_free(&d.v);
		d.v = fresh;
		if (d.v.run.driver_attempt != d.run.driver_attempt) {
			d.lost = true;
			continue;
		}
		oh_mstep_t *st = NULL;
		for (size_t i = 0; i < d.v.n && !st; i++)
			if (strcmp(d.v.steps[i].state, "Done") != 0 &&
			    strcmp(d.v.steps[i].state, "Skipped") != 0)
				st = &d.v.steps[i];
		if (d.v.run.abort_requested) {
			do_abort(&d, st, out, "an operator asked");
			if (out->end == OH_END_CANCELED)
				break;
			oh_task_sleep(r, POLL_MS);
			continue;
		}
		if (!st) {
			char msg[300];
			snprintf(msg, sizeof msg, "Every node (%zu) was maintained in turn.",
			         d.v.n);
			d.run.current_step = (int)d.v.n;
			if (finish(&d, "Completed", "MaintenanceRunCompleted", msg)) {
				out->end = OH_END_SUCCESS;
				out->result = oh_json_check(json_object());
				oh_json_set_new(out->result, "MaintenanceRunId", json_string(id));
				oh_json_set_new(out->result, "State", json_string("Completed"));
				oh_json_set_new(out->result, "Nodes",
				                json_integer((json_int_t)d.v.n));
				break;
			}
			oh_task_sleep(r, POLL_MS);
			continue;
		}
		d.run.current_step = st->position;
		step_rc_t rc = drive(&d, st, out);
		if (rc == STEP_END)
			break;
		if (rc == STEP_NEXT)
			continue;
		oh_task_sleep(r, POLL_MS);
	}
	if (d.managed)
		oh_mc_session_close(&d.s);
	oh_maint_view_free(&d.v);
}

const oh_task_kind_t oh_task_kind_maintenance_run = {OH_MAINT_KIND, true, run, false};
