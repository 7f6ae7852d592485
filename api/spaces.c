/* The root document, spaces and the space root: what Octopus's clients read
 * before anything else (GET /api, then the space by name). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../lib/oh_json.h"
#include "../lib/spaces.h"
#include "api_handlers_gen.h"

bool api_space_check(const api_req_t *req, api_resp_t *resp)
{
	if (oh_space_exists(api_path_param(req, "spaceId")))
		return true;
	api_error(resp, OH_E_NOT_FOUND,
	          "There is no space with this Id; the only one is " OH_DEFAULT_SPACE_ID ".",
	          "spaceId");
	return false;
}

static void add_link(json_t *links, const char *name, const char *href)
{
	oh_json_set_new(links, name, json_string(href));
}

/* The space-scoped links, as templates (SPACE "{spaceId}") or for one space. */
static void space_links(json_t *links, const char *space)
{
	char buf[300];
#define SPACE_LINK(name, fmt)                                                                      \
	snprintf(buf, sizeof buf, fmt, space);                                                     \
	add_link(links, name, buf)
	SPACE_LINK("SpaceHome", "/api/%s");
	SPACE_LINK("Machines",
	           "/api/%s/machines{/id}{?skip,take,thumbprint,partialName,commStyles}");
	SPACE_LINK("Packages",
	           "/api/%s/packages{/id}{?nuGetPackageId,filter,latest,skip,take,includeNotes}");
	SPACE_LINK("PackageUpload", "/api/%s/packages/raw{?replace,overwriteMode}");
	SPACE_LINK("SpaceTasks",
	           "/api/%s/tasks{/id}{?skip,take,ids,partialName,states,node,name,active}");
#undef SPACE_LINK
}

void api_op_getRoot(const api_req_t *req, api_resp_t *resp)
{
	char install[100] = "";
	db_status_t s = oh_installation_id(req->cfg->pool, install, sizeof install);
	if (s != DB_OK && s != DB_NO_ROWS) {
		api_db_error(resp, s);
		return;
	}
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Application", json_string("octoha"));
	oh_json_set_new(o, "Version", json_string(OCTOHA_VERSION));
	oh_json_set_new(o, "ApiVersion", json_string("3.0.0"));
	oh_json_set_new(o, "InstallationId", json_string(install));
	json_t *l = oh_json_check(json_object());
	add_link(l, "Self", "/api");
	add_link(l, "Spaces", "/api/spaces{/id}{?skip,take,partialName}");
	add_link(l, "Tasks", "/api/tasks{/id}{?skip,take,ids,partialName,states,node,name,active}");
	add_link(l, "OctopusServerNodes", "/api/octopusservernodes{/id}{?skip,take}");
	add_link(l, "OctopusServerClusterSummary", "/api/octopusservernodes/summary");
	/* octoha's server status is its health resource. */
	add_link(l, "ServerStatus", "/api/serverstatus/health");
	add_link(l, "ServerHealthStatus", "/api/serverstatus/health");
	add_link(l, "Events", "/api/events{?skip,take,from,to,user,regarding,operation,category}");
	add_link(l, "ServerFolders", "/api/configuration/server-folders/values");
	add_link(l, "Tentacles", "/api/tentacles{/id}{?skip,take,needsReRegistration}");
	add_link(l, "ClusterTopology", "/api/cluster/topology");
	space_links(l, "{spaceId}");
	oh_json_set_new(o, "Links", l);
	api_json(resp, 200, o);
}

static json_t *space_json(void)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(OH_DEFAULT_SPACE_ID));
	oh_json_set_new(o, "Name", json_string(OH_DEFAULT_SPACE_NAME));
	oh_json_set_new(o, "Description", json_string("The space of this cluster."));
	oh_json_set_new(o, "IsDefault", json_true());
	oh_json_set_new(o, "TaskQueueStopped", json_false());
	oh_json_set_new(o, "SpaceManagersTeams", json_array());
	oh_json_set_new(o, "SpaceManagersTeamMembers", json_array());
	json_t *l = oh_json_check(json_object());
	add_link(l, "Self", "/api/spaces/" OH_DEFAULT_SPACE_ID);
	add_link(l, "SpaceHome", "/api/" OH_DEFAULT_SPACE_ID);
	oh_json_set_new(o, "Links", l);
	return o;
}

/* True when NEEDLE is in HAY, ignoring ASCII case. */
static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return n == 0;
}

void api_op_listSpaces(const api_req_t *req, api_resp_t *resp)
{
	long long skip = api_query_int(req, "skip", 0), take = api_query_int(req, "take", 30);
	const char *partial = json_string_value(json_object_get(req->query, "partialName"));
	bool match = !partial || contains_ci(OH_DEFAULT_SPACE_NAME, partial);
	json_t *items = oh_json_check(json_array());
	if (match && skip == 0)
		oh_json_check_rc(json_array_append_new(items, space_json()));
	api_json(resp, 200, api_page("Space", "/api/spaces", items, match ? 1 : 0, skip, take));
}

void api_op_getSpace(const api_req_t *req, api_resp_t *resp)
{
	if (!oh_space_exists(api_path_param(req, "id"))) {
		api_error(resp, OH_E_NOT_FOUND, "There is no space with this Id.", "id");
		return;
	}
	api_json(resp, 200, space_json());
}

void api_op_getSpaceRoot(const api_req_t *req, api_resp_t *resp)
{
	if (!api_space_check(req, resp))
		return;
	json_t *l = oh_json_check(json_object());
	add_link(l, "Self", "/api/" OH_DEFAULT_SPACE_ID);
	space_links(l, OH_DEFAULT_SPACE_ID);
	add_link(l, "Tasks",
	         "/api/" OH_DEFAULT_SPACE_ID "/tasks{/id}{?skip,take,ids,partialName,states}");
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Links", l);
	api_json(resp, 200, o);
}
