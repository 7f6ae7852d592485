/* SQL for managed Octopus clusters (ManagedClusters, ManagedClusterNodes)
 * and the polling Tentacles registered against them (ManagedTentacles), in
 * the caller's transaction.  The row types are this store's. */
#ifndef DB_MANAGED_STORE_H
#define DB_MANAGED_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "keyset.h"

#define OH_MC_MAX_NODES 16

/* One configured node of a managed cluster. */
typedef struct {
	char name[65];
	char url[401];           /* the node's own HTTP endpoint, bypassing the balancer */
	char comms_address[256]; /* where polling Tentacles reach it; "" = none */
	int comms_port;          /* 0 = none */
	char octopus_id[101];    /* its Id in the cluster, once discovered; "" before */
} oh_mc_node_t;

typedef struct {
	char id[51];
	char name[201];
	char lb_url[401];
	char space_id[51];
	char sealed_key[401]; /* oh_seal of the Octopus API key */
	char key_prefix[21];  /* "API-ABCD": enough to recognise the key */
	bool verify_tls;
	char ca_file[1001];  /* "" = the system's CAs */
	char thumbprint[41]; /* "" = not pinned */
	int nodes_version;   /* moves when the configured nodes change */
	char created_by[201];
	int64_t created_at, updated_at, discovered_at; /* discovered_at 0 = never */
	oh_mc_node_t nodes[OH_MC_MAX_NODES];
	size_t n_nodes;
} oh_managed_cluster_t;

/* A polling Tentacle registered against a managed cluster. */
typedef struct {
	char id[51];
	char cluster_id[51];
	char name[201];
	char thumbprint[41];
	char subscription_id[121];
	int64_t registered_at;
	char registered_by[201];
	int servers_version; /* the NodesVersion its server list was given for */
	bool needs_rereg;
	char machine_id[101];   /* the cluster's machine that is this Tentacle, "" if none */
	char health_status[41]; /* that machine's HealthStatus, "" when unchecked */
	int64_t checked_at;
	char check_detail[401];
} oh_mc_tentacle_t;

db_status_t managed_store_insert(db_conn_t *c, const oh_managed_cluster_t *m);
/* Writes every column but Id, CreatedBy and CreatedAt, and replaces the
 * nodes.  *ROWS receives 0 when there is no such cluster. */
db_status_t managed_store_update(db_conn_t *c, const oh_managed_cluster_t *m, int64_t *rows);
/* Reads cluster ID with its nodes.  DB_NO_ROWS when there is none. */
db_status_t managed_store_get(db_conn_t *c, const char *id, oh_managed_cluster_t *out);

/* The list of clusters by Name (UX_ManagedClusters_Name; lib/db/keyset.h). */
extern const db_list_t managed_store_list_def;
/* Fills Q for a page of SKIP, TAKE clusters (the plan test builds it too). */
void managed_store_list_query(int64_t skip, int64_t take, db_list_query_t *q);
/* Calls FN for the clusters (without nodes) of the page after cluster
 * AFTER (NULL or "" from the start), SKIP, TAKE, by Name; *TOTAL the
 * clusters, up to DB_LIST_COUNT_CAP.  DB_NO_ROWS when AFTER names none. */
db_status_t managed_store_page(db_conn_t *c, const char *after, int64_t skip, int64_t take,
                               void (*fn)(void *, const oh_managed_cluster_t *), void *ctx,
                               int64_t *total);
/* Builds into Q the statement that reads the nodes of up to 32 clusters
 * IDS (N of them), by cluster then position. */
void managed_store_nodes_of_sql(const char *const *ids, size_t n, db_sql_t *q);
/* Calls FN (cluster Id, node) for every node of the N clusters IDS, by
 * cluster then position, 32 clusters a statement. */
db_status_t managed_store_nodes_of(db_conn_t *c, const char *const *ids, size_t n,
                                   void (*fn)(void *, const char *, const oh_mc_node_t *),
                                   void *ctx);
/* Deletes cluster ID, its nodes and Tentacles; *ROWS the clusters deleted. */
db_status_t managed_store_delete(db_conn_t *c, const char *id, int64_t *rows);
/* DB_OK when another cluster than EXCEPT_ID (may be NULL) is named NAME. */
db_status_t managed_store_name_used(db_conn_t *c, const char *name, const char *except_id);
/* Records the Octopus node Id found for configured node NAME ("" clears it). */
db_status_t managed_store_set_octopus_id(db_conn_t *c, const char *id, const char *name,
                                         const char *octopus_id);
db_status_t managed_store_set_discovered(db_conn_t *c, const char *id, int64_t now);

db_status_t managed_store_tentacle_insert(db_conn_t *c, const oh_mc_tentacle_t *t);
db_status_t managed_store_tentacle_get(db_conn_t *c, const char *id, oh_mc_tentacle_t *out);
/* Calls FN for each Tentacle of CLUSTER_ID ordered by Name. */
db_status_t managed_store_tentacle_each(db_conn_t *c, const char *cluster_id,
                                        void (*fn)(void *, const oh_mc_tentacle_t *), void *ctx);
/* The list of a cluster's Tentacles by Name (UX_ManagedTentacles_Name). */
extern const db_list_t managed_store_tentacle_list_def;
/* Fills Q for a page of SKIP, TAKE of CLUSTER_ID's Tentacles (borrowed). */
void managed_store_tentacle_list_query(const char *cluster_id, int64_t skip, int64_t take,
                                       db_list_query_t *q);
/* Calls FN for CLUSTER_ID's Tentacles of the page after its Tentacle AFTER
 * (NULL or "" from the start), SKIP, TAKE, by Name; *TOTAL its Tentacles,
 * up to DB_LIST_COUNT_CAP.  DB_NO_ROWS when AFTER is none of its
 * Tentacles. */
db_status_t managed_store_tentacle_page(db_conn_t *c, const char *cluster_id, const char *after,
                                        int64_t skip, int64_t take,
                                        void (*fn)(void *, const oh_mc_tentacle_t *), void *ctx,
                                        int64_t *total);
db_status_t managed_store_tentacle_delete(db_conn_t *c, const char *id, int64_t *rows);
db_status_t managed_store_tentacle_name_used(db_conn_t *c, const char *cluster_id,
                                             const char *name);
/* Records what the cluster's machines list says of Tentacle ID. */
db_status_t managed_store_tentacle_set_check(db_conn_t *c, const char *id, const char *machine_id,
                                             const char *health, const char *detail, int64_t now);
/* Marks every Tentacle of CLUSTER_ID whose list was given for another
 * version than VERSION; *ROWS the Tentacles newly marked. */
db_status_t managed_store_tentacles_mark(db_conn_t *c, const char *cluster_id, int version,
                                         int64_t *rows);
/* The Tentacle applied the server list of VERSION: the mark clears. */
db_status_t managed_store_tentacle_applied(db_conn_t *c, const char *id, int version,
                                           int64_t *rows);

#endif
