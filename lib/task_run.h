/* What a task kind sees while it runs: its arguments, its log (a file per
 * task in the TaskLogs folder, each line flushed to disk before the call
 * returns), fenced progress reports, and whether it must stop (cancelled, or
 * its lease lost to another node).  One file per kind in lib/tasks/. */
#ifndef OH_TASK_RUN_H
#define OH_TASK_RUN_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "db/db.h"
#include "storage.h"
#include "tasks.h"

/* What the node gives every task besides the task itself. */
typedef struct {
	const unsigned char *secrets_key; /* 32 bytes: opens sealed webhook secrets */
	oh_storage_t *storage;            /* this node's storage folders */
	int64_t event_retention_ms;       /* events older than this are archived */
	long http_timeout_ms;             /* outbound deliveries */
	/* What user-aimed outbound calls (webhooks, chat replies, Tentacle
	 * health checks) may reach; NULL reaches anything. */
	const struct oh_outbound_policy *outbound;
} oh_task_env_t;

typedef struct {
	db_pool_t *pool;
	const oh_task_env_t *env;
	const char *node_id; /* the executing node */
	const char *owner;   /* its lease owner token */
	const oh_claimed_t *task;
	const json_t *args;    /* parsed Arguments (an object) */
	int log_fd;            /* -1 when the log cannot be written */
	atomic_bool *cancel;   /* set when the task is asked to cancel */
	atomic_bool *lost;     /* set when the lease was taken over */
	atomic_bool *shutdown; /* set when this node is stopping */
	int64_t offline_timeout_ms;
	int64_t lease_ms;
} oh_task_run_t;

typedef struct {
	oh_end_t end;
	char error[512];
	json_t *result; /* owned; NULL for none */
} oh_task_outcome_t;

typedef struct {
	const char *name;
	bool system; /* claimable by draining nodes */
	void (*run)(oh_task_run_t *run, oh_task_outcome_t *out);
	/* Delivers events itself (webhooks, chat replies): its own failure is
	 * recorded but not delivered again, which could loop. */
	bool delivers;
} oh_task_kind_t;

/* The kind called NAME, or NULL. */
const oh_task_kind_t *oh_task_kind_find(const char *name);

/* True once the task must stop: cancel requested, lease lost or shutdown. */
bool oh_task_should_stop(const oh_task_run_t *run);

/* Sleeps up to MS, waking early to stop.  Returns false when it must stop. */
bool oh_task_sleep(const oh_task_run_t *run, int64_t ms);

/* Appends a line to the task's log and flushes it to disk. */
void oh_task_log(const oh_task_run_t *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports progress (fenced; ignored once the lease is lost). */
void oh_task_progress(const oh_task_run_t *run, int percent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Opens (creating) the log of task ID in DIR for appending.  -1 on error. */
int oh_task_log_open(const char *dir, const char *id);

/* Reads the log of task ID from the first of the N folders DIRS that has
 * it.  Returns a malloc'd NUL-terminated text and its length ("" and
 * *FOUND false when none has it), or NULL on a read error. */
char *oh_task_log_read(const char *const *dirs, size_t n, const char *id, size_t *len, bool *found);

/* Deletes the log of task ID in DIR, if any. */
void oh_task_log_remove(const char *dir, const char *id);

/* Writes one timestamped line to FD and fdatasyncs it. */
void oh_task_log_fd(int fd, const char *level, const char *text);

#endif
