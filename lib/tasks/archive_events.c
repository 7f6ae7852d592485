/* ArchiveEvents: moves audit events past their retention into the
 * EventExports folder (lib/archive.c).  Queued by cluster housekeeping
 * every archive period, or by POST /api/events/archives. */
#include <stdio.h>

#include "../archive.h"
#include "../events.h"
#include "../oh_json.h"
#include "../task_run.h"

static db_status_t now_txn(db_conn_t *c, void *ctx)
{
	return db_now_ms(c, ctx);
}

static bool must_stop(void *ctx)
{
	return oh_task_should_stop(ctx);
}

static void run_archive(oh_task_run_t *run, oh_task_outcome_t *out)
{
	/* The cut-off is on the database clock, as event times are. */
	int64_t now = 0;
	db_status_t s = db_txn(run->pool, DB_TXN_READ, now_txn, &now);
	if (s != DB_OK) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The database is unavailable (%s).",
		         db_status_name(s));
		return;
	}
	int64_t cutoff = now - run->env->event_retention_ms;
	char dir[OH_STORAGE_PATH_MAX + 1];
	oh_storage_path(run->env->storage, OH_FOLDER_EVENTEXPORTS, dir, sizeof dir);
	oh_task_log(run, "Archiving events older than %lld ms to %s",
	            (long long)run->env->event_retention_ms, dir);
	oh_archive_result_t r;
	char err[512] = "";
	oh_archive_stop_t stop = {must_stop, run};
	if (!oh_archive_run(run->pool, dir, cutoff, &stop, &r, err, sizeof err)) {
		oh_task_log(run, "Stopped: %s", err);
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "%s", err);
		return;
	}
	oh_task_log(run, "Archived %lld events into %d day files", (long long)r.archived, r.days);
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "Archived", json_integer(r.archived));
	oh_json_set_new(out->result, "Directory", json_string(dir));
	if (r.archived > 0) {
		char msg[200];
		snprintf(msg, sizeof msg, "%lld audit events were archived to EventExports.",
		         (long long)r.archived);
		oh_event_spec_t ev = {.category = "EventsArchived",
		                      .operation = OH_ARCHIVE_KIND,
		                      .result = "Success",
		                      .message = msg,
		                      .details = out->result};
		oh_event_record(run->pool, &ev);
	}
	out->end = OH_END_SUCCESS;
}

const oh_task_kind_t oh_task_kind_archive_events = {OH_ARCHIVE_KIND, false, run_archive, false};
