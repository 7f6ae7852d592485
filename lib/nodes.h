/* The node registry: every octoha-server node's row in the shared database,
 * its registration (unique name, one platform per cluster), heartbeat,
 * clean stop and removal.  A node is offline when it stopped cleanly or its
 * LastSeen (database clock) is older than the offline timeout. */
#ifndef OH_NODES_H
#define OH_NODES_H

struct oh_event_spec; /* events.h */

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define OH_NODE_ID_PREFIX "OctopusServerNodes-"
#define OH_NODE_NAME_MAX  64

typedef struct {
	char id[sizeof OH_NODE_ID_PREFIX + OH_NODE_NAME_MAX];
	char name[OH_NODE_NAME_MAX + 1];
	char public_url[401];
	char comms_address[256];
	int comms_port;
	int max_tasks;
	char platform[16];
	char version[64];
	bool maintenance;
	bool stopped;
	bool offline;       /* derived: stopped, or LastSeen older than the timeout */
	int64_t last_seen;  /* epoch ms, database clock */
	int64_t started_at; /* epoch ms, database clock */
	char drain_reason[401];
	char drain_requested_by[201];
	int64_t drain_requested_at; /* 0 when never drained */
	char drain_task_id[64];
	int polling_port; /* its port on the load balancer in UniquePort mode, 0 if none */
} oh_node_t;

/* True when NAME is 1-64 characters of [A-Za-z0-9._-] starting alphanumeric. */
bool oh_node_name_valid(const char *name);

/* Writes "OctopusServerNodes-NAME" into ID (size SIZE). */
void oh_node_id_for(const char *name, char *id, size_t size);

typedef enum {
	OH_REG_OK = 0,
	OH_REG_NAME_IN_USE,      /* a live node holds the name: see holder */
	OH_REG_PLATFORM_MISMATCH /* the cluster runs on cluster_platform */
} oh_reg_outcome_t;

typedef struct {
	oh_reg_outcome_t outcome;
	oh_node_t self;            /* the row as registered (OH_REG_OK) */
	oh_node_t holder;          /* OH_REG_NAME_IN_USE: the live holder */
	char cluster_platform[16]; /* OH_REG_PLATFORM_MISMATCH */
	int64_t db_now;
	/* OH_REG_OK with PREV_INSTANCE: the tasks that instance held, taken
	 * over in the registration's transaction. */
	int64_t requeued, failed, canceled;
} oh_reg_result_t;

/* Registers SELF (name, urls, port, platform, version; max_tasks < 0 keeps
 * the stored cap, or 5 for a new node) under INSTANCE_ID, the random token of
 * this process.  Takes over the row of an offline node of the same name, or
 * of PREV_INSTANCE (may be NULL): the previous process on this node's data
 * directory, known to be gone (its lock on the directory was released),
 * whose row may still look alive; that instance's tasks are taken over at
 * once (requeued in their place, as after their lease).  Returns DB_OK with
 * RES->outcome set (refusals change nothing), or a database failure. */
db_status_t oh_nodes_register(db_pool_t *pool, const oh_node_t *self, const char *instance_id,
                              const char *prev_instance, int64_t offline_timeout_ms,
                              oh_reg_result_t *res);

/* Renews LastSeen of node ID held by INSTANCE_ID and reads its row back into
 * *ROW (so changes made through other nodes reach this one).  Returns DB_OK,
 * or DB_NO_ROWS when the row is gone or held by another instance (this node
 * was presumed dead and its name taken over), or a database failure. */
db_status_t oh_nodes_heartbeat(db_pool_t *pool, const char *id, const char *instance_id,
                               int64_t offline_timeout_ms, oh_node_t *row);

/* Marks node ID (held by INSTANCE_ID) stopped: offline at once for everyone. */
db_status_t oh_nodes_mark_stopped(db_pool_t *pool, const char *id, const char *instance_id);

typedef struct {
	oh_node_t *v; /* malloc'd, owned by the list */
	size_t n;
	int64_t db_now;
} oh_node_list_t;

/* Reads every node ordered by Name.  On DB_OK the caller frees with
 * oh_node_list_free; on failure *OUT is empty. */
db_status_t oh_nodes_list(db_pool_t *pool, int64_t offline_timeout_ms, oh_node_list_t *out);
void oh_node_list_free(oh_node_list_t *l);
/* The same inside the caller's transaction. */
db_status_t oh_nodes_list_tx(db_conn_t *c, int64_t offline_timeout_ms, oh_node_list_t *out);

/* Capacity of the nodes in L that take work (online, not draining, cap
 * above 0): *TOTAL is their MaxConcurrentTasks summed, *LARGEST the largest
 * of them, *LOST_PCT the share of TOTAL lost if that node fails (100 when
 * TOTAL is 0), rounded to one decimal.  Returns how many take work. */
int oh_nodes_capacity(const oh_node_list_t *l, int *total, int *largest, double *lost_pct);

/* The cluster's platform: that of its online nodes (the first online node
 * in L; registration keeps them alike), else that of any node, else
 * FALLBACK. */
const char *oh_nodes_platform(const oh_node_list_t *l, const char *fallback);

/* Reads node ID.  Returns DB_OK, DB_NO_ROWS when there is none, or a failure. */
db_status_t oh_nodes_get(db_pool_t *pool, const char *id, int64_t offline_timeout_ms,
                         oh_node_t *out);

typedef enum { OH_DEL_DELETED = 0, OH_DEL_ONLINE, OH_DEL_NOT_FOUND } oh_del_outcome_t;

/* Deletes node ID if it is offline, recording AUDIT (may be NULL) in the
 * same transaction.  Returns DB_OK with *OUTCOME set, or a database
 * failure. */
db_status_t oh_nodes_delete_offline(db_pool_t *pool, const char *id, int64_t offline_timeout_ms,
                                    oh_del_outcome_t *outcome, const struct oh_event_spec *audit);

#endif
