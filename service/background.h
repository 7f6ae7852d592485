/* The node's background passes that read or write many rows: Tentacle
 * coverage (node set changes, warnings), the RefreshTentacleServers check
 * and the task counts of /metrics.  They run on a thread of their own, so
 * however long a pass takes the dispatcher keeps claiming and renewing
 * leases.  Each pass is sized by what changed (lib/tentacles.h,
 * lib/task_counts.h). */
#ifndef SVC_BACKGROUND_H
#define SVC_BACKGROUND_H

#include <stdint.h>

#include "../lib/db/db.h"
#include "../lib/node_state.h"

typedef struct {
	db_pool_t *pool;
	oh_node_state_t *state; /* passes run only while the node is healthy */
	int64_t offline_timeout_ms;
	int64_t period_ms;       /* between passes */
	void (*wake)(void *ctx); /* called when a pass queued a task */
	void *wake_ctx;
} svc_background_cfg_t;

typedef struct svc_background svc_background_t;

/* Starts the thread.  Returns NULL on failure. */
svc_background_t *svc_background_start(const svc_background_cfg_t *cfg);

/* Stops the thread (a recompute in progress stops between batches) and
 * frees B; NULL is ignored. */
void svc_background_stop(svc_background_t *b);

#endif
