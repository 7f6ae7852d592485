#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/metrics_store.h"
#include "oh_log.h"

/* Upper bounds in microseconds and as the le label spells them. */
static const int64_t bounds_us[OH_METRICS_BOUNDS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
};
static const char *const bound_labels[OH_METRICS_BUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "+Inf",
};

/* The codes the dispatcher and civetweb answer with; others are "other". */
static const int codes[OH_METRICS_CODES - 1] = {
    200, 201, 202, 204, 308, 400, 401, 403, 404, 405,
    409, 411, 413, 414, 415, 418, 429, 431, 500, 503,
};
static const char *const code_labels[OH_METRICS_CODES] = {
    "200", "201", "202", "204", "308", "400", "401", "403", "404", "405",   "409",
    "411", "413", "414", "415", "418", "429", "431", "500", "503", "other",
};

/* One route's counters, on cache lines of its own so that routes counted
 * by different threads at once do not share a line. */
typedef struct {
	_Alignas(64) _Atomic uint64_t by_code[OH_METRICS_CODES];
	_Atomic uint64_t buckets[OH_METRICS_BUCKETS]; /* not cumulative */
	_Atomic uint64_t sum_us;
} route_counters_t;

struct oh_metrics {
	size_t n_routes;            /* counters has n_routes + 1 slots: the last is unmatched */
	const char **names;         /* n_routes borrowed names */
	route_counters_t *counters; /* aligned_alloc'd */
};

oh_metrics_t *oh_metrics_new(const char *const *route_names, size_t n_routes)
{
	oh_metrics_t *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->n_routes = n_routes;
	m->names = calloc(n_routes ? n_routes : 1, sizeof *m->names);
	size_t bytes = (n_routes + 1) * sizeof *m->counters; /* a multiple of the alignment */
	m->counters = aligned_alloc(_Alignof(route_counters_t), bytes);
	if (!m->names || !m->counters) {
		oh_metrics_free(m);
		return NULL;
	}
	memset(m->counters, 0, bytes); /* all-zero bits are zero atomics on our targets */
	for (size_t i = 0; i < n_routes; i++)
		m->names[i] = route_names[i];
	return m;
}

void oh_metrics_free(oh_metrics_t *m)
{
	if (!m)
		return;
	free(m->names);
	free(m->counters);
	free(m);
}

size_t oh_metrics_bucket_of(int64_t dur_us)
{
	size_t i = 0;
	while (i < OH_METRICS_BOUNDS && dur_us > bounds_us[i])
		i++;
	return i;
}

size_t oh_metrics_code_index(int status)
{
	for (size_t i = 0; i < OH_METRICS_CODES - 1; i++)
		if (codes[i] == status)
			return i;
	return OH_METRICS_CODES - 1;
}

const char *oh_metrics_code_label(size_t i)
{
	return i < OH_METRICS_CODES ? code_labels[i] : code_labels[OH_METRICS_CODES - 1];
}

static route_counters_t *slot(oh_metrics_t *m, size_t route)
{
	return &m->counters[route < m->n_routes ? route : m->n_routes];
}

/* Relaxed order: each counter is exact on its own, and a scrape does not
 * need a snapshot consistent across counters. */
void oh_metrics_count(oh_metrics_t *m, size_t route, int status)
{
	if (!m)
		return;
	atomic_fetch_add_explicit(&slot(m, route)->by_code[oh_metrics_code_index(status)], 1,
	                          memory_order_relaxed);
}

void oh_metrics_observe(oh_metrics_t *m, size_t route, int status, int64_t dur_us)
{
	if (!m)
		return;
	route_counters_t *r = slot(m, route);
	atomic_fetch_add_explicit(&r->by_code[oh_metrics_code_index(status)], 1,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&r->buckets[oh_metrics_bucket_of(dur_us)], 1,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&r->sum_us, dur_us > 0 ? (uint64_t)dur_us : 0,
	                          memory_order_relaxed);
}

/* ---- text ---------------------------------------------------------------- */

static void reserve(oh_metrics_text_t *t, size_t more)
{
	if (t->len + more + 1 <= t->cap)
		return;
	size_t cap = t->cap ? t->cap : 4096;
	while (cap < t->len + more + 1)
		cap *= 2;
	char *d = realloc(t->data, cap);
	if (!d) {
		fputs("octoha: out of memory rendering metrics\n", stderr);
		abort();
	}
	t->data = d;
	t->cap = cap;
}

static void put(oh_metrics_text_t *t, const char *s)
{
	size_t n = strlen(s);
	reserve(t, n);
	memcpy(t->data + t->len, s, n + 1);
	t->len += n;
}

__attribute__((format(printf, 2, 3))) static void putf(oh_metrics_text_t *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char small[256];
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort(); /* only our own formats come here */
	if ((size_t)n < sizeof small) {
		put(t, small);
		return;
	}
	reserve(t, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

void oh_metrics_text_free(oh_metrics_text_t *t)
{
	free(t->data);
	memset(t, 0, sizeof *t);
}

void oh_metrics_text_label_value(oh_metrics_text_t *t, const char *s)
{
	reserve(t, 2 * strlen(s));
	char *o = t->data + t->len;
	for (; *s; s++) {
		if (*s == '\\' || *s == '"') {
			*o++ = '\\';
			*o++ = *s;
		} else if (*s == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	t->len = (size_t)(o - t->data);
}

static void family(oh_metrics_text_t *t, const char *name, const char *type, const char *help)
{
	putf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* NAME{LABEL="VALUE"} (escaped), without the value. */
static void sample_open(oh_metrics_text_t *t, const char *name, const char *label,
                        const char *value)
{
	putf(t, "%s{%s=\"", name, label);
	oh_metrics_text_label_value(t, value);
	put(t, "\"");
}

static const char *route_name(const oh_metrics_t *m, size_t i)
{
	return i < m->n_routes ? m->names[i] : "unmatched";
}

static void render_requests(const oh_metrics_t *m, oh_metrics_text_t *t)
{
	family(t, "octoha_http_requests_total", "counter",
	       "HTTP requests this node answered, by route (operationId, or unmatched) and "
	       "status code.");
	for (size_t i = 0; m && i <= m->n_routes; i++)
		for (size_t c = 0; c < OH_METRICS_CODES; c++) {
			uint64_t v =
			    atomic_load_explicit(&m->counters[i].by_code[c], memory_order_relaxed);
			if (v == 0)
				continue;
			sample_open(t, "octoha_http_requests_total", "route", route_name(m, i));
			putf(t, ",code=\"%s\"} %" PRIu64 "\n", code_labels[c], v);
		}

	family(t, "octoha_http_request_duration_seconds", "histogram",
	       "Time from a request's arrival at the dispatcher to its answer being ready, "
	       "by route.");
	for (size_t i = 0; m && i <= m->n_routes; i++) {
		uint64_t cum[OH_METRICS_BUCKETS], acc = 0;
		for (size_t b = 0; b < OH_METRICS_BUCKETS; b++) {
			acc +=
			    atomic_load_explicit(&m->counters[i].buckets[b], memory_order_relaxed);
			cum[b] = acc;
		}
		if (acc == 0)
			continue;
		uint64_t sum_us =
		    atomic_load_explicit(&m->counters[i].sum_us, memory_order_relaxed);
		const char *name = route_name(m, i);
		for (size_t b = 0; b < OH_METRICS_BUCKETS; b++) {
			sample_open(t, "octoha_http_request_duration_seconds_bucket", "route",
			            name);
			putf(t, ",le=\"%s\"} %" PRIu64 "\n", bound_labels[b], cum[b]);
		}
		sample_open(t, "octoha_http_request_duration_seconds_sum", "route", name);
		putf(t, "} %" PRIu64 ".%06" PRIu64 "\n", sum_us / 1000000, sum_us % 1000000);
		sample_open(t, "octoha_http_request_duration_seconds_count", "route", name);
		putf(t, "} %" PRIu64 "\n", acc);
	}
}

static void render_pool(const db_pool_stats_t *s, bool up, oh_metrics_text_t *t)
{
	family(t, "octoha_db_transactions_total", "counter",
	       "Database transactions this node ran (each counted once, however often retried).");
	putf(t, "octoha_db_transactions_total %" PRIu64 "\n", s->txns);
	family(t, "octoha_db_retries_total", "counter",
	       "Transaction attempts retried after a transient failure or a lost connection.");
	putf(t, "octoha_db_retries_total %" PRIu64 "\n", s->retries);
	family(t, "octoha_db_reconnects_total", "counter",
	       "Connections re-established after the database could not be reached.");
	putf(t, "octoha_db_reconnects_total %" PRIu64 "\n", s->reconnects);
	family(t, "octoha_db_failures_total", "counter",
	       "Transactions that failed for good (retries exhausted or a hard error).");
	putf(t, "octoha_db_failures_total %" PRIu64 "\n", s->failures);
	family(t, "octoha_db_up", "gauge",
	       "1 when this scrape read the cluster's figures from the database, else 0.");
	putf(t, "octoha_db_up %d\n", up ? 1 : 0);
}

/* One gauge per node, its value picked by FIELD. */
typedef enum { NODE_RUNNING, NODE_CAP, NODE_DRAINING, NODE_ONLINE } node_field_t;

static void render_node_family(const oh_metrics_cluster_t *c, oh_metrics_text_t *t,
                               const char *name, const char *help, node_field_t field)
{
	family(t, name, "gauge", help);
	for (size_t i = 0; i < c->n_nodes; i++) {
		const oh_metrics_node_t *n = &c->nodes[i];
		int64_t v = field == NODE_RUNNING    ? n->running
		            : field == NODE_CAP      ? n->max_tasks
		            : field == NODE_DRAINING ? (n->draining ? 1 : 0)
		                                     : (n->online ? 1 : 0);
		sample_open(t, name, "node", n->name);
		putf(t, "} %" PRId64 "\n", v);
	}
}

static void render_cluster(const oh_metrics_cluster_t *c, oh_metrics_text_t *t)
{
	family(t, "octoha_tasks", "gauge", "Tasks in the cluster's queue by state.");
	for (int s = 0; s < OH_TS__COUNT; s++) {
		sample_open(t, "octoha_tasks", "state", oh_task_state_name((oh_task_state_t)s));
		putf(t, "} %" PRId64 "\n", c->tasks[s]);
	}
	family(t, "octoha_task_queue_depth", "gauge",
	       "Queued tasks that are due to run (NextRunAt reached) and wait for a free slot.");
	putf(t, "octoha_task_queue_depth %" PRId64 "\n", c->queue_depth);
	render_node_family(c, t, "octoha_node_running_tasks",
	                   "Capped tasks executing or cancelling on each node (the summary's "
	                   "RunningTaskCount).",
	                   NODE_RUNNING);
	render_node_family(c, t, "octoha_node_max_concurrent_tasks",
	                   "Each node's task cap (MaxConcurrentTasks).", NODE_CAP);
	render_node_family(c, t, "octoha_node_draining",
	                   "1 when the node is drained or draining (maintenance mode), else 0.",
	                   NODE_DRAINING);
	render_node_family(c, t, "octoha_node_online",
	                   "1 when the node is running and was seen within the offline timeout, "
	                   "else 0.",
	                   NODE_ONLINE);
}

void oh_metrics_render(const oh_metrics_t *m, const db_pool_stats_t *stats,
                       const oh_metrics_cluster_t *cluster, oh_metrics_text_t *out)
{
	render_requests(m, out);
	render_pool(stats, cluster != NULL, out);
	if (cluster)
		render_cluster(cluster, out);
}

/* ---- the cluster --------------------------------------------------------- */

typedef struct {
	int64_t timeout;
	oh_metrics_cluster_t *out;
	size_t cap;
	bool oom;
} read_ctx_t;

static void add_state(void *vctx, const char *state, int64_t n)
{
	read_ctx_t *x = vctx;
	oh_task_state_t s;
	if (oh_task_state_parse(state, &s))
		x->out->tasks[s] = n;
}

static void add_node(void *vctx, const metrics_store_node_t *n)
{
	read_ctx_t *x = vctx;
	oh_metrics_cluster_t *c = x->out;
	if (x->oom)
		return;
	if (c->n_nodes == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 8;
		oh_metrics_node_t *v = realloc(c->nodes, cap * sizeof *v);
		if (!v) {
			x->oom = true;
			return;
		}
		c->nodes = v;
		x->cap = cap;
	}
	oh_metrics_node_t *o = &c->nodes[c->n_nodes++];
	snprintf(o->name, sizeof o->name, "%s", n->name);
	o->draining = n->draining;
	o->online = n->online;
	o->max_tasks = n->max_tasks;
	o->running = n->running;
}

static db_status_t read_txn(db_conn_t *c, void *vctx)
{
	read_ctx_t *x = vctx;
	oh_metrics_cluster_free(x->out); /* a retried attempt starts afresh */
	x->cap = 0;
	x->oom = false;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = metrics_store_tasks_by_state(c, add_state, x);
	if (s == DB_OK)
		s = metrics_store_queue_depth(c, now, &x->out->queue_depth);
	if (s == DB_OK)
		s = metrics_store_nodes(c, now - x->timeout, add_node, x);
	if (s == DB_OK && x->oom)
		s = DB_ERROR;
	return s;
}

db_status_t oh_metrics_cluster_read(db_pool_t *pool, int64_t offline_timeout_ms,
                                    oh_metrics_cluster_t *out)
{
	memset(out, 0, sizeof *out);
	read_ctx_t x = {.timeout = offline_timeout_ms, .out = out};
	db_status_t s = db_txn(pool, DB_TXN_READ, read_txn, &x);
	if (s != DB_OK)
		oh_metrics_cluster_free(out);
	return s;
}

void oh_metrics_cluster_free(oh_metrics_cluster_t *c)
{
	free(c->nodes);
	memset(c, 0, sizeof *c);
}

char *oh_metrics_scrape(const oh_metrics_t *m, db_pool_t *pool, int64_t offline_timeout_ms,
                        size_t *len)
{
	oh_metrics_cluster_t cluster;
	db_status_t s = oh_metrics_cluster_read(pool, offline_timeout_ms, &cluster);
	if (s != DB_OK)
		oh_log(OH_LOG_WARN, "metrics without the cluster's figures", "db=%s",
		       db_status_name(s));
	/* Read after the cluster, so this scrape's own transaction is in. */
	db_pool_stats_t stats;
	db_pool_stats(pool, &stats);
	oh_metrics_text_t t = {0};
	reserve(&t, 16384);
	oh_metrics_render(m, &stats, s == DB_OK ? &cluster : NULL, &t);
	oh_metrics_cluster_free(&cluster);
	*len = t.len;
	return t.data;
}
