/* /api/cluster and /api/serverstatus: polling mode and NAT rules, the
 * topology with its warnings, Octopus's health summary, and the probe. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/oh_json.h"
#include "../lib/tasks.h"
#include "../lib/tentacles.h"
#include "api_handlers_gen.h"

static json_t *polling_json(const oh_polling_t *p, const oh_node_list_t *nodes)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Mode", json_string(p->unique_port ? "UniquePort" : "UniqueAddress"));
	oh_json_set_new(o, "LoadBalancerAddress",
	                p->lb_address[0] ? json_string(p->lb_address) : json_null());
	oh_json_set_new(o, "BasePort", json_integer(p->base_port));
	oh_json_set_new(o, "ServerUrl",
	                p->server_url[0] ? json_string(p->server_url) : json_null());
	oh_json_set_new(o, "ServerThumbprint",
	                p->server_thumbprint[0] ? json_string(p->server_thumbprint) : json_null());
	oh_json_set_new(o, "PollWindowSeconds", json_integer(p->poll_window_s));
	json_t *ports = oh_json_check(json_array());
	for (size_t i = 0; i < nodes->n; i++) {
		oh_server_entry_t e;
		if (!oh_server_entry_for(p, &nodes->v[i], &e))
			continue;
		json_t *x = oh_json_check(json_object());
		oh_json_set_new(x, "NodeId", json_string(e.node_id));
		oh_json_set_new(x, "NodeName", json_string(e.node_name));
		oh_json_set_new(x, "Port", json_integer(e.port));
		oh_json_check_rc(json_array_append_new(ports, x));
	}
	oh_json_set_new(o, "NodePorts", ports);
	return o;
}

static json_t *nat_json(const oh_polling_t *p, const oh_node_list_t *nodes)
{
	json_t *rules = oh_json_check(json_array());
	for (size_t i = 0; p->unique_port && i < nodes->n; i++) {
		const oh_node_t *n = &nodes->v[i];
		if (n->polling_port <= 0)
			continue;
		json_t *r = oh_json_check(json_object());
		oh_json_set_new(r, "ListenPort", json_integer(n->polling_port));
		oh_json_set_new(r, "NodeId", json_string(n->id));
		oh_json_set_new(r, "NodeName", json_string(n->name));
		oh_json_set_new(r, "TargetAddress", json_string(n->comms_address));
		oh_json_set_new(r, "TargetPort", json_integer(n->comms_port));
		oh_json_check_rc(json_array_append_new(rules, r));
	}
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Mode", json_string(p->unique_port ? "UniquePort" : "UniqueAddress"));
	oh_json_set_new(o, "LoadBalancerAddress",
	                p->lb_address[0] ? json_string(p->lb_address) : json_null());
	oh_json_set_new(o, "Rules", rules);
	return o;
}

/* Answers 200 with SHAPE(settings, nodes), or the database's error. */
static void polling_answer(const api_req_t *req, api_resp_t *resp,
                           json_t *(*shape)(const oh_polling_t *, const oh_node_list_t *))
{
	oh_polling_t p;
	oh_node_list_t nodes;
	db_status_t s = oh_polling_get(req->cfg->pool, &p);
	if (s == DB_OK)
		s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &nodes);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	api_json(resp, 200, shape(&p, &nodes));
	oh_node_list_free(&nodes);
}

void api_op_getPolling(const api_req_t *req, api_resp_t *resp)
{
	polling_answer(req, resp, polling_json);
}

void api_op_getNatRules(const api_req_t *req, api_resp_t *resp)
{
	polling_answer(req, resp, nat_json);
}

#define MAX_NODE_PORTS 64

void api_op_setPolling(const api_req_t *req, api_resp_t *resp)
{
	oh_polling_t cur;
	db_status_t s = oh_polling_get(req->cfg->pool, &cur);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	/* Fields not given keep their value. */
	oh_polling_t p = cur;
	const json_t *b = req->body;
	const char *v = json_string_value(json_object_get(b, "Mode"));
	p.unique_port = v && strcmp(v, "UniquePort") == 0;
	if ((v = json_string_value(json_object_get(b, "LoadBalancerAddress"))))
		snprintf(p.lb_address, sizeof p.lb_address, "%s", v);
	if ((v = json_string_value(json_object_get(b, "ServerUrl"))))
		snprintf(p.server_url, sizeof p.server_url, "%s", v);
	if ((v = json_string_value(json_object_get(b, "ServerThumbprint")))) {
		/* Upper case, as Tentacle thumbprints are kept. */
		for (size_t i = 0; i < sizeof p.server_thumbprint - 1 && v[i]; i++)
			p.server_thumbprint[i] = (char)toupper((unsigned char)v[i]);
		p.server_thumbprint[strlen(v) < 40 ? strlen(v) : 40] = '\0';
	}
	if (json_is_integer(json_object_get(b, "BasePort")))
		p.base_port = (int)json_integer_value(json_object_get(b, "BasePort"));
	if (json_is_integer(json_object_get(b, "PollWindowSeconds")))
		p.poll_window_s = (int)json_integer_value(json_object_get(b, "PollWindowSeconds"));
	if (p.unique_port && !p.lb_address[0]) {
		api_error(resp, OH_E_VALIDATION,
		          "UniquePort mode needs LoadBalancerAddress: the host Tentacles reach.",
		          "LoadBalancerAddress");
		return;
	}
	oh_node_port_t ports[MAX_NODE_PORTS];
	size_t n = 0;
	const json_t *np = json_object_get(b, "NodePorts");
	const char *name;
	json_t *port;
	if (json_object_size(np) > MAX_NODE_PORTS) {
		api_error(resp, OH_E_VALIDATION, "NodePorts names at most 64 nodes.", "NodePorts");
		return;
	}
	json_object_foreach((json_t *)np, name, port)
	{
		for (size_t i = 0; i < n; i++) {
			if (ports[i].port == (int)json_integer_value(port)) {
				char msg[200];
				snprintf(msg, sizeof msg, "NodePorts gives port %d to two nodes.",
				         ports[i].port);
				api_error(resp, OH_E_PORT_CLASH, msg, "NodePorts");
				return;
			}
		}
		ports[n++] = (oh_node_port_t){name, (int)json_integer_value(port)};
	}
	if (n && !p.unique_port) {
		api_error(resp, OH_E_VALIDATION, "NodePorts applies to UniquePort mode only.",
		          "NodePorts");
		return;
	}
	char who[200];
	api_requester(req, who, sizeof who);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "PollingChanged", "The polling mode was changed.", &details);
	oh_polling_outcome_t outcome;
	char detail[200];
	oh_task_t task;
	s = oh_polling_set(req->cfg->pool, &p, ports, n, who, &ev, &outcome, detail, sizeof detail,
	                   &task);
	json_decref(details);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	char field[120], msg[300];
	snprintf(field, sizeof field, "NodePorts.%.100s", detail);
	if (outcome == OH_POLLING_UNKNOWN_NODE) {
		snprintf(msg, sizeof msg, "There is no node named %s.", detail);
		api_error(resp, OH_E_NOT_FOUND, msg, field);
		return;
	}
	if (outcome == OH_POLLING_NO_PORT) {
		api_error(resp, OH_E_VALIDATION,
		          "There is no free port from BasePort up to 65535 for every node.",
		          "BasePort");
		return;
	}
	if (outcome == OH_POLLING_CLASH) {
		snprintf(msg, sizeof msg, "The port given to %s is another node's port.", detail);
		api_error(resp, OH_E_PORT_CLASH, msg, field);
		return;
	}
	api_task_accepted(req, resp, &task);
	oh_task_clear(&task);
}

void api_op_probeCluster(const api_req_t *req, api_resp_t *resp)
{
	oh_task_spec_t spec = {.name = "ClusterProbe",
	                       .description = "Call every node's ping from one node",
	                       .is_system = true,
	                       .max_attempts = 1};
	api_queue_task(req, resp, spec, "A cluster probe was queued.");
}

/* ---- topology ------------------------------------------------------------ */

static void warn(json_t *warnings, const char *code, const char *key, const char *value,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void warn(json_t *warnings, const char *code, const char *key, const char *value,
                 const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *w = oh_json_check(json_object());
	oh_json_set_new(w, "Code", json_string(code));
	oh_json_set_new(w, "Message", json_string(msg));
	if (key)
		oh_json_set_new(w, key, json_string(value));
	oh_json_check_rc(json_array_append_new(warnings, w));
}

typedef struct {
	json_t *counts;
} running_ctx_t;

static void count_running(void *ctx, const char *node, int64_t n)
{
	running_ctx_t *x = ctx;
	oh_json_set_new(x->counts, node, json_integer(n));
}

/* Tentacles missing a node that the topology names (the rest: the link). */
#define TOPOLOGY_FIRST_MISSING 10

/* What the topology and the health summary read. */
typedef struct {
	oh_node_list_t nodes;
	oh_storage_active_t active;
	oh_storage_check_list_t checks;
	oh_coverage_t coverage;
	json_t *running; /* node id -> running tasks */
	bool *node_ok;   /* nodes.n entries: the node proved every folder */
	json_t *storage; /* the StorageConfiguration resource */
	bool storage_ok;
} cluster_t;

static void cluster_free(cluster_t *c)
{
	oh_node_list_free(&c->nodes);
	oh_storage_check_list_free(&c->checks);
	oh_coverage_free(&c->coverage);
	json_decref(c->running);
	json_decref(c->storage);
	free(c->node_ok);
}

/* Fills *C (free it with cluster_free, also after a failure); running
 * tasks and Tentacle coverage only for the TOPOLOGY. */
static db_status_t cluster_load(const api_req_t *req, cluster_t *c, bool topology)
{
	memset(c, 0, sizeof *c);
	db_pool_t *pool = req->cfg->pool;
	running_ctx_t rc = {oh_json_check(json_object())};
	c->running = rc.counts;
	db_status_t s = oh_nodes_list(pool, req->cfg->offline_timeout_ms, &c->nodes);
	if (s == DB_OK && topology)
		s = oh_tasks_running_by_node(pool, count_running, &rc);
	if (s == DB_OK)
		s = oh_storage_active_get(pool, &c->active);
	if (s == DB_OK)
		s = oh_storage_checks_list(pool, &c->checks);
	if (s == DB_OK && topology)
		s = oh_coverage_load(pool, TOPOLOGY_FIRST_MISSING, &c->coverage);
	if (s != DB_OK)
		return s;
	c->node_ok = calloc(c->nodes.n ? c->nodes.n : 1, sizeof *c->node_ok);
	if (!c->node_ok)
		abort();
	c->storage =
	    api_storage_json(&c->nodes, &c->active, &c->checks, &c->storage_ok, c->node_ok);
	return DB_OK;
}

static const char *node_state(const oh_node_t *n, int64_t running)
{
	if (n->offline)
		return "Offline";
	if (n->maintenance)
		return running > 0 ? "Draining" : "Drained";
	return "Online";
}

void api_op_getTopology(const api_req_t *req, api_resp_t *resp)
{
	cluster_t c;
	db_status_t s = cluster_load(req, &c, true);
	if (s != DB_OK) {
		cluster_free(&c);
		api_db_error(resp, s);
		return;
	}
	const oh_node_list_t *nodes = &c.nodes;
	const oh_coverage_t *cov = &c.coverage;
	const bool *node_ok = c.node_ok;
	json_t *warnings = oh_json_check(json_array());

	json_t *list = oh_json_check(json_array());
	size_t online = 0;
	const char *version = NULL, *platform = NULL;
	bool skew = false, mix = false;
	for (size_t i = 0; i < nodes->n; i++) {
		const oh_node_t *n = &nodes->v[i];
		int64_t running = json_integer_value(json_object_get(c.running, n->id));
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Id", json_string(n->id));
		oh_json_set_new(o, "Name", json_string(n->name));
		oh_json_set_new(o, "State", json_string(node_state(n, running)));
		oh_json_set_new(o, "MaxConcurrentTasks", json_integer(n->max_tasks));
		oh_json_set_new(o, "RunningTasks", json_integer(running));
		oh_json_set_new(o, "LastSeen", oh_json_time(n->last_seen));
		oh_json_set_new(o, "Version", json_string(n->version));
		oh_json_set_new(o, "Platform", json_string(n->platform));
		oh_json_set_new(o, "PublicUrl", json_string(n->public_url));
		oh_json_set_new(o, "CommunicationsAddress", json_string(n->comms_address));
		oh_json_set_new(o, "CommunicationsPort", json_integer(n->comms_port));
		oh_json_set_new(o, "PollingPort",
		                cov->polling_settings.unique_port && n->polling_port > 0
		                    ? json_integer(n->polling_port)
		                    : json_null());
		oh_json_set_new(o, "StorageVerified", json_boolean(node_ok[i]));
		oh_json_check_rc(json_array_append_new(list, o));
		platform = platform ? platform : n->platform;
		mix = mix || strcmp(platform, n->platform) != 0;
		if (n->offline)
			continue;
		online++;
		version = version ? version : n->version;
		skew = skew || strcmp(version, n->version) != 0;
		if (!node_ok[i])
			warn(warnings, "StorageUnverified", "NodeId", n->id,
			     "%s has not proved it can use every storage folder: see Storage.",
			     n->name);
		for (size_t j = 0; j < i; j++) {
			const oh_node_t *m = &nodes->v[j];
			if (!m->offline && m->comms_port == n->comms_port &&
			    strcmp(m->comms_address, n->comms_address) == 0)
				warn(warnings, "CommsPortClash", "NodeId", n->id,
				     "%s and %s both listen for Tentacles on %s:%d.", m->name,
				     n->name, n->comms_address, n->comms_port);
		}
	}
	int total, largest;
	double lost;
	int taking = oh_nodes_capacity(nodes, &total, &largest, &lost);
	if (taking == 0)
		warn(warnings, "NoCapacity", NULL, NULL, "No online node takes work.");
	if (online == 1)
		warn(warnings, "SingleNode", NULL, NULL,
		     "Only one node is online: the cluster is not highly available.");
	if (skew)
		warn(warnings, "VersionSkew", NULL, NULL, "Online nodes run different versions.");
	if (mix)
		warn(warnings, "PlatformMix", NULL, NULL,
		     "Nodes run on different platforms: Windows and Linux nodes cannot share "
		     "paths.");
	for (int f = 0; f < OH_FOLDER__COUNT && online > 1; f++) {
		if (!c.active.f[f].set)
			warn(warnings, "StorageNotShared", "Folder", oh_folder_name((oh_folder_t)f),
			     "%s has no cluster path: each node uses a folder of its own.",
			     oh_folder_name((oh_folder_t)f));
	}

	/* Coverage as kept by the polls: counts, and the first Tentacles
	 * missing a node; the whole list is GET /api/tentacles?notPollingEveryNode=true. */
	int window = cov->polling_settings.poll_window_s;
	json_t *not_every = oh_json_check(json_array());
	for (size_t i = 0; i < cov->n; i++) {
		const oh_missing_t *m = &cov->v[i];
		json_t *names = oh_json_check(json_array());
		for (size_t k = 0; k < m->n_missing; k++)
			oh_json_check_rc(json_array_append_new(names, json_string(m->missing[k])));
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "Id", json_string(m->id));
		oh_json_set_new(o, "Name", json_string(m->name));
		oh_json_set_new(o, "MissingNodes", names);
		oh_json_check_rc(json_array_append_new(not_every, o));
		warn(warnings, "TentaclesNotPollingAllNodes", "TentacleId", m->id,
		     "Tentacle %s has not polled %zu online node(s) within %d s.", m->name,
		     m->n_missing, window);
	}
	if (cov->missing > (int64_t)cov->n)
		warn(warnings, "TentaclesNotPollingAllNodes", NULL, NULL,
		     "%lld Tentacle(s) have not polled every online node within %d s (see "
		     "/api/tentacles?notPollingEveryNode=true).",
		     (long long)cov->missing, window);
	if (cov->rereg)
		warn(warnings, "TentaclesNeedReRegistration", NULL, NULL,
		     "%lld Tentacle(s) must apply a new server list (see "
		     "/api/tentacles?needsReRegistration=true).",
		     (long long)cov->rereg);
	json_t *coverage = oh_json_check(json_object());
	oh_json_set_new(coverage, "Total", json_integer(cov->total));
	oh_json_set_new(coverage, "Polling", json_integer(cov->polling));
	oh_json_set_new(coverage, "Listening", json_integer(cov->listening));
	oh_json_set_new(coverage, "PollingEveryNode", json_integer(cov->polling - cov->missing));
	oh_json_set_new(coverage, "NotPollingEveryNode", not_every);
	oh_json_set_new(coverage, "NotPollingEveryNodeTotal", json_integer(cov->missing));
	oh_json_set_new(coverage, "NeedReRegistration", json_integer(cov->rereg));
	json_t *links = oh_json_check(json_object());
	oh_json_set_new(links, "NotPollingEveryNode",
	                json_string("/api/tentacles?notPollingEveryNode=true"));
	oh_json_set_new(links, "NeedReRegistration",
	                json_string("/api/tentacles?needsReRegistration=true"));
	oh_json_set_new(coverage, "Links", links);

	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Nodes", list);
	oh_json_set_new(o, "TotalCapacity", json_integer(total));
	oh_json_set_new(o, "LargestNodeCapacity", json_integer(largest));
	oh_json_set_new(o, "CapacityLostIfLargestNodeFailsPercent", json_real(lost));
	oh_json_set_new(o, "Storage", json_incref(c.storage));
	oh_json_set_new(o, "Polling", nat_json(&cov->polling_settings, nodes));
	oh_json_set_new(o, "Tentacles", coverage);
	oh_json_set_new(o, "Warnings", warnings);
	api_json(resp, 200, o);
	cluster_free(&c);
}

void api_op_getServerHealth(const api_req_t *req, api_resp_t *resp)
{
	cluster_t c;
	db_status_t s = cluster_load(req, &c, false);
	if (s != DB_OK) {
		cluster_free(&c);
		api_db_error(resp, s);
		return;
	}
	const oh_node_list_t *nodes = &c.nodes;
	bool storage_ok = c.storage_ok;
	size_t online = 0, draining = 0, offline = 0;
	for (size_t i = 0; i < nodes->n; i++) {
		if (nodes->v[i].offline)
			offline++;
		else {
			online++;
			draining += nodes->v[i].maintenance;
		}
	}
	int total, largest;
	double lost;
	int taking = oh_nodes_capacity(nodes, &total, &largest, &lost);
	bool all_draining = online > 0 && draining == online;
	bool normal = taking > 0 && offline == 0 && storage_ok;
	char desc[600];
	size_t len = 0;
	if (normal)
		len = (size_t)snprintf(desc, sizeof desc,
		                       "%zu node(s) online, %d taking work (capacity %d).", online,
		                       taking, total);
	else {
		len = (size_t)snprintf(desc, sizeof desc, "Not operating normally:");
		if (taking == 0 && len < sizeof desc)
			len += (size_t)snprintf(desc + len, sizeof desc - len,
			                        all_draining ? " every online node is draining;"
			                                     : " no node takes work;");
		if (offline && len < sizeof desc)
			len += (size_t)snprintf(desc + len, sizeof desc - len,
			                        " %zu node(s) offline;", offline);
		if (!storage_ok && len < sizeof desc)
			len += (size_t)snprintf(
			    desc + len, sizeof desc - len,
			    " a node has not proved it can use every storage folder;");
		if (len > 0 && len < sizeof desc && desc[len - 1] == ';')
			desc[len - 1] = '.';
	}
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string("ServerHealth"));
	oh_json_set_new(o, "IsOperatingNormally", json_boolean(normal));
	oh_json_set_new(o, "IsEntireClusterDrainingTasks", json_boolean(all_draining));
	oh_json_set_new(o, "IsEntireClusterReadOnly", json_false());
	oh_json_set_new(o, "Description", json_string(desc));
	api_json(resp, 200, o);
	cluster_free(&c);
}
