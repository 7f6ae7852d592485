/* /api/managedclusters: Octopus Server HA clusters steered through their own
 * REST API.  Configuration (Admin), discovery, live topology, drain,
 * undrain and task cap of their nodes (Operator: tasks on the queue), and
 * polling Tentacles registered against every node of a cluster. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/managed_clusters.h"
#include "../lib/oh_crypto.h"
#include "../lib/oh_json.h"
#include "../lib/oh_log.h"
#include "../lib/tentacles.h"
#include "api_handlers_gen.h"

#define MC_BASE         "/api/managedclusters"
#define KEY_PLACEHOLDER "API-YOUR-API-KEY"

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* The ManagedCluster resource: never the key (new reference). */
static json_t *cluster_json(const oh_managed_cluster_t *m, bool with_nodes)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(m->id));
	oh_json_set_new(o, "Name", json_string(m->name));
	oh_json_set_new(o, "LoadBalancerUrl", json_string(m->lb_url));
	oh_json_set_new(o, "SpaceId", json_string(m->space_id));
	oh_json_set_new(o, "ApiKeyPrefix", json_string(m->key_prefix));
	oh_json_set_new(o, "VerifyTls", json_boolean(m->verify_tls));
	oh_json_set_new(o, "CaFile", str_or_null(m->ca_file));
	oh_json_set_new(o, "Thumbprint", str_or_null(m->thumbprint));
	json_t *nodes = oh_json_check(json_array());
	for (size_t i = 0; with_nodes && i < m->n_nodes; i++) {
		const oh_mc_node_t *n = &m->nodes[i];
		json_t *j = oh_json_check(json_object());
		oh_json_set_new(j, "Name", json_string(n->name));
		oh_json_set_new(j, "Url", json_string(n->url));
		oh_json_set_new(j, "CommunicationsAddress", str_or_null(n->comms_address));
		oh_json_set_new(j, "CommunicationsPort",
		                n->comms_port > 0 ? json_integer(n->comms_port) : json_null());
		oh_json_set_new(j, "OctopusNodeId", str_or_null(n->octopus_id));
		oh_json_check_rc(json_array_append_new(nodes, j));
	}
	oh_json_set_new(o, "Nodes", nodes);
	oh_json_set_new(o, "NodesVersion", json_integer(m->nodes_version));
	oh_json_set_new(o, "CreatedBy", json_string(m->created_by));
	oh_json_set_new(o, "CreatedAt", oh_json_time(m->created_at));
	oh_json_set_new(o, "UpdatedAt", oh_json_time(m->updated_at));
	oh_json_set_new(o, "DiscoveredAt",
	                m->discovered_at ? oh_json_time(m->discovered_at) : json_null());
	char self[120];
	snprintf(self, sizeof self, MC_BASE "/%s", m->id);
	json_t *links = oh_json_check(json_object());
	oh_json_set_new(links, "Self", json_string(self));
	oh_json_set_new(o, "Links", links);
	return o;
}

static bool is_https(const char *url)
{
	return strncasecmp(url, "https://", 8) == 0;
}

/* Reads the validated body into SPEC.  False when it answered 400 for a
 * rule the schema cannot say. */
static bool read_spec(const api_req_t *req, api_resp_t *resp, bool create, oh_mc_spec_t *spec)
{
	const json_t *b = req->body;
	memset(spec, 0, sizeof *spec);
	spec->name = json_string_value(json_object_get(b, "Name"));
	spec->lb_url = json_string_value(json_object_get(b, "LoadBalancerUrl"));
	spec->space_id = json_string_value(json_object_get(b, "SpaceId"));
	spec->api_key = json_string_value(json_object_get(b, "ApiKey"));
	const json_t *v = json_object_get(b, "VerifyTls");
	spec->verify_tls = json_is_boolean(v) ? json_is_true(v) : true;
	spec->ca_file = json_string_value(json_object_get(b, "CaFile"));
	spec->thumbprint = json_string_value(json_object_get(b, "Thumbprint"));
	if (create && !spec->api_key) {
		api_error(resp, OH_E_VALIDATION,
		          "ApiKey is required when a managed cluster is created.", "ApiKey");
		return false;
	}
	if (spec->ca_file && spec->thumbprint) {
		api_error(resp, OH_E_VALIDATION,
		          "Give CaFile or Thumbprint, not both: a pinned certificate is trusted "
		          "without any CA.",
		          "CaFile");
		return false;
	}
	bool all_https = is_https(spec->lb_url);
	size_t i;
	const json_t *n;
	json_array_foreach(json_object_get(b, "Nodes"), i, n)
	{
		if (i >= OH_MC_MAX_NODES)
			break;
		oh_mc_node_t *d = &spec->nodes[spec->n_nodes++];
		snprintf(d->name, sizeof d->name, "%s",
		         json_string_value(json_object_get(n, "Name")));
		snprintf(d->url, sizeof d->url, "%s", json_string_value(json_object_get(n, "Url")));
		const char *addr = json_string_value(json_object_get(n, "CommunicationsAddress"));
		const json_t *port = json_object_get(n, "CommunicationsPort");
		if (port && !addr) {
			api_error(resp, OH_E_VALIDATION,
			          "A node's CommunicationsPort needs its CommunicationsAddress.",
			          "Nodes");
			return false;
		}
		snprintf(d->comms_address, sizeof d->comms_address, "%s", addr ? addr : "");
		d->comms_port = addr ? (json_is_integer(port) ? (int)json_integer_value(port)
		                                              : OH_DEFAULT_POLL_PORT)
		                     : 0;
		all_https = all_https && is_https(d->url);
		for (size_t k = 0; k + 1 < spec->n_nodes; k++)
			if (strcasecmp(spec->nodes[k].name, d->name) == 0) {
				api_error(resp, OH_E_VALIDATION, "Two nodes have the same Name.",
				          "Nodes");
				return false;
			}
	}
	if (spec->thumbprint && !all_https) {
		api_error(
		    resp, OH_E_VALIDATION,
		    "A pinned Thumbprint needs https for the LoadBalancerUrl and every node's "
		    "Url.",
		    "Thumbprint");
		return false;
	}
	return true;
}

void api_op_listManagedClusters(const api_req_t *req, api_resp_t *resp)
{
	api_paging_t pg;
	if (!api_paging(req, resp, &pg))
		return;
	oh_mc_list_t l;
	db_status_t s = oh_mc_list(req->cfg->pool, pg.after, pg.skip, pg.take, &l);
	if (s == DB_NO_ROWS) {
		api_paging_unknown_after(resp, "managed cluster");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	/* Each with its nodes, as GET of one cluster shows it. */
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++)
		oh_json_check_rc(json_array_append_new(items, cluster_json(&l.v[i], true)));
	json_t *o = api_page("ManagedCluster", MC_BASE, items, l.total, pg.skip, pg.take);
	api_page_next(req, o, MC_BASE, l.n, &pg, l.n ? l.v[l.n - 1].id : NULL);
	api_json(resp, 200, o);
	oh_mc_list_free(&l);
}

void api_op_createManagedCluster(const api_req_t *req, api_resp_t *resp)
{
	oh_mc_spec_t *spec = malloc(sizeof *spec);
	oh_managed_cluster_t *m = malloc(sizeof *m);
	if (!spec || !m)
		abort();
	if (!read_spec(req, resp, true, spec))
		goto out;
	char who[200];
	api_requester(req, who, sizeof who);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "ManagedClusterCreated", "A managed cluster was registered.", &details);
	oh_mc_outcome_t outcome = OH_MC_OK;
	db_status_t s =
	    oh_mc_create(req->cfg->pool, req->cfg->secrets_key, spec, who, &ev, m, &outcome);
	json_decref(details);
	if (s != DB_OK)
		api_db_error(resp, s);
	else if (outcome == OH_MC_NAME_IN_USE)
		api_error(resp, OH_E_MANAGED_NAME_IN_USE, NULL, "Name");
	else {
		char loc[120];
		snprintf(loc, sizeof loc, MC_BASE "/%s", m->id);
		api_header(resp, "Location", loc);
		api_json(resp, 201, cluster_json(m, true));
	}
out:
	free(spec);
	free(m);
}

/* Reads the cluster of the path's id into a new *OUT.  False when it
 * answered (404, or the database's error). */
static bool load_cluster(const api_req_t *req, api_resp_t *resp, oh_managed_cluster_t **out)
{
	*out = malloc(sizeof **out);
	if (!*out)
		abort();
	db_status_t s = oh_mc_get(req->cfg->pool, api_path_param(req, "id"), *out);
	if (s == DB_OK)
		return true;
	if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no managed cluster with this Id.", "id");
	else
		api_db_error(resp, s);
	free(*out);
	*out = NULL;
	return false;
}

void api_op_getManagedCluster(const api_req_t *req, api_resp_t *resp)
{
	oh_managed_cluster_t *m;
	if (!load_cluster(req, resp, &m))
		return;
	api_json(resp, 200, cluster_json(m, true));
	free(m);
}

void api_op_replaceManagedCluster(const api_req_t *req, api_resp_t *resp)
{
	oh_mc_spec_t *spec = malloc(sizeof *spec);
	oh_managed_cluster_t *m = malloc(sizeof *m);
	if (!spec || !m)
		abort();
	if (!read_spec(req, resp, false, spec))
		goto out;
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "ManagedClusterChanged",
	          spec->api_key ? "A managed cluster was changed; its API key was rotated."
	                        : "A managed cluster was changed.",
	          &details);
	oh_mc_outcome_t outcome = OH_MC_OK;
	int64_t marked = 0;
	db_status_t s = oh_mc_replace(req->cfg->pool, req->cfg->secrets_key,
	                              api_path_param(req, "id"), spec, &ev, m, &outcome, &marked);
	json_decref(details);
	if (s != DB_OK)
		api_db_error(resp, s);
	else if (outcome == OH_MC_NOT_FOUND)
		api_error(resp, OH_E_NOT_FOUND, "There is no managed cluster with this Id.", "id");
	else if (outcome == OH_MC_NAME_IN_USE)
		api_error(resp, OH_E_MANAGED_NAME_IN_USE, NULL, "Name");
	else
		api_json(resp, 200, cluster_json(m, true));
out:
	free(spec);
	free(m);
}

void api_op_deleteManagedCluster(const api_req_t *req, api_resp_t *resp)
{
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "ManagedClusterDeleted", "A managed cluster was forgotten.", &details);
	oh_mc_outcome_t outcome = OH_MC_OK;
	db_status_t s = oh_mc_delete(req->cfg->pool, api_path_param(req, "id"), &ev, &outcome);
	json_decref(details);
	if (s != DB_OK)
		api_db_error(resp, s);
	else if (outcome == OH_MC_NOT_FOUND)
		api_error(resp, OH_E_NOT_FOUND, "There is no managed cluster with this Id.", "id");
	else if (outcome == OH_MC_IN_MAINTENANCE)
		api_error(resp, OH_E_MAINT_IN_PROGRESS, NULL, "id");
	else
		resp->status = 204;
}

/* Queues task KIND on the cluster of the path (and its node when NODE is
 * given) with ARGS (borrowed; ClusterId and Node are added). */
static void queue_on(const api_req_t *req, api_resp_t *resp, const char *kind, json_t *args,
                     bool with_node, const char *what)
{
	oh_managed_cluster_t *m;
	if (!load_cluster(req, resp, &m))
		return;
	const oh_mc_node_t *n = NULL;
	if (with_node) {
		n = oh_mc_node_find(m, api_path_param(req, "node"));
		if (!n) {
			api_error(resp, OH_E_NOT_FOUND, "The managed cluster has no such node.",
			          "node");
			free(m);
			return;
		}
	}
	oh_json_set_new(args, "ClusterId", json_string(m->id));
	if (n)
		oh_json_set_new(args, "Node", json_string(n->name));
	char desc[400], msg[420];
	if (n)
		snprintf(desc, sizeof desc, "%s node %.64s of %.150s", what, n->name, m->name);
	else
		snprintf(desc, sizeof desc, "%s %.150s", what, m->name);
	snprintf(msg, sizeof msg, "%s was queued.", desc);
	oh_task_spec_t spec = {.name = kind,
	                       .description = desc,
	                       .arguments = args,
	                       .is_system = true,
	                       .max_attempts = 5};
	api_queue_task(req, resp, spec, msg);
	free(m);
}

void api_op_discoverManagedCluster(const api_req_t *req, api_resp_t *resp)
{
	json_t *args = oh_json_check(json_object());
	queue_on(req, resp, "DiscoverCluster", args, false, "Discover");
	json_decref(args);
}

void api_op_drainManagedNode(const api_req_t *req, api_resp_t *resp)
{
	json_t *args = req->body ? json_deep_copy(req->body) : json_object();
	oh_json_check(args);
	queue_on(req, resp, "ManagedDrain", args, true, "Drain");
	json_decref(args);
}

void api_op_undrainManagedNode(const api_req_t *req, api_resp_t *resp)
{
	json_t *args = oh_json_check(json_object());
	queue_on(req, resp, "ManagedUndrain", args, true, "Undrain");
	json_decref(args);
}

void api_op_updateManagedNode(const api_req_t *req, api_resp_t *resp)
{
	const json_t *cap = json_object_get(req->body, "MaxConcurrentTasks");
	const json_t *mm = json_object_get(req->body, "IsInMaintenanceMode");
	const json_t *force = json_object_get(req->body, "Force");
	if (json_is_integer(cap) && json_is_boolean(mm)) {
		api_error(resp, OH_E_VALIDATION,
		          "Change MaxConcurrentTasks or IsInMaintenanceMode, one at a time.",
		          "IsInMaintenanceMode");
		return;
	}
	if (!json_is_integer(cap) && !json_is_boolean(mm)) {
		api_error(resp, OH_E_VALIDATION,
		          "Send MaxConcurrentTasks or IsInMaintenanceMode to change.",
		          "MaxConcurrentTasks");
		return;
	}
	json_t *args = oh_json_check(json_object());
	if (json_is_true(force))
		oh_json_set_new(args, "Force", json_true());
	if (json_is_integer(cap)) {
		oh_json_set_new(args, "MaxConcurrentTasks", json_integer(json_integer_value(cap)));
		queue_on(req, resp, "ManagedSetTaskCap", args, true, "Set the task cap of");
	} else if (json_is_true(mm)) {
		oh_json_set_new(args, "Reason", json_string("Maintenance mode set through PUT"));
		queue_on(req, resp, "ManagedDrain", args, true, "Drain");
	} else {
		queue_on(req, resp, "ManagedUndrain", args, true, "Undrain");
	}
	json_decref(args);
}

/* ---- topology ------------------------------------------------------------ */

static void to_node_log(void *ctx, const char *line)
{
	oh_log(OH_LOG_INFO, "managed cluster call", "cluster=%s call=%s", (const char *)ctx,
	       oh_q(line));
}

static void warn(json_t *list, const char *code, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void warn(json_t *list, const char *code, const char *node, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *w = oh_json_check(json_object());
	oh_json_set_new(w, "Code", json_string(code));
	oh_json_set_new(w, "Message", json_string(msg));
	if (node)
		oh_json_set_new(w, "Node", json_string(node));
	oh_json_check_rc(json_array_append_new(list, w));
}

void api_op_getManagedClusterTopology(const api_req_t *req, api_resp_t *resp)
{
	oh_managed_cluster_t *m;
	if (!load_cluster(req, resp, &m))
		return;
	oh_mc_tentacle_list_t ts;
	db_status_t s = oh_mc_tentacles_list(req->cfg->pool, m->id, &ts);
	if (s != DB_OK) {
		free(m);
		api_db_error(resp, s);
		return;
	}
	oh_octo_t o;
	char *key = NULL;
	json_t *warnings = oh_json_check(json_array());
	oh_mc_topology_t *t = calloc(1, sizeof *t);
	if (!t)
		abort();
	bool have = oh_mc_client(m, req->cfg->secrets_key, req->cfg->outbound, &o, &key);
	if (have) {
		/* A person waits for this answer: one try, short limits. */
		o.attempts = 1;
		o.timeout_ms = 3000;
		o.log = to_node_log;
		o.log_ctx = m->id;
		oh_mc_topology_read(m, &o, 2000, t);
	} else {
		t->api = OH_OCTO_REFUSED;
		warn(warnings, "ApiKeyRefused", NULL,
		     "The API key cannot be opened on this node: its secrets key differs from the "
		     "one that sealed it.");
	}
	oh_mc_key_free(key);
	json_t *api = oh_json_check(json_object());
	char why[200];
	oh_json_set_new(api, "Reachable", json_boolean(have && t->api == OH_OCTO_OK));
	oh_json_set_new(api, "StatusCode", t->api_http ? json_integer(t->api_http) : json_null());
	oh_json_set_new(api, "Error",
	                have && t->api != OH_OCTO_OK
	                    ? json_string(oh_octo_describe(t->api, t->api_http, why, sizeof why))
	                    : json_null());
	if (have && t->api == OH_OCTO_AUTH)
		warn(warnings, "ApiKeyRefused", NULL, "The cluster refused the API key (HTTP %ld).",
		     t->api_http);
	else if (have && t->api != OH_OCTO_OK)
		warn(warnings, "ClusterUnreachable", NULL,
		     "The cluster's node list could not be read through %s: %s.", m->lb_url,
		     oh_octo_describe(t->api, t->api_http, why, sizeof why));
	json_t *nodes = oh_json_check(json_array());
	int total = 0, largest = 0, taking = 0;
	for (size_t i = 0; i < t->n; i++) {
		const oh_mc_topo_node_t *n = &t->nodes[i];
		json_t *j = oh_json_check(json_object());
		oh_json_set_new(j, "Name", json_string(n->cfg->name));
		oh_json_set_new(j, "OctopusNodeId",
		                n->listed ? json_string(n->remote.id)
		                          : str_or_null(n->cfg->octopus_id));
		oh_json_set_new(j, "Url", json_string(n->cfg->url));
		oh_json_set_new(j, "State", json_string(n->state));
		oh_json_set_new(j, "Ping", n->ping ? json_integer(n->ping) : json_null());
		oh_json_set_new(j, "PingMs", json_integer(n->ping_ms));
		oh_json_set_new(j, "PingError", str_or_null(n->ping_error));
		oh_json_set_new(j, "IsInMaintenanceMode",
		                n->listed ? json_boolean(n->remote.maintenance) : json_null());
		oh_json_set_new(j, "IsOffline",
		                n->listed && n->remote.in_summary ? json_boolean(n->remote.offline)
		                                                  : json_null());
		oh_json_set_new(j, "MaxConcurrentTasks",
		                n->listed ? json_integer(n->remote.max_tasks) : json_null());
		oh_json_set_new(j, "RunningTaskCount",
		                n->listed && n->remote.running >= 0
		                    ? json_integer(n->remote.running)
		                    : json_null());
		oh_json_check_rc(json_array_append_new(nodes, j));
		if (n->ping == 200 && n->listed && n->remote.max_tasks > 0) {
			taking++;
			total += n->remote.max_tasks;
			if (n->remote.max_tasks > largest)
				largest = n->remote.max_tasks;
		}
		if (n->ping == 0)
			warn(warnings, "NodeUnreachable", n->cfg->name,
			     "%s does not answer its ping on %s (%s).", n->cfg->name, n->cfg->url,
			     n->ping_error[0] ? n->ping_error : "no answer");
		if (t->api == OH_OCTO_OK && !n->listed)
			warn(warnings, "NodeNotInCluster", n->cfg->name,
			     "%s is configured here but the cluster does not list it.",
			     n->cfg->name);
	}
	json_t *unknown = oh_json_check(json_array());
	for (size_t i = 0; i < t->remote.n; i++) {
		bool known = false;
		for (size_t k = 0; k < t->n && !known; k++)
			known = t->nodes[k].listed &&
			        strcmp(t->nodes[k].remote.id, t->remote.v[i].id) == 0;
		if (known)
			continue;
		json_t *u = oh_json_check(json_object());
		oh_json_set_new(u, "OctopusNodeId", json_string(t->remote.v[i].id));
		oh_json_set_new(u, "Name", json_string(t->remote.v[i].name));
		oh_json_check_rc(json_array_append_new(unknown, u));
		warn(warnings, "UnknownNode", t->remote.v[i].name,
		     "The cluster lists %s, which is not configured here.", t->remote.v[i].name);
	}
	if (m->n_nodes == 1)
		warn(warnings, "SingleNode", NULL,
		     "One node: it cannot be maintained without stopping the cluster.");
	if (have && t->api == OH_OCTO_OK && total == 0)
		warn(warnings, "NoCapacity", NULL, "No node takes work.");
	int rereg = 0, unregistered = 0;
	for (size_t i = 0; i < ts.n; i++) {
		rereg += ts.v[i].needs_rereg;
		unregistered += strcmp(ts.v[i].health_status, "NotRegistered") == 0;
	}
	if (rereg)
		warn(warnings, "TentaclesNeedReRegistration", NULL,
		     "%d Tentacle(s) were given a server list before the cluster's nodes changed.",
		     rereg);
	if (unregistered)
		warn(warnings, "TentaclesNotRegistered", NULL,
		     "%d Tentacle(s) were not found in the cluster's machines at their last check.",
		     unregistered);
	json_t *tent = oh_json_check(json_object());
	oh_json_set_new(tent, "Total", json_integer((json_int_t)ts.n));
	oh_json_set_new(tent, "NeedReRegistration", json_integer(rereg));
	oh_json_set_new(tent, "NotRegistered", json_integer(unregistered));
	double lost = total > 0 ? (double)((largest * 1000 + total / 2) / total) / 10.0 : 100.0;
	(void)taking;
	json_t *out = oh_json_check(json_object());
	oh_json_set_new(out, "ClusterId", json_string(m->id));
	oh_json_set_new(out, "Name", json_string(m->name));
	oh_json_set_new(out, "Api", api);
	oh_json_set_new(out, "Nodes", nodes);
	oh_json_set_new(out, "UnknownNodes", unknown);
	oh_json_set_new(out, "TotalCapacity", json_integer(total));
	oh_json_set_new(out, "LargestNodeCapacity", json_integer(largest));
	oh_json_set_new(out, "CapacityLostIfLargestNodeFailsPercent", json_real(lost));
	oh_json_set_new(out, "Tentacles", tent);
	oh_json_set_new(out, "Warnings", warnings);
	oh_mc_topology_free(t);
	free(t);
	oh_mc_tentacle_list_free(&ts);
	free(m);
	api_json(resp, 200, out);
}

/* ---- Tentacles ------------------------------------------------------------ */

static json_t *tentacle_json(const oh_mc_tentacle_t *t)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(t->id));
	oh_json_set_new(o, "ClusterId", json_string(t->cluster_id));
	oh_json_set_new(o, "Name", json_string(t->name));
	oh_json_set_new(o, "Thumbprint", json_string(t->thumbprint));
	oh_json_set_new(o, "SubscriptionId", json_string(t->subscription_id));
	oh_json_set_new(o, "RegisteredAt", oh_json_time(t->registered_at));
	oh_json_set_new(o, "RegisteredBy", json_string(t->registered_by));
	oh_json_set_new(o, "NeedsReRegistration", json_boolean(t->needs_rereg));
	oh_json_set_new(o, "Registered",
	                t->checked_at ? json_boolean(t->machine_id[0] != '\0') : json_null());
	oh_json_set_new(o, "MachineId", str_or_null(t->machine_id));
	oh_json_set_new(o, "HealthStatus", str_or_null(t->health_status));
	oh_json_set_new(o, "CheckedAt", t->checked_at ? oh_json_time(t->checked_at) : json_null());
	oh_json_set_new(o, "CheckDetail", str_or_null(t->check_detail));
	return o;
}

void api_op_listManagedTentacles(const api_req_t *req, api_resp_t *resp)
{
	api_paging_t pg;
	if (!api_paging(req, resp, &pg))
		return;
	oh_managed_cluster_t *m;
	if (!load_cluster(req, resp, &m))
		return;
	char base[120];
	snprintf(base, sizeof base, MC_BASE "/%s/tentacles", m->id);
	oh_mc_tentacle_list_t l;
	db_status_t s = oh_mc_tentacles_page(req->cfg->pool, m->id, pg.after, pg.skip, pg.take, &l);
	free(m);
	if (s == DB_NO_ROWS) {
		api_paging_unknown_after(resp, "Tentacle of this cluster");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++)
		oh_json_check_rc(json_array_append_new(items, tentacle_json(&l.v[i])));
	json_t *o = api_page("ManagedTentacle", base, items, l.total, pg.skip, pg.take);
	api_page_next(req, o, base, l.n, &pg, l.n ? l.v[l.n - 1].id : NULL);
	api_json(resp, 200, o);
	oh_mc_tentacle_list_free(&l);
}

void api_op_registerManagedTentacle(const api_req_t *req, api_resp_t *resp)
{
	oh_managed_cluster_t *m;
	if (!load_cluster(req, resp, &m))
		return;
	oh_mc_tentacle_t t;
	memset(&t, 0, sizeof t);
	snprintf(t.cluster_id, sizeof t.cluster_id, "%s", m->id);
	free(m);
	snprintf(t.name, sizeof t.name, "%s",
	         json_string_value(json_object_get(req->body, "Name")));
	const char *thumb = json_string_value(json_object_get(req->body, "Thumbprint"));
	for (size_t i = 0; i < 40 && thumb[i]; i++)
		t.thumbprint[i] = (char)toupper((unsigned char)thumb[i]);
	const char *sub = json_string_value(json_object_get(req->body, "SubscriptionId"));
	if (sub) {
		snprintf(t.subscription_id, sizeof t.subscription_id, "%s", sub);
	} else {
		char id[21];
		if (!oh_random_chars(id, 20, OH_SUBSCRIPTION_ALPHABET)) {
			api_error(resp, OH_E_INTERNAL, "No randomness for a subscription id.",
			          NULL);
			return;
		}
		snprintf(t.subscription_id, sizeof t.subscription_id, "poll://%s/", id);
	}
	api_requester(req, t.registered_by, sizeof t.registered_by);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "TentacleRegistered",
	          "A polling Tentacle was registered against a managed cluster.", &details);
	oh_task_t task;
	db_status_t s = oh_mc_tentacle_register(req->cfg->pool, &t, req->idem, &ev, &task);
	json_decref(details);
	if (s == DB_DUPLICATE)
		api_error(resp, OH_E_TENTACLE_NAME_IN_USE, NULL, "Name");
	else if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no managed cluster with this Id.", "id");
	else if (s != DB_OK)
		api_db_error(resp, s);
	else
		api_task_accepted(req, resp, &task);
	oh_task_clear(&task);
}

void api_op_checkManagedTentacles(const api_req_t *req, api_resp_t *resp)
{
	json_t *args = oh_json_check(json_object());
	queue_on(req, resp, "CheckManagedTentacles", args, false, "Check the Tentacles");
	json_decref(args);
}

/* Reads the Tentacle of the path into *T, checking it belongs to the path's
 * cluster, whose record goes to *M (free it).  False when it answered. */
static bool load_tentacle(const api_req_t *req, api_resp_t *resp, oh_managed_cluster_t **m,
                          oh_mc_tentacle_t *t)
{
	if (!load_cluster(req, resp, m))
		return false;
	db_status_t s = oh_mc_tentacle_get(req->cfg->pool, api_path_param(req, "tentacleId"), t);
	if (s == DB_OK && strcmp(t->cluster_id, (*m)->id) == 0)
		return true;
	if (s == DB_OK || s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND,
		          "This managed cluster has no Tentacle with this Id.", "tentacleId");
	else
		api_db_error(resp, s);
	free(*m);
	*m = NULL;
	return false;
}

void api_op_deleteManagedTentacle(const api_req_t *req, api_resp_t *resp)
{
	oh_managed_cluster_t *m;
	oh_mc_tentacle_t t;
	if (!load_tentacle(req, resp, &m, &t))
		return;
	free(m);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "TentacleDeleted", "A managed cluster's Tentacle was forgotten.",
	          &details);
	ev.resource_id = t.id;
	db_status_t s = oh_mc_tentacle_delete(req->cfg->pool, t.id, &ev);
	json_decref(details);
	if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND,
		          "This managed cluster has no Tentacle with this Id.", "tentacleId");
	else if (s != DB_OK)
		api_db_error(resp, s);
	else
		resp->status = 204;
}

void api_op_getManagedTentacleServers(const api_req_t *req, api_resp_t *resp)
{
	oh_managed_cluster_t *m;
	oh_mc_tentacle_t t;
	if (!load_tentacle(req, resp, &m, &t))
		return;
	json_t *servers = oh_json_check(json_array());
	json_t *commands = oh_json_check(json_array());
	json_t *trusted = oh_json_check(json_array());
	for (size_t i = 0; i < m->n_nodes; i++) {
		const oh_mc_node_t *n = &m->nodes[i];
		if (!n->comms_address[0])
			continue;
		char uri[300];
		snprintf(uri, sizeof uri, "https://%s:%d", n->comms_address, n->comms_port);
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "NodeName", json_string(n->name));
		oh_json_set_new(o, "OctopusNodeId", str_or_null(n->octopus_id));
		oh_json_set_new(o, "Address", json_string(n->comms_address));
		oh_json_set_new(o, "Port", json_integer(n->comms_port));
		oh_json_set_new(o, "Uri", json_string(uri));
		oh_json_check_rc(json_array_append_new(servers, o));
		char cmd[1200];
		snprintf(cmd, sizeof cmd,
		         "Tentacle poll-server --server=%s --apiKey=" KEY_PLACEHOLDER
		         " --server-comms-port=%d --server-comms-address=%s",
		         m->lb_url, n->comms_port, uri);
		oh_json_check_rc(json_array_append_new(commands, json_string(cmd)));
		json_t *tr = oh_json_check(json_object());
		oh_json_set_new(tr, "Thumbprint", str_or_null(m->thumbprint));
		oh_json_set_new(tr, "CommunicationStyle", json_integer(2));
		oh_json_set_new(tr, "Address", json_string(uri));
		oh_json_set_new(tr, "Squid", json_null());
		oh_json_set_new(tr, "SubscriptionId", json_string(t.subscription_id));
		oh_json_check_rc(json_array_append_new(trusted, tr));
	}
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "TentacleId", json_string(t.id));
	oh_json_set_new(o, "TentacleName", json_string(t.name));
	oh_json_set_new(o, "ClusterId", json_string(m->id));
	oh_json_set_new(o, "Servers", servers);
	oh_json_set_new(o, "Commands", commands);
	oh_json_set_new(o, "TrustedOctopusServers", trusted);
	free(m);
	api_json(resp, 200, o);
}

void api_op_markManagedTentacleApplied(const api_req_t *req, api_resp_t *resp)
{
	oh_managed_cluster_t *m;
	oh_mc_tentacle_t t;
	if (!load_tentacle(req, resp, &m, &t))
		return;
	free(m);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "TentacleServersChanged",
	          "A managed cluster's Tentacle applied its current server list.", &details);
	ev.resource_id = t.id;
	db_status_t s = oh_mc_tentacle_applied(req->cfg->pool, t.id, &ev, &t);
	json_decref(details);
	if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND,
		          "This managed cluster has no Tentacle with this Id.", "tentacleId");
	else if (s != DB_OK)
		api_db_error(resp, s);
	else
		api_json(resp, 200, tentacle_json(&t));
}
