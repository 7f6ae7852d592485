#include "managed_clusters.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db/maintenance_store.h"
#include "events.h"
#include "idempotency.h"
#include "node_state.h"
#include "oh_crypto.h"
#include "oh_json.h"

#define KIND_CHECK_TENTACLES "CheckManagedTentacles"

/* Fills M's configurable part from SPEC (not Id, key or times). */
static void apply_spec(oh_managed_cluster_t *m, const oh_mc_spec_t *spec)
{
	snprintf(m->name, sizeof m->name, "%s", spec->name);
	snprintf(m->lb_url, sizeof m->lb_url, "%s", spec->lb_url);
	snprintf(m->space_id, sizeof m->space_id, "%s",
	         spec->space_id && *spec->space_id ? spec->space_id : "Spaces-1");
	m->verify_tls = spec->verify_tls;
	snprintf(m->ca_file, sizeof m->ca_file, "%s", spec->ca_file ? spec->ca_file : "");
	snprintf(m->thumbprint, sizeof m->thumbprint, "%s",
	         spec->thumbprint ? spec->thumbprint : "");
	for (char *p = m->thumbprint; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	m->n_nodes = spec->n_nodes < OH_MC_MAX_NODES ? spec->n_nodes : OH_MC_MAX_NODES;
	for (size_t i = 0; i < m->n_nodes; i++)
		m->nodes[i] = spec->nodes[i];
}

/* Seals KEY into M, with the prefix that lets people recognise it. */
static bool seal_key(oh_managed_cluster_t *m, const unsigned char secrets_key[32], const char *key)
{
	snprintf(m->key_prefix, sizeof m->key_prefix, "%.8s", key);
	return oh_seal(secrets_key, key, m->sealed_key, sizeof m->sealed_key);
}

typedef struct {
	oh_managed_cluster_t *m;
	const struct oh_event_spec *audit;
	oh_mc_outcome_t *outcome;
	int64_t *marked;
	const oh_mc_spec_t *spec;
	bool key_given;
} change_ctx_t;

static db_status_t create_txn(db_conn_t *c, void *vctx)
{
	change_ctx_t *x = vctx;
	db_status_t s = managed_store_name_used(c, x->m->name, NULL);
	if (s == DB_OK) {
		*x->outcome = OH_MC_NAME_IN_USE;
		return DB_ABORT;
	}
	if (s != DB_NO_ROWS)
		return s;
	s = db_now_ms(c, &x->m->created_at);
	x->m->updated_at = x->m->created_at;
	if (s == DB_OK)
		s = managed_store_insert(c, x->m);
	if (s == DB_OK && x->audit) {
		oh_event_spec_t ev = *x->audit;
		ev.resource_id = x->m->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	*x->outcome = OH_MC_OK;
	return s;
}

static db_status_t create_verify(db_conn_t *c, void *vctx)
{
	change_ctx_t *x = vctx;
	oh_managed_cluster_t *found = malloc(sizeof *found);
	if (!found)
		return DB_ERROR;
	db_status_t s = managed_store_get(c, x->m->id, found);
	free(found);
	return s;
}

db_status_t oh_mc_create(db_pool_t *pool, const unsigned char secrets_key[32],
                         const oh_mc_spec_t *spec, const char *created_by,
                         const struct oh_event_spec *audit, oh_managed_cluster_t *out,
                         oh_mc_outcome_t *outcome)
{
	memset(out, 0, sizeof *out);
	char rnd[21];
	if (!oh_random_hex(rnd, 10) || !seal_key(out, secrets_key, spec->api_key))
		return DB_ERROR;
	snprintf(out->id, sizeof out->id, OH_MC_ID_PREFIX "%s", rnd);
	apply_spec(out, spec);
	out->nodes_version = 1;
	snprintf(out->created_by, sizeof out->created_by, "%s", created_by);
	change_ctx_t x = {.m = out, .audit = audit, .outcome = outcome};
	db_status_t s = db_txn_verified(pool, create_txn, create_verify, &x);
	if (s == DB_ABORT)
		return DB_OK;
	return s;
}

/* Whether the node set differs in what polling Tentacles depend on. */
static bool nodes_changed(const oh_managed_cluster_t *a, const oh_managed_cluster_t *b)
{
	if (a->n_nodes != b->n_nodes)
		return true;
	for (size_t i = 0; i < a->n_nodes; i++) {
		const oh_mc_node_t *p = &a->nodes[i];
		const oh_mc_node_t *q = oh_mc_node_find(b, p->name);
		if (!q || strcmp(p->comms_address, q->comms_address) != 0 ||
		    p->comms_port != q->comms_port)
			return true;
	}
	return false;
}

static db_status_t replace_txn(db_conn_t *c, void *vctx)
{
	change_ctx_t *x = vctx;
	oh_managed_cluster_t *old = malloc(sizeof *old);
	if (!old)
		return DB_ERROR;
	db_status_t s = managed_store_get(c, x->m->id, old);
	if (s == DB_NO_ROWS) {
		*x->outcome = OH_MC_NOT_FOUND;
		free(old);
		return DB_ABORT;
	}
	if (s == DB_OK)
		s = managed_store_name_used(c, x->spec->name, x->m->id);
	if (s == DB_OK) {
		*x->outcome = OH_MC_NAME_IN_USE;
		free(old);
		return DB_ABORT;
	}
	if (s != DB_NO_ROWS) {
		free(old);
		return s;
	}
	/* The rest comes from the stored cluster; the spec changes what it says. */
	char sealed[sizeof old->sealed_key], prefix[sizeof old->key_prefix];
	memcpy(sealed, x->m->sealed_key, sizeof sealed);
	memcpy(prefix, x->m->key_prefix, sizeof prefix);
	char id[sizeof old->id];
	memcpy(id, x->m->id, sizeof id);
	*x->m = *old;
	apply_spec(x->m, x->spec);
	if (x->key_given) {
		memcpy(x->m->sealed_key, sealed, sizeof sealed);
		memcpy(x->m->key_prefix, prefix, sizeof prefix);
	}
	/* A discovered node keeps its Octopus Id while its name stays. */
	for (size_t i = 0; i < x->m->n_nodes; i++) {
		const oh_mc_node_t *was = oh_mc_node_find(old, x->m->nodes[i].name);
		snprintf(x->m->nodes[i].octopus_id, sizeof x->m->nodes[i].octopus_id, "%s",
		         was ? was->octopus_id : "");
	}
	bool changed = nodes_changed(old, x->m);
	if (changed)
		x->m->nodes_version = old->nodes_version + 1;
	free(old);
	int64_t rows = 0;
	s = db_now_ms(c, &x->m->updated_at);
	if (s == DB_OK)
		s = managed_store_update(c, x->m, &rows);
	*x->marked = 0;
	if (s == DB_OK && changed)
		s = managed_store_tentacles_mark(c, x->m->id, x->m->nodes_version, x->marked);
	if (s == DB_OK && x->audit)
		s = oh_event_record_tx(c, x->audit, NULL);
	if (s == DB_OK && *x->marked > 0) {
		char msg[300];
		snprintf(msg, sizeof msg,
		         "The nodes of %s changed: %lld polling Tentacle(s) must be re-registered.",
		         x->m->name, (long long)*x->marked);
		oh_event_spec_t ev = {.category = "TentacleServersChanged",
		                      .operation = "replaceManagedCluster",
		                      .resource_id = x->m->id,
		                      .result = "Success",
		                      .message = msg};
		s = oh_event_record_tx(c, &ev, NULL);
	}
	*x->outcome = OH_MC_OK;
	return s;
}

db_status_t oh_mc_replace(db_pool_t *pool, const unsigned char secrets_key[32], const char *id,
                          const oh_mc_spec_t *spec, const struct oh_event_spec *audit,
                          oh_managed_cluster_t *out, oh_mc_outcome_t *outcome, int64_t *marked)
{
	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", id);
	*marked = 0;
	if (spec->api_key && !seal_key(out, secrets_key, spec->api_key))
		return DB_ERROR;
	change_ctx_t x = {.m = out,
	                  .audit = audit,
	                  .outcome = outcome,
	                  .marked = marked,
	                  .spec = spec,
	                  .key_given = spec->api_key != NULL};
	/* Replacing with the same values is harmless: run again after a lost
	 * COMMIT. */
	db_status_t s = db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, replace_txn, &x);
	return s == DB_ABORT ? DB_OK : s;
}

typedef struct {
	const char *id;
	oh_managed_cluster_t *out;
} get_ctx_t;

static db_status_t get_txn(db_conn_t *c, void *vctx)
{
	get_ctx_t *x = vctx;
	return managed_store_get(c, x->id, x->out);
}

db_status_t oh_mc_get(db_pool_t *pool, const char *id, oh_managed_cluster_t *out)
{
	get_ctx_t x = {id, out};
	return db_txn(pool, DB_TXN_READ, get_txn, &x);
}

static void collect(void *vctx, const oh_managed_cluster_t *m)
{
	oh_mc_list_t *l = vctx;
	oh_managed_cluster_t *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (!nv)
		abort();
	l->v = nv;
	l->v[l->n++] = *m;
}

/* Nodes arrive by cluster: the page's clusters are searched from the last
 * one matched. */
typedef struct {
	oh_mc_list_t *l;
	size_t at;
} nodes_ctx_t;

static void add_node(void *vctx, const char *cluster_id, const oh_mc_node_t *n)
{
	nodes_ctx_t *x = vctx;
	for (size_t k = 0; k < x->l->n; k++) {
		size_t i = (x->at + k) % x->l->n;
		oh_managed_cluster_t *m = &x->l->v[i];
		if (strcmp(m->id, cluster_id) == 0) {
			x->at = i;
			if (m->n_nodes < OH_MC_MAX_NODES)
				m->nodes[m->n_nodes++] = *n;
			return;
		}
	}
}

typedef struct {
	const char *after;
	int64_t skip, take;
	oh_mc_list_t *out;
} list_ctx_t;

static db_status_t list_txn(db_conn_t *c, void *vctx)
{
	list_ctx_t *x = vctx;
	oh_mc_list_free(x->out);
	db_status_t s =
	    managed_store_page(c, x->after, x->skip, x->take, collect, x->out, &x->out->total);
	if (s != DB_OK || x->out->n == 0)
		return s;
	const char **ids = malloc(x->out->n * sizeof *ids);
	if (!ids)
		abort();
	for (size_t i = 0; i < x->out->n; i++) {
		ids[i] = x->out->v[i].id;
		x->out->v[i].n_nodes = 0;
	}
	nodes_ctx_t nx = {x->out, 0};
	s = managed_store_nodes_of(c, ids, x->out->n, add_node, &nx);
	free(ids);
	return s;
}

db_status_t oh_mc_list(db_pool_t *pool, const char *after, int64_t skip, int64_t take,
                       oh_mc_list_t *out)
{
	memset(out, 0, sizeof *out);
	list_ctx_t x = {after, skip, take, out};
	db_status_t s = db_txn(pool, DB_TXN_READ, list_txn, &x);
	if (s != DB_OK)
		oh_mc_list_free(out);
	return s;
}

void oh_mc_list_free(oh_mc_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->total = 0;
}

typedef struct {
	const char *id;
	const struct oh_event_spec *audit;
	oh_mc_outcome_t *outcome;
} del_ctx_t;

static db_status_t delete_txn(db_conn_t *c, void *vctx)
{
	del_ctx_t *x = vctx;
	int64_t active = 0, rows = 0;
	db_status_t s = maint_store_count_active(c, x->id, &active);
	if (s != DB_OK)
		return s;
	if (active > 0) {
		*x->outcome = OH_MC_IN_MAINTENANCE;
		return DB_ABORT;
	}
	s = managed_store_delete(c, x->id, &rows);
	if (s != DB_OK)
		return s;
	if (rows == 0) {
		*x->outcome = OH_MC_NOT_FOUND;
		return DB_ABORT;
	}
	*x->outcome = OH_MC_OK;
	return x->audit ? oh_event_record_tx(c, x->audit, NULL) : DB_OK;
}

static db_status_t delete_verify(db_conn_t *c, void *vctx)
{
	del_ctx_t *x = vctx;
	oh_managed_cluster_t *m = malloc(sizeof *m);
	if (!m)
		return DB_ERROR;
	db_status_t s = managed_store_get(c, x->id, m);
	free(m);
	if (s == DB_NO_ROWS) {
		*x->outcome = OH_MC_OK;
		return DB_OK;
	}
	return s == DB_OK ? DB_NO_ROWS : s;
}

db_status_t oh_mc_delete(db_pool_t *pool, const char *id, const struct oh_event_spec *audit,
                         oh_mc_outcome_t *outcome)
{
	del_ctx_t x = {id, audit, outcome};
	db_status_t s = db_txn_verified(pool, delete_txn, delete_verify, &x);
	return s == DB_ABORT ? DB_OK : s;
}

const oh_mc_node_t *oh_mc_node_find(const oh_managed_cluster_t *m, const char *name)
{
	for (size_t i = 0; i < m->n_nodes; i++)
		if (strcasecmp(m->nodes[i].name, name) == 0 ||
		    (m->nodes[i].octopus_id[0] && strcmp(m->nodes[i].octopus_id, name) == 0))
			return &m->nodes[i];
	return NULL;
}

const oh_octo_node_t *oh_mc_match(const oh_octo_nodes_t *l, const oh_mc_node_t *n)
{
	for (size_t i = 0; n->octopus_id[0] && i < l->n; i++)
		if (strcmp(l->v[i].id, n->octopus_id) == 0)
			return &l->v[i];
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].name, n->name) == 0)
			return &l->v[i];
	return NULL;
}

bool oh_mc_client(const oh_managed_cluster_t *m, const unsigned char secrets_key[32],
                  const oh_outbound_policy_t *policy, oh_octo_t *o, char **key)
{
	*key = oh_unseal(secrets_key, m->sealed_key);
	memset(o, 0, sizeof *o);
	if (!*key)
		return false;
	o->base_url = m->lb_url;
	o->api_key = *key;
	o->ca_file = m->ca_file[0] ? m->ca_file : NULL;
	o->pin = m->thumbprint[0] ? m->thumbprint : NULL;
	o->insecure = !m->verify_tls && !o->pin;
	o->policy = policy;
	o->timeout_ms = 5000;
	o->attempts = 3;
	o->backoff_ms = 300;
	return true;
}

void oh_mc_key_free(char *key)
{
	if (key)
		OPENSSL_clear_free(key, strlen(key));
}

void oh_mc_topology_read(const oh_managed_cluster_t *m, const oh_octo_t *o, long ping_timeout_ms,
                         oh_mc_topology_t *out)
{
	memset(out, 0, sizeof *out);
	out->api = oh_octo_list_nodes(o, &out->remote, &out->api_http);
	for (size_t i = 0; i < m->n_nodes; i++) {
		oh_mc_topo_node_t *t = &out->nodes[out->n++];
		t->cfg = &m->nodes[i];
		const oh_octo_node_t *r = oh_mc_match(&out->remote, t->cfg);
		if (r) {
			t->listed = true;
			t->remote = *r;
		} else {
			t->remote.running = -1;
		}
		int64_t t0 = oh_mono_ms();
		t->ping = oh_octo_ping(o, t->cfg->url, ping_timeout_ms, t->ping_error,
		                       sizeof t->ping_error);
		t->ping_ms = (long)(oh_mono_ms() - t0);
		if (t->ping == 200)
			t->state = "Online";
		else if (t->ping == 418)
			t->state = t->listed && t->remote.running > 0 ? "Draining" : "Drained";
		else if (t->listed && t->remote.offline)
			t->state = "Offline";
		else
			t->state = "Unreachable";
	}
}

void oh_mc_topology_free(oh_mc_topology_t *t)
{
	oh_octo_nodes_free(&t->remote);
}

int oh_mc_topology_serving(const oh_mc_topology_t *t)
{
	int n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += t->nodes[i].ping == 200;
	return n;
}

/* ---- Tentacles ----------------------------------------------------------- */

typedef struct {
	oh_mc_tentacle_t *t;
	oh_idem_t *idem;
	const struct oh_event_spec *audit;
	oh_task_t *task;
	char task_id[64];
} treg_ctx_t;

static db_status_t treg_txn(db_conn_t *c, void *vctx)
{
	treg_ctx_t *x = vctx;
	oh_task_clear(x->task);
	oh_managed_cluster_t *m = malloc(sizeof *m);
	if (!m)
		return DB_ERROR;
	db_status_t s = managed_store_get(c, x->t->cluster_id, m);
	if (s == DB_OK)
		x->t->servers_version = m->nodes_version;
	free(m);
	if (s != DB_OK)
		return s;
	s = managed_store_tentacle_name_used(c, x->t->cluster_id, x->t->name);
	if (s == DB_OK)
		return DB_DUPLICATE;
	if (s != DB_NO_ROWS)
		return s;
	s = db_now_ms(c, &x->t->registered_at);
	if (s == DB_OK)
		s = managed_store_tentacle_insert(c, x->t);
	if (s != DB_OK)
		return s;
	json_t *args = oh_json_check(json_object());
	oh_json_set_new(args, "ClusterId", json_string(x->t->cluster_id));
	oh_json_set_new(args, "TentacleId", json_string(x->t->id));
	char desc[300];
	snprintf(desc, sizeof desc, "Check Tentacle %s against the managed cluster's machines",
	         x->t->name);
	oh_task_spec_t spec = {.name = KIND_CHECK_TENTACLES,
	                       .description = desc,
	                       .arguments = args,
	                       .is_system = true,
	                       .max_attempts = 3,
	                       .id = x->task_id,
	                       .idem = x->idem,
	                       .requested_by = x->t->registered_by};
	bool existed = false;
	s = oh_task_create_tx(c, &spec, x->task, &existed);
	json_decref(args);
	if (s == DB_OK && x->audit) {
		oh_event_spec_t ev = *x->audit;
		ev.resource_id = x->t->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	return s;
}

static db_status_t treg_verify(db_conn_t *c, void *vctx)
{
	treg_ctx_t *x = vctx;
	oh_task_clear(x->task);
	return oh_task_get_tx(c, x->task_id, x->task);
}

db_status_t oh_mc_tentacle_register(db_pool_t *pool, oh_mc_tentacle_t *t, struct oh_idem *idem,
                                    const struct oh_event_spec *audit, oh_task_t *task)
{
	memset(task, 0, sizeof *task);
	char rnd[21];
	if (!oh_random_hex(rnd, 10))
		return DB_ERROR;
	snprintf(t->id, sizeof t->id, OH_MC_TENTACLE_PREFIX "%s", rnd);
	treg_ctx_t x = {.t = t, .idem = idem, .audit = audit, .task = task};
	if (!oh_task_new_id(x.task_id, sizeof x.task_id))
		return DB_ERROR;
	return db_txn_verified(pool, treg_txn, treg_verify, &x);
}

static void collect_tentacle(void *vctx, const oh_mc_tentacle_t *t)
{
	oh_mc_tentacle_list_t *l = vctx;
	oh_mc_tentacle_t *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (!nv)
		abort();
	l->v = nv;
	l->v[l->n++] = *t;
}

typedef struct {
	const char *cluster_id;
	oh_mc_tentacle_list_t *out;
} tlist_ctx_t;

static db_status_t tlist_txn(db_conn_t *c, void *vctx)
{
	tlist_ctx_t *x = vctx;
	oh_mc_tentacle_list_free(x->out);
	return managed_store_tentacle_each(c, x->cluster_id, collect_tentacle, x->out);
}

db_status_t oh_mc_tentacles_list(db_pool_t *pool, const char *cluster_id,
                                 oh_mc_tentacle_list_t *out)
{
	memset(out, 0, sizeof *out);
	tlist_ctx_t x = {cluster_id, out};
	return db_txn(pool, DB_TXN_READ, tlist_txn, &x);
}

typedef struct {
	const char *cluster_id, *after;
	int64_t skip, take;
	oh_mc_tentacle_list_t *out;
} tpage_ctx_t;

static db_status_t tpage_txn(db_conn_t *c, void *vctx)
{
	tpage_ctx_t *x = vctx;
	oh_mc_tentacle_list_free(x->out);
	return managed_store_tentacle_page(c, x->cluster_id, x->after, x->skip, x->take,
	                                   collect_tentacle, x->out, &x->out->total);
}

db_status_t oh_mc_tentacles_page(db_pool_t *pool, const char *cluster_id, const char *after,
                                 int64_t skip, int64_t take, oh_mc_tentacle_list_t *out)
{
	memset(out, 0, sizeof *out);
	tpage_ctx_t x = {cluster_id, after, skip, take, out};
	db_status_t s = db_txn(pool, DB_TXN_READ, tpage_txn, &x);
	if (s != DB_OK)
		oh_mc_tentacle_list_free(out);
	return s;
}

void oh_mc_tentacle_list_free(oh_mc_tentacle_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->total = 0;
}

typedef struct {
	const char *id;
	oh_mc_tentacle_t *out;
	const struct oh_event_spec *audit;
} tget_ctx_t;

static db_status_t tget_txn(db_conn_t *c, void *vctx)
{
	tget_ctx_t *x = vctx;
	return managed_store_tentacle_get(c, x->id, x->out);
}

db_status_t oh_mc_tentacle_get(db_pool_t *pool, const char *id, oh_mc_tentacle_t *out)
{
	tget_ctx_t x = {id, out, NULL};
	return db_txn(pool, DB_TXN_READ, tget_txn, &x);
}

db_status_t oh_mc_tentacle_delete(db_pool_t *pool, const char *id,
                                  const struct oh_event_spec *audit)
{
	return oh_delete_audited(pool, managed_store_tentacle_delete, id, audit);
}

static db_status_t applied_txn(db_conn_t *c, void *vctx)
{
	tget_ctx_t *x = vctx;
	db_status_t s = managed_store_tentacle_get(c, x->id, x->out);
	if (s != DB_OK)
		return s;
	oh_managed_cluster_t *m = malloc(sizeof *m);
	if (!m)
		return DB_ERROR;
	s = managed_store_get(c, x->out->cluster_id, m);
	int version = m->nodes_version;
	free(m);
	int64_t rows = 0;
	if (s == DB_OK)
		s = managed_store_tentacle_applied(c, x->id, version, &rows);
	if (s == DB_OK) {
		x->out->servers_version = version;
		x->out->needs_rereg = false;
	}
	if (s == DB_OK && x->audit)
		s = oh_event_record_tx(c, x->audit, NULL);
	return s;
}

db_status_t oh_mc_tentacle_applied(db_pool_t *pool, const char *id,
                                   const struct oh_event_spec *audit, oh_mc_tentacle_t *out)
{
	tget_ctx_t x = {id, out, audit};
	return db_txn(pool, DB_TXN_WRITE, applied_txn, &x);
}

typedef struct {
	const char *id, *machine, *health, *detail;
} tcheck_ctx_t;

static db_status_t tcheck_txn(db_conn_t *c, void *vctx)
{
	tcheck_ctx_t *x = vctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	return s == DB_OK ? managed_store_tentacle_set_check(c, x->id, x->machine, x->health,
	                                                     x->detail, now)
	                  : s;
}

db_status_t oh_mc_tentacle_set_check(db_pool_t *pool, const char *id, const char *machine_id,
                                     const char *health, const char *detail)
{
	tcheck_ctx_t x = {id, machine_id, health, detail};
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, tcheck_txn, &x);
}

typedef struct {
	const char *id, *name, *octopus_id;
	bool last;
} oid_ctx_t;

static db_status_t oid_txn(db_conn_t *c, void *vctx)
{
	oid_ctx_t *x = vctx;
	db_status_t s = managed_store_set_octopus_id(c, x->id, x->name, x->octopus_id);
	if (s == DB_OK && x->last) {
		int64_t now;
		s = db_now_ms(c, &now);
		if (s == DB_OK)
			s = managed_store_set_discovered(c, x->id, now);
	}
	return s;
}

db_status_t oh_mc_set_octopus_id(db_pool_t *pool, const char *id, const char *name,
                                 const char *octopus_id, bool last)
{
	oid_ctx_t x = {id, name, octopus_id, last};
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, oid_txn, &x);
}
