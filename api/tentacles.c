/* /api/tentacles: registration, server lists with their command lines and
 * Tentacle.config entries, poll check-ins and health checks. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/oh_crypto.h"
#include "../lib/oh_json.h"
#include "../lib/tentacles.h"
#include "api_handlers_gen.h"

#define TENTACLES_BASE  "/api/tentacles"
#define KEY_PLACEHOLDER "API-YOUR-API-KEY"

/* The Tentacle resource (new reference).  NODES and POLLS (borrowed, may
 * be NULL) give its polls per online node; SERVERS counts its entries. */
static json_t *tentacle_json(const oh_tentacle_t *t, const oh_node_list_t *nodes,
                             const oh_link_list_t *polls, int64_t now, int window_s, size_t servers)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(t->id));
	oh_json_set_new(o, "Name", json_string(t->name));
	oh_json_set_new(o, "Thumbprint", json_string(t->thumbprint));
	oh_json_set_new(o, "CommunicationStyle",
	                json_string(t->polling ? "TentacleActive" : "TentaclePassive"));
	oh_json_set_new(o, "SubscriptionId",
	                t->subscription_id[0] ? json_string(t->subscription_id) : json_null());
	oh_json_set_new(o, "Uri", t->uri[0] ? json_string(t->uri) : json_null());
	oh_json_set_new(o, "RegisteredAt", oh_json_time(t->registered_at));
	oh_json_set_new(o, "RegisteredBy",
	                t->registered_by[0] ? json_string(t->registered_by) : json_null());
	oh_json_set_new(o, "ServerCount", json_integer((json_int_t)servers));
	oh_json_set_new(o, "NeedsReRegistration", json_boolean(t->needs_rereg));
	oh_json_set_new(o, "ServersChangedAt",
	                t->servers_changed_at ? oh_json_time(t->servers_changed_at) : json_null());
	json_t *list = oh_json_check(json_array());
	bool every = true;
	/* This Tentacle's polls first (a page holds every page Tentacle's), so
	 * the match per node is over its own polls only. */
	size_t mine_n = 0;
	const oh_tentacle_link_t **mine =
	    polls && polls->n ? malloc(polls->n * sizeof *mine) : NULL;
	if (polls && polls->n && !mine)
		abort();
	for (size_t j = 0; polls && j < polls->n; j++)
		if (strcmp(polls->v[j].tentacle_id, t->id) == 0)
			mine[mine_n++] = &polls->v[j];
	for (size_t i = 0; t->polling && nodes && i < nodes->n; i++) {
		const oh_node_t *n = &nodes->v[i];
		if (n->offline)
			continue;
		int64_t last = 0;
		for (size_t j = 0; j < mine_n; j++) {
			if (strcmp(mine[j]->node_id, n->id) == 0)
				last = mine[j]->last_poll;
		}
		bool within = last > 0 && now - last <= (int64_t)window_s * 1000;
		every = every && within;
		json_t *p = oh_json_check(json_object());
		oh_json_set_new(p, "NodeId", json_string(n->id));
		oh_json_set_new(p, "NodeName", json_string(n->name));
		oh_json_set_new(p, "LastPollAt", last ? oh_json_time(last) : json_null());
		oh_json_set_new(p, "WithinWindow", json_boolean(within));
		oh_json_check_rc(json_array_append_new(list, p));
	}
	free(mine);
	oh_json_set_new(o, "PollsEveryNode", t->polling ? json_boolean(every) : json_null());
	oh_json_set_new(o, "Polls", list);
	oh_json_set_new(o, "HealthStatus",
	                t->health_status[0] ? json_string(t->health_status) : json_null());
	oh_json_set_new(o, "HealthCheckedAt",
	                t->health_checked_at ? oh_json_time(t->health_checked_at) : json_null());
	oh_json_set_new(o, "HealthDetail",
	                t->health_detail[0] ? json_string(t->health_detail) : json_null());
	json_t *links = oh_json_check(json_object());
	char self[120];
	snprintf(self, sizeof self, TENTACLES_BASE "/%s", t->id);
	oh_json_set_new(links, "Self", json_string(self));
	oh_json_set_new(o, "Links", links);
	return o;
}

static size_t count_servers(const oh_link_list_t *servers, const char *id)
{
	size_t n = 0;
	for (size_t i = 0; i < servers->n; i++)
		n += strcmp(servers->v[i].tentacle_id, id) == 0;
	return n;
}

/* What a Tentacle listing needs besides the Tentacles themselves. */
typedef struct {
	oh_node_list_t nodes;
	oh_link_list_t polls, servers;
	oh_polling_t polling;
	int64_t now;
} context_t;

static void context_free(context_t *x)
{
	oh_node_list_free(&x->nodes);
	oh_link_list_free(&x->polls);
	oh_link_list_free(&x->servers);
}

static db_status_t context_load(const api_req_t *req, const char *id, context_t *x)
{
	memset(x, 0, sizeof *x);
	db_status_t s = oh_nodes_list(req->cfg->pool, req->cfg->offline_timeout_ms, &x->nodes);
	if (s == DB_OK)
		s = oh_tentacle_polls(req->cfg->pool, id, &x->polls, &x->now);
	if (s == DB_OK)
		s = oh_tentacle_servers(req->cfg->pool, id, &x->servers);
	if (s == DB_OK)
		s = oh_polling_get(req->cfg->pool, &x->polling);
	if (s != DB_OK)
		context_free(x);
	return s;
}

/* The server entry count of ID in COUNTS (Port holds the count). */
static size_t server_count(const oh_link_list_t *counts, const char *id)
{
	for (size_t i = 0; i < counts->n; i++)
		if (strcmp(counts->v[i].tentacle_id, id) == 0)
			return (size_t)counts->v[i].port;
	return 0;
}

void api_op_listTentacles(const api_req_t *req, api_resp_t *resp)
{
	api_paging_t pg;
	if (!api_paging(req, resp, &pg))
		return;
	oh_tentacle_filter_t f = {
	    .only_rereg = json_is_true(json_object_get(req->query, "needsReRegistration")),
	    .missing = json_is_true(json_object_get(req->query, "notPollingEveryNode")),
	    .after = pg.after,
	    .skip = pg.skip,
	    .take = pg.take};
	oh_tentacle_list_t ts;
	oh_link_list_t polls, counts;
	oh_page_context_t more = {.offline_timeout_ms = req->cfg->offline_timeout_ms};
	int64_t total = 0, now = 0;
	db_status_t s =
	    oh_tentacles_page(req->cfg->pool, &f, &ts, &total, &polls, &counts, &now, &more);
	if (s == DB_NO_ROWS) {
		api_paging_unknown_after(resp, "Tentacle");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
	} else {
		json_t *items = oh_json_check(json_array());
		for (size_t i = 0; i < ts.n; i++)
			oh_json_check_rc(json_array_append_new(
			    items, tentacle_json(&ts.v[i], &more.nodes, &polls, now,
			                         more.polling.poll_window_s,
			                         server_count(&counts, ts.v[i].id))));
		json_t *o = api_page("Tentacle", TENTACLES_BASE, items, total, pg.skip, pg.take);
		api_page_next(req, o, TENTACLES_BASE, ts.n, &pg, ts.n ? ts.v[ts.n - 1].id : NULL);
		api_json(resp, 200, o);
	}
	oh_node_list_free(&more.nodes);
	oh_tentacle_list_free(&ts);
	oh_link_list_free(&polls);
	oh_link_list_free(&counts);
}

/* Reads the Tentacle of the path's id into *T and its context into *X (free
 * it).  False when it answered instead: 404, 409 when POLLING_ONLY and the
 * Tentacle listens, or the database's error. */
static bool load_one(const api_req_t *req, api_resp_t *resp, bool polling_only, oh_tentacle_t *t,
                     context_t *x)
{
	const char *id = api_path_param(req, "id");
	db_status_t s = oh_tentacle_get(req->cfg->pool, id, t);
	if (s == DB_NO_ROWS) {
		api_error(resp, OH_E_NOT_FOUND, "There is no Tentacle with this Id.", "id");
		return false;
	}
	if (s == DB_OK && polling_only && !t->polling) {
		api_error(resp, OH_E_NOT_POLLING, NULL, "id");
		return false;
	}
	if (s == DB_OK)
		s = context_load(req, id, x);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return false;
	}
	return true;
}

void api_op_getTentacle(const api_req_t *req, api_resp_t *resp)
{
	const char *id = api_path_param(req, "id");
	oh_tentacle_t t;
	context_t x;
	if (!load_one(req, resp, false, &t, &x))
		return;
	api_json(resp, 200,
	         tentacle_json(&t, &x.nodes, &x.polls, x.now, x.polling.poll_window_s,
	                       count_servers(&x.servers, id)));
	context_free(&x);
}

void api_op_registerTentacle(const api_req_t *req, api_resp_t *resp)
{
	oh_tentacle_t t = {0};
	snprintf(t.name, sizeof t.name, "%s",
	         json_string_value(json_object_get(req->body, "Name")));
	const char *thumb = json_string_value(json_object_get(req->body, "Thumbprint"));
	for (size_t i = 0; i < 40 && thumb[i]; i++)
		t.thumbprint[i] = (char)toupper((unsigned char)thumb[i]);
	const char *style = json_string_value(json_object_get(req->body, "CommunicationStyle"));
	t.polling = strcmp(style, "TentacleActive") == 0;
	const char *sub = json_string_value(json_object_get(req->body, "SubscriptionId"));
	const char *uri = json_string_value(json_object_get(req->body, "Uri"));
	if (t.polling && uri) {
		api_error(resp, OH_E_VALIDATION,
		          "A polling Tentacle has no Uri: the nodes do not call it.", "Uri");
		return;
	}
	if (!t.polling && sub) {
		api_error(resp, OH_E_VALIDATION,
		          "A listening Tentacle has no SubscriptionId: it does not poll.",
		          "SubscriptionId");
		return;
	}
	if (!t.polling && !uri) {
		api_error(resp, OH_E_VALIDATION,
		          "A listening Tentacle needs its https Uri, e.g. https://web01:10933/.",
		          "Uri");
		return;
	}
	if (t.polling && sub) {
		snprintf(t.subscription_id, sizeof t.subscription_id, "%s", sub);
	} else if (t.polling) {
		char id[21];
		if (!oh_random_chars(id, 20, OH_SUBSCRIPTION_ALPHABET)) {
			api_error(resp, OH_E_INTERNAL, "No randomness for a subscription id.",
			          NULL);
			return;
		}
		snprintf(t.subscription_id, sizeof t.subscription_id, "poll://%s/", id);
	}
	if (uri)
		snprintf(t.uri, sizeof t.uri, "%s", uri);
	api_requester(req, t.registered_by, sizeof t.registered_by);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "TentacleRegistered", "A Tentacle was registered.", &details);
	oh_task_t task;
	db_status_t s = oh_tentacle_register(req->cfg->pool, &t, req->idem, &ev, &task);
	json_decref(details);
	if (s == DB_DUPLICATE) {
		api_error(resp, OH_E_TENTACLE_NAME_IN_USE, NULL, "Name");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	api_task_accepted(req, resp, &task);
	oh_task_clear(&task);
}

void api_op_deleteTentacle(const api_req_t *req, api_resp_t *resp)
{
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "TentacleDeleted", "A Tentacle was removed.", &details);
	db_status_t s = oh_tentacle_delete(req->cfg->pool, api_path_param(req, "id"), &ev);
	json_decref(details);
	if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no Tentacle with this Id.", "id");
	else if (s != DB_OK)
		api_db_error(resp, s);
	else
		resp->status = 204;
}

void api_op_getTentacleServers(const api_req_t *req, api_resp_t *resp)
{
	oh_tentacle_t t;
	context_t x;
	if (!load_one(req, resp, true, &t, &x))
		return;
	/* --server: the cluster's URL, else this node's. */
	char server[401] = "";
	snprintf(server, sizeof server, "%s", x.polling.server_url);
	for (size_t i = 0; !server[0] && i < x.nodes.n; i++) {
		if (strcmp(x.nodes.v[i].id, req->cfg->self_node_id) == 0)
			snprintf(server, sizeof server, "%s", x.nodes.v[i].public_url);
	}
	json_t *servers = oh_json_check(json_array());
	json_t *commands = oh_json_check(json_array());
	json_t *trusted = oh_json_check(json_array());
	for (size_t i = 0; i < x.servers.n; i++) {
		const oh_tentacle_link_t *k = &x.servers.v[i];
		const char *name = k->node_id;
		for (size_t j = 0; j < x.nodes.n; j++) {
			if (strcmp(x.nodes.v[j].id, k->node_id) == 0)
				name = x.nodes.v[j].name;
		}
		char uri[300];
		snprintf(uri, sizeof uri, "https://%s:%d", k->address, k->port);
		json_t *o = oh_json_check(json_object());
		oh_json_set_new(o, "NodeId", json_string(k->node_id));
		oh_json_set_new(o, "NodeName", json_string(name));
		oh_json_set_new(o, "Address", json_string(k->address));
		oh_json_set_new(o, "Port", json_integer(k->port));
		oh_json_set_new(o, "Uri", json_string(uri));
		oh_json_check_rc(json_array_append_new(servers, o));
		/* UniqueAddress: each node at its own address; UniquePort: the load
		 * balancer (the --server host) on the node's own port. */
		char cmd[1200];
		int n = snprintf(cmd, sizeof cmd,
		                 "Tentacle poll-server --server=%s --apiKey=" KEY_PLACEHOLDER
		                 " --server-comms-port=%d",
		                 server, k->port);
		if (!x.polling.unique_port && n > 0 && (size_t)n < sizeof cmd)
			snprintf(cmd + n, sizeof cmd - (size_t)n, " --server-comms-address=%s",
			         uri);
		oh_json_check_rc(json_array_append_new(commands, json_string(cmd)));
		json_t *tr = oh_json_check(json_object());
		oh_json_set_new(tr, "Thumbprint",
		                x.polling.server_thumbprint[0]
		                    ? json_string(x.polling.server_thumbprint)
		                    : json_null());
		oh_json_set_new(tr, "CommunicationStyle", json_integer(2));
		oh_json_set_new(tr, "Address", json_string(uri));
		oh_json_set_new(tr, "Squid", json_null());
		oh_json_set_new(tr, "SubscriptionId", json_string(t.subscription_id));
		oh_json_check_rc(json_array_append_new(trusted, tr));
	}
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "TentacleId", json_string(t.id));
	oh_json_set_new(o, "TentacleName", json_string(t.name));
	oh_json_set_new(o, "Mode",
	                json_string(x.polling.unique_port ? "UniquePort" : "UniqueAddress"));
	oh_json_set_new(o, "Servers", servers);
	oh_json_set_new(o, "Commands", commands);
	oh_json_set_new(o, "TrustedOctopusServers", trusted);
	api_json(resp, 200, o);
	context_free(&x);
}

void api_op_recordTentaclePoll(const api_req_t *req, api_resp_t *resp)
{
	const char *id = api_path_param(req, "id");
	oh_poll_outcome_t outcome;
	int64_t at = 0;
	bool rereg = false;
	db_status_t s =
	    oh_tentacle_poll(req->cfg->pool, id, req->cfg->self_node_id, &outcome, &at, &rereg);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	if (outcome == OH_POLL_NOT_FOUND) {
		api_error(resp, OH_E_NOT_FOUND, "There is no Tentacle with this Id.", "id");
		return;
	}
	if (outcome == OH_POLL_NOT_POLLING) {
		api_error(resp, OH_E_NOT_POLLING, NULL, "id");
		return;
	}
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "TentacleId", json_string(id));
	oh_json_set_new(o, "NodeId", json_string(req->cfg->self_node_id));
	oh_json_set_new(o, "PolledAt", oh_json_time(at));
	oh_json_set_new(o, "NeedsReRegistration", json_boolean(rereg));
	api_json(resp, 200, o);
}

void api_op_checkTentacleHealth(const api_req_t *req, api_resp_t *resp)
{
	json_t *args = oh_json_check(json_object());
	const json_t *ids = json_object_get(req->body, "TentacleIds");
	if (ids)
		oh_json_set_new(args, "TentacleIds", json_deep_copy(ids));
	oh_task_spec_t spec = {.name = "TentacleHealthCheck",
	                       .description = "Check listening Tentacles over HTTPS",
	                       .arguments = args,
	                       .is_system = true,
	                       .max_attempts = 1};
	api_queue_task(req, resp, spec, "A Tentacle health check was queued.");
	json_decref(args);
}
