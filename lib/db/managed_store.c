#include "managed_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_COLUMNS                                                                                 \
	"Id, Name, LoadBalancerUrl, SpaceId, SealedApiKey, ApiKeyPrefix, VerifyTls, CaFile, "      \
	"Thumbprint, NodesVersion, CreatedBy, CreatedAt, UpdatedAt, DiscoveredAt"

#define MT_COLUMNS                                                                                 \
	"Id, ClusterId, Name, Thumbprint, SubscriptionId, RegisteredAt, RegisteredBy, "            \
	"ServersVersion, NeedsReRegistration, MachineId, HealthStatus, CheckedAt, CheckDetail"

/* "" is stored as NULL for the optional columns. */
static db_param_t opt_text(const char *s)
{
	return s && *s ? DBP_TEXT(s) : DBP_NULL;
}

static db_status_t insert_nodes(db_conn_t *c, const oh_managed_cluster_t *m)
{
	db_status_t s = DB_OK;
	for (size_t i = 0; i < m->n_nodes && s == DB_OK; i++) {
		const oh_mc_node_t *n = &m->nodes[i];
		db_param_t p[] = {DBP_TEXT(m->id),
		                  DBP_INT(i),
		                  DBP_TEXT(n->name),
		                  DBP_TEXT(n->url),
		                  opt_text(n->comms_address),
		                  n->comms_port > 0 ? DBP_INT(n->comms_port) : DBP_NULL,
		                  opt_text(n->octopus_id)};
		s = db_exec(c,
		            "INSERT INTO ManagedClusterNodes (ClusterId, Position, Name, Url, "
		            "CommsAddress, CommsPort, OctopusNodeId) VALUES (?, ?, ?, ?, ?, ?, ?)",
		            p, 7, NULL);
	}
	return s;
}

db_status_t managed_store_insert(db_conn_t *c, const oh_managed_cluster_t *m)
{
	db_param_t p[] = {
	    DBP_TEXT(m->id),           DBP_TEXT(m->name),       DBP_TEXT(m->lb_url),
	    DBP_TEXT(m->space_id),     DBP_TEXT(m->sealed_key), DBP_TEXT(m->key_prefix),
	    DBP_INT(m->verify_tls),    opt_text(m->ca_file),    opt_text(m->thumbprint),
	    DBP_INT(m->nodes_version), DBP_TEXT(m->created_by), DBP_INT(m->created_at),
	    DBP_INT(m->updated_at)};
	db_status_t s =
	    db_exec(c,
	            "INSERT INTO ManagedClusters (Id, Name, LoadBalancerUrl, SpaceId, "
	            "SealedApiKey, ApiKeyPrefix, VerifyTls, CaFile, Thumbprint, "
	            "NodesVersion, CreatedBy, CreatedAt, UpdatedAt) VALUES (?, ?, ?, ?, "
	            "?, ?, ?, ?, ?, ?, ?, ?, ?)",
	            p, 13, NULL);
	return s == DB_OK ? insert_nodes(c, m) : s;
}

db_status_t managed_store_update(db_conn_t *c, const oh_managed_cluster_t *m, int64_t *rows)
{
	db_param_t p[] = {
	    DBP_TEXT(m->name),       DBP_TEXT(m->lb_url),     DBP_TEXT(m->space_id),
	    DBP_TEXT(m->sealed_key), DBP_TEXT(m->key_prefix), DBP_INT(m->verify_tls),
	    opt_text(m->ca_file),    opt_text(m->thumbprint), DBP_INT(m->nodes_version),
	    DBP_INT(m->updated_at),  DBP_TEXT(m->id)};
	db_status_t s =
	    db_exec(c,
	            "UPDATE ManagedClusters SET Name = ?, LoadBalancerUrl = ?, SpaceId = "
	            "?, SealedApiKey = ?, ApiKeyPrefix = ?, VerifyTls = ?, CaFile = ?, "
	            "Thumbprint = ?, NodesVersion = ?, UpdatedAt = ? WHERE Id = ?",
	            p, 11, rows);
	if (s != DB_OK || *rows == 0)
		return s;
	db_param_t q[] = {DBP_TEXT(m->id)};
	s = db_exec(c, "DELETE FROM ManagedClusterNodes WHERE ClusterId = ?", q, 1, NULL);
	return s == DB_OK ? insert_nodes(c, m) : s;
}

static void read_cluster(db_row_t *r, oh_managed_cluster_t *m)
{
	memset(m, 0, sizeof *m);
	db_row_copy(r, 0, m->id, sizeof m->id);
	db_row_copy(r, 1, m->name, sizeof m->name);
	db_row_copy(r, 2, m->lb_url, sizeof m->lb_url);
	db_row_copy(r, 3, m->space_id, sizeof m->space_id);
	db_row_copy(r, 4, m->sealed_key, sizeof m->sealed_key);
	db_row_copy(r, 5, m->key_prefix, sizeof m->key_prefix);
	m->verify_tls = db_row_int(r, 6, NULL) != 0;
	db_row_copy(r, 7, m->ca_file, sizeof m->ca_file);
	db_row_copy(r, 8, m->thumbprint, sizeof m->thumbprint);
	m->nodes_version = (int)db_row_int(r, 9, NULL);
	db_row_copy(r, 10, m->created_by, sizeof m->created_by);
	m->created_at = db_row_int(r, 11, NULL);
	m->updated_at = db_row_int(r, 12, NULL);
	m->discovered_at = db_row_int(r, 13, NULL);
}

static db_status_t one_cluster(void *ctx, db_row_t *r)
{
	read_cluster(r, ctx);
	return DB_OK;
}

static db_status_t node_row(void *ctx, db_row_t *r)
{
	oh_managed_cluster_t *m = ctx;
	if (m->n_nodes >= OH_MC_MAX_NODES)
		return DB_OK;
	oh_mc_node_t *n = &m->nodes[m->n_nodes++];
	db_row_copy(r, 0, n->name, sizeof n->name);
	db_row_copy(r, 1, n->url, sizeof n->url);
	db_row_copy(r, 2, n->comms_address, sizeof n->comms_address);
	n->comms_port = (int)db_row_int(r, 3, NULL);
	db_row_copy(r, 4, n->octopus_id, sizeof n->octopus_id);
	return DB_OK;
}

db_status_t managed_store_get(db_conn_t *c, const char *id, oh_managed_cluster_t *out)
{
	db_param_t p[] = {DBP_TEXT(id)};
	db_status_t s = db_query(c, "SELECT " MC_COLUMNS " FROM ManagedClusters WHERE Id = ?", p, 1,
	                         one_cluster, out);
	if (s != DB_OK)
		return s;
	s = db_query(c,
	             "SELECT Name, Url, CommsAddress, CommsPort, OctopusNodeId FROM "
	             "ManagedClusterNodes WHERE ClusterId = ? ORDER BY Position",
	             p, 1, node_row, out);
	return s == DB_NO_ROWS ? DB_OK : s;
}

typedef struct {
	void (*fn)(void *, const oh_managed_cluster_t *);
	void *ctx;
	oh_managed_cluster_t m;
} each_cluster_t;

static db_status_t each_cluster_row(void *vctx, db_row_t *r)
{
	each_cluster_t *x = vctx;
	read_cluster(r, &x->m);
	x->fn(x->ctx, &x->m);
	return DB_OK;
}

const db_list_t managed_store_list_def = {
    .table = "ManagedClusters", .columns = MC_COLUMNS, .k1 = "Name", .k1_text = true};

void managed_store_list_query(int64_t skip, int64_t take, db_list_query_t *q)
{
	memset(q, 0, sizeof *q);
	q->skip = skip;
	q->take = take;
}

db_status_t managed_store_page(db_conn_t *c, const char *after, int64_t skip, int64_t take,
                               void (*fn)(void *, const oh_managed_cluster_t *), void *ctx,
                               int64_t *total)
{
	db_list_query_t q;
	managed_store_list_query(skip, take, &q);
	char anchor[201];
	db_status_t s = DB_OK;
	if (after && *after)
		s = db_list_anchor(c, &managed_store_list_def, after, &q, anchor, sizeof anchor);
	if (s == DB_OK)
		s = db_list_count(c, &managed_store_list_def, &q, total);
	each_cluster_t *x = malloc(sizeof *x);
	if (!x)
		return DB_ERROR;
	x->fn = fn;
	x->ctx = ctx;
	if (s == DB_OK)
		s = db_list_page(c, &managed_store_list_def, &q, each_cluster_row, x);
	free(x);
	return s;
}

void managed_store_nodes_of_sql(const char *const *ids, size_t n, db_sql_t *q)
{
	db_sql_init(q);
	db_sql_add(q, "SELECT ClusterId, Name, Url, CommsAddress, CommsPort, OctopusNodeId FROM "
	              "ManagedClusterNodes WHERE ClusterId IN ");
	db_sql_in(q, ids, n);
	db_sql_add(q, " ORDER BY ClusterId, Position");
}

typedef struct {
	void (*fn)(void *, const char *, const oh_mc_node_t *);
	void *ctx;
} nodes_of_t;

static db_status_t nodes_of_row(void *vctx, db_row_t *r)
{
	nodes_of_t *x = vctx;
	char cluster_id[51];
	oh_mc_node_t n;
	memset(&n, 0, sizeof n);
	db_row_copy(r, 0, cluster_id, sizeof cluster_id);
	db_row_copy(r, 1, n.name, sizeof n.name);
	db_row_copy(r, 2, n.url, sizeof n.url);
	db_row_copy(r, 3, n.comms_address, sizeof n.comms_address);
	n.comms_port = (int)db_row_int(r, 4, NULL);
	db_row_copy(r, 5, n.octopus_id, sizeof n.octopus_id);
	x->fn(x->ctx, cluster_id, &n);
	return DB_OK;
}

db_status_t managed_store_nodes_of(db_conn_t *c, const char *const *ids, size_t n,
                                   void (*fn)(void *, const char *, const oh_mc_node_t *),
                                   void *ctx)
{
	nodes_of_t x = {fn, ctx};
	return db_query_in_chunks(c, ids, n, managed_store_nodes_of_sql, nodes_of_row, &x);
}

db_status_t managed_store_delete(db_conn_t *c, const char *id, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	db_status_t s = db_exec(c, "DELETE FROM ManagedTentacles WHERE ClusterId = ?", p, 1, NULL);
	if (s == DB_OK)
		s = db_exec(c, "DELETE FROM ManagedClusterNodes WHERE ClusterId = ?", p, 1, NULL);
	if (s == DB_OK)
		s = db_exec(c, "DELETE FROM ManagedClusters WHERE Id = ?", p, 1, rows);
	return s;
}

db_status_t managed_store_name_used(db_conn_t *c, const char *name, const char *except_id)
{
	db_param_t p[] = {DBP_TEXT(name), DBP_TEXT(except_id ? except_id : "")};
	int64_t n = 0;
	db_status_t s = db_query_int(
	    c, "SELECT COUNT(*) FROM ManagedClusters WHERE Name = ? AND Id <> ?", p, 2, &n);
	if (s != DB_OK)
		return s;
	return n > 0 ? DB_OK : DB_NO_ROWS;
}

db_status_t managed_store_set_octopus_id(db_conn_t *c, const char *id, const char *name,
                                         const char *octopus_id)
{
	db_param_t p[] = {opt_text(octopus_id), DBP_TEXT(id), DBP_TEXT(name)};
	return db_exec(c,
	               "UPDATE ManagedClusterNodes SET OctopusNodeId = ? WHERE ClusterId = ? AND "
	               "Name = ?",
	               p, 3, NULL);
}

db_status_t managed_store_set_discovered(db_conn_t *c, const char *id, int64_t now)
{
	db_param_t p[] = {DBP_INT(now), DBP_TEXT(id)};
	return db_exec(c, "UPDATE ManagedClusters SET DiscoveredAt = ? WHERE Id = ?", p, 2, NULL);
}

/* ---- Tentacles ---------------------------------------------------------- */

db_status_t managed_store_tentacle_insert(db_conn_t *c, const oh_mc_tentacle_t *t)
{
	db_param_t p[] = {DBP_TEXT(t->id),
	                  DBP_TEXT(t->cluster_id),
	                  DBP_TEXT(t->name),
	                  DBP_TEXT(t->thumbprint),
	                  DBP_TEXT(t->subscription_id),
	                  DBP_INT(t->registered_at),
	                  DBP_TEXT(t->registered_by),
	                  DBP_INT(t->servers_version),
	                  DBP_INT(t->needs_rereg)};
	return db_exec(c,
	               "INSERT INTO ManagedTentacles (Id, ClusterId, Name, Thumbprint, "
	               "SubscriptionId, RegisteredAt, RegisteredBy, ServersVersion, "
	               "NeedsReRegistration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               p, 9, NULL);
}

static void read_tentacle(db_row_t *r, oh_mc_tentacle_t *t)
{
	memset(t, 0, sizeof *t);
	db_row_copy(r, 0, t->id, sizeof t->id);
	db_row_copy(r, 1, t->cluster_id, sizeof t->cluster_id);
	db_row_copy(r, 2, t->name, sizeof t->name);
	db_row_copy(r, 3, t->thumbprint, sizeof t->thumbprint);
	db_row_copy(r, 4, t->subscription_id, sizeof t->subscription_id);
	t->registered_at = db_row_int(r, 5, NULL);
	db_row_copy(r, 6, t->registered_by, sizeof t->registered_by);
	t->servers_version = (int)db_row_int(r, 7, NULL);
	t->needs_rereg = db_row_int(r, 8, NULL) != 0;
	db_row_copy(r, 9, t->machine_id, sizeof t->machine_id);
	db_row_copy(r, 10, t->health_status, sizeof t->health_status);
	t->checked_at = db_row_int(r, 11, NULL);
	db_row_copy(r, 12, t->check_detail, sizeof t->check_detail);
}

static db_status_t one_tentacle(void *ctx, db_row_t *r)
{
	read_tentacle(r, ctx);
	return DB_OK;
}

db_status_t managed_store_tentacle_get(db_conn_t *c, const char *id, oh_mc_tentacle_t *out)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c, "SELECT " MT_COLUMNS " FROM ManagedTentacles WHERE Id = ?", p, 1,
	                one_tentacle, out);
}

typedef struct {
	void (*fn)(void *, const oh_mc_tentacle_t *);
	void *ctx;
} each_tentacle_t;

static db_status_t each_tentacle_row(void *vctx, db_row_t *r)
{
	each_tentacle_t *x = vctx;
	oh_mc_tentacle_t t;
	read_tentacle(r, &t);
	x->fn(x->ctx, &t);
	return DB_OK;
}

db_status_t managed_store_tentacle_each(db_conn_t *c, const char *cluster_id,
                                        void (*fn)(void *, const oh_mc_tentacle_t *), void *ctx)
{
	db_param_t p[] = {DBP_TEXT(cluster_id)};
	each_tentacle_t x = {fn, ctx};
	db_status_t s = db_query(
	    c, "SELECT " MT_COLUMNS " FROM ManagedTentacles WHERE ClusterId = ? ORDER BY Name", p,
	    1, each_tentacle_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

const db_list_t managed_store_tentacle_list_def = {
    .table = "ManagedTentacles", .columns = MT_COLUMNS, .k1 = "Name", .k1_text = true};

void managed_store_tentacle_list_query(const char *cluster_id, int64_t skip, int64_t take,
                                       db_list_query_t *q)
{
	memset(q, 0, sizeof *q);
	q->skip = skip;
	q->take = take;
	db_branch_t *b = db_list_branch(q, "ClusterId = ?");
	db_branch_bind(b, DBP_TEXT(cluster_id));
}

static db_status_t name_row(void *ctx, db_row_t *r)
{
	db_row_copy(r, 0, ctx, 201);
	return DB_OK;
}

db_status_t managed_store_tentacle_page(db_conn_t *c, const char *cluster_id, const char *after,
                                        int64_t skip, int64_t take,
                                        void (*fn)(void *, const oh_mc_tentacle_t *), void *ctx,
                                        int64_t *total)
{
	db_list_query_t q;
	managed_store_tentacle_list_query(cluster_id, skip, take, &q);
	char anchor[201];
	db_status_t s = DB_OK;
	if (after && *after) {
		/* The cursor must be one of this cluster's Tentacles: another
		 * cluster's name would place the page anywhere. */
		db_param_t p[] = {DBP_TEXT(after), DBP_TEXT(cluster_id)};
		s = db_query(c, "SELECT Name FROM ManagedTentacles WHERE Id = ? AND ClusterId = ?",
		             p, 2, name_row, anchor);
		q.after = true;
		q.after_k1_text = anchor;
		q.after_k2 = after;
	}
	if (s == DB_OK)
		s = db_list_count(c, &managed_store_tentacle_list_def, &q, total);
	each_tentacle_t x = {fn, ctx};
	if (s == DB_OK)
		s = db_list_page(c, &managed_store_tentacle_list_def, &q, each_tentacle_row, &x);
	return s;
}

db_status_t managed_store_tentacle_delete(db_conn_t *c, const char *id, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(c, "DELETE FROM ManagedTentacles WHERE Id = ?", p, 1, rows);
}

db_status_t managed_store_tentacle_name_used(db_conn_t *c, const char *cluster_id, const char *name)
{
	db_param_t p[] = {DBP_TEXT(cluster_id), DBP_TEXT(name)};
	int64_t n = 0;
	db_status_t s = db_query_int(
	    c, "SELECT COUNT(*) FROM ManagedTentacles WHERE ClusterId = ? AND Name = ?", p, 2, &n);
	if (s != DB_OK)
		return s;
	return n > 0 ? DB_OK : DB_NO_ROWS;
}

db_status_t managed_store_tentacle_set_check(db_conn_t *c, const char *id, const char *machine_id,
                                             const char *health, const char *detail, int64_t now)
{
	db_param_t p[] = {opt_text(machine_id), opt_text(health), DBP_INT(now), opt_text(detail),
	                  DBP_TEXT(id)};
	return db_exec(
	    c,
	    "UPDATE ManagedTentacles SET MachineId = ?, HealthStatus = ?, CheckedAt = ?, "
	    "CheckDetail = ? WHERE Id = ?",
	    p, 5, NULL);
}

db_status_t managed_store_tentacles_mark(db_conn_t *c, const char *cluster_id, int version,
                                         int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(cluster_id), DBP_INT(version)};
	return db_exec(
	    c,
	    "UPDATE ManagedTentacles SET NeedsReRegistration = 1 WHERE ClusterId = ? AND "
	    "ServersVersion <> ? AND NeedsReRegistration = 0",
	    p, 2, rows);
}

db_status_t managed_store_tentacle_applied(db_conn_t *c, const char *id, int version, int64_t *rows)
{
	db_param_t p[] = {DBP_INT(version), DBP_TEXT(id)};
	return db_exec(c,
	               "UPDATE ManagedTentacles SET ServersVersion = ?, NeedsReRegistration = 0 "
	               "WHERE Id = ?",
	               p, 2, rows);
}
