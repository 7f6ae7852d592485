/* `octoha-server node`: Octopus.Server.exe's node command, for operators on
 * the node itself: --drain=true|false, --taskCap=N, --wait=SECONDS and
 * --cancel-tasks.  It works on the shared database directly (the node need
 * not be serving) and goes through the same drain logic as the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/drain.h"
#include "../lib/events.h"
#include "../lib/oh_log.h"
#include "node.h"

int svc_wait_task(db_pool_t *pool, const char *id, long seconds, const char *left, oh_task_t *out)
{
	time_t end = time(NULL) + seconds;
	oh_task_t t;
	char last[500] = "";
	for (;;) {
		if (oh_tasks_get(pool, id, &t) != DB_OK) {
			fprintf(stderr, "cannot read task %s\n", id);
			return SVC_EXIT_FAILURE;
		}
		if (t.progress_message[0] && strcmp(last, t.progress_message) != 0) {
			printf("%s\n", t.progress_message);
			snprintf(last, sizeof last, "%s", t.progress_message);
		}
		bool done = oh_task_state_completed(t.state);
		oh_task_state_t st = t.state;
		if (done) {
			printf("%s %s\n", id, oh_task_state_name(st));
			if (out)
				*out = t;
			else
				oh_task_clear(&t);
			return st == OH_TS_SUCCESS ? SVC_EXIT_OK : SVC_EXIT_FAILURE;
		}
		oh_task_clear(&t);
		if (time(NULL) >= end) {
			printf("%s still %s after %ld s; %s\n", id, oh_task_state_name(st), seconds,
			       left);
			return SVC_EXIT_FAILURE;
		}
		struct timespec ts = {0, 200 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

int svc_node_command(const svc_config_t *cfg, const svc_node_args_t *a)
{
	db_pool_t *pool = svc_command_pool(cfg);
	if (!pool)
		return SVC_EXIT_FAILURE;
	char id[128];
	oh_node_id_for(cfg->node_name, id, sizeof id);
	char who[300];
	snprintf(who, sizeof who, "octoha-server node on %s", cfg->node_name);
	oh_drain_request_t r = {.node_id = id,
	                        .drain = a->drain,
	                        .task_cap = (int)a->task_cap,
	                        .reason = a->drain == 1 ? "Drained with octoha-server node" : NULL,
	                        .requested_by = who,
	                        /* As Octopus.Server.exe: the operator on the node decides. */
	                        .force = true,
	                        .offline_timeout_ms = cfg->offline_timeout_ms};
	if (a->drain == 1 && a->cancel_tasks) {
		r.deadline_seconds = (int)a->wait_seconds;
		r.cancel_at_deadline = true;
	}
	oh_actor_t actor = {0};
	snprintf(actor.key_name, sizeof actor.key_name, "%.200s", who);
	oh_event_spec_t ev = {.actor = &actor, .operation = "node (shell)", .result = "Success"};
	r.audit = &ev;
	oh_drain_outcome_t outcome;
	oh_task_t task;
	db_status_t s = oh_drain_request(pool, &r, &outcome, &task);
	int rc = SVC_EXIT_OK;
	if (s != DB_OK) {
		fprintf(stderr, "node: the database is unavailable (%s)\n", db_status_name(s));
		rc = SVC_EXIT_FAILURE;
	} else if (outcome == OH_DRAIN_NOT_FOUND) {
		fprintf(stderr, "node: no node named %s is registered in this database\n",
		        cfg->node_name);
		rc = SVC_EXIT_FAILURE;
	} else if (outcome == OH_DRAIN_UNCHANGED) {
		printf("%s: nothing to change\n", id);
	} else {
		printf("%s: %s %s (%s)\n", id, task.name, task.id,
		       outcome == OH_DRAIN_ALREADY ? "already under way" : "queued");
		if (a->drain == 1 && a->wait_seconds > 0)
			rc = svc_wait_task(pool, task.id,
			                   a->wait_seconds + (a->cancel_tasks ? 30 : 0),
			                   "the node stays in drain mode", NULL);
	}
	oh_task_clear(&task);
	db_pool_free(pool);
	return rc;
}
