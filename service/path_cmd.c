/* `octoha-server path`: Octopus.Server.exe's path command (--artifacts,
 * --taskLogs, --nugetRepository, --imports, --eventExports) from a node's
 * shell.  With nodes online it queues the same SetStoragePaths task as the
 * API, so every online node proves it can use the folders before they
 * change, and waits for it.  With no node online (a cluster being set up)
 * this machine proves them itself and activates them. */
#include <stdio.h>
#include <string.h>

#include "../lib/events.h"
#include "../lib/nodes.h"
#include "../lib/oh_json.h"
#include "../lib/storage.h"
#include "node.h"

/* Prints each node's findings from a SetStoragePaths result. */
/* Returns whether it printed the outcome's message. */
static bool print_result(const char *result)
{
	json_error_t je;
	json_t *r = result ? json_loads(result, 0, &je) : NULL;
	size_t i, k;
	json_t *node, *f;
	json_array_foreach(json_object_get(r, "Nodes"), i, node)
	{
		json_array_foreach(json_object_get(node, "Folders"), k, f)
		{
			const char *err = json_string_value(json_object_get(f, "Error"));
			const char *made = json_string_value(json_object_get(f, "CreatedFolder"));
			printf("  %s %s %s: %s%s%s\n",
			       json_string_value(json_object_get(node, "NodeName")),
			       json_string_value(json_object_get(f, "Folder")),
			       json_string_value(json_object_get(f, "Path")), err ? err : "ok",
			       made ? "; created " : "", made ? made : "");
		}
	}
	const char *msg = json_string_value(json_object_get(r, "Message"));
	if (msg)
		printf("%s\n", msg);
	json_decref(r);
	return msg != NULL;
}

/* No node is online: prove the folders here and activate them. */
static int standalone(db_pool_t *pool, const svc_config_t *cfg, const char *const *want,
                      const oh_event_spec_t *ev, const char *who)
{
	char node_id[sizeof(((oh_node_t *)0)->id)];
	oh_node_id_for(cfg->node_name, node_id, sizeof node_id);
	oh_storage_check_t checks[OH_FOLDER__COUNT];
	size_t n = 0;
	bool ok = true;
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		if (!want[f])
			continue;
		oh_storage_check_t *k = &checks[n++];
		memset(k, 0, sizeof *k);
		snprintf(k->node_id, sizeof k->node_id, "%s", node_id);
		k->folder = (oh_folder_t)f;
		snprintf(k->path, sizeof k->path, "%s", want[f]);
		char created[OH_STORAGE_PATH_MAX + 1];
		k->ok = oh_storage_probe(want[f], node_id, k->error, sizeof k->error, created,
		                         sizeof created);
		printf("  %s %s %s: %s%s%s\n", cfg->node_name, oh_folder_name((oh_folder_t)f),
		       want[f], k->ok ? "ok" : k->error, created[0] ? "; created " : "", created);
		ok = ok && k->ok;
	}
	if (!ok) {
		printf("Storage paths unchanged.\n");
		return SVC_EXIT_FAILURE;
	}
	db_status_t s = oh_storage_activate(pool, want, checks, n, who, NULL, ev, NULL);
	if (s != DB_OK) {
		fprintf(stderr, "path: cannot record the paths: %s\n", db_status_name(s));
		return SVC_EXIT_FAILURE;
	}
	printf("No node is online: checked from this machine and activated. Every node "
	       "proves the folders again when it starts. Files already in the old folders "
	       "were not moved.\n");
	return SVC_EXIT_OK;
}

int svc_path_command(const svc_config_t *cfg, const svc_path_args_t *a)
{
	db_pool_t *pool = svc_command_pool(cfg);
	if (!pool)
		return SVC_EXIT_FAILURE;
	int rc = SVC_EXIT_FAILURE;
	oh_node_list_t nodes = {0};
	json_t *paths = oh_json_check(json_object());
	db_status_t s = oh_nodes_list(pool, cfg->offline_timeout_ms, &nodes);
	if (s != DB_OK) {
		fprintf(stderr, "path: cannot read the nodes: %s\n", db_status_name(s));
		goto out;
	}
	const char *platform = oh_nodes_platform(&nodes, cfg->platform);
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		if (!a->paths[f])
			continue;
		const char *why = oh_storage_path_check(platform, a->paths[f]);
		char real_why[400];
		if (!why && strcmp(platform, "linux") == 0)
			why = oh_storage_real_check(a->paths[f], real_why, sizeof real_why);
		if (why) {
			fprintf(stderr, "path: --%s %s.\n", oh_folder_option((oh_folder_t)f), why);
			rc = SVC_EXIT_USAGE;
			goto out;
		}
		oh_json_set_new(paths, oh_folder_name((oh_folder_t)f), json_string(a->paths[f]));
	}
	char who[200];
	snprintf(who, sizeof who, "octoha-server path on %.64s", cfg->node_name);
	oh_actor_t actor = {0};
	snprintf(actor.key_name, sizeof actor.key_name, "%s", who);
	oh_event_spec_t ev = {.actor = &actor,
	                      .category = "StorageChangeRequested",
	                      .operation = "path",
	                      .result = "Success",
	                      .message = "A storage change was requested from a node's shell.",
	                      .details = paths};
	size_t online = 0;
	for (size_t i = 0; i < nodes.n; i++)
		online += !nodes.v[i].offline;
	if (online == 0) {
		ev.category = "StorageChanged";
		rc = standalone(pool, cfg, a->paths, &ev, who);
		goto out;
	}
	json_t *args = oh_json_check(json_object());
	oh_json_set_new(args, "Paths", json_incref(paths));
	oh_json_set_new(args, "TimeoutSeconds", json_integer(30));
	oh_json_set_new(args, "RequestedBy", json_string(who));
	oh_task_spec_t spec = {.name = "SetStoragePaths",
	                       .description = "Change the shared storage folders",
	                       .arguments = args,
	                       .is_system = true,
	                       .max_attempts = 3,
	                       .requested_by = who,
	                       .audit = &ev};
	oh_task_t task;
	bool existed = false;
	char busy[64] = "";
	s = oh_storage_change_queue(pool, &spec, &task, &existed, busy);
	json_decref(args);
	if (s == DB_DUPLICATE) {
		fprintf(stderr, "path: storage change %s is under way; retry when it has ended.\n",
		        busy);
		rc = SVC_EXIT_REFUSED;
		goto out;
	}
	if (s != DB_OK) {
		fprintf(stderr, "path: cannot queue the change: %s\n", db_status_name(s));
		goto out;
	}
	printf("%s queued: %zu online node(s) check the folders\n", task.id, online);
	oh_task_t done;
	memset(&done, 0, sizeof done);
	rc = svc_wait_task(pool, task.id, a->wait_seconds, "the paths change only if it succeeds",
	                   &done);
	oh_task_clear(&task);
	if (rc == SVC_EXIT_OK || rc == SVC_EXIT_FAILURE) {
		if (done.id[0]) {
			if (!print_result(done.result) && done.error_message[0])
				printf("%s\n", done.error_message);
			oh_task_clear(&done);
		}
	}
out:
	json_decref(paths);
	oh_node_list_free(&nodes);
	db_pool_free(pool);
	return rc;
}
