/* /api/events: the audit log, and /api/events/archives: its files in the
 * EventExports folder. */
#include <stdio.h>
#include <stdlib.h>

#include "../lib/archive.h"
#include "../lib/events.h"
#include "../lib/oh_json.h"
#include "api_handlers_gen.h"

static bool time_param(const api_req_t *req, const char *name, int64_t *out, api_resp_t *resp)
{
	const char *v = json_string_value(json_object_get(req->query, name));
	*out = 0;
	if (!v)
		return true;
	if (!oh_parse_time(v, out)) {
		char msg[160];
		snprintf(msg, sizeof msg,
		         "%s must be an ISO 8601 time such as 2026-11-28T08:00:00Z.", name);
		api_error(resp, OH_E_VALIDATION, msg, name);
		return false;
	}
	return true;
}

void api_op_listEvents(const api_req_t *req, api_resp_t *resp)
{
	api_paging_t pg;
	if (!api_paging(req, resp, &pg))
		return;
	oh_event_filter_t f = {
	    .user = json_string_value(json_object_get(req->query, "user")),
	    .resource = json_string_value(json_object_get(req->query, "regarding")),
	    .operation = json_string_value(json_object_get(req->query, "operation")),
	    .category = json_string_value(json_object_get(req->query, "category")),
	    .after = pg.after,
	    .skip = pg.skip,
	    .take = pg.take,
	};
	if (!time_param(req, "from", &f.from, resp) || !time_param(req, "to", &f.to, resp))
		return;
	oh_event_list_t l;
	db_status_t s = oh_events_list(req->cfg->pool, &f, &l);
	if (s == DB_NO_ROWS) {
		api_paging_unknown_after(resp, "event");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++)
		oh_json_check_rc(json_array_append_new(items, oh_event_json(&l.v[i])));
	json_t *o = api_page("Event", "/api/events", items, l.total, f.skip, f.take);
	api_page_next(req, o, "/api/events", l.n, &pg, l.n ? l.v[l.n - 1].id : NULL);
	oh_event_list_free(&l);
	api_json(resp, 200, o);
}

void api_op_listEventArchives(const api_req_t *req, api_resp_t *resp)
{
	char dir[OH_STORAGE_PATH_MAX + 1];
	oh_storage_path(req->cfg->storage, OH_FOLDER_EVENTEXPORTS, dir, sizeof dir);
	oh_archive_file_t *files = NULL;
	size_t n = 0;
	if (!oh_archive_list(dir, &files, &n)) {
		api_error(resp, OH_E_INTERNAL, "The EventExports folder cannot be read.", NULL);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < n; i++) {
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Name", json_string(files[i].name));
		oh_json_set_new(o, "Day", json_string(files[i].day));
		oh_json_set_new(o, "SizeBytes", json_integer(files[i].size));
		oh_json_set_new(o, "Sha256",
		                files[i].sha256[0] ? json_string(files[i].sha256) : json_null());
		oh_json_set_new(o, "ChecksumOk", json_boolean(files[i].checksum_ok));
		oh_json_check_rc(json_array_append_new(items, o));
	}
	free(files);
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Directory", json_string(dir));
	oh_json_set_new(o, "Items", items);
	api_json(resp, 200, o);
}

void api_op_archiveEvents(const api_req_t *req, api_resp_t *resp)
{
	oh_task_spec_t spec = {.name = OH_ARCHIVE_KIND,
	                       .description = "Archive old audit events to EventExports",
	                       .max_attempts = 5};
	api_queue_task(req, resp, spec, "The audit archive task was queued.");
}
