/* Chat replies that wait for a task to end, cluster housekeeping beyond the
 * task queue (node-offline events, the audit archive's schedule), and the
 * cluster-wide replay guard for signed chat requests. */
#ifndef OH_CHAT_REPLIES_H
#define OH_CHAT_REPLIES_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "tasks.h"

#define OH_CHAT_REPLY_KIND "ChatReply"

/* Remembers that the outcome of TASK_ID goes to RESPONSE_URL when it ends. */
db_status_t oh_chat_reply_register(db_pool_t *pool, const char *task_id, const char *response_url);

/* The response_url remembered for TASK_ID into URL (size SIZE).  DB_NO_ROWS
 * when there is none. */
db_status_t oh_chat_reply_url(db_pool_t *pool, const char *task_id, char *url, size_t size);

/* Records a signed request's signature SIG (seen at NOW_MS) once for the
 * whole cluster.  *FRESH is false when it was seen before: a replay. */
db_status_t oh_replay_guard(db_pool_t *pool, const char *sig, bool *fresh);

typedef struct {
	int64_t offline_events; /* nodes newly seen offline */
	int64_t chat_replies;   /* ChatReply tasks queued */
	bool archive_queued;
} oh_cluster_jobs_t;

/* Runs after a won housekeeping slot: queues ChatReply tasks for ended
 * tasks, records NodeOffline events for nodes silent past
 * OFFLINE_TIMEOUT_MS, queues the ArchiveEvents task once per
 * ARCHIVE_EVERY_MS when events older than EVENT_RETENTION_MS exist,
 * forgets replay signatures older than ten minutes. */
db_status_t oh_cluster_jobs(db_pool_t *pool, int64_t offline_timeout_ms, int64_t archive_every_ms,
                            int64_t event_retention_ms, oh_cluster_jobs_t *out);

#endif
