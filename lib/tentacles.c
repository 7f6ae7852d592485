/* Tentacles and polling: see tentacles.h. */
#include "tentacles.h"

#include <stdint.h>
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

/* The poll window in seconds (one setting, not the whole polling row). */
static db_status_t coverage_window(db_conn_t *c, int *window)
{
	db_status_t s = DB_OK;
	*window = setting_int(c, "Polling.PollWindowSeconds", 300, &s);
	return s;
}

static const char *const polling_names[6] = {"Polling.Mode",      "Polling.LoadBalancerAddress",
                                             "Polling.ServerUrl", "Polling.ServerThumbprint",
                                             "Polling.BasePort",  "Polling.PollWindowSeconds"};

static void polling_setting(void *ctx, const char *name, const char *value)
{
	oh_polling_t *out = ctx;
	if (strcmp(name, polling_names[0]) == 0)
		out->unique_port = strcmp(value, "UniquePort") == 0;
	else if (strcmp(name, polling_names[1]) == 0)
		snprintf(out->lb_address, sizeof out->lb_address, "%s", value);
	else if (strcmp(name, polling_names[2]) == 0)
		snprintf(out->server_url, sizeof out->server_url, "%s", value);
	else if (strcmp(name, polling_names[3]) == 0)
		snprintf(out->server_thumbprint, sizeof out->server_thumbprint, "%s", value);
	else if (strcmp(name, polling_names[4]) == 0 && value[0])
		out->base_port = atoi(value);
	else if (strcmp(name, polling_names[5]) == 0 && value[0])
		out->poll_window_s = atoi(value);
}

db_status_t oh_polling_get_tx(db_conn_t *c, oh_polling_t *out)
{
	memset(out, 0, sizeof *out);
	out->base_port = OH_DEFAULT_POLL_PORT;
	out->poll_window_s = 300;
	/* One statement for the six settings: every Tentacle read needs them. */
	return settings_store_get_six(c, polling_names, polling_setting, out);
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
	int64_t oldest = 0;          /* a polling Tentacle misses every node until it polls */
	if (s == DB_OK && x->t->polling)
		s = tentacles_store_update_coverage(c, x->t->id, INT64_MAX, &oldest);
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

/* Appends T to the list CTX, doubling its capacity when full. */
static void list_add(void *ctx, const oh_tentacle_t *t)
{
	oh_tentacle_list_t *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		oh_tentacle_t *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			abort();
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *t;
}

void oh_tentacle_list_free(oh_tentacle_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static void add_server(void *ctx, const char *tid, const char *nid, const char *addr, int port);
static void add_poll(void *ctx, const char *tid, const char *nid, int64_t at);

static void add_count(void *ctx, const char *tid, int64_t n)
{
	add_server(ctx, tid, "", "", (int)n);
}

typedef struct {
	const oh_tentacle_filter_t *f;
	oh_tentacle_list_t *out;
	int64_t *total;
	oh_link_list_t *polls, *servers;
	int64_t *now;
	oh_page_context_t *more; /* or NULL */
} page_ctx_t;

static db_status_t page_txn(db_conn_t *c, void *ctx)
{
	page_ctx_t *x = ctx;
	oh_tentacle_list_free(x->out);
	oh_link_list_free(x->polls);
	oh_link_list_free(x->servers);
	oh_tentacle_filter_t f = *x->f;
	db_status_t s = db_now_ms(c, x->now);
	if (x->more) {
		/* What the page is shown with, in the same transaction: one
		 * round of BEGIN/COMMIT per request instead of three. */
		oh_node_list_free(&x->more->nodes);
		if (s == DB_OK)
			s = oh_nodes_list_tx(c, x->more->offline_timeout_ms, &x->more->nodes);
		if (s == DB_OK)
			s = oh_polling_get_tx(c, &x->more->polling);
	}
	int window = 0;
	if (s == DB_OK && f.missing)
		s = coverage_window(c, &window);
	f.missing_before = *x->now - (int64_t)window * 1000;
	if (s == DB_OK)
		s = tentacles_store_page(c, &f, list_add, x->out, x->total);
	if (s != DB_OK || x->out->n == 0)
		return s;
	const char **ids = malloc(x->out->n * sizeof *ids);
	if (!ids)
		abort();
	for (size_t i = 0; i < x->out->n; i++)
		ids[i] = x->out->v[i].id;
	s = tentacles_store_polls_of(c, ids, x->out->n, add_poll, x->polls);
	if (s == DB_OK)
		s = tentacles_store_server_counts(c, ids, x->out->n, add_count, x->servers);
	free(ids);
	return s;
}

db_status_t oh_tentacles_page(db_pool_t *pool, const oh_tentacle_filter_t *f,
                              oh_tentacle_list_t *out, int64_t *total, oh_link_list_t *polls,
                              oh_link_list_t *servers, int64_t *now, oh_page_context_t *more)
{
	memset(out, 0, sizeof *out);
	memset(polls, 0, sizeof *polls);
	memset(servers, 0, sizeof *servers);
	if (more)
		memset(&more->nodes, 0, sizeof more->nodes);
	page_ctx_t x = {f, out, total, polls, servers, now, more};
	db_status_t s = db_txn(pool, DB_TXN_READ, page_txn, &x);
	if (s != DB_OK) {
		oh_tentacle_list_free(out);
		oh_link_list_free(polls);
		oh_link_list_free(servers);
		if (more)
			oh_node_list_free(&more->nodes);
	}
	return s;
}

typedef struct {
	const char *after;
	int limit;
	oh_tentacle_list_t *out;
} listening_ctx_t;

static db_status_t listening_txn(db_conn_t *c, void *ctx)
{
	listening_ctx_t *x = ctx;
	oh_tentacle_list_free(x->out);
	return tentacles_store_by_style(c, false, x->after, x->limit, list_add, x->out);
}

db_status_t oh_tentacles_listening(db_pool_t *pool, const char *after, int limit,
                                   oh_tentacle_list_t *out)
{
	memset(out, 0, sizeof *out);
	listening_ctx_t x = {after, limit, out};
	db_status_t s = db_txn(pool, DB_TXN_READ, listening_txn, &x);
	if (s != DB_OK)
		oh_tentacle_list_free(out);
	return s;
}

db_status_t oh_tentacle_delete(db_pool_t *pool, const char *id, const oh_event_spec_t *audit)
{
	return oh_delete_audited(pool, tentacles_store_delete, id, audit);
}

/* ---- server entries and polls ------------------------------------------- */

/* A new zeroed entry at the end of L.  The capacity doubles, so filling a
 * list costs O(rows) copies, not O(rows^2). */
static oh_tentacle_link_t *link_push(oh_link_list_t *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		oh_tentacle_link_t *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			abort();
		l->v = v;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof l->v[l->n]);
	return &l->v[l->n++];
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
	l->n = l->cap = 0;
}

/* Polling Tentacles per refresh transaction. */
#define REFRESH_BATCH 200

typedef struct {
	const char *id;  /* one Tentacle, or NULL for a batch after CURSOR */
	char cursor[51]; /* the last Tentacle Id done */
	bool done;       /* no Tentacle after this batch */
	int64_t changed; /* in this batch */
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

/* One transaction: the Tentacle X->id, or the next batch of polling
 * Tentacles after X->cursor (never every Tentacle at once). */
static db_status_t refresh_txn(db_conn_t *c, void *ctx)
{
	refresh_ctx_t *x = ctx;
	x->changed = 0;
	oh_polling_t p;
	memset(&p, 0, sizeof p);
	oh_node_list_t nodes = {0};
	oh_tentacle_list_t ts = {0};
	oh_link_list_t have = {0};
	oh_server_entry_t *want = NULL;
	const char **ids = NULL;
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
			x->done = true;
		} else {
			s = tentacles_store_by_style(c, true, x->cursor, REFRESH_BATCH, list_add,
			                             &ts);
			x->done = ts.n < REFRESH_BATCH;
		}
	}
	if (s == DB_OK && ts.n) {
		ids = malloc(ts.n * sizeof *ids);
		if (!ids)
			abort();
		for (size_t i = 0; i < ts.n; i++)
			ids[i] = ts.v[i].id;
		s = tentacles_store_servers_of(c, ids, ts.n, add_server, &have);
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
		x->changed++;
	}
	if (s == DB_OK && ts.n)
		snprintf(x->cursor, sizeof x->cursor, "%s", ts.v[ts.n - 1].id);
	free(ids);
	free(want);
	oh_link_list_free(&have);
	oh_tentacle_list_free(&ts);
	oh_node_list_free(&nodes);
	return s;
}

static db_status_t refresh_event_txn(db_conn_t *c, void *ctx)
{
	int64_t changed = *(int64_t *)ctx;
	char msg[200];
	snprintf(msg, sizeof msg,
	         "%lld polling Tentacle(s) have a new server list and must apply it.",
	         (long long)changed);
	oh_event_spec_t ev = {.category = "TentacleServersChanged",
	                      .operation = REFRESH_KIND,
	                      .result = "Success",
	                      .message = msg};
	return oh_event_record_tx(c, &ev, NULL);
}

db_status_t oh_tentacles_refresh(db_pool_t *pool, const char *id, int64_t *changed)
{
	refresh_ctx_t x = {.id = id};
	int64_t total = 0;
	db_status_t s = DB_OK;
	while (s == DB_OK && !x.done) {
		s = db_txn(pool, DB_TXN_WRITE, refresh_txn, &x);
		if (s == DB_OK)
			total += x.changed;
	}
	if (s == DB_OK && !id && total > 0)
		s = db_txn(pool, DB_TXN_WRITE, refresh_event_txn, &total);
	if (changed)
		*changed = total;
	return s;
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
	 * clear the mark and compute its coverage (else each would miss the
	 * others); the row is read again under the lock, as a refresh may have
	 * changed it. */
	s = tentacles_store_lock(c, x->id);
	if (s == DB_OK)
		s = tentacles_store_get(c, x->id, &t);
	if (s == DB_NO_ROWS) {
		*x->outcome = OH_POLL_NOT_FOUND;
		return DB_OK;
	}
	if (s != DB_OK)
		return s;
	s = db_now_ms(c, x->at);
	if (s == DB_OK)
		s = tentacles_store_put_poll(c, x->id, x->node, *x->at);
	if (s == DB_DUPLICATE)
		return DB_TRANSIENT; /* a first poll raced ours: the retry updates it */
	/* Coverage follows the poll: O(nodes), never a pass over Tentacles. */
	if (s == DB_OK) {
		int window = 0;
		s = coverage_window(c, &window);
		int64_t oldest = 0;
		if (s == DB_OK)
			s = tentacles_store_update_coverage(
			    c, x->id, *x->at - (int64_t)window * 1000, &oldest);
	}
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

/* ---- coverage ------------------------------------------------------------- */

typedef struct {
	oh_coverage_t *out;
	size_t first, cap;
} cov_ctx_t;

static void add_missing(void *ctx, const char *tid, const char *name, const char *node)
{
	cov_ctx_t *x = ctx;
	oh_coverage_t *o = x->out;
	if (o->n == 0 || strcmp(o->v[o->n - 1].id, tid) != 0) {
		if (o->n == x->cap) {
			x->cap = x->cap ? x->cap * 2 : 16;
			oh_missing_t *v = realloc(o->v, x->cap * sizeof *v);
			if (!v)
				abort();
			o->v = v;
		}
		oh_missing_t *m = &o->v[o->n++];
		memset(m, 0, sizeof *m);
		snprintf(m->id, sizeof m->id, "%s", tid);
		snprintf(m->name, sizeof m->name, "%s", name);
	}
	oh_missing_t *m = &o->v[o->n - 1];
	if (m->n_missing < sizeof m->missing / sizeof m->missing[0])
		snprintf(m->missing[m->n_missing++], sizeof m->missing[0], "%s", node);
}

static db_status_t coverage_txn(db_conn_t *c, void *ctx)
{
	cov_ctx_t *x = ctx;
	oh_coverage_t *o = x->out;
	free(o->v);
	memset(o, 0, sizeof *o);
	x->cap = 0;
	db_status_t s = db_now_ms(c, &o->now);
	if (s == DB_OK)
		s = oh_polling_get_tx(c, &o->polling_settings);
	int64_t before = o->now - (int64_t)o->polling_settings.poll_window_s * 1000;
	oh_tentacle_counts_t n;
	if (s == DB_OK)
		s = tentacles_store_counts(c, before, &n);
	if (s == DB_OK) {
		o->total = n.total;
		o->polling = n.polling;
		o->listening = n.listening;
		o->rereg = n.rereg;
		o->missing = n.missing;
	}
	if (s == DB_OK && x->first > 0 && n.missing > 0)
		s = tentacles_store_missing(c, before, 0, false, (int)x->first, add_missing, x);
	return s;
}

db_status_t oh_coverage_load(db_pool_t *pool, size_t first, oh_coverage_t *out)
{
	memset(out, 0, sizeof *out);
	cov_ctx_t x = {out, first, 0};
	db_status_t s = db_txn(pool, DB_TXN_READ, coverage_txn, &x);
	if (s != DB_OK)
		oh_coverage_free(out);
	return s;
}

void oh_coverage_free(oh_coverage_t *c)
{
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* Polling Tentacles recomputed per transaction after the nodes changed,
 * and Tentacles warned about per pass. */
#define COVERAGE_BATCH 500
#define WARN_BATCH     100
#define CURSOR_KEY     "Coverage.Cursor"
#define CURSOR_DONE    "done"

typedef struct {
	char (*v)[101];
	size_t n, cap;
} ids_t;

static void add_id(void *ctx, const char *id)
{
	ids_t *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		char(*v)[101] = realloc(l->v, l->cap * sizeof *v);
		if (!v)
			abort();
		l->v = v;
	}
	snprintf(l->v[l->n++], sizeof l->v[0], "%s", id);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

typedef struct {
	int64_t timeout;
	bool changed;    /* the online nodes differ from the coverage nodes */
	bool pending;    /* a recompute is under way */
	char cursor[60]; /* where it is: "next:<Id>" or CURSOR_DONE */
	bool done;       /* a batch found no Tentacle after the cursor */
} sync_ctx_t;

/* Reads the online nodes (sorted) into ONLINE and compares them with the
 * coverage nodes; X->changed, X->pending and X->cursor say what is to do. */
static db_status_t sync_read(db_conn_t *c, sync_ctx_t *x, ids_t *online)
{
	oh_node_list_t nodes = {0};
	ids_t have = {0};
	online->n = 0;
	db_status_t s = oh_nodes_list_tx(c, x->timeout, &nodes);
	for (size_t i = 0; s == DB_OK && i < nodes.n; i++)
		if (!nodes.v[i].offline)
			add_id(online, nodes.v[i].id);
	if (online->n)
		qsort(online->v, online->n, sizeof online->v[0], cmp_id);
	if (s == DB_OK)
		s = tentacles_store_coverage_nodes(c, add_id, &have);
	if (have.n)
		qsort(have.v, have.n, sizeof have.v[0], cmp_id);
	x->changed = s == DB_OK && have.n != online->n;
	for (size_t i = 0; s == DB_OK && !x->changed && i < have.n; i++)
		x->changed = strcmp(have.v[i], online->v[i]) != 0;
	x->cursor[0] = '\0';
	if (s == DB_OK) {
		s = settings_store_get(c, CURSOR_KEY, x->cursor, sizeof x->cursor);
		if (s == DB_NO_ROWS) {
			s = DB_OK;
			snprintf(x->cursor, sizeof x->cursor, CURSOR_DONE);
		}
	}
	x->pending = strncmp(x->cursor, "next:", 5) == 0;
	free(have.v);
	oh_node_list_free(&nodes);
	return s;
}

static db_status_t sync_check_txn(db_conn_t *c, void *ctx)
{
	ids_t online = {0};
	db_status_t s = sync_read(c, ctx, &online);
	free(online.v);
	return s;
}

/* Under the coverage lock: records the online nodes and restarts the
 * recompute when they changed. */
static db_status_t sync_txn(db_conn_t *c, void *ctx)
{
	sync_ctx_t *x = ctx;
	ids_t online = {0};
	db_status_t s = tentacles_store_lock_coverage(c);
	if (s == DB_OK)
		s = sync_read(c, x, &online);
	if (s == DB_OK && x->changed) {
		const char **ids = malloc((online.n ? online.n : 1) * sizeof *ids);
		if (!ids)
			abort();
		for (size_t i = 0; i < online.n; i++)
			ids[i] = online.v[i];
		s = tentacles_store_set_coverage_nodes(c, ids, online.n);
		free(ids);
		if (s == DB_OK)
			s = settings_store_put(c, CURSOR_KEY, "next:");
		x->pending = true;
	}
	free(online.v);
	return s;
}

/* One batch of the recompute, from the cursor kept in the database (so any
 * node goes on where another stopped). */
static db_status_t batch_txn(db_conn_t *c, void *ctx)
{
	sync_ctx_t *x = ctx;
	char cursor[60] = "", last[51] = "";
	int n = 0, window = 0;
	int64_t now;
	db_status_t s = tentacles_store_lock_coverage(c);
	if (s == DB_OK)
		s = settings_store_get(c, CURSOR_KEY, cursor, sizeof cursor);
	if (s == DB_NO_ROWS || (s == DB_OK && strncmp(cursor, "next:", 5) != 0)) {
		x->done = true;
		return DB_OK;
	}
	if (s == DB_OK)
		s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = coverage_window(c, &window);
	if (s == DB_OK)
		s = tentacles_store_next_polling(c, cursor + 5, COVERAGE_BATCH, last, sizeof last,
		                                 &n);
	if (s == DB_OK && n > 0)
		s = tentacles_store_update_coverage_range(c, cursor + 5, last,
		                                          now - (int64_t)window * 1000);
	x->done = n < COVERAGE_BATCH;
	if (s == DB_OK) {
		char next[60];
		snprintf(next, sizeof next, "next:%s", last);
		s = settings_store_put(c, CURSOR_KEY, x->done ? CURSOR_DONE : next);
	}
	return s;
}

typedef struct {
	char id[51];
	char name[201];
	char nodes[400];
	size_t n;
} warn_t;

typedef struct {
	warn_t *v;
	size_t n;
} warns_t;

static void add_warn(void *ctx, const char *tid, const char *name, const char *node)
{
	warns_t *w = ctx;
	if (w->n == 0 || strcmp(w->v[w->n - 1].id, tid) != 0) {
		if (w->n == WARN_BATCH)
			return;
		warn_t *t = &w->v[w->n++];
		memset(t, 0, sizeof *t);
		snprintf(t->id, sizeof t->id, "%s", tid);
		snprintf(t->name, sizeof t->name, "%s", name);
	}
	warn_t *t = &w->v[w->n - 1];
	size_t len = strlen(t->nodes);
	if (t->n < 8 && len + strlen(node) + 2 < sizeof t->nodes)
		snprintf(t->nodes + len, sizeof t->nodes - len, " %s", node);
	t->n++;
}

typedef struct {
	bool lock; /* write: take the coverage lock and record */
	warns_t w;
} warn_ctx_t;

/* TentacleNotPollingAllNodes once per polling Tentacle that newly misses a
 * node (registered at least one window ago), a batch per pass: an index
 * range over the Tentacles not warned about yet. */
static db_status_t warn_txn(db_conn_t *c, void *ctx)
{
	warn_ctx_t *x = ctx;
	x->w.n = 0;
	int64_t now = 0;
	int window = 0;
	db_status_t s = x->lock ? tentacles_store_lock_coverage(c) : DB_OK;
	if (s == DB_OK)
		s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = coverage_window(c, &window);
	int64_t before = now - (int64_t)window * 1000;
	if (s == DB_OK)
		s = tentacles_store_missing(c, before, before, true, WARN_BATCH, add_warn, &x->w);
	for (size_t i = 0; s == DB_OK && x->lock && i < x->w.n; i++) {
		const warn_t *t = &x->w.v[i];
		char msg[700];
		snprintf(msg, sizeof msg,
		         "Tentacle %s has not polled %zu online node(s) within %d s:%s", t->name,
		         t->n, window, t->nodes);
		oh_event_spec_t ev = {.category = "TentacleNotPollingAllNodes",
		                      .operation = "Housekeeping",
		                      .resource_id = t->id,
		                      .result = "Failed",
		                      .message = msg};
		s = oh_event_record_tx(c, &ev, NULL);
		if (s == DB_OK)
			s = tentacles_store_set_warned(c, t->id, now);
	}
	return s;
}

db_status_t oh_tentacles_coverage_pass(db_pool_t *pool, int64_t offline_timeout_ms,
                                       const volatile bool *stop)
{
	sync_ctx_t x = {.timeout = offline_timeout_ms};
	/* Read first: the write transaction (and its lock) only when the nodes
	 * changed or a recompute is under way. */
	db_status_t s = db_txn(pool, DB_TXN_READ, sync_check_txn, &x);
	if (s == DB_OK && x.changed)
		s = db_txn(pool, DB_TXN_WRITE, sync_txn, &x);
	if (s == DB_OK && x.pending) {
		x.done = false;
		while (s == DB_OK && !x.done && !(stop && *stop))
			s = db_txn(pool, DB_TXN_WRITE, batch_txn, &x);
	}
	if (s != DB_OK)
		return s;
	warn_ctx_t w = {.lock = false};
	w.w.v = calloc(WARN_BATCH, sizeof *w.w.v);
	if (!w.w.v)
		abort();
	s = db_txn(pool, DB_TXN_READ, warn_txn, &w);
	if (s == DB_OK && w.w.n > 0) {
		w.lock = true;
		s = db_txn(pool, DB_TXN_WRITE, warn_txn, &w);
	}
	free(w.w.v);
	return s;
}

/* ---- housekeeping ---------------------------------------------------------- */

typedef struct {
	int64_t timeout;
	bool *queued;
	bool write;   /* else only find out whether the signature changed */
	bool changed; /* out */
} hk_ctx_t;

static db_status_t hk_txn(db_conn_t *c, void *ctx)
{
	hk_ctx_t *x = ctx;
	*x->queued = false;
	oh_polling_t p;
	memset(&p, 0, sizeof p);
	oh_node_list_t nodes = {0};
	/* Writers serialise on the polling lock, so two nodes never queue a
	 * refresh each for one change. */
	db_status_t s = x->write ? tentacles_store_lock_polling(c) : DB_OK;
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
	x->changed = s == DB_OK && strcmp(old, sig) != 0;
	if (x->changed && x->write) {
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
	oh_node_list_free(&nodes);
	return s;
}

db_status_t oh_tentacles_housekeeping(db_pool_t *pool, int64_t offline_timeout_ms, bool *queued)
{
	/* A read first: the write transaction only when something changed. */
	hk_ctx_t x = {offline_timeout_ms, queued, false, false};
	db_status_t s = db_txn(pool, DB_TXN_READ, hk_txn, &x);
	if (s != DB_OK || !x.changed)
		return s;
	x.write = true;
	return db_txn(pool, DB_TXN_WRITE, hk_txn, &x);
}
