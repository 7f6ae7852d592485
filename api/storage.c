/* /api/configuration/storage and Octopus's server-folders: the shared
 * folders, each node's proof that it can use them, and changes to them
 * (a SetStoragePaths task). */
#include <stdio.h>
#include <string.h>

#include "../lib/nodes.h"
#include "../lib/oh_json.h"
#include "../lib/storage.h"
#include "api_handlers_gen.h"

/* True when CHECK is of the folder's current path. */
static bool check_current(const oh_storage_active_t *a, const oh_storage_check_t *k)
{
	return !a->f[k->folder].set || strcmp(a->f[k->folder].path, k->path) == 0;
}

json_t *api_storage_json(const oh_node_list_t *nodes, const oh_storage_active_t *a,
                         const oh_storage_check_list_t *checks, bool *all_verified, bool node_ok[])
{
	json_t *folders = oh_json_check(json_array());
	bool all = true;
	for (size_t i = 0; i < nodes->n; i++)
		node_ok[i] = true;
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		const oh_storage_folder_t *x = &a->f[f];
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Name", json_string(oh_folder_name((oh_folder_t)f)));
		oh_json_set_new(o, "Option", json_string(oh_folder_option((oh_folder_t)f)));
		oh_json_set_new(o, "Path", x->set ? json_string(x->path) : json_null());
		oh_json_set_new(o, "ChangedAt", x->set ? oh_json_time(x->changed_at) : json_null());
		oh_json_set_new(o, "ChangedBy",
		                x->set && x->changed_by[0] ? json_string(x->changed_by)
		                                           : json_null());
		oh_json_set_new(o, "TaskId",
		                x->set && x->task_id[0] ? json_string(x->task_id) : json_null());
		json_t *per_node = oh_json_check(json_array());
		for (size_t n = 0; n < nodes->n; n++) {
			const oh_node_t *node = &nodes->v[n];
			const oh_storage_check_t *k = NULL;
			for (size_t c = 0; c < checks->n && !k; c++) {
				if (checks->v[c].folder == (oh_folder_t)f &&
				    strcmp(checks->v[c].node_id, node->id) == 0)
					k = &checks->v[c];
			}
			bool good = k && k->ok && check_current(a, k);
			if (!good && !node->offline) {
				all = false;
				node_ok[n] = false;
			}
			if (!k)
				continue;
			json_t *c = oh_json_check(json_object());
			oh_json_set_new(c, "NodeId", json_string(node->id));
			oh_json_set_new(c, "NodeName", json_string(node->name));
			oh_json_set_new(c, "Path", json_string(k->path));
			oh_json_set_new(c, "Verified", json_boolean(k->ok));
			oh_json_set_new(c, "IsCurrent", json_boolean(check_current(a, k)));
			oh_json_set_new(c, "VerifiedAt", oh_json_time(k->verified_at));
			oh_json_set_new(c, "Error",
			                k->error[0] ? json_string(k->error) : json_null());
			oh_json_check_rc(json_array_append_new(per_node, c));
		}
		oh_json_set_new(o, "Nodes", per_node);
		oh_json_check_rc(json_array_append_new(folders, o));
	}
	json_t *out = oh_json_check(json_object());
	oh_json_set_new(out, "Platform", json_string(oh_nodes_platform(nodes, "linux")));
	oh_json_set_new(out, "AllVerified", json_boolean(all));
	oh_json_set_new(out, "Folders", folders);
	if (all_verified)
		*all_verified = all;
	return out;
}

void api_op_getStorage(const api_req_t *req, api_resp_t *resp)
{
	oh_node_list_t nodes;
	oh_storage_active_t a;
	oh_storage_check_list_t checks = {0};
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &nodes);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	s = oh_storage_active_get(req->cfg->pool, &a);
	if (s == DB_OK)
		s = oh_storage_checks_list(req->cfg->pool, &checks);
	if (s != DB_OK) {
		api_db_error(resp, s);
	} else {
		bool node_ok[nodes.n ? nodes.n : 1];
		api_json(resp, 200, api_storage_json(&nodes, &a, &checks, NULL, node_ok));
	}
	oh_storage_check_list_free(&checks);
	oh_node_list_free(&nodes);
}

void api_op_setStorage(const api_req_t *req, api_resp_t *resp)
{
	oh_node_list_t nodes;
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &nodes);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	char self_platform[16] = "linux";
	for (size_t i = 0; i < nodes.n; i++) {
		if (strcmp(nodes.v[i].id, req->cfg->self_node_id) == 0)
			snprintf(self_platform, sizeof self_platform, "%s", nodes.v[i].platform);
	}
	char platform[16];
	snprintf(platform, sizeof platform, "%s", oh_nodes_platform(&nodes, self_platform));
	oh_node_list_free(&nodes);

	json_t *paths = oh_json_check(json_object());
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		const char *name = oh_folder_name((oh_folder_t)f);
		const json_t *v = json_object_get(req->body, name);
		if (json_is_null(v)) { /* back to each node's own folder */
			oh_json_set_new(paths, name, json_null());
			continue;
		}
		const char *path = json_string_value(v);
		if (!path)
			continue;
		const char *why = oh_storage_path_check(platform, path);
		/* Where the path really leads, on this node (every node judges
		 * again in its own check, since links differ between machines). */
		char real_why[400];
		if (!why && strcmp(platform, "linux") == 0)
			why = oh_storage_real_check(path, real_why, sizeof real_why);
		if (why) {
			char msg[300];
			snprintf(msg, sizeof msg, "%s %s.", name, why);
			api_error(resp, OH_E_INVALID_STORAGE_PATH, msg, name);
			json_decref(paths);
			return;
		}
		oh_json_set_new(paths, name, json_string(path));
	}
	if (json_object_size(paths) == 0) {
		api_error(
		    resp, OH_E_VALIDATION,
		    "Give at least one of Artifacts, TaskLogs, Packages, Imports, EventExports.",
		    NULL);
		json_decref(paths);
		return;
	}
	char who[200];
	api_requester(req, who, sizeof who);
	json_t *args = oh_json_check(json_object());
	oh_json_set_new(args, "Paths", paths);
	long long timeout = json_integer_value(json_object_get(req->body, "VerifyTimeoutSeconds"));
	oh_json_set_new(args, "TimeoutSeconds", json_integer(timeout > 0 ? timeout : 30));
	oh_json_set_new(args, "RequestedBy", json_string(who));
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "StorageChangeRequested",
	          "A storage change was requested; every online node checks the new folders.",
	          &details);
	oh_task_spec_t spec = {.name = "SetStoragePaths",
	                       .description = "Change the shared storage folders",
	                       .arguments = args,
	                       .is_system = true,
	                       .max_attempts = 3,
	                       .idem = req->idem,
	                       .requested_by = who,
	                       .audit = &ev};
	oh_task_t t;
	bool existed = false;
	char busy[64] = "";
	s = oh_storage_change_queue(req->cfg->pool, &spec, &t, &existed, busy);
	if (s == DB_OK) {
		api_task_accepted(req, resp, &t);
	} else if (s == DB_DUPLICATE) {
		char msg[200];
		snprintf(msg, sizeof msg,
		         "Storage change %s is under way; retry when it has ended.", busy);
		api_error(resp, OH_E_STORAGE_CHANGE_BUSY, msg, NULL);
	} else {
		api_db_error(resp, s);
	}
	oh_task_clear(&t);
	json_decref(details);
	json_decref(args);
}

void api_op_getServerFolders(const api_req_t *req, api_resp_t *resp)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string("server-folders"));
	oh_json_set_new(o, "LogsDirectory", json_null());
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		char path[OH_STORAGE_PATH_MAX + 1];
		oh_storage_path(req->cfg->storage, (oh_folder_t)f, path, sizeof path);
		oh_json_set_new(o, oh_folder_octopus_field((oh_folder_t)f), json_string(path));
	}
	api_json(resp, 200, o);
}
