/* /api/{spaceId}/machines: the Tentacle registry in Octopus's
 * MachineResource shape, for Octopus's clients and scripts. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/oh_json.h"
#include "../lib/spaces.h"
#include "../lib/tentacles.h"
#include "api_handlers_gen.h"

/* The machine's HealthStatus from the last health check. */
static const char *health(const oh_tentacle_t *t)
{
	if (strcmp(t->health_status, "Reachable") == 0)
		return "Healthy";
	if (strcmp(t->health_status, "ThumbprintMismatch") == 0)
		return "Unhealthy";
	if (strcmp(t->health_status, "Unreachable") == 0)
		return "Unavailable";
	return "Unknown";
}

static json_t *machine_json(const oh_tentacle_t *t)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(t->id));
	oh_json_set_new(o, "Name", json_string(t->name));
	oh_json_set_new(o, "SpaceId", json_string(OH_DEFAULT_SPACE_ID));
	json_t *e = oh_json_check(json_object());
	char eid[80];
	snprintf(eid, sizeof eid, "%s-endpoint", t->id);
	oh_json_set_new(e, "Id", json_string(eid));
	oh_json_set_new(e, "CommunicationStyle",
	                json_string(t->polling ? "TentacleActive" : "TentaclePassive"));
	/* A polling Tentacle is known by its subscription, poll://…/. */
	oh_json_set_new(e, "Uri", json_string(t->polling ? t->subscription_id : t->uri));
	oh_json_set_new(e, "Thumbprint", json_string(t->thumbprint));
	oh_json_set_new(o, "Endpoint", e);
	oh_json_set_new(o, "IsDisabled", json_false());
	oh_json_set_new(o, "IsInProcess", json_false());
	const char *h = health(t);
	oh_json_set_new(o, "HealthStatus", json_string(h));
	oh_json_set_new(o, "HasLatestCalamari", json_true());
	oh_json_set_new(o, "MachinePolicyId", json_string("MachinePolicies-1"));
	const char *status = strcmp(h, "Healthy") == 0   ? "Online"
	                     : strcmp(h, "Unknown") == 0 ? "Unknown"
	                                                 : "Offline";
	oh_json_set_new(o, "Status", json_string(status));
	char summary[600];
	if (t->health_checked_at > 0) {
		char when[40];
		oh_format_time(t->health_checked_at, when, sizeof when);
		snprintf(summary, sizeof summary, "%s at %s%s%s", t->health_status, when,
		         t->health_detail[0] ? ": " : "", t->health_detail);
	} else {
		snprintf(summary, sizeof summary, "Not health checked yet.");
	}
	oh_json_set_new(o, "StatusSummary", json_string(summary));
	json_t *links = oh_json_check(json_object());
	char self[120];
	snprintf(self, sizeof self, "/api/" OH_DEFAULT_SPACE_ID "/machines/%s", t->id);
	oh_json_set_new(links, "Self", json_string(self));
	oh_json_set_new(o, "Links", links);
	return o;
}

void api_op_listMachines(const api_req_t *req, api_resp_t *resp)
{
	if (!api_space_check(req, resp))
		return;
	api_paging_t pg;
	if (!api_paging(req, resp, &pg))
		return;
	oh_tentacle_filter_t f = {.after = pg.after, .skip = pg.skip, .take = pg.take};
	/* Thumbprints are kept in upper-case hex: the filter ignores case. */
	char thumb[41] = "";
	const char *t = json_string_value(json_object_get(req->query, "thumbprint"));
	if (t) {
		size_t i = 0;
		for (; i < sizeof thumb - 1 && t[i]; i++)
			thumb[i] = (char)toupper((unsigned char)t[i]);
		thumb[i] = '\0';
		f.thumbprint = thumb;
	}
	f.partial_name = json_string_value(json_object_get(req->query, "partialName"));
	const char *styles = json_string_value(json_object_get(req->query, "commStyles"));
	if (styles) {
		bool active = strstr(styles, "TentacleActive") != NULL;
		bool passive = strstr(styles, "TentaclePassive") != NULL;
		f.style = active == passive ? OH_STYLE_ANY
		          : active          ? OH_STYLE_POLLING
		                            : OH_STYLE_LISTENING;
	}
	oh_tentacle_list_t ts;
	oh_link_list_t polls, counts;
	int64_t total = 0, now = 0;
	db_status_t s =
	    oh_tentacles_page(req->cfg->pool, &f, &ts, &total, &polls, &counts, &now, NULL);
	if (s == DB_NO_ROWS) {
		api_paging_unknown_after(resp, "machine");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < ts.n; i++)
		oh_json_check_rc(json_array_append_new(items, machine_json(&ts.v[i])));
	const char *base = "/api/" OH_DEFAULT_SPACE_ID "/machines";
	json_t *o = api_page("Machine", base, items, total, pg.skip, pg.take);
	api_page_next(req, o, base, ts.n, &pg, ts.n ? ts.v[ts.n - 1].id : NULL);
	oh_tentacle_list_free(&ts);
	oh_link_list_free(&polls);
	oh_link_list_free(&counts);
	api_json(resp, 200, o);
}

void api_op_getMachine(const api_req_t *req, api_resp_t *resp)
{
	if (!api_space_check(req, resp))
		return;
	oh_tentacle_t t;
	db_status_t s = oh_tentacle_get(req->cfg->pool, api_path_param(req, "id"), &t);
	if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no machine with this Id.", "id");
	else if (s != DB_OK)
		api_db_error(resp, s);
	else
		api_json(resp, 200, machine_json(&t));
}
