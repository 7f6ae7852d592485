/* PackageRetention: keeps the newest KeepVersions versions of each package
 * id in the built-in repository and sweeps the Packages folder of dead
 * uploads' temporary files and of files no package names
 * (lib/packages.c).  Queued by cluster housekeeping every
 * package-retention-every-ms. */
#include <stdio.h>

#include "../oh_json.h"
#include "../packages.h"
#include "../spaces.h"
#include "../task_run.h"

static void log_line(void *ctx, const char *line)
{
	oh_task_log(ctx, "%s", line);
}

static void run_retention(oh_task_run_t *run, oh_task_outcome_t *out)
{
	int64_t keep = json_integer_value(json_object_get(run->args, "KeepVersions"));
	const char *space = json_string_value(json_object_get(run->args, "SpaceId"));
	if (!space)
		space = OH_DEFAULT_SPACE_ID;
	oh_task_log(run, "Keeping %s of each package in %s; sweeping dead uploads",
	            keep > 0 ? "the newest versions" : "every version", space);
	oh_retention_result_t r;
	db_status_t s = oh_packages_retain(run->pool, run->env->storage, space, keep < 0 ? 0 : keep,
	                                   log_line, run, &r);
	if (s != DB_OK) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The database is unavailable (%s).",
		         db_status_name(s));
		return;
	}
	oh_task_log(run, "Deleted %lld versions, %lld temporary files, %lld unnamed files",
	            (long long)r.deleted, (long long)r.temp_swept, (long long)r.orphans);
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "Deleted", json_integer(r.deleted));
	oh_json_set_new(out->result, "TemporaryFilesRemoved", json_integer(r.temp_swept));
	oh_json_set_new(out->result, "UnnamedFilesRemoved", json_integer(r.orphans));
	out->end = OH_END_SUCCESS;
}

const oh_task_kind_t oh_task_kind_package_retention = {OH_PACKAGE_RETENTION_KIND, false,
                                                       run_retention, false};
