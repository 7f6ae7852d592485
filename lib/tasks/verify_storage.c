/* VerifyStorage: run on one node (targeted) for a storage change, proves
 * that node can use each proposed folder (create, write, fsync, read back,
 * delete a probe file), and says which folder it created, if any: it is
 * not removed, since another node may be checking the same share.  It always ends Success with its
 * findings in the result; SetStoragePaths, which queued it, decides. */
#include <stdio.h>

#include "../oh_json.h"
#include "../storage.h"
#include "../task_run.h"

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	json_t *paths = json_object_get(r->args, "Paths");
	if (!json_is_object(paths)) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "The task names no folder to check.");
		return;
	}
	json_t *folders = oh_json_check(json_array());
	bool all_ok = true;
	const char *name;
	json_t *value;
	json_object_foreach(paths, name, value)
	{
		oh_folder_t f;
		const char *path = json_string_value(value);
		if (!oh_folder_parse(name, &f) || !path)
			continue;
		char err[512] = "", created[OH_STORAGE_PATH_MAX + 1] = "";
		bool ok =
		    oh_storage_probe(path, r->node_id, err, sizeof err, created, sizeof created);
		all_ok = all_ok && ok;
		oh_task_log(r, "%s %s: %s%s%s", oh_folder_name(f), path, ok ? "usable" : err,
		            created[0] ? "; created " : "", created);
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Folder", json_string(oh_folder_name(f)));
		oh_json_set_new(o, "Path", json_string(path));
		oh_json_set_new(o, "Ok", json_boolean(ok));
		oh_json_set_new(o, "Error", ok ? json_null() : json_string(err));
		oh_json_set_new(o, "CreatedFolder",
		                created[0] ? json_string(created) : json_null());
		oh_json_check_rc(json_array_append_new(folders, o));
	}
	out->end = OH_END_SUCCESS;
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "NodeId", json_string(r->node_id));
	oh_json_set_new(out->result, "Ok", json_boolean(all_ok));
	oh_json_set_new(out->result, "Folders", folders);
}

const oh_task_kind_t oh_task_kind_verify_storage = {"VerifyStorage", true, run, false};
