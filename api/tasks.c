/* /api/tasks: the shared task queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/oh_json.h"
#include "../lib/spaces.h"
#include "../lib/task_run.h"
#include "api_handlers_gen.h"

/* Parses "Queued,Executing" (already validated by the spec's pattern). */
static unsigned parse_states(const char *list)
{
	unsigned mask = 0;
	char buf[256];
	snprintf(buf, sizeof buf, "%s", list);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		oh_task_state_t s;
		if (oh_task_state_parse(tok, &s))
			mask |= 1u << s;
	}
	return mask;
}

/* True when task T passes F (the filters a database listing applies). */
static bool task_matches(const oh_task_t *t, const oh_task_filter_t *f)
{
	if (f->states && !(f->states & (1u << t->state)))
		return false;
	if (f->node && *f->node && strcmp(t->server_node, f->node) != 0)
		return false;
	if (f->name && *f->name && strcmp(t->name, f->name) != 0)
		return false;
	if (f->partial_name && *f->partial_name && !strcasestr(t->description, f->partial_name))
		return false;
	return true;
}

static int newest_first(const void *a, const void *b)
{
	const oh_task_t *x = a, *y = b;
	if (x->queue_time != y->queue_time)
		return x->queue_time > y->queue_time ? -1 : 1;
	return -strcmp(x->id, y->id);
}

/* The tasks named in IDS (comma-separated, validated by the spec) that
 * pass F, newest first, into *L.  Unknown ids are left out, as Octopus
 * does. */
static db_status_t tasks_by_ids(const api_req_t *req, const char *ids, const oh_task_filter_t *f,
                                oh_task_list_t *l)
{
	memset(l, 0, sizeof *l);
	size_t cap = 1;
	for (const char *p = ids; *p; p++)
		cap += *p == ',';
	l->v = calloc(cap, sizeof *l->v);
	if (!l->v)
		return DB_ERROR;
	for (const char *p = ids; *p;) {
		size_t n = strcspn(p, ",");
		char id[64];
		snprintf(id, sizeof id, "%.*s", (int)(n < sizeof id - 1 ? n : sizeof id - 1), p);
		p += n + (p[n] == ',');
		bool dup = false;
		for (size_t i = 0; i < l->n && !dup; i++)
			dup = strcmp(l->v[i].id, id) == 0;
		if (dup)
			continue;
		db_status_t s = oh_tasks_get(req->cfg->pool, id, &l->v[l->n]);
		if (s == DB_NO_ROWS)
			continue;
		if (s != DB_OK) {
			oh_task_list_free(l);
			return s;
		}
		if (task_matches(&l->v[l->n], f))
			l->n++;
		else
			oh_task_clear(&l->v[l->n]);
	}
	qsort(l->v, l->n, sizeof *l->v, newest_first);
	l->total = (int64_t)l->n;
	return DB_OK;
}

/* GET /api/tasks and /api/{spaceId}/tasks: BASE is the listing's path. */
static void list_tasks(const api_req_t *req, api_resp_t *resp, const char *base)
{
	api_paging_t pg;
	if (!api_paging(req, resp, &pg))
		return;
	oh_task_filter_t f = {.skip = pg.skip, .take = pg.take, .after = pg.after};
	const char *states = json_string_value(json_object_get(req->query, "states"));
	if (states)
		f.states = parse_states(states);
	if (json_is_true(json_object_get(req->query, "active"))) {
		unsigned active =
		    1u << OH_TS_QUEUED | 1u << OH_TS_EXECUTING | 1u << OH_TS_CANCELLING;
		f.states = f.states ? f.states & active : active;
		if (f.states == 0) {
			api_error(resp, OH_E_VALIDATION,
			          "No active state matches the states given.", "states");
			return;
		}
	}
	f.node = json_string_value(json_object_get(req->query, "node"));
	f.name = json_string_value(json_object_get(req->query, "name"));
	f.partial_name = json_string_value(json_object_get(req->query, "partialName"));
	const char *ids = json_string_value(json_object_get(req->query, "ids"));
	oh_task_list_t l;
	db_status_t s =
	    ids ? tasks_by_ids(req, ids, &f, &l) : oh_tasks_list(req->cfg->pool, &f, &l);
	if (s == DB_NO_ROWS) {
		api_paging_unknown_after(resp, "task");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	/* A listing by ids is paged here; the database pages the others. */
	size_t from = ids ? (size_t)(f.skip < (int64_t)l.n ? f.skip : (int64_t)l.n) : 0;
	for (size_t i = from; i < l.n && (long long)json_array_size(items) < f.take; i++)
		oh_json_check_rc(json_array_append_new(items, api_task_json(&l.v[i])));
	json_t *o = api_page("ServerTask", base, items, l.total, f.skip, f.take);
	/* A listing by ids is one page: it has no next one. */
	if (!ids)
		api_page_next(req, o, base, l.n, &pg, l.n ? l.v[l.n - 1].id : NULL);
	oh_task_list_free(&l);
	api_json(resp, 200, o);
}

void api_op_listTasks(const api_req_t *req, api_resp_t *resp)
{
	list_tasks(req, resp, "/api/tasks");
}

void api_op_listSpaceTasks(const api_req_t *req, api_resp_t *resp)
{
	if (api_space_check(req, resp))
		list_tasks(req, resp, "/api/" OH_DEFAULT_SPACE_ID "/tasks");
}

void api_op_createTask(const api_req_t *req, api_resp_t *resp)
{
	const json_t *b = req->body;
	const char *target = json_string_value(json_object_get(b, "TargetNodeId"));
	if (target) {
		oh_node_t n;
		db_status_t s =
		    oh_nodes_get(req->cfg->pool, target, req->cfg->offline_timeout_ms, &n);
		if (s == DB_NO_ROWS) {
			api_error(resp, OH_E_NOT_FOUND, "There is no node with this Id.",
			          "TargetNodeId");
			return;
		}
		if (s != DB_OK) {
			api_db_error(resp, s);
			return;
		}
	}
	char who[200];
	api_requester(req, who, sizeof who);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "TaskQueued", "A task was queued.", &details);
	const json_t *args = json_object_get(b, "Arguments");
	oh_task_spec_t spec = {
	    .name = json_string_value(json_object_get(b, "Name")),
	    .description = json_string_value(json_object_get(b, "Description")),
	    .arguments = args,
	    .target_node = target,
	    .max_attempts = (int)json_integer_value(json_object_get(b, "MaxAttempts")),
	    .idem = req->idem,
	    .requested_by = who,
	    .audit = &ev,
	};
	if (!spec.description)
		spec.description = "Diagnostic task";
	api_create_task(req, resp, &spec);
	json_decref(details);
}

void api_op_getTask(const api_req_t *req, api_resp_t *resp)
{
	oh_task_t t;
	db_status_t s = oh_tasks_get(req->cfg->pool, api_path_param(req, "id"), &t);
	if (s == DB_OK)
		s = api_task_wait(req, &t, api_query_int(req, "waitSeconds", 0));
	if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no task with this Id.", "id");
	else if (s != DB_OK)
		api_db_error(resp, s);
	else
		api_json(resp, 200, api_task_json(&t));
	oh_task_clear(&t);
}

void api_op_cancelTask(const api_req_t *req, api_resp_t *resp)
{
	oh_task_t t;
	oh_cancel_outcome_t outcome = OH_CANCEL_NOT_FOUND;
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "TaskCanceled", "Cancellation of a task was requested.", &details);
	db_status_t s =
	    oh_tasks_cancel(req->cfg->pool, api_path_param(req, "id"), &outcome, &t, &ev);
	json_decref(details);
	if (s != DB_OK)
		api_db_error(resp, s);
	else if (outcome == OH_CANCEL_NOT_FOUND)
		api_error(resp, OH_E_NOT_FOUND, "There is no task with this Id.", "id");
	else if (outcome == OH_CANCEL_COMPLETED)
		api_error(resp, OH_E_TASK_COMPLETED, NULL, "id");
	else
		api_task_accepted(req, resp, &t);
	oh_task_clear(&t);
}

void api_op_getTaskRaw(const api_req_t *req, api_resp_t *resp)
{
	const char *id = api_path_param(req, "id");
	oh_task_t t;
	db_status_t s = oh_tasks_get(req->cfg->pool, id, &t);
	bool started = s == DB_OK && t.start_time > 0;
	oh_task_clear(&t);
	if (s == DB_NO_ROWS) {
		api_error(resp, OH_E_NOT_FOUND, "There is no task with this Id.", "id");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	/* The current TaskLogs folder first, then those this node used before
	 * a change: logs are not moved when the folder changes. */
	oh_storage_used_t used;
	oh_storage_paths_used(req->cfg->storage, OH_FOLDER_TASKLOGS, &used);
	size_t len = 0;
	bool found = false;
	char *text = oh_task_log_read(used.v, used.n, id, &len, &found);
	if (!text) {
		api_error(resp, OH_E_INTERNAL,
		          "The task log cannot be read from the TaskLogs folder.", NULL);
		return;
	}
	if (!found && started) {
		free(text);
		char msg[OH_STORAGE_PATH_MAX + 300];
		snprintf(
		    msg, sizeof msg,
		    "The log of this task is not in the TaskLogs folder %s: it was written to a "
		    "folder this node does not share, or before the TaskLogs folder changed "
		    "(logs are not moved), or the task keeps no log.",
		    used.v[0]);
		api_error(resp, OH_E_NOT_FOUND, msg, "id");
		return;
	}
	resp->status = 200;
	resp->raw_owned = text;
	resp->raw_len = len;
	resp->content_type = "text/plain; charset=utf-8";
}

void api_op_getSpaceTask(const api_req_t *req, api_resp_t *resp)
{
	if (api_space_check(req, resp))
		api_op_getTask(req, resp);
}

void api_op_getSpaceTaskRaw(const api_req_t *req, api_resp_t *resp)
{
	if (api_space_check(req, resp))
		api_op_getTaskRaw(req, resp);
}
