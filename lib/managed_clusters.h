/* Managed clusters: existing Octopus Server HA clusters this control plane
 * steers through Octopus's own REST API (lib/octopus_client.h).  Each has a
 * load balancer URL, its nodes (each node's direct URL, and for polling
 * Tentacles its comms address and port), an Octopus API key sealed under
 * the node's secrets key (never shown again), and its TLS trust (the
 * system's CAs, a CA file, or one pinned certificate thumbprint). */
#ifndef OH_MANAGED_CLUSTERS_H
#define OH_MANAGED_CLUSTERS_H

#include <stdbool.h>

#include "db/db.h"
#include "db/managed_store.h"
#include "octopus_client.h"
#include "tasks.h"

struct oh_event_spec; /* events.h */

#define OH_MC_ID_PREFIX       "ManagedClusters-"
#define OH_MC_TENTACLE_PREFIX "ManagedTentacles-"

/* What a client sends to create or replace a cluster (all borrowed). */
typedef struct {
	const char *name, *lb_url, *space_id;
	const char *api_key; /* NULL on a replace: the sealed key is kept */
	bool verify_tls;
	const char *ca_file;    /* NULL or "" for none */
	const char *thumbprint; /* NULL or "" for none */
	oh_mc_node_t nodes[OH_MC_MAX_NODES];
	size_t n_nodes;
} oh_mc_spec_t;

typedef enum {
	OH_MC_OK = 0,
	OH_MC_NOT_FOUND,
	OH_MC_NAME_IN_USE,
	OH_MC_IN_MAINTENANCE /* a maintenance run on it has not ended */
} oh_mc_outcome_t;

/* Creates a cluster from SPEC (its key sealed under SECRETS_KEY), recording
 * AUDIT (its resource id filled in) in the same transaction.  DB_OK with
 * *OUTCOME (OK or NAME_IN_USE) and *OUT, or a failure. */
db_status_t oh_mc_create(db_pool_t *pool, const unsigned char secrets_key[32],
                         const oh_mc_spec_t *spec, const char *created_by,
                         const struct oh_event_spec *audit, oh_managed_cluster_t *out,
                         oh_mc_outcome_t *outcome);

/* Replaces cluster ID with SPEC (a new key when SPEC has one).  When the
 * node set changes (names, comms addresses or ports), NodesVersion moves
 * and the cluster's Tentacles are marked for re-registration (*MARKED).
 * Outcomes: OK, NOT_FOUND, NAME_IN_USE. */
db_status_t oh_mc_replace(db_pool_t *pool, const unsigned char secrets_key[32], const char *id,
                          const oh_mc_spec_t *spec, const struct oh_event_spec *audit,
                          oh_managed_cluster_t *out, oh_mc_outcome_t *outcome, int64_t *marked);

/* DB_NO_ROWS when there is none. */
db_status_t oh_mc_get(db_pool_t *pool, const char *id, oh_managed_cluster_t *out);

typedef struct {
	oh_managed_cluster_t *v; /* with their nodes */
	size_t n;
	int64_t total; /* clusters in the whole list, up to DB_LIST_COUNT_CAP */
} oh_mc_list_t;
/* Reads into *OUT a page of clusters by Name, each with its nodes, in one
 * transaction: the clusters after cluster AFTER (NULL or "" from the
 * start), SKIP, TAKE (lib/db/keyset.h).  DB_OK, DB_NO_ROWS when AFTER
 * names no cluster, or a failure (*OUT then empty).  Free with
 * oh_mc_list_free. */
db_status_t oh_mc_list(db_pool_t *pool, const char *after, int64_t skip, int64_t take,
                       oh_mc_list_t *out);
void oh_mc_list_free(oh_mc_list_t *l);

/* Deletes ID (with its nodes and Tentacles), recording AUDIT.  Outcomes:
 * OK, NOT_FOUND, IN_MAINTENANCE. */
db_status_t oh_mc_delete(db_pool_t *pool, const char *id, const struct oh_event_spec *audit,
                         oh_mc_outcome_t *outcome);

/* Configured node NAME (or the node whose discovered Octopus Id is NAME),
 * case-insensitively; NULL when there is none. */
const oh_mc_node_t *oh_mc_node_find(const oh_managed_cluster_t *m, const char *name);

/* The cluster's node that is configured node N: by its discovered Id, else
 * by name.  NULL when the cluster does not list it. */
const oh_octo_node_t *oh_mc_match(const oh_octo_nodes_t *l, const oh_mc_node_t *n);

/* Fills O for calls to M: its URL, its TLS trust, the key unsealed under
 * SECRETS_KEY into *KEY (free with oh_mc_key_free), POLICY.  False when
 * the key cannot be opened (another secrets key sealed it). */
bool oh_mc_client(const oh_managed_cluster_t *m, const unsigned char secrets_key[32],
                  const oh_outbound_policy_t *policy, oh_octo_t *o, char **key);
void oh_mc_key_free(char *key);

/* One node as the topology sees it. */
typedef struct {
	const oh_mc_node_t *cfg;
	bool listed;           /* the cluster's node list has it */
	oh_octo_node_t remote; /* when listed */
	long ping;             /* its own ping's status, 0 when it did not answer */
	long ping_ms;
	char ping_error[120];
	const char *state; /* Online, Draining, Drained, Offline, Unreachable */
} oh_mc_topo_node_t;

typedef struct {
	oh_mc_topo_node_t nodes[OH_MC_MAX_NODES];
	size_t n;
	oh_octo_status_t api; /* how the node list and summary answered */
	long api_http;
	oh_octo_nodes_t remote; /* the cluster's own list (for nodes not configured here) */
} oh_mc_topology_t;

/* Reads M's nodes through O: the node list and summary through the
 * balancer, each configured node's ping on the node itself (PING_TIMEOUT_MS
 * each).  Free with oh_mc_topology_free. */
void oh_mc_topology_read(const oh_managed_cluster_t *m, const oh_octo_t *o, long ping_timeout_ms,
                         oh_mc_topology_t *out);
void oh_mc_topology_free(oh_mc_topology_t *t);

/* Serving: the node's own ping answers 200. */
int oh_mc_topology_serving(const oh_mc_topology_t *t);

/* ---- Tentacles against a managed cluster -------------------------------- */

/* Registers T (id, registered_at, servers_version filled in) and queues its
 * CheckManagedTentacles task (*TASK) in one transaction with AUDIT and
 * IDEM.  DB_OK, DB_DUPLICATE when the name is in use on that cluster,
 * DB_NO_ROWS when the cluster is gone, DB_ABORT with IDEM->in_flight, or a
 * failure. */
struct oh_idem;
db_status_t oh_mc_tentacle_register(db_pool_t *pool, oh_mc_tentacle_t *t, struct oh_idem *idem,
                                    const struct oh_event_spec *audit, oh_task_t *task);

typedef struct {
	oh_mc_tentacle_t *v;
	size_t n;
	int64_t total; /* oh_mc_tentacles_page: up to DB_LIST_COUNT_CAP */
} oh_mc_tentacle_list_t;
/* Every Tentacle of CLUSTER_ID by Name (for the passes that check them
 * all). */
db_status_t oh_mc_tentacles_list(db_pool_t *pool, const char *cluster_id,
                                 oh_mc_tentacle_list_t *out);
/* A page of CLUSTER_ID's Tentacles by Name: after its Tentacle AFTER (NULL
 * or "" from the start), SKIP, TAKE, with the total.  DB_OK, DB_NO_ROWS
 * when AFTER is none of its Tentacles, or a failure (*OUT then empty).
 * Free with oh_mc_tentacle_list_free. */
db_status_t oh_mc_tentacles_page(db_pool_t *pool, const char *cluster_id, const char *after,
                                 int64_t skip, int64_t take, oh_mc_tentacle_list_t *out);
void oh_mc_tentacle_list_free(oh_mc_tentacle_list_t *l);
db_status_t oh_mc_tentacle_get(db_pool_t *pool, const char *id, oh_mc_tentacle_t *out);
db_status_t oh_mc_tentacle_delete(db_pool_t *pool, const char *id,
                                  const struct oh_event_spec *audit);
/* The Tentacle applied the current server list: its mark clears.  DB_NO_ROWS
 * when there is no such Tentacle. */
db_status_t oh_mc_tentacle_applied(db_pool_t *pool, const char *id,
                                   const struct oh_event_spec *audit, oh_mc_tentacle_t *out);
db_status_t oh_mc_tentacle_set_check(db_pool_t *pool, const char *id, const char *machine_id,
                                     const char *health, const char *detail);
db_status_t oh_mc_set_octopus_id(db_pool_t *pool, const char *id, const char *name,
                                 const char *octopus_id, bool last);

#endif
