/* The task workers of this node: one dispatcher thread claims queued tasks
 * while the node has free slots under its MaxConcurrentTasks (system tasks
 * only while draining), records their ends (retrying while the database is
 * away), and takes its turn at cluster housekeeping; a renewer thread keeps
 * the leases of exactly the tasks the node holds; each claimed task runs on
 * a thread of its own. */
#ifndef SVC_WORKERS_H
#define SVC_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "../lib/db/db.h"
#include "../lib/node_state.h"
#include "../lib/task_run.h"

typedef struct {
	db_pool_t *pool;        /* what task kinds use */
	db_pool_t *core_pool;   /* claims, ends, leases, housekeeping (NULL: pool) */
	oh_node_state_t *state; /* cap, drain mode and health of this node */
	const char *node_id;
	const char *owner;       /* lease owner token: this process */
	oh_storage_t *storage;   /* TaskLogs and the other folders; storage_ok gates work */
	int64_t lease_ms;        /* a dead node's tasks are taken over after this */
	int64_t poll_ms;         /* claim poll when idle */
	int64_t housekeeping_ms; /* cluster housekeeping period */
	int64_t offline_timeout_ms;
	int64_t retention_ms;          /* ended tasks are deleted after this */
	int64_t archive_every_ms;      /* the audit archive task is queued this often */
	int64_t package_retention_ms;  /* package retention is queued this often */
	int64_t package_keep_versions; /* versions kept per package id; 0 = all */
	oh_task_env_t env;
} svc_workers_cfg_t;

typedef struct svc_workers svc_workers_t;

/* Starts the dispatcher.  Returns NULL on failure. */
svc_workers_t *svc_workers_start(const svc_workers_cfg_t *cfg);

/* Wakes the dispatcher: a task was just queued through this node. */
void svc_workers_wake(void *workers);

/* Stops claiming, gives running tasks GRACE_MS to finish, then asks the rest
 * to stop and requeues them for other nodes.  Whatever is still not done at
 * DEADLINE_MONO (oh_mono_ms time) is left to its lease.  Returns true when
 * every task thread ended (W is freed), false when some were left behind
 * (W is not freed; the process is about to exit). */
bool svc_workers_stop(svc_workers_t *w, int64_t grace_ms, int64_t deadline_mono);

#endif
