/* SetStoragePaths: changes the cluster's shared folders only when every
 * online node has proved it can use the new ones.  It queues a
 * VerifyStorage task targeted at each online node, waits for them, and then
 * either activates the paths (with every node's proof and a StorageChanged
 * event, in one transaction) or fails naming each node and folder that
 * could not, changing nothing.  Files in the old folders are not moved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../events.h"
#include "../node_state.h"
#include "../nodes.h"
#include "../oh_json.h"
#include "../storage.h"
#include "../task_run.h"

#define DEFAULT_TIMEOUT_S 30
#define NOT_MOVED         "Files already in the old folders were not moved."

typedef struct {
	const oh_node_t *node;
	oh_task_t child;
	bool queued, ended;
	bool gone;       /* went offline during the check: no longer asked */
	json_t *folders; /* owned: the node's findings */
	bool ok;
} pending_t;

/* Findings for a node that gave none: every folder failed with WHY. */
static json_t *failed_folders(const json_t *paths, const char *why)
{
	json_t *a = oh_json_check(json_array());
	const char *name;
	json_t *value;
	json_object_foreach((json_t *)paths, name, value)
	{
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Folder", json_string(name));
		oh_json_set_new(o, "Path", json_incref(value));
		oh_json_set_new(o, "Ok", json_false());
		oh_json_set_new(o, "Error", json_string(why));
		oh_json_set_new(o, "CreatedFolder", json_null());
		oh_json_check_rc(json_array_append_new(a, o));
	}
	return a;
}

static bool queue_checks(oh_task_run_t *r, const json_t *paths, pending_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_t *args = oh_json_check(json_object());
		oh_json_set_new(args, "Paths", json_incref((json_t *)paths));
		oh_json_set_new(args, "NodeId", json_string(p[i].node->id));
		oh_json_set_new(args, "ParentTaskId", json_string(r->task->id));
		char key[200], id[64], desc[200];
		snprintf(key, sizeof key, "verify-storage:%s:%d:%.100s", r->task->id,
		         r->task->attempt, p[i].node->id);
		oh_task_id_for_key(key, id, sizeof id);
		snprintf(desc, sizeof desc, "Check the storage folders on %s", p[i].node->name);
		oh_task_spec_t spec = {.name = "VerifyStorage",
		                       .description = desc,
		                       .arguments = args,
		                       .is_system = true,
		                       .target_node = p[i].node->id,
		                       .max_attempts = 1,
		                       .id = id,
		                       .requested_by = r->task->id};
		bool existed = false;
		db_status_t s = oh_tasks_create(r->pool, &spec, &p[i].child, &existed);
		json_decref(args);
		if (s != DB_OK)
			return false;
		p[i].queued = true;
		oh_task_log(r, "Queued %s to check %s", p[i].child.id, p[i].node->name);
	}
	return true;
}

/* Polls the children until all ended, TIMEOUT_MS passed or the task must
 * stop.  Returns false when it must stop. */
/* Marks the nodes of P that have gone offline (a node that dies during the
 * check is no longer one that must prove anything; it proves the folders
 * itself when it comes back). */
static void drop_offline(oh_task_run_t *r, pending_t *p, size_t n)
{
	oh_node_list_t now;
	if (oh_nodes_list(r->pool, r->offline_timeout_ms, &now) != DB_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		bool online = false;
		for (size_t j = 0; j < now.n && !online; j++)
			online = !now.v[j].offline && strcmp(now.v[j].id, p[i].node->id) == 0;
		if (!online && !p[i].ended) {
			p[i].gone = p[i].ended = true;
			oh_task_log(r, "%s went offline during the check; it is not waited for",
			            p[i].node->name);
		}
	}
	oh_node_list_free(&now);
}

static bool wait_checks(oh_task_run_t *r, pending_t *p, size_t n, int64_t timeout_ms)
{
	int64_t start = oh_mono_ms(), last_nodes = start;
	for (;;) {
		size_t ended = 0;
		if (oh_mono_ms() - last_nodes >= 1000) {
			drop_offline(r, p, n);
			last_nodes = oh_mono_ms();
		}
		for (size_t i = 0; i < n; i++) {
			if (!p[i].ended) {
				oh_task_t t;
				if (oh_tasks_get(r->pool, p[i].child.id, &t) == DB_OK) {
					if (oh_task_state_completed(t.state)) {
						oh_task_clear(&p[i].child);
						p[i].child = t;
						p[i].ended = true;
					} else {
						oh_task_clear(&t);
					}
				}
			}
			ended += p[i].ended;
		}
		oh_task_progress(r, (int)(ended * 90 / (n ? n : 1)), "%zu of %zu nodes checked",
		                 ended, n);
		if (ended == n || oh_mono_ms() - start >= timeout_ms)
			return true;
		if (!oh_task_sleep(r, 200))
			return false;
	}
}

/* A retried change (its node died) cancels the checks its earlier attempts
 * queued, so none is left queued for a node that may never run it. */
static void cancel_earlier_checks(oh_task_run_t *r, const oh_node_list_t *nodes)
{
	for (int a = 1; a < r->task->attempt; a++) {
		for (size_t i = 0; i < nodes->n; i++) {
			char key[200], id[64];
			snprintf(key, sizeof key, "verify-storage:%s:%d:%.100s", r->task->id, a,
			         nodes->v[i].id);
			oh_task_id_for_key(key, id, sizeof id);
			oh_task_t t;
			if (oh_tasks_get(r->pool, id, &t) == DB_OK &&
			    !oh_task_state_completed(t.state)) {
				oh_cancel_outcome_t co;
				oh_task_t after;
				if (oh_tasks_cancel(r->pool, t.id, &co, &after, NULL) == DB_OK)
					oh_task_clear(&after);
			}
			oh_task_clear(&t);
		}
	}
}

static void collect(const json_t *paths, pending_t *p, size_t n, int64_t timeout_s)
{
	for (size_t i = 0; i < n; i++) {
		char why[600];
		if (p[i].gone) {
			p[i].ok = true; /* not online any more: it checks when it is back */
			p[i].folders =
			    failed_folders(paths, "the node went offline during the check");
			continue;
		}
		if (!p[i].ended) {
			snprintf(why, sizeof why,
			         "the node did not run its check within %lld s (is it stuck, or is "
			         "its task cap 0?)",
			         (long long)timeout_s);
			p[i].folders = failed_folders(paths, why);
			continue;
		}
		json_error_t je;
		json_t *res = p[i].child.result ? json_loads(p[i].child.result, 0, &je) : NULL;
		json_t *folders = json_object_get(res, "Folders");
		if (p[i].child.state == OH_TS_SUCCESS && json_is_array(folders)) {
			p[i].folders = json_incref(folders);
			p[i].ok = json_is_true(json_object_get(res, "Ok"));
		} else {
			snprintf(why, sizeof why, "its check ended %s: %.500s",
			         oh_task_state_name(p[i].child.state),
			         p[i].child.error_message[0] ? p[i].child.error_message
			                                     : "no result");
			p[i].folders = failed_folders(paths, why);
		}
		json_decref(res);
	}
}

/* One sentence naming every node and folder that failed, into BUF. */
static void failure_summary(const pending_t *p, size_t n, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "Storage paths unchanged:");
	for (size_t i = 0; i < n && len < size; i++) {
		size_t k;
		json_t *f;
		json_array_foreach(p[i].folders, k, f)
		{
			if (json_is_true(json_object_get(f, "Ok")) || len >= size)
				continue;
			len +=
			    (size_t)snprintf(buf + len, size - len, " %s %s: %s;", p[i].node->name,
			                     json_string_value(json_object_get(f, "Folder")),
			                     json_string_value(json_object_get(f, "Error")));
		}
	}
	if (len > 0 && len < size && buf[len - 1] == ';')
		buf[len - 1] = '.';
}

/* Logs the folders the checks created for a change that is refused: they
 * stay (a node cannot know another is not still checking the same share),
 * and each is in the Result as its node's CreatedFolder. */
static void log_created(oh_task_run_t *r, const pending_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t k;
		json_t *f;
		json_array_foreach(p[i].folders, k, f)
		{
			const char *c = json_string_value(json_object_get(f, "CreatedFolder"));
			if (c)
				oh_task_log(r, "Left in place: %s created %s for %s.",
				            p[i].node->name, c,
				            json_string_value(json_object_get(f, "Folder")));
		}
	}
}

/* True when node NODE_ID's own last check of every folder set in WANT is
 * of the wanted path: it switched (nodes record a check when they do).  A
 * folder going back to each node's own is not waited for. */
static bool switched(const oh_storage_check_list_t *l, const char *node_id, const char *const *want)
{
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		if (!want[f] || !want[f][0])
			continue;
		bool seen = false;
		for (size_t i = 0; i < l->n && !seen; i++) {
			const oh_storage_check_t *k = &l->v[i];
			seen = k->folder == (oh_folder_t)f && strcmp(k->node_id, node_id) == 0 &&
			       strcmp(k->path, want[f]) == 0;
		}
		if (!seen)
			return false;
	}
	return true;
}

/* Waits up to TIMEOUT_MS for every node in P to switch to the folders
 * just activated.  Returns the names of those that did not (new array). */
static json_t *wait_switch(oh_task_run_t *r, const char *const *want, const pending_t *p, size_t n,
                           int64_t timeout_ms)
{
	json_t *lagging = oh_json_check(json_array());
	for (int64_t waited = 0;; waited += 200) {
		oh_storage_check_list_t l;
		json_array_clear(lagging);
		if (oh_storage_checks_list(r->pool, &l) == DB_OK) {
			for (size_t i = 0; i < n; i++) {
				if (!p[i].gone && !switched(&l, p[i].node->id, want))
					oh_json_check_rc(json_array_append_new(
					    lagging, json_string(p[i].node->name)));
			}
			oh_storage_check_list_free(&l);
		} else {
			for (size_t i = 0; i < n; i++)
				oh_json_check_rc(
				    json_array_append_new(lagging, json_string(p[i].node->name)));
		}
		if (json_array_size(lagging) == 0 || waited >= timeout_ms || !oh_task_sleep(r, 200))
			break;
	}
	if (json_array_size(lagging))
		oh_task_log(r,
		            "%zu node(s) had not switched to the new folders when this task ended",
		            json_array_size(lagging));
	else
		oh_task_log(r, "Every node uses the new folders");
	return lagging;
}

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	json_t *paths = json_object_get(r->args, "Paths");
	json_int_t timeout_s = json_integer_value(json_object_get(r->args, "TimeoutSeconds"));
	if (timeout_s <= 0)
		timeout_s = DEFAULT_TIMEOUT_S;
	const char *by = json_string_value(json_object_get(r->args, "RequestedBy"));
	const char *want[OH_FOLDER__COUNT] = {0};
	const char *name;
	json_t *value;
	size_t n_paths = 0;
	json_t *verify = oh_json_check(json_object()); /* the paths the nodes must prove */
	json_object_foreach(paths, name, value)
	{
		oh_folder_t f;
		if (!oh_folder_parse(name, &f))
			continue;
		if (json_is_string(value)) {
			want[f] = json_string_value(value);
			oh_json_set_new(verify, name, json_incref(value));
			n_paths++;
		} else if (json_is_null(value)) {
			want[f] = ""; /* back to each node's own folder */
			n_paths++;
		}
	}
	if (n_paths == 0) {
		json_decref(verify);
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "The task names no folder to change.");
		return;
	}
	oh_node_list_t nodes;
	db_status_t s = oh_nodes_list(r->pool, r->offline_timeout_ms, &nodes);
	if (s != DB_OK) {
		json_decref(verify);
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "Cannot list the nodes (%s).",
		         db_status_name(s));
		return;
	}
	/* Heap, not stack: a task thread's stack is small. */
	pending_t *p = calloc(nodes.n ? nodes.n : 1, sizeof *p);
	size_t n = 0;
	if (!p)
		abort(); /* out of memory: fail loudly, as everywhere */
	for (size_t i = 0; i < nodes.n; i++) {
		if (!nodes.v[i].offline)
			p[n++] = (pending_t){.node = &nodes.v[i]};
	}
	bool stopped = false;
	if (json_object_size(verify) == 0) {
		/* Only folders going back to each node's own: nothing to prove. */
		for (size_t i = 0; i < n; i++) {
			p[i].ok = true;
			p[i].folders = oh_json_check(json_array());
		}
		goto proved;
	}
	cancel_earlier_checks(r, &nodes);
	for (size_t i = 0; i < n; i++) {
		if (p[i].node->max_tasks == 0) {
			/* A node with task cap 0 runs no task, not even its check. */
			snprintf(out->error, sizeof out->error,
			         "Storage paths unchanged: %s has task cap 0, so it cannot run its "
			         "check; "
			         "give it a cap above 0, or stop it, and try again.",
			         p[i].node->name);
			oh_task_log(r, "%s", out->error);
			out->end = OH_END_FAILED;
			goto cleanup;
		}
	}
	oh_task_log(r, "Asking %zu online node(s) to prove they can use the new folders", n);
	if (!queue_checks(r, verify, p, n)) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "Cannot queue the checks.");
		goto cleanup;
	}
	stopped = !wait_checks(r, p, n, (int64_t)timeout_s * 1000) || oh_task_should_stop(r);
	for (size_t i = 0; i < n; i++) {
		if (p[i].queued && !p[i].ended) {
			oh_cancel_outcome_t co;
			oh_task_t after;
			if (oh_tasks_cancel(r->pool, p[i].child.id, &co, &after, NULL) == DB_OK)
				oh_task_clear(&after);
		}
	}
	if (stopped) {
		out->end = atomic_load(r->lost) ? OH_END_RETRY : OH_END_CANCELED;
		snprintf(out->error, sizeof out->error, "The storage change was stopped.");
		goto cleanup;
	}
	collect(verify, p, n, timeout_s);

proved:;
	bool all_ok = true;
	json_t *per_node = oh_json_check(json_array());
	for (size_t i = 0; i < n; i++) {
		all_ok = all_ok && p[i].ok;
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "NodeId", json_string(p[i].node->id));
		oh_json_set_new(o, "NodeName", json_string(p[i].node->name));
		oh_json_set_new(o, "Ok", json_boolean(p[i].ok));
		oh_json_set_new(o, "Folders", json_incref(p[i].folders));
		oh_json_check_rc(json_array_append_new(per_node, o));
	}
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "Paths", json_incref(paths));
	oh_json_set_new(out->result, "Nodes", per_node);
	oh_json_set_new(out->result, "FilesMoved", json_false());

	if (!all_ok) {
		failure_summary(p, n, out->error, sizeof out->error);
		log_created(r, p, n);
		oh_task_progress(r, 100, "Refused: not every node can use the folders");
		oh_json_set_new(out->result, "Activated", json_false());
		oh_json_set_new(out->result, "Message", json_string(out->error));
		oh_task_log(r, "%s", out->error);
		out->end = OH_END_FAILED;
		goto cleanup;
	}

	/* Every node proved every folder: activate, then wait until each node
	 * has switched (its own check of the new path recorded after the
	 * change), so Success means the cluster uses the new folders. */
	char msg[1000];
	size_t len = (size_t)snprintf(msg, sizeof msg, "Storage paths changed:");
	for (int f = 0; f < OH_FOLDER__COUNT && len < sizeof msg; f++) {
		if (want[f])
			len += (size_t)snprintf(msg + len, sizeof msg - len, " %s=%s",
			                        oh_folder_name((oh_folder_t)f),
			                        want[f][0] ? want[f] : "(each node's own)");
	}
	oh_event_spec_t ev = {.category = "StorageChanged",
	                      .operation = "SetStoragePaths",
	                      .resource_id = r->task->id,
	                      .result = "Success",
	                      .message = msg,
	                      .details = paths};
	if (oh_task_should_stop(r)) { /* cancelled or taken over: activate nothing */
		json_decref(out->result);
		out->result = NULL;
		out->end = atomic_load(r->lost) ? OH_END_RETRY : OH_END_CANCELED;
		snprintf(out->error, sizeof out->error, "The storage change was stopped.");
		goto cleanup;
	}
	s = oh_storage_activate(r->pool, want, NULL, 0, by, r->task->id, &ev, NULL);
	if (s != DB_OK) {
		json_decref(out->result);
		out->result = NULL;
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "Cannot record the new paths (%s).",
		         db_status_name(s));
		goto cleanup;
	}
	oh_task_log(r, "%s. %s", msg, NOT_MOVED);
	json_t *lagging = wait_switch(r, want, p, n, (int64_t)timeout_s * 1000);
	oh_task_progress(r, 100, "%zu node(s) use the new folders", n - json_array_size(lagging));
	oh_json_set_new(out->result, "Activated", json_true());
	oh_json_set_new(out->result, "NodesNotSwitched", lagging);
	oh_json_set_new(out->result, "Message", json_string(NOT_MOVED));
	out->end = OH_END_SUCCESS;

cleanup:
	for (size_t i = 0; i < n; i++) {
		if (p[i].queued)
			oh_task_clear(&p[i].child);
		json_decref(p[i].folders);
	}
	free(p);
	json_decref(verify);
	oh_node_list_free(&nodes);
}

const oh_task_kind_t oh_task_kind_set_storage_paths = {"SetStoragePaths", true, run, false};
