/* This node's metrics in the Prometheus text exposition format (0.0.4).
 *
 * In-process counters (HTTP requests by route and status code, a latency
 * histogram per route) are C11 atomics in a fixed array allocated once, so
 * counting a request takes no lock and no allocation.  A scrape renders
 * them with the database pool's counters and the cluster's figures, which
 * are read from the database at that moment (tasks by state, the due queue,
 * each node's drain flag, liveness, task cap and running tasks). */
#ifndef OH_METRICS_H
#define OH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "nodes.h"
#include "tasks.h"

/* The route index of requests that matched no route (404, 405, 413 or 414
 * before routing, and what the HTTP layer refuses itself). */
#define OH_METRICS_UNMATCHED SIZE_MAX

/* Upper bounds of the latency histogram in microseconds; a last bucket,
 * +Inf, takes the rest. */
#define OH_METRICS_BOUNDS  12
#define OH_METRICS_BUCKETS (OH_METRICS_BOUNDS + 1)

/* Status codes counted on their own; any other is counted as "other". */
#define OH_METRICS_CODES 21

typedef struct oh_metrics oh_metrics_t;

/* Creates zeroed counters for N_ROUTES routes named ROUTE_NAMES[i] (the
 * array is copied; the names are borrowed and must outlive the registry,
 * e.g. the route table's string literals) plus "unmatched".  Returns NULL
 * on OOM. */
oh_metrics_t *oh_metrics_new(const char *const *route_names, size_t n_routes);

/* Frees M; NULL is ignored.  No thread may count into M any more. */
void oh_metrics_free(oh_metrics_t *m);

/* Counts one request of ROUTE (an index below n_routes, or
 * OH_METRICS_UNMATCHED; anything else counts as unmatched) answered with
 * STATUS after DUR_US microseconds.  Lock-free and allocation-free; safe
 * from any thread. */
void oh_metrics_observe(oh_metrics_t *m, size_t route, int status, int64_t dur_us);

/* Counts a request as oh_metrics_observe does but leaves the histogram
 * alone: for answers whose duration is not known (the HTTP layer's own
 * refusals). */
void oh_metrics_count(oh_metrics_t *m, size_t route, int status);

/* Pure helpers, public for the unit tests. */

/* The histogram bucket of a duration: the first bound >= DUR_US, or
 * OH_METRICS_BOUNDS (+Inf).  Negative durations go to the first bucket. */
size_t oh_metrics_bucket_of(int64_t dur_us);

/* The index of STATUS among the counted codes; OH_METRICS_CODES - 1 is
 * "other". */
size_t oh_metrics_code_index(int status);

/* The code label of index I ("200" … "other"). */
const char *oh_metrics_code_label(size_t i);

/* A growing text buffer.  Appending aborts the process on OOM (as
 * oh_json_check does), so callers need no error paths. */
typedef struct {
	char *data; /* NUL-terminated; owned */
	size_t len, cap;
} oh_metrics_text_t;

void oh_metrics_text_free(oh_metrics_text_t *t);

/* Appends S as a label value escaped per the exposition format: backslash,
 * double quote and line feed become \\, \" and \n. */
void oh_metrics_text_label_value(oh_metrics_text_t *t, const char *s);

/* The cluster's figures as one read transaction saw them. */
typedef struct {
	char name[OH_NODE_NAME_MAX + 1];
	bool draining, online;
	int64_t max_tasks, running;
} oh_metrics_node_t;

typedef struct {
	int64_t tasks[OH_TS__COUNT]; /* by oh_task_state_t */
	int64_t queue_depth;         /* Queued and due */
	oh_metrics_node_t *nodes;    /* malloc'd, ordered by name */
	size_t n_nodes;
} oh_metrics_cluster_t;

/* Reads the cluster's figures in one read transaction (database clock; a
 * node is online as lib/nodes.c decides with OFFLINE_TIMEOUT_MS).  Returns
 * DB_OK with *OUT filled (release with oh_metrics_cluster_free), or the
 * failure with *OUT empty. */
db_status_t oh_metrics_cluster_read(db_pool_t *pool, int64_t offline_timeout_ms,
                                    oh_metrics_cluster_t *out);
void oh_metrics_cluster_free(oh_metrics_cluster_t *c);

/* Renders every family into OUT (appended): the request counters and
 * histograms of M (M may be NULL: none), the pool counters STATS, octoha_db_up
 * (1 when CLUSTER is given) and, when CLUSTER is not NULL, the cluster's
 * families.  Every family has its HELP and TYPE lines. */
void oh_metrics_render(const oh_metrics_t *m, const db_pool_stats_t *stats,
                       const oh_metrics_cluster_t *cluster, oh_metrics_text_t *out);

/* A scrape: reads the cluster from POOL, then renders as oh_metrics_render
 * (without the cluster's families when the database could not be read).
 * Never fails; returns the malloc'd text (the caller frees it) and its
 * length in *LEN. */
char *oh_metrics_scrape(const oh_metrics_t *m, db_pool_t *pool, int64_t offline_timeout_ms,
                        size_t *len);

#endif
