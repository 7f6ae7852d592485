/* The running node: start-up (data directory, schema, registration), the
 * heartbeat thread that keeps LastSeen fresh and publishes what ping
 * answers, and the orderly stop on SIGTERM. */
#ifndef SVC_NODE_H
#define SVC_NODE_H

#include "../lib/db/db.h"
#include "../lib/tasks.h"
#include "config.h"

/* Exit codes of the process. */
enum { SVC_EXIT_OK = 0, SVC_EXIT_FAILURE = 1, SVC_EXIT_USAGE = 2, SVC_EXIT_REFUSED = 3 };

/* Runs the node until SIGTERM or SIGINT.  Returns the process exit code. */
int svc_run(const svc_config_t *cfg);

/* A small pool for the shell commands (node, admin, path) that work on the
 * database directly, with the data directory made, the database reached
 * and the schema brought up to date as `run` does (db-upgrade).  NULL with
 * the reason logged. */
db_pool_t *svc_command_pool(const svc_config_t *cfg);

/* `database --upgrade` / `--status`.  Returns the process exit code. */
int svc_database(const svc_config_t *cfg, bool upgrade);

typedef struct {
	int drain;         /* 1, 0, or -1 when not given */
	long task_cap;     /* -1 when not given */
	long wait_seconds; /* with drain: how long to wait for it */
	bool cancel_tasks; /* with drain: cancel what still runs after the wait */
} svc_node_args_t;

/* `node --drain … --taskCap … --wait … --cancel-tasks` for the node named by
 * the configuration.  Returns the process exit code. */
int svc_node_command(const svc_config_t *cfg, const svc_node_args_t *a);

typedef struct {
	const char *name; /* --name */
	const char *role; /* --role */
} svc_admin_args_t;

/* `admin --create-api-key --name … --role …`.  Returns the exit code. */
int svc_admin_command(const svc_config_t *cfg, const svc_admin_args_t *a);

/* The folders given to `path` (NULL when not given), in oh_folder_t order,
 * and how long to wait for the change. */
typedef struct {
	const char *paths[5];
	long wait_seconds;
} svc_path_args_t;

/* `path --artifacts … --taskLogs … --nugetRepository … --imports …
 * --eventExports …`.  Returns the exit code. */
int svc_path_command(const svc_config_t *cfg, const svc_path_args_t *a);

/* Follows task ID for up to SECONDS, printing its progress and how it
 * ended (LEFT says what stays as it is after a timeout).  On an end, *OUT
 * (may be NULL) receives the task (clear it).  Returns SVC_EXIT_OK when it
 * ended Success, else SVC_EXIT_FAILURE. */
int svc_wait_task(db_pool_t *pool, const char *id, long seconds, const char *left, oh_task_t *out);

#endif
