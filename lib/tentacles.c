/* Tentacles and polling: see tentacles.h. */
#include "tentacles.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/nodes_store.h"
#include "db/tentacles_store.h"
#include "events.h"
#include "idempotency.h"
#include "oh_crypto.h"
#include "tasks.h"

#define REFRESH_KIND "RefreshTentacleServers"

/* ---- polling settings -------------------------------------------------- */

static int setting_int(db_conn_t *c, const char *name, int def, db_status_t *s)
{
	char buf[32];
	*s = settings_store_get(c, name, buf, sizeof buf);
	if (*s == DB_NO_ROWS) {
		*s = DB_OK;
		return def;
	}
	return *s == DB_OK && buf[0] ? atoi(buf) : def;
}

static void setting_text(db_conn_t *c, const char *name, char *buf, size_t size, db_status_t *s)
{
	if (*s != DB_OK)
		return;
	*s = settings_store_get(c, name, buf, size);
	if (*s == DB_NO_ROWS)
		*s = DB_OK;
}

db_status_t oh_polling_get_tx(db_conn_t *c, oh_polling_t *out)
{
	memset(out, 0, sizeof *out);
	char mode[32] = "";
	db_status_t s = DB_OK;
	setting_text(c, "Polling.Mode", mode, sizeof mode, &s);
	out->unique_port = strcmp(mode, "UniquePort") == 0;
	setting_text(c, "Polling.LoadBalancerAddress", out->lb_address, sizeof out->lb_address, &s);
	setting_text(c, "Polling.ServerUrl", out->server_url, sizeof out->server_url, &s);
	setting_text(c, "Polling.ServerThumbprint", out->server_thumbprint,
	             sizeof out->server_thumbprint, &s);
	if (s == DB_OK)
		out->base_port = setting_int(c, "Polling.BasePort", OH_DEFAULT_POLL_PORT, &s);
	if (s == DB_OK)
		out->poll_window_s = setting_int(c, "Polling.PollWindowSeconds", 300, &s);
	return s;
}

static db_status_t polling_get_txn(db_conn_t *c, void *ctx)
{
	return oh_polling_get_tx(c, ctx);
}

db_status_t oh_polling_get(db_pool_t *pool, oh_polling_t *out)
{
	return db_txn(pool, DB_TXN_READ, polling_get_txn, out);
}

bool oh_server_entry_for(const oh_polling_t *p, const oh_node_t *n, oh_server_entry_t *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->node_id, sizeof out->node_id, "%s", n->id);
	snprintf(out->node_name, sizeof out->node_name, "%s", n->name);
	if (p->unique_port) {
		if (n->polling_port <= 0 || !p->lb_address[0])
			return false;
		snprintf(out->address, sizeof out->address, "%s", p->lb_address);
		out->port = n->polling_port;
	} else {
		snprintf(out->address, sizeof out->address, "%s", n->comms_address);
		out->port = n->comms_port;
	}
	return true;
}

/* Gives every node without a port the lowest free port from BASE. */
static db_status_t assign_ports(db_conn_t *c, const oh_node_list_t *nodes, int base)
{
	for (size_t i = 0; i < nodes->n; i++) {
		if (nodes->v[i].polling_port > 0)
			continue;
		int port = base;
		for (bool taken = true; taken && port <= 65535;) {
			taken = false;
			for (size_t j = 0; j < nodes->n && !taken; j++)
				taken = nodes->v[j].polling_port == port;
			if (taken)
				port++;
		}
		if (port > 65535)
			return DB_ABORT; /* no free port from the base: the caller says so */
		db_status_t s = tentacles_store_set_node_port(c, nodes->v[i].id, port);
		if (s != DB_OK)
			return s;
		nodes->v[i].polling_port = port;
	}
	return DB_OK;
}

typedef struct {
	const oh_polling_t *p;
	const oh_node_port_t *ports;
	size_t n;
	const char *by;
	const oh_event_spec_t *audit;
	oh_polling_outcome_t *outcome;
	char *detail;
	size_t detail_len;
	oh_task_t *task;
} polling_set_ctx_t;

static db_status_t polling_set_txn(db_conn_t *c, void *ctx)
{
	polling_set_ctx_t *x = ctx;
	*x->outcome = OH_POLLING_OK;
	x->detail[0] = '\0';
	oh_task_clear(x->task);
	char num[16];
	db_status_t s = tentacles_store_lock_polling(c);
	if (s == DB_OK)
		s = settings_store_put(c, "Polling.Mode",
		                       x->p->unique_port ? "UniquePort" : "UniqueAddress");
	if (s == DB_OK)
		s = settings_store_put(c, "Polling.LoadBalancerAddress", x->p->lb_address);
	if (s == DB_OK)
		s = settings_store_put(c, "Polling.ServerUrl", x->p->server_url);
	if (s == DB_OK)
		s = settings_store_put(c, "Polling.ServerThumbprint", x->p->server_thumbprint);
	snprintf(num, sizeof num, "%d", x->p->base_port);
	if (s == DB_OK)
		s = settings_store_put(c, "Polling.BasePort", num);
	snprintf(num, sizeof num, "%d", x->p->poll_window_s);
	if (s == DB_OK)
		s = settings_store_put(c, "Polling.PollWindowSeconds", num);
	/* Explicit ports: free them all first, so two nodes can swap. */
	oh_node_t node;
	for (size_t i = 0; s == DB_OK && i < x->n; i++) {
		s = nodes_store_get(c, x->ports[i].name, true, &node);
		if (s == DB_NO_ROWS) {
			*x->outcome = OH_POLLING_UNKNOWN_NODE;
			snprintf(x->detail, x->detail_len, "%s", x->ports[i].name);
			return DB_ABORT;
		}
		if (s == DB_OK)
			s = tentacles_store_set_node_port(c, node.id, 0);
	}
	for (size_t i = 0; s == DB_OK && i < x->n; i++) {
		s = nodes_store_get(c, x->ports[i].name, true, &node);
		if (s == DB_OK)
			s = tentacles_store_set_node_port(c, node.id, x->ports[i].port);
		if (s == DB_DUPLICATE) {
			*x->outcome = OH_POLLING_CLASH;
			snprintf(x->detail, x->detail_len, "%s", x->ports[i].name);
			return DB_ABORT;
		}
	}
	if (s == DB_OK && x->p->unique_port) {
		oh_node_list_t nodes;
		s = oh_nodes_list_tx(c, 1, &nodes);
		if (s == DB_OK) {
			s = assign_ports(c, &nodes, x->p->base_port);
			oh_node_list_free(&nodes);
		}
		if (s == DB_ABORT) {
			*x->outcome = OH_POLLING_NO_PORT;
			return DB_ABORT;
		}
	}
	if (s != DB_OK)
		return s;
	oh_task_spec_t spec = {.name = REFRESH_KIND,
	                       .description =
	                           "Bring every polling Tentacle's server list up to date",
	                       .is_system = true,
	                       .max_attempts = 5,
	                       .requested_by = x->by};
	s = oh_task_insert(c, &spec, x->task);
	if (s == DB_OK && x->audit) {
		oh_event_spec_t ev = *x->audit;
		ev.resource_id = x->task->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	return s;
}

db_status_t oh_polling_set(db_pool_t *pool, const oh_polling_t *p, const oh_node_port_t *ports,
                           size_t n, const char *requested_by, const oh_event_spec_t *audit,
                           oh_polling_outcome_t *outcome, char *detail, size_t detail_len,
                           oh_task_t *task)
{
	memset(task, 0, sizeof *task);
	polling_set_ctx_t x = {p, ports, n, requested_by, audit, outcome, detail, detail_len, task};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, polling_set_txn, &x);
	if (s == DB_ABORT && *outcome != OH_POLLING_OK)
		s = DB_OK;
	if (s != DB_OK || *outcome != OH_POLLING_OK)
		oh_task_clear(task);
	return s;
}

/* ---- Tentacles ---------------------------------------------------------- */

typedef struct {
	oh_tentacle_t *t;
	oh_idem_t *idem;
	const oh_event_spec_t *audit;
	oh_task_t *task;
	const char *task_id; /* chosen before the transaction */
} register_ctx_t;

static db_status_t register_txn(db_conn_t *c, void *ctx)
{
	register_ctx_t *x = ctx;
	oh_task_clear(x->task);
	db_status_t s = oh_idem_record_tx(c, x->idem, x->task_id);
	if (s != DB_OK)
		return s;
	s = tentacles_store_name_used(c, x->t->name);
	if (s == DB_OK)
		return DB_DUPLICATE; /* the name is taken */
	if (s != DB_NO_ROWS)
		return s;
	s = db_now_ms(c, &x->t->registered_at);
	if (s == DB_OK)
		s = tentacles_store_insert(c, x->t);
	if (s == DB_DUPLICATE)
		return DB_TRANSIENT; /* a concurrent insert: the retry sees it (name or key) */
	if (s != DB_OK)
		return s;
	json_t *args = json_object();
	if (!args || json_object_set_new(args, "TentacleId", json_string(x->t->id)) != 0)
		abort();
	char desc[300];
	snprintf(desc, sizeof desc, "Register Tentacle %s with every node", x->t->name);
	oh_task_spec_t spec = {.name = "RegisterTentacle",
	                       .description = desc,
	                       .arguments = args,
	                       .is_system = true,
	                       .max_attempts = 5,
	                       .id = x->task_id,
	                       .requested_by = x->t->registered_by};
	s = oh_task_insert(c, &spec, x->task);
	json_decref(args);
	if (s == DB_OK && x->audit) {
		oh_event_spec_t ev = *x->audit;
		ev.resource_id = x->t->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	return s;
}

/* Whether the registration a lost COMMIT was making exists. */
static db_status_t register_verify(db_conn_t *c, void *ctx)
{
	register_ctx_t *x = ctx;
	oh_task_clear(x->task);
	return oh_task_get_tx(c, x->task_id, x->task);
}

db_status_t oh_tentacle_register(db_pool_t *pool, oh_tentacle_t *t, oh_idem_t *idem,
                                 const oh_event_spec_t *audit, oh_task_t *task)
{
	memset(task, 0, sizeof *task);
	char hex[17], task_id[64];
	if (!oh_random_hex(hex, 8) || !oh_task_new_id(task_id, sizeof task_id))
		return DB_ERROR;
	snprintf(t->id, sizeof t->id, OH_TENTACLE_ID_PREFIX "%s", hex);
	register_ctx_t x = {t, idem, audit, task, task_id};
	db_status_t s = db_txn_verified(pool, register_txn, register_verify, &x);
	if (s != DB_OK)
		oh_task_clear(task);
	return s;
}

typedef struct {
	const char *id;
	oh_tentacle_t *out;
} get_ctx_t;

static db_status_t get_txn(db_conn_t *c, void *ctx)
{
	get_ctx_t *x = ctx;
	return tentacles_store_get(c, x->id, x->out);
}

db_status_t oh_tentacle_get(db_pool_t *pool, const char *id, oh_tentacle_t *out)
{
	get_ctx_t x = {id, out};
	return db_txn(pool, DB_TXN_READ, get_txn, &x);
}

static void list_add(void *ctx, const oh_tentacle_t *t)
{
	oh_tentacle_list_t *l = ctx;
	oh_tentacle_t *v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (!v)
		abort();
	l->v = v;
	l->v[l->n++] = *t;
}

typedef struct {
	bool only_rereg;
	oh_tentacle_list_t *out;
} list_ctx_t;

static db_status_t list_txn(db_conn_t *c, void *ctx)
{
	list_ctx_t *x = ctx;
	oh_tentacle_list_free(x->out);
	db_status_t s = tentacles_store_each(c, x->only_rereg, list_add, x->out);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t oh_tentacles_list(db_pool_t *pool, bool only_rereg, oh_tentacle_list_t *out)
{
	memset(out, 0, sizeof *out);
	list_ctx_t x = {only_rereg, out};
	db_status_t s = db_txn(pool, DB_TXN_READ, list_txn, &x);
	if (s != DB_OK)
		oh_tentacle_list_free(out);
	return s;
}

void oh_tentacle_list_free(oh_tentacle_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

db_status_t oh_tentacle_delete(db_pool_t *pool, const char *id, const oh_event_spec_t *audit)
{
	return oh_delete_audited(pool, tentacles_store_delete, id, audit);
}

/* ---- server entries and polls ------------------------------------------- */

static oh_tentacle_link_t *link_push(oh_link_list_t *l)
{
	oh_tentacle_link_t *v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (!v)
		abort();
	l->v = v;
	memset(&v[l->n], 0, sizeof v[l->n]);
	return &v[l->n++];
}

static void add_server(void *ctx, const char *tid, const char *nid, const char *addr, int port)
{
	oh_tentacle_link_t *k = link_push(ctx);
	snprintf(k->tentacle_id, sizeof k->tentacle_id, "%s", tid);
	snprintf(k->node_id, sizeof k->node_id, "%s", nid);
	snprintf(k->address, sizeof k->address, "%s", addr);
	k->port = port;
}

static void add_poll(void *ctx, const char *tid, const char *nid, int64_t at)
{
	oh_tentacle_link_t *k = link_push(ctx);
	snprintf(k->tentacle_id, sizeof k->tentacle_id, "%s", tid);
	snprintf(k->node_id, sizeof k->node_id, "%s", nid);
	k->last_poll = at;
}

typedef struct {
	const char *id;
	oh_link_list_t *out;
	int64_t *now;
} links_ctx_t;

static db_status_t servers_txn(db_conn_t *c, void *ctx)
{
	links_ctx_t *x = ctx;
	oh_link_list_free(x->out);
	db_status_t s = tentacles_store_servers(c, x->id, add_server, x->out);
	return s == DB_NO_ROWS ? DB_OK : s;
}

static db_status_t polls_txn(db_conn_t *c, void *ctx)
{
	links_ctx_t *x = ctx;
	oh_link_list_free(x->out);
	db_status_t s = x->now ? db_now_ms(c, x->now) : DB_OK;
	if (s == DB_OK)
		s = tentacles_store_polls(c, x->id, add_poll, x->out);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t oh_tentacle_servers(db_pool_t *pool, const char *id, oh_link_list_t *out)
{
	memset(out, 0, sizeof *out);
	links_ctx_t x = {id, out, NULL};
	db_status_t s = db_txn(pool, DB_TXN_READ, servers_txn, &x);
	if (s != DB_OK)
		oh_link_list_free(out);
	return s;
}

db_status_t oh_tentacle_polls(db_pool_t *pool, const char *id, oh_link_list_t *out, int64_t *db_now)
{
	memset(out, 0, sizeof *out);
	links_ctx_t x = {id, out, db_now};
	db_status_t s = db_txn(pool, DB_TXN_READ, polls_txn, &x);
	if (s != DB_OK)
		oh_link_list_free(out);
	return s;
}

void oh_link_list_free(oh_link_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

typedef struct {
	const char *id;
	int64_t *changed;
} refresh_ctx_t;

/* True when the recorded entries of TID in HAVE equal WANT (N entries). */
static bool same_entries(const oh_link_list_t *have, const char *tid, const oh_server_entry_t *want,
                         size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < have->n; i++) {
		const oh_tentacle_link_t *k = &have->v[i];
		if (strcmp(k->tentacle_id, tid) != 0)
			continue;
		count++;
		bool found = false;
		for (size_t j = 0; j < n && !found; j++)
			found = strcmp(want[j].node_id, k->node_id) == 0 &&
			        strcmp(want[j].address, k->address) == 0 && want[j].port == k->port;
		if (!found)
			return false;
	}
	return count == n;
}

static db_status_t refresh_txn(db_conn_t *c, void *ctx)
{
	refresh_ctx_t *x = ctx;
	*x->changed = 0;
	oh_polling_t p;
	memset(&p, 0, sizeof p);
	oh_node_list_t nodes = {0};
	oh_tentacle_list_t ts = {0};
	oh_link_list_t have = {0};
	oh_server_entry_t *want = NULL;
	int64_t now;
	db_status_t s = tentacles_store_lock_polling(c); /* ports are written below */
	if (s == DB_OK)
		s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = oh_polling_get_tx(c, &p);
	if (s == DB_OK)
		s = oh_nodes_list_tx(c, 1, &nodes);
	if (s == DB_OK && p.unique_port)
		s = assign_ports(c, &nodes, p.base_port);
	if (s == DB_OK) {
		if (x->id) {
			oh_tentacle_t t;
			s = tentacles_store_get(c, x->id, &t);
			if (s == DB_OK)
				list_add(&ts, &t);
		} else {
			s = tentacles_store_each(c, false, list_add, &ts);
			if (s == DB_NO_ROWS)
				s = DB_OK;
		}
	}
	if (s == DB_OK) {
		s = tentacles_store_servers(c, x->id, add_server, &have);
		if (s == DB_NO_ROWS)
			s = DB_OK;
	}
	want = calloc(nodes.n ? nodes.n : 1, sizeof *want);
	if (!want)
		abort();
	size_t nw = 0;
	for (size_t i = 0; i < nodes.n; i++) {
		if (oh_server_entry_for(&p, &nodes.v[i], &want[nw]))
			nw++;
	}
	for (size_t i = 0; s == DB_OK && i < ts.n; i++) {
		const oh_tentacle_t *t = &ts.v[i];
		if (!t->polling || same_entries(&have, t->id, want, nw))
			continue;
		s = tentacles_store_clear_servers(c, t->id);
		for (size_t j = 0; s == DB_OK && j < nw; j++)
			s = tentacles_store_add_server(c, t->id, want[j].node_id, want[j].address,
			                               want[j].port, now);
		/* A list recorded before has changed: the Tentacle must apply it. */
		if (s == DB_OK)
			s = tentacles_store_mark_changed(
			    c, t->id, now, t->servers_changed_at != 0 || t->needs_rereg);
		(*x->changed)++;
	}
	if (s == DB_OK && !x->id && *x->changed > 0) {
		char msg[200];
		snprintf(msg, sizeof msg,
		         "%lld polling Tentacle(s) have a new server list and must apply it.",
		         (long long)*x->changed);
		oh_event_spec_t ev = {.category = "TentacleServersChanged",
		                      .operation = REFRESH_KIND,
		                      .result = "Success",
		                      .message = msg};
		s = oh_event_record_tx(c, &ev, NULL);
	}
	free(want);
	oh_link_list_free(&have);
	oh_tentacle_list_free(&ts);
	oh_node_list_free(&nodes);
	return s;
}

db_status_t oh_tentacles_refresh(db_pool_t *pool, const char *id, int64_t *changed)
{
	int64_t n = 0;
	refresh_ctx_t x = {id, changed ? changed : &n};
	return db_txn(pool, DB_TXN_WRITE, refresh_txn, &x);
}

typedef struct {
	const char *id, *node;
	oh_poll_outcome_t *outcome;
	int64_t *at;
	bool *needs_rereg;
} poll_ctx_t;

static db_status_t poll_txn(db_conn_t *c, void *ctx)
{
	poll_ctx_t *x = ctx;
	*x->outcome = OH_POLL_OK;
	oh_tentacle_t t;
	db_status_t s = tentacles_store_get(c, x->id, &t);
	if (s == DB_NO_ROWS) {
		*x->outcome = OH_POLL_NOT_FOUND;
		return DB_OK;
	}
	if (s != DB_OK)
		return s;
	if (!t.polling) {
		*x->outcome = OH_POLL_NOT_POLLING;
		return DB_OK;
	}
	/* Polls of one Tentacle at several nodes at once: each locks the row
	 * before it writes, so the last to write sees every other poll and can
	 * clear the mark (else each would miss the others and none would); the
	 * row is read again under the lock, as a refresh may have changed it. */
	if (t.needs_rereg) {
		s = tentacles_store_lock(c, x->id);
		if (s == DB_OK)
			s = tentacles_store_get(c, x->id, &t);
		if (s == DB_NO_ROWS) {
			*x->outcome = OH_POLL_NOT_FOUND;
			return DB_OK;
		}
		if (s != DB_OK)
			return s;
	}
	s = db_now_ms(c, x->at);
	if (s == DB_OK)
		s = tentacles_store_put_poll(c, x->id, x->node, *x->at);
	if (s == DB_DUPLICATE)
		return DB_TRANSIENT; /* a first poll raced ours: the retry updates it */
	*x->needs_rereg = t.needs_rereg;
	if (s != DB_OK || !t.needs_rereg)
		return s;
	/* Re-registered once it polled every node on its list since the change. */
	oh_link_list_t servers = {0}, polls = {0};
	s = tentacles_store_servers(c, x->id, add_server, &servers);
	if (s == DB_OK || s == DB_NO_ROWS)
		s = tentacles_store_polls(c, x->id, add_poll, &polls);
	if (s == DB_NO_ROWS)
		s = DB_OK;
	bool all = s == DB_OK;
	for (size_t i = 0; all && i < servers.n; i++) {
		bool polled = false;
		for (size_t j = 0; j < polls.n && !polled; j++)
			polled = strcmp(polls.v[j].node_id, servers.v[i].node_id) == 0 &&
			         polls.v[j].last_poll >= t.servers_changed_at;
		all = polled;
	}
	if (all) {
		s = tentacles_store_clear_rereg(c, x->id);
		*x->needs_rereg = false;
	}
	oh_link_list_free(&servers);
	oh_link_list_free(&polls);
	return s;
}

db_status_t oh_tentacle_poll(db_pool_t *pool, const char *id, const char *node_id,
                             oh_poll_outcome_t *outcome, int64_t *at, bool *needs_rereg)
{
	poll_ctx_t x = {id, node_id, outcome, at, needs_rereg};
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, poll_txn, &x);
}

typedef struct {
	const char *id, *status, *detail;
} health_ctx_t;

static db_status_t health_txn(db_conn_t *c, void *ctx)
{
	health_ctx_t *x = ctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	return s == DB_OK ? tentacles_store_set_health(c, x->id, x->status, x->detail, now) : s;
}

db_status_t oh_tentacle_set_health(db_pool_t *pool, const char *id, const char *status,
                                   const char *detail)
{
	health_ctx_t x = {id, status, detail};
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, health_txn, &x);
}

static db_status_t coverage_txn(db_conn_t *c, void *ctx)
{
	oh_coverage_t *x = ctx;
	oh_coverage_free(x);
	db_status_t s = db_now_ms(c, &x->now);
	if (s == DB_OK)
		s = oh_polling_get_tx(c, &x->polling);
	if (s == DB_OK)
		s = tentacles_store_each(c, false, list_add, &x->tentacles);
	if (s == DB_OK || s == DB_NO_ROWS)
		s = tentacles_store_polls(c, NULL, add_poll, &x->polls);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t oh_coverage_load(db_pool_t *pool, oh_coverage_t *out)
{
	memset(out, 0, sizeof *out);
	db_status_t s = db_txn(pool, DB_TXN_READ, coverage_txn, out);
	if (s != DB_OK)
		oh_coverage_free(out);
	return s;
}

void oh_coverage_free(oh_coverage_t *c)
{
	oh_tentacle_list_free(&c->tentacles);
	oh_link_list_free(&c->polls);
}

size_t oh_tentacle_missing_nodes(const oh_tentacle_t *t, const oh_node_list_t *nodes,
                                 const oh_link_list_t *polls, int64_t now, int window_s,
                                 const char **missing, size_t cap)
{
	size_t n = 0;
	for (size_t i = 0; i < nodes->n; i++) {
		if (nodes->v[i].offline)
			continue;
		bool recent = false;
		for (size_t j = 0; j < polls->n && !recent; j++)
			recent = strcmp(polls->v[j].tentacle_id, t->id) == 0 &&
			         strcmp(polls->v[j].node_id, nodes->v[i].id) == 0 &&
			         now - polls->v[j].last_poll <= (int64_t)window_s * 1000;
		if (!recent) {
			if (n < cap)
				missing[n] = nodes->v[i].name;
			n++;
		}
	}
	return n;
}

/* ---- housekeeping ---------------------------------------------------------- */

typedef struct {
	int64_t timeout;
	bool coverage;
	bool *queued;
} hk_ctx_t;

static db_status_t hk_txn(db_conn_t *c, void *ctx)
{
	hk_ctx_t *x = ctx;
	*x->queued = false;
	oh_polling_t p;
	memset(&p, 0, sizeof p);
	oh_node_list_t nodes = {0};
	oh_tentacle_list_t ts = {0};
	oh_link_list_t polls = {0};
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = oh_polling_get_tx(c, &p);
	if (s == DB_OK)
		s = oh_nodes_list_tx(c, x->timeout, &nodes);
	/* What the server lists derive from: mode, address and every node's
	 * entry.  A change queues one refresh for the whole cluster. */
	/* Each node's part fits in 400 bytes; the whole is sized to the nodes. */
	size_t cap = 300 + nodes.n * 400, len = 0;
	char *text = malloc(cap);
	if (!text)
		abort();
	len = (size_t)snprintf(text, cap, "%d|%s|", p.unique_port, p.lb_address);
	for (size_t i = 0; s == DB_OK && i < nodes.n && len < cap; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s,%s,%d,%d;", nodes.v[i].id,
		                        nodes.v[i].comms_address, nodes.v[i].comms_port,
		                        nodes.v[i].polling_port);
	char sig[65], old[80] = "";
	oh_sha256_hex(text, strlen(text), sig);
	free(text);
	if (s == DB_OK) {
		s = settings_store_get(c, "Polling.Signature", old, sizeof old);
		if (s == DB_NO_ROWS)
			s = DB_OK;
	}
	if (s == DB_OK && strcmp(old, sig) != 0) {
		s = settings_store_put(c, "Polling.Signature", sig);
		oh_task_t task = {0};
		oh_task_spec_t spec = {
		    .name = REFRESH_KIND,
		    .description = "Nodes or polling changed: bring every polling Tentacle's "
		                   "server list up to date",
		    .is_system = true,
		    .max_attempts = 5,
		    .requested_by = "housekeeping"};
		/* The first signature only records the state; and with no polling
		 * Tentacle and no ports to assign there is nothing to refresh. */
		int64_t polling = 0;
		if (s == DB_OK && old[0] && !p.unique_port)
			s = tentacles_store_count_polling(c, &polling);
		bool needed = old[0] && (p.unique_port || polling > 0);
		if (s == DB_OK && needed)
			s = oh_task_insert(c, &spec, &task);
		*x->queued = s == DB_OK && needed;
		oh_task_clear(&task);
	}
	if (s == DB_OK && x->coverage) {
		s = tentacles_store_each(c, false, list_add, &ts);
		if (s == DB_NO_ROWS)
			s = DB_OK;
	}
	if (s == DB_OK && ts.n) {
		s = tentacles_store_polls(c, NULL, add_poll, &polls);
		if (s == DB_NO_ROWS)
			s = DB_OK;
	}
	for (size_t i = 0; s == DB_OK && i < ts.n; i++) {
		const oh_tentacle_t *t = &ts.v[i];
		if (!t->polling || now - t->registered_at < (int64_t)p.poll_window_s * 1000)
			continue; /* give a new Tentacle one window to start polling */
		const char *missing[8];
		size_t n =
		    oh_tentacle_missing_nodes(t, &nodes, &polls, now, p.poll_window_s, missing, 8);
		if (n > 0 && t->coverage_warned_at == 0) {
			char msg[600];
			size_t ml =
			    (size_t)snprintf(msg, sizeof msg,
			                     "Tentacle %s has not polled %zu online node(s) within "
			                     "%d s:",
			                     t->name, n, p.poll_window_s);
			for (size_t k = 0; k < n && k < 8 && ml < sizeof msg; k++)
				ml +=
				    (size_t)snprintf(msg + ml, sizeof msg - ml, " %s", missing[k]);
			oh_event_spec_t ev = {.category = "TentacleNotPollingAllNodes",
			                      .operation = "Housekeeping",
			                      .resource_id = t->id,
			                      .result = "Failed",
			                      .message = msg};
			s = oh_event_record_tx(c, &ev, NULL);
			if (s == DB_OK)
				s = tentacles_store_set_warned(c, t->id, now);
		} else if (n == 0 && t->coverage_warned_at != 0) {
			s = tentacles_store_set_warned(c, t->id, 0);
		}
	}
	oh_link_list_free(&polls);
	oh_tentacle_list_free(&ts);
	oh_node_list_free(&nodes);
	return s;
}

db_status_t oh_tentacles_housekeeping(db_pool_t *pool, int64_t offline_timeout_ms, bool coverage,
                                      bool *queued)
{
	hk_ctx_t x = {offline_timeout_ms, coverage, queued};
	return db_txn(pool, DB_TXN_WRITE, hk_txn, &x);
}
