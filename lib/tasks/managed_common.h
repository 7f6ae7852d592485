/* What every task on a managed cluster starts with: the cluster read, its
 * API key unsealed, a client whose every call goes to the task's log and
 * which stops retrying when the task must stop. */
#ifndef OH_TASKS_MANAGED_COMMON_H
#define OH_TASKS_MANAGED_COMMON_H

#include "../managed_clusters.h"
#include "../task_run.h"

typedef struct {
	oh_managed_cluster_t *m; /* malloc'd */
	char *key;               /* the unsealed API key */
	oh_octo_t o;
	const oh_mc_node_t *node; /* the node the task names, or NULL */
} oh_mc_session_t;

/* Opens the session of the task's ClusterId (and NODE_ARG, the argument
 * naming a node, when not NULL).  False with OUT set (failed or retried)
 * when it cannot. */
bool oh_mc_session_open(oh_task_run_t *r, const char *node_arg, oh_mc_session_t *s,
                        oh_task_outcome_t *out);
void oh_mc_session_close(oh_mc_session_t *s);

/* Fails OUT for call status ST (a retry when the cluster could not be
 * reached, a failure otherwise), saying WHAT was being done. */
void oh_mc_fail(oh_task_outcome_t *out, oh_octo_status_t st, long http, const char *what);

/* The Octopus node that configured node N is, read from the cluster's node
 * list into *NODE.  False with OUT set when it cannot be read or the
 * cluster does not list it. */
bool oh_mc_find_remote(oh_task_run_t *r, oh_mc_session_t *s, const oh_mc_node_t *n,
                       oh_octo_node_t *node, oh_octo_nodes_t *all, oh_task_outcome_t *out);

/* GET the node resource, set FIELD to VALUE (a new reference, stolen) and
 * PUT the whole resource back.  False with OUT set on failure. */
bool oh_mc_put_field(oh_mc_session_t *s, const char *octopus_id, const char *field, json_t *value,
                     oh_task_outcome_t *out);

/* Whether node ID is the last one of L taking work (online, not in
 * maintenance, a cap above 0), the others being out. */
bool oh_mc_last_taking_work(const oh_octo_nodes_t *l, const char *id);

#endif
