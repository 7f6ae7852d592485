/* The running node: start-up (data directory, schema, registration), the
 * heartbeat thread that keeps LastSeen fresh and publishes what ping
 * answers, and the orderly stop on SIGTERM. */
#ifndef SVC_NODE_H
#define SVC_NODE_H

#include "config.h"

/* Exit codes of the process. */
enum { SVC_EXIT_OK = 0, SVC_EXIT_FAILURE = 1, SVC_EXIT_USAGE = 2, SVC_EXIT_REFUSED = 3 };

/* Runs the node until SIGTERM or SIGINT.  Returns the process exit code. */
int svc_run(const svc_config_t *cfg);

/* `database --upgrade` / `--status`.  Returns the process exit code. */
int svc_database(const svc_config_t *cfg, bool upgrade);

#endif
