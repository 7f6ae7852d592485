/* Tentacles and how they reach the cluster.  A polling Tentacle must poll
 * every node (Octopus HA), so octoha keeps for each one a server entry per
 * node, derived from the cluster's polling mode: UniqueAddress (each node's
 * own address, all on one port) or UniquePort (the load balancer's address,
 * a port per node that the load balancer forwards).  When nodes join or
 * leave, or the mode changes, the entries are brought up to date and the
 * Tentacles whose list changed are marked for re-registration.  Polls are
 * recorded per Tentacle and node, so the cluster can say which Tentacles
 * do not poll every node in time. */
#ifndef OH_TENTACLES_H
#define OH_TENTACLES_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "nodes.h"
#include "tasks.h"

struct oh_event_spec; /* events.h */

#define OH_TENTACLE_ID_PREFIX "Tentacles-"
#define OH_DEFAULT_POLL_PORT  10943
/* Tentacle's own alphabet for generated subscription ids. */
#define OH_SUBSCRIPTION_ALPHABET "abcdefghjklmnpqrstuvwxyz23456789"

typedef struct {
	char id[51];
	char name[201];
	char thumbprint[41]; /* upper-case hex */
	bool polling;        /* TentacleActive; else TentaclePassive (listening) */
	char subscription_id[121];
	char uri[401];
	int64_t registered_at;
	char registered_by[201];
	int64_t servers_changed_at; /* 0 = never */
	bool needs_rereg;
	char health_status[31];
	int64_t health_checked_at;
	char health_detail[401];
	int64_t coverage_warned_at;
} oh_tentacle_t;

typedef struct {
	bool unique_port;
	char lb_address[256];
	int base_port;
	char server_url[401];
	char server_thumbprint[41];
	int poll_window_s;
} oh_polling_t;

/* Reads the polling settings (defaults: UniqueAddress, port 10943, window
 * 300 s).  Inside a transaction, or in one of its own. */
db_status_t oh_polling_get_tx(db_conn_t *c, oh_polling_t *out);
db_status_t oh_polling_get(db_pool_t *pool, oh_polling_t *out);

/* One server entry: where a polling Tentacle reaches NODE. */
typedef struct {
	char node_id[101];
	char node_name[65];
	char address[256];
	int port;
} oh_server_entry_t;

/* The entry node N gets under P, or false when it has none yet (UniquePort
 * without a port assigned). */
bool oh_server_entry_for(const oh_polling_t *p, const oh_node_t *n, oh_server_entry_t *out);

typedef enum {
	OH_POLLING_OK = 0,
	OH_POLLING_UNKNOWN_NODE, /* NodePorts names a node that is not registered */
	OH_POLLING_CLASH,        /* two nodes on one port */
	OH_POLLING_NO_PORT       /* no free port from BasePort for every node */
} oh_polling_outcome_t;

typedef struct {
	const char *name; /* node name */
	int port;
} oh_node_port_t;

/* Stores P, applies the N explicit PORTS and, in UniquePort mode, assigns
 * ports from P->base_port to the nodes without one; queues the
 * RefreshTentacleServers task (*TASK, to clear, when *OUTCOME is
 * OH_POLLING_OK) and records AUDIT, all in one transaction.  Returns DB_OK
 * with *OUTCOME set (refusals change nothing; DETAIL names the node or
 * port), or a failure. */
db_status_t oh_polling_set(db_pool_t *pool, const oh_polling_t *p, const oh_node_port_t *ports,
                           size_t n, const char *requested_by, const struct oh_event_spec *audit,
                           oh_polling_outcome_t *outcome, char *detail, size_t detail_len,
                           oh_task_t *task);

/* ---- Tentacles ----------------------------------------------------------- */

struct oh_idem;

/* Registers T (id, registered_at filled in) and queues its RegisterTentacle
 * task (*TASK, to clear) in one transaction with AUDIT and IDEM (the
 * request's idempotency key, may be NULL).  Returns DB_OK, DB_DUPLICATE
 * when the name is in use, DB_ABORT with IDEM->in_flight when another
 * request took the key meanwhile, or a failure. */
db_status_t oh_tentacle_register(db_pool_t *pool, oh_tentacle_t *t, struct oh_idem *idem,
                                 const struct oh_event_spec *audit, oh_task_t *task);

db_status_t oh_tentacle_get(db_pool_t *pool, const char *id, oh_tentacle_t *out);

typedef struct {
	oh_tentacle_t *v;
	size_t n, cap;
} oh_tentacle_list_t;

/* What a page of Tentacles is. */
typedef struct {
	bool only_rereg;        /* only those that must apply a new server list */
	bool missing;           /* only polling Tentacles missing a node (oldest first) */
	int64_t missing_before; /* set by oh_tentacles_page: now - the poll window */
	const char *after;      /* the page starts after this Tentacle Id, or NULL */
	int64_t skip, take;
	const char *thumbprint;   /* only this certificate (upper-case hex), or NULL */
	int style;                /* OH_STYLE_ANY, or only polling / listening ones */
	const char *partial_name; /* only names containing this (any case), or NULL */
} oh_tentacle_filter_t;

enum { OH_STYLE_ANY = 0, OH_STYLE_POLLING, OH_STYLE_LISTENING };

/* What a page of Tentacles is shown with, read in the page's transaction. */
typedef struct {
	int64_t offline_timeout_ms; /* in: when a node counts as offline */
	oh_node_list_t nodes;       /* out: the nodes (free with oh_node_list_free) */
	oh_polling_t polling;       /* out: the polling settings */
} oh_page_context_t;

/* Reads the page F into *OUT (ordered by Name, or with F->missing by how
 * long they have missed a node) and *TOTAL (up to DB_LIST_COUNT_CAP), with
 * every page Tentacle's polls in *POLLS and server entry counts in
 * *SERVERS (Address empty, Port the count), the database clock in *NOW
 * and, when MORE is not NULL, the nodes and polling settings into it, all
 * in one transaction.  Free the lists.  DB_NO_ROWS when F->after names no
 * Tentacle. */
typedef struct oh_link_list oh_link_list_t;
db_status_t oh_tentacles_page(db_pool_t *pool, const oh_tentacle_filter_t *f,
                              oh_tentacle_list_t *out, int64_t *total, oh_link_list_t *polls,
                              oh_link_list_t *servers, int64_t *now, oh_page_context_t *more);

/* Up to LIMIT listening Tentacles with Id after AFTER ("" for the first),
 * by Id: for passes that visit them all a batch at a time. */
db_status_t oh_tentacles_listening(db_pool_t *pool, const char *after, int limit,
                                   oh_tentacle_list_t *out);
void oh_tentacle_list_free(oh_tentacle_list_t *l);

/* Deletes ID with its entries and polls, recording AUDIT.  DB_NO_ROWS when
 * there is none. */
db_status_t oh_tentacle_delete(db_pool_t *pool, const char *id, const struct oh_event_spec *audit);

/* Every server entry and poll, for listings and coverage. */
typedef struct {
	char tentacle_id[51];
	char node_id[101];
	char address[256];
	int port;
	int64_t last_poll; /* polls only */
} oh_tentacle_link_t;

struct oh_link_list {
	oh_tentacle_link_t *v;
	size_t n, cap;
};

db_status_t oh_tentacle_servers(db_pool_t *pool, const char *id, oh_link_list_t *out);
db_status_t oh_tentacle_polls(db_pool_t *pool, const char *id, oh_link_list_t *out,
                              int64_t *db_now);
void oh_link_list_free(oh_link_list_t *l);

/* Brings the server entries of polling Tentacle ID (every polling Tentacle
 * when NULL) in line with the nodes and the polling mode, assigning
 * UniquePort ports to nodes that lack one.  A Tentacle whose list changed
 * after it was first recorded is marked for re-registration.  *CHANGED
 * (may be NULL) counts the Tentacles whose list changed. */
db_status_t oh_tentacles_refresh(db_pool_t *pool, const char *id, int64_t *changed);

typedef enum { OH_POLL_OK = 0, OH_POLL_NOT_FOUND, OH_POLL_NOT_POLLING } oh_poll_outcome_t;

/* Records a poll of ID at NODE_ID (database clock, returned in *AT); clears
 * its re-registration mark once it has polled every node on its list since
 * the list changed (*NEEDS_REREG says what is left). */
db_status_t oh_tentacle_poll(db_pool_t *pool, const char *id, const char *node_id,
                             oh_poll_outcome_t *outcome, int64_t *at, bool *needs_rereg);

db_status_t oh_tentacle_set_health(db_pool_t *pool, const char *id, const char *status,
                                   const char *detail);

/* Tentacle coverage, as kept when polls are recorded and nodes come and go:
 * a polling Tentacle misses a node when it has not polled one of the online
 * nodes within the window. */
typedef struct {
	char id[51];
	char name[201];
	char missing[16][65]; /* names of the nodes it missed (the first 16) */
	size_t n_missing;
} oh_missing_t;

typedef struct {
	int64_t total, polling, listening, rereg;
	int64_t missing; /* polling Tentacles missing a node, up to DB_LIST_COUNT_CAP */
	oh_missing_t *v; /* the first of them, longest missing first */
	size_t n;
	oh_polling_t polling_settings;
	int64_t now; /* database clock */
} oh_coverage_t;

/* Reads the counts and the first FIRST Tentacles missing a node into *OUT
 * (free it with oh_coverage_free; on failure it is empty). */
db_status_t oh_coverage_load(db_pool_t *pool, size_t first, oh_coverage_t *out);
void oh_coverage_free(oh_coverage_t *c);

/* The coverage pass, run by any node on a thread of its own: when the
 * online nodes differ from those coverage was computed for, records them
 * and recomputes every polling Tentacle's coverage, a batch per
 * transaction (any node continues a recompute another began); then emits
 * TentacleNotPollingAllNodes for up to a batch of Tentacles that newly miss
 * a node.  Cost: the nodes, plus the Tentacles that changed.  *STOP (may be
 * NULL) ends a recompute between batches. */
db_status_t oh_tentacles_coverage_pass(db_pool_t *pool, int64_t offline_timeout_ms,
                                       const volatile bool *stop);

/* Housekeeping: queues RefreshTentacleServers when the nodes or the mode
 * changed since the last refresh (*QUEUED says whether it did).  Reads the
 * nodes and settings only. */
db_status_t oh_tentacles_housekeeping(db_pool_t *pool, int64_t offline_timeout_ms, bool *queued);

#endif
