/* POST /api/chatops/command: chat commands for people who run the cluster
 * from Slack (a slash command, signed with Slack's v0 scheme, its user
 * mapped to a role by configuration) or from any client with an API key
 * ({"Text": "…"}).  Each command needs the role of the API operation it
 * stands for.  Answers are Slack JSON, or plain text for a terminal.  A
 * long action answers at once with its task; its outcome is posted to
 * response_url when it ends (a ChatReply task, queued by housekeeping). */
#include <civetweb.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/chat_replies.h"
#include "../lib/drain.h"
#include "../lib/maintenance.h"
#include "../lib/managed_clusters.h"
#include "../lib/nodes.h"
#include "../lib/oh_json.h"
#include "../lib/oh_log.h"
#include "../lib/tentacles.h"
#include "api_handlers_gen.h"
#include "auth.h"
#include "maintenance_api.h"

#define MAX_WORDS 16

static const char help_text[] =
    "octoha commands:\n"
    "  status                      the cluster in a few lines\n"
    "  nodes                       every node: state, task cap, running tasks\n"
    "  drain <node> [reason...]    stop a node taking new work (Operator)\n"
    "  undrain <node>              let a drained node take work again (Operator)\n"
    "  taskcap <node> <n>          set a node's MaxConcurrentTasks (Operator)\n"
    "  task <id>                   a task's state and progress\n"
    "  tentacles missing           polling Tentacles not polling every node\n"
    "  maintenance start [cluster] roll through every node of this cluster (or of a\n"
    "                              managed one, by name or Id) (Operator)\n"
    "  maintenance status [run]    the latest run (or that run), node by node\n"
    "  maintenance continue <run>  the node in maintenance is done (Operator)\n"
    "  maintenance pause <run>     hold the run before its next action (Operator)\n"
    "  maintenance resume <run>    go on (Operator)\n"
    "  maintenance abort <run>     stop; the node in maintenance stays drained (Operator)\n"
    "  help                        this text";

typedef struct {
	char text[4096];
	size_t len;
	char task_id[64];
	bool in_channel;
} answer_t;

static void say(answer_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(answer_t *a, const char *fmt, ...)
{
	if (a->len >= sizeof a->text - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(a->text + a->len, sizeof a->text - a->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		a->len +=
		    (size_t)n < sizeof a->text - a->len ? (size_t)n : sizeof a->text - a->len - 1;
}

/* "node2" or "OctopusServerNodes-node2" → the node Id. */
static void node_id_of(const char *word, char *out, size_t size)
{
	if (strncmp(word, OH_NODE_ID_PREFIX, strlen(OH_NODE_ID_PREFIX)) == 0)
		snprintf(out, size, "%s", word);
	else
		oh_node_id_for(word, out, size);
}

static const char *node_state(const oh_node_t *n)
{
	return n->offline ? "Offline" : n->maintenance ? "Draining" : "Online";
}

static void cmd_status(const api_req_t *req, answer_t *a, bool list)
{
	oh_node_list_t l;
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &l);
	if (s != DB_OK) {
		say(a, "The database is unavailable right now (%s).", db_status_name(s));
		return;
	}
	int online = 0, draining = 0, offline = 0, capacity = 0;
	for (size_t i = 0; i < l.n; i++) {
		const oh_node_t *n = &l.v[i];
		if (n->offline)
			offline++;
		else if (n->maintenance)
			draining++;
		else {
			online++;
			capacity += n->max_tasks;
		}
	}
	oh_task_filter_t f = {.states = 1u << OH_TS_QUEUED, .take = 1};
	oh_task_list_t q = {0}, r = {0};
	oh_tasks_list(req->cfg->pool, &f, &q);
	f.states = (1u << OH_TS_EXECUTING) | (1u << OH_TS_CANCELLING);
	oh_tasks_list(req->cfg->pool, &f, &r);
	if (!list) {
		say(a, "Cluster: %zu node(s): %d online, %d draining, %d offline.\n", l.n, online,
		    draining, offline);
		say(a, "Capacity: %d concurrent tasks on the nodes taking work.\n", capacity);
		say(a, "Tasks: %lld running, %lld queued.", (long long)r.total, (long long)q.total);
		if (online == 0)
			say(a, "\nWarning: no node is taking work.");
	} else {
		say(a, "%zu node(s):", l.n);
		for (size_t i = 0; i < l.n; i++) {
			const oh_node_t *n = &l.v[i];
			char seen[40];
			oh_format_time(n->last_seen, seen, sizeof seen);
			say(a, "\n%s  %s  cap %d  last seen %s", n->name, node_state(n),
			    n->max_tasks, seen);
		}
	}
	oh_task_list_free(&q);
	oh_task_list_free(&r);
	oh_node_list_free(&l);
}

static void cmd_task(const api_req_t *req, answer_t *a, const char *id)
{
	oh_task_t t;
	db_status_t s = oh_tasks_get(req->cfg->pool, id, &t);
	if (s == DB_NO_ROWS)
		say(a, "There is no task %s.", id);
	else if (s != DB_OK)
		say(a, "The database is unavailable right now (%s).", db_status_name(s));
	else {
		say(a, "%s %s: %s", t.id, t.description, oh_task_state_name(t.state));
		if (t.server_node[0])
			say(a, " on %s", t.server_node);
		say(a, " (attempt %d, %d%%)", t.attempt, t.progress);
		if (t.progress_message[0])
			say(a, " - %s", t.progress_message);
		if (t.error_message[0])
			say(a, "\nError: %s", t.error_message);
	}
	oh_task_clear(&t);
}

/* drain, undrain, taskcap: through the same path as the API. */
static void cmd_node_change(const api_req_t *req, answer_t *a, const char *verb, const char *node,
                            const oh_drain_request_t *r, const char *response_url)
{
	char id[128];
	node_id_of(node, id, sizeof id);
	json_t *details = oh_json_check(json_object());
	oh_json_set_new(details, "Command", json_string(verb));
	oh_json_set_new(details, "Node", json_string(id));
	oh_drain_outcome_t outcome;
	oh_task_t task;
	db_status_t s = api_node_change(req, id, r, details, &outcome, &task);
	json_decref(details);
	if (s != DB_OK) {
		say(a, "The database is unavailable right now (%s).", db_status_name(s));
		return;
	}
	switch (outcome) {
	case OH_DRAIN_NOT_FOUND: say(a, "There is no node %s.", node); break;
	case OH_DRAIN_LAST_NODE:
		say(a,
		    "%s is the last node taking work; draining it would stop the cluster. "
		    "Use the API with Force to drain it anyway.",
		    node);
		break;
	case OH_DRAIN_UNCHANGED: say(a, "Nothing to change on %s.", node); break;
	case OH_DRAIN_QUEUED:
	case OH_DRAIN_ALREADY:
		a->in_channel = true;
		snprintf(a->task_id, sizeof a->task_id, "%s", task.id);
		say(a, "%s of %s: task %s %s.", verb, node, task.id,
		    outcome == OH_DRAIN_ALREADY ? "already under way" : "queued");
		if (response_url && *response_url) {
			if (oh_chat_reply_register(req->cfg->pool, task.id, response_url) == DB_OK)
				say(a, " Its outcome will be posted here.");
		}
		if (req->cfg->on_task_queued)
			req->cfg->on_task_queued(req->cfg->notify_ctx);
		break;
	}
	oh_task_clear(&task);
}

/* Tentacles `tentacles missing` names (the rest: the count and a link). */
#define CHAT_FIRST_MISSING 20

/* `tentacles missing`: the polling Tentacles that have not polled every
 * online node within the window, with the nodes they missed. */
static void tentacles_missing(const api_req_t *req, answer_t *a)
{
	oh_coverage_t cov = {0};
	db_status_t s = oh_coverage_load(req->cfg->pool, CHAT_FIRST_MISSING, &cov);
	if (s != DB_OK) {
		say(a, "The database is unavailable (%s); try again.", db_status_name(s));
		return;
	}
	int window = cov.polling_settings.poll_window_s;
	for (size_t i = 0; i < cov.n; i++) {
		say(a, "%s (%s) has not polled:", cov.v[i].name, cov.v[i].id);
		for (size_t k = 0; k < cov.v[i].n_missing; k++)
			say(a, " %s", cov.v[i].missing[k]);
		say(a, "\n");
	}
	if (cov.missing == 0)
		say(a, "All %lld polling Tentacle(s) polled every online node within %d s.",
		    (long long)cov.polling, window);
	else
		say(a, "%lld of %lld polling Tentacle(s) miss a node (window %d s)%s.",
		    (long long)cov.missing, (long long)cov.polling, window,
		    cov.missing > (int64_t)cov.n ? "; the first are listed, all in "
		                                   "/api/tentacles?notPollingEveryNode=true"
		                                 : "");
	oh_coverage_free(&cov);
}

/* `maintenance status [run]`: the run (the latest when none is named)
 * node by node. */
static void maintenance_status(const api_req_t *req, answer_t *a, const char *id)
{
	char latest[51] = "";
	if (!id) {
		oh_maint_list_t l;
		db_status_t s = oh_maint_list(req->cfg->pool, NULL, 0, 1, &l);
		if (s == DB_OK && l.n > 0)
			snprintf(latest, sizeof latest, "%s", l.v[0].run.id);
		oh_maint_list_free(&l);
		if (s != DB_OK) {
			say(a, "The database is unavailable right now (%s).", db_status_name(s));
			return;
		}
		if (!latest[0]) {
			say(a, "No maintenance run yet.");
			return;
		}
		id = latest;
	}
	oh_maint_view_t v;
	db_status_t s = oh_maint_get(req->cfg->pool, id, &v);
	if (s == DB_NO_ROWS)
		say(a, "There is no maintenance run %s.", id);
	else if (s != DB_OK)
		say(a, "The database is unavailable right now (%s).", db_status_name(s));
	else {
		say(a, "Maintenance run %s of %s: %s%s%s", v.run.id, v.run.cluster_id, v.run.state,
		    v.run.message[0] ? " - " : "", v.run.message);
		for (size_t i = 0; i < v.n; i++)
			say(a, "\n%zu. %s  %s", i + 1, v.steps[i].node_name, v.steps[i].state);
	}
	oh_maint_view_free(&v);
}

/* `maintenance start [cluster]`: the local cluster, or a managed one by
 * its Id or name. */
static void maintenance_start(const api_req_t *req, answer_t *a, const char *cluster,
                              const char *response_url)
{
	char id[51] = OH_MAINT_LOCAL;
	if (cluster && strcasecmp(cluster, OH_MAINT_LOCAL) != 0) {
		if (strncmp(cluster, OH_MC_ID_PREFIX, strlen(OH_MC_ID_PREFIX)) == 0) {
			snprintf(id, sizeof id, "%s", cluster);
		} else {
			/* By name, case-insensitively: page by page through the
			 * list, as few clusters as there are. */
			oh_mc_list_t l = {0};
			char after[51] = "";
			db_status_t s = DB_OK;
			id[0] = '\0';
			do {
				s = oh_mc_list(req->cfg->pool, after[0] ? after : NULL, 0, 50, &l);
				for (size_t i = 0; s == DB_OK && i < l.n; i++)
					if (!id[0] && strcasecmp(l.v[i].name, cluster) == 0)
						snprintf(id, sizeof id, "%s", l.v[i].id);
				if (s == DB_OK && l.n == 50)
					snprintf(after, sizeof after, "%s", l.v[l.n - 1].id);
				else
					after[0] = '\0';
				oh_mc_list_free(&l);
			} while (s == DB_OK && !id[0] && after[0]);
			if (s != DB_OK) {
				say(a, "The database is unavailable right now (%s).",
				    db_status_name(s));
				return;
			}
			if (!id[0]) {
				say(a, "There is no managed cluster %s.", cluster);
				return;
			}
		}
	}
	json_t *body = oh_json_check(json_object());
	oh_json_set_new(body, "ClusterId", json_string(id));
	oh_json_set_new(body, "Reason", json_string("Started from chat"));
	char who[200], detail[400];
	api_requester(req, who, sizeof who);
	oh_mrun_t run;
	oh_task_t task;
	db_status_t db = DB_OK;
	api_maint_start_t rc =
	    api_maintenance_start(req, body, who, &run, &task, &db, detail, sizeof detail);
	json_decref(body);
	switch (rc) {
	case API_MAINT_STARTED:
		a->in_channel = true;
		snprintf(a->task_id, sizeof a->task_id, "%s", task.id);
		say(a, "Maintenance run %s started (task %s): one node at a time.", run.id,
		    task.id);
		if (response_url && *response_url &&
		    oh_chat_reply_register(req->cfg->pool, task.id, response_url) == DB_OK)
			say(a, " Each node ready for maintenance will be announced here.");
		if (req->cfg->on_task_queued)
			req->cfg->on_task_queued(req->cfg->notify_ctx);
		break;
	case API_MAINT_NO_CLUSTER: say(a, "There is no managed cluster %s.", id); break;
	case API_MAINT_BAD_NODE:
	case API_MAINT_CAPACITY:
	case API_MAINT_BUSY: say(a, "Not started: %s", detail); break;
	case API_MAINT_IDEM_IN_FLIGHT:
	case API_MAINT_DB:
		say(a, "The database is unavailable right now (%s).", db_status_name(db));
		break;
	}
	oh_task_clear(&task);
}

/* `maintenance continue|pause|resume|abort <run>`. */
static void maintenance_control(const api_req_t *req, answer_t *a, const char *verb, const char *id)
{
	oh_mctl_t ctl = strcasecmp(verb, "continue") == 0 ? OH_MCTL_CONTINUE
	                : strcasecmp(verb, "pause") == 0  ? OH_MCTL_PAUSE
	                : strcasecmp(verb, "resume") == 0 ? OH_MCTL_RESUME
	                                                  : OH_MCTL_ABORT;
	json_t *details = oh_json_check(json_object());
	oh_json_set_new(details, "Command", json_string(verb));
	oh_json_set_new(details, "MaintenanceRunId", json_string(id));
	db_status_t s;
	oh_maint_view_t v;
	oh_mctl_outcome_t oc = api_maintenance_control(req, id, ctl, -1, details, &s, &v);
	json_decref(details);
	if (s != DB_OK)
		say(a, "The database is unavailable right now (%s).", db_status_name(s));
	else if (oc == OH_MCTL_NOT_FOUND)
		say(a, "There is no maintenance run %s.", id);
	else if (oc == OH_MCTL_WRONG_STATE)
		say(a, "Maintenance run %s is %s: it cannot %s now.", id, v.run.state, verb);
	else {
		a->in_channel = true;
		say(a, "Maintenance run %s: %s asked (it is %s).", id, verb, v.run.state);
	}
	oh_maint_view_free(&v);
}

/* Refuses a command the caller's role does not allow (recorded). */
static bool allowed(const api_req_t *req, oh_role_t have, oh_role_t need, answer_t *a)
{
	if (have >= need)
		return true;
	say(a, "You are not allowed to do that: it needs the %s role.", oh_role_name(need));
	char msg[200];
	snprintf(msg, sizeof msg, "Chat command refused: needs %s.", oh_role_name(need));
	oh_event_spec_t ev = {.actor = &req->actor,
	                      .category = "AccessDenied",
	                      .operation = req->operation_id,
	                      .result = "Refused",
	                      .status = 403,
	                      .message = msg};
	oh_event_record(req->cfg->pool, &ev);
	return false;
}

static void run_command(const api_req_t *req, oh_role_t role, const char *text,
                        const char *response_url, answer_t *a)
{
	char buf[1001];
	snprintf(buf, sizeof buf, "%s", text ? text : "");
	char *w[MAX_WORDS];
	int n = 0;
	for (char *save = NULL, *t = strtok_r(buf, " \t\r\n", &save); t && n < MAX_WORDS;
	     t = strtok_r(NULL, " \t\r\n", &save))
		w[n++] = t;
	const char *cmd = n > 0 ? w[0] : "help";
	if (strcasecmp(cmd, "status") == 0 && n == 1) {
		if (allowed(req, role, OH_ROLE_READER, a))
			cmd_status(req, a, false);
	} else if (strcasecmp(cmd, "nodes") == 0 && n == 1) {
		if (allowed(req, role, OH_ROLE_READER, a))
			cmd_status(req, a, true);
	} else if (strcasecmp(cmd, "task") == 0 && n == 2) {
		if (allowed(req, role, OH_ROLE_READER, a))
			cmd_task(req, a, w[1]);
	} else if (strcasecmp(cmd, "drain") == 0 && n >= 2) {
		if (!allowed(req, role, OH_ROLE_OPERATOR, a))
			return;
		char reason[401] = "";
		for (int i = 2; i < n; i++) {
			size_t l = strlen(reason);
			snprintf(reason + l, sizeof reason - l, "%s%s", l ? " " : "", w[i]);
		}
		oh_drain_request_t r = {
		    .drain = 1, .task_cap = -1, .reason = reason[0] ? reason : "Drained from chat"};
		cmd_node_change(req, a, "Drain", w[1], &r, response_url);
	} else if (strcasecmp(cmd, "undrain") == 0 && n == 2) {
		if (!allowed(req, role, OH_ROLE_OPERATOR, a))
			return;
		oh_drain_request_t r = {.drain = 0, .task_cap = -1};
		cmd_node_change(req, a, "Undrain", w[1], &r, response_url);
	} else if (strcasecmp(cmd, "taskcap") == 0 && n == 3) {
		char *end;
		long cap = strtol(w[2], &end, 10);
		if (*end != '\0' || cap < 0 || cap > 1000) {
			say(a, "taskcap needs a whole number from 0 to 1000.\n\n%s", help_text);
			return;
		}
		if (!allowed(req, role, OH_ROLE_OPERATOR, a))
			return;
		oh_drain_request_t r = {.drain = -1, .task_cap = (int)cap};
		cmd_node_change(req, a, "Task cap change", w[1], &r, response_url);
	} else if (strcasecmp(cmd, "maintenance") == 0 && n >= 2 &&
	           strcasecmp(w[1], "status") == 0 && n <= 3) {
		if (allowed(req, role, OH_ROLE_READER, a))
			maintenance_status(req, a, n == 3 ? w[2] : NULL);
	} else if (strcasecmp(cmd, "maintenance") == 0 && n >= 2 && n <= 3 &&
	           strcasecmp(w[1], "start") == 0) {
		if (allowed(req, role, OH_ROLE_OPERATOR, a))
			maintenance_start(req, a, n == 3 ? w[2] : NULL, response_url);
	} else if (strcasecmp(cmd, "maintenance") == 0 && n == 3 &&
	           (strcasecmp(w[1], "continue") == 0 || strcasecmp(w[1], "pause") == 0 ||
	            strcasecmp(w[1], "resume") == 0 || strcasecmp(w[1], "abort") == 0)) {
		if (allowed(req, role, OH_ROLE_OPERATOR, a))
			maintenance_control(req, a, w[1], w[2]);
	} else if (strcasecmp(cmd, "tentacles") == 0 && n == 2 &&
	           strcasecmp(w[1], "missing") == 0) {
		if (allowed(req, role, OH_ROLE_READER, a))
			tentacles_missing(req, a);
	} else {
		say(a, "%s", help_text);
	}
}

/* The role of Slack user USER by the chatops-users map ("U1=Operator,…"). */
static oh_role_t chat_role(const char *map, const char *user)
{
	size_t ul = strlen(user);
	const char *p = map;
	while (p && *p && ul > 0) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *eq = strchr(p, '=');
		if (!eq)
			break;
		const char *end = eq;
		while (*end && *end != ',')
			end++;
		if ((size_t)(eq - p) == ul && strncmp(p, user, ul) == 0) {
			char role[16];
			snprintf(role, sizeof role, "%.*s", (int)(end - eq - 1), eq + 1);
			oh_role_t r;
			return oh_role_parse(role, &r) ? r : OH_ROLE_NONE;
		}
		p = end;
	}
	return OH_ROLE_NONE;
}

static void answer(const api_req_t *req, api_resp_t *resp, const answer_t *a)
{
	const char *acc = req->accept;
	bool plain = acc && strstr(acc, "text/plain") && !strstr(acc, "application/json");
	if (plain) {
		char *t = malloc(a->len + 2);
		if (!t)
			abort();
		memcpy(t, a->text, a->len);
		t[a->len] = '\n';
		t[a->len + 1] = '\0';
		resp->status = 200;
		resp->raw_owned = t;
		resp->raw_len = a->len + 1;
		resp->content_type = "text/plain; charset=utf-8";
		return;
	}
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "response_type",
	                json_string(a->in_channel ? "in_channel" : "ephemeral"));
	oh_json_set_new(o, "text", json_string(a->text));
	if (a->task_id[0])
		oh_json_set_new(o, "TaskId", json_string(a->task_id));
	api_json(resp, 200, o);
}

/* Copies form field NAME of the raw body into OUT ("" when absent). */
static void form_var(const api_req_t *req, const char *name, char *out, size_t size)
{
	out[0] = '\0';
	if (mg_get_var(req->raw_body, req->raw_body_len, name, out, size) < 0)
		out[0] = '\0';
}

void api_op_chatopsCommand(const api_req_t *req, api_resp_t *resp)
{
	answer_t a;
	memset(&a, 0, sizeof a);
	if (!req->raw_body) { /* JSON with an API key: the dispatcher checked it */
		run_command(req, req->role, json_string_value(json_object_get(req->body, "Text")),
		            NULL, &a);
		answer(req, resp, &a);
		return;
	}
	api_req_t r = *req; /* the Slack user becomes the actor */
	const char *secret = req->cfg->slack_signing_secret;
	if (!secret || !*secret) {
		api_error(resp, OH_E_NOT_CONFIGURED,
		          "Slack commands are not configured on this node (slack-signing-secret).",
		          NULL);
		return;
	}
	const char *ts = api_header_in(req, "X-Slack-Request-Timestamp");
	const char *sig = api_header_in(req, "X-Slack-Signature");
	bool fresh = false;
	bool ok = api_slack_signature_ok(secret, ts, sig, req->raw_body, req->raw_body_len,
	                                 (long long)time(NULL));
	if (ok) {
		db_status_t s = oh_replay_guard(req->cfg->pool, sig, &fresh);
		if (s != DB_OK) {
			api_db_error(resp, s);
			return;
		}
	}
	if (!ok || !fresh) {
		api_error(resp, OH_E_SIGNATURE_INVALID,
		          !ok ? "The Slack signature is missing, wrong or older than five minutes."
		              : "This signed request was already received (a replay).",
		          "X-Slack-Signature");
		oh_event_spec_t ev = {.actor = &req->actor,
		                      .category = "AccessDenied",
		                      .operation = req->operation_id,
		                      .result = "Refused",
		                      .status = 401,
		                      .message = !ok ? "Slack command refused: bad signature."
		                                     : "Slack command refused: replayed."};
		oh_event_record(req->cfg->pool, &ev);
		return;
	}
	char text[1001], user[100], url[2001];
	form_var(req, "text", text, sizeof text);
	form_var(req, "user_id", user, sizeof user);
	form_var(req, "response_url", url, sizeof url);
	if (url[0] && strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		url[0] = '\0';
	snprintf(r.actor.key_id, sizeof r.actor.key_id, "%s", "");
	snprintf(r.actor.key_name, sizeof r.actor.key_name, "slack:%s", user[0] ? user : "?");
	run_command(&r, chat_role(req->cfg->chatops_users, user), text, url, &a);
	answer(req, resp, &a);
}
