/* Every list query is read through an index: on a data set of 50,000
 * tasks, 20,000 events, 10,000 Tentacles with their polls and 5,000 webhook
 * deliveries (and packages, maintenance runs with their steps, managed
 * clusters with their nodes and Tentacles), the statements the stores
 * build for each filter their endpoints accept (tasks, events, Tentacles
 * and machines, deliveries, packages, maintenance runs, managed clusters
 * and their Tentacles; their counts and cursors; the steps and nodes read
 * with a page), the claim and the passes' range scans are put through EXPLAIN
 * QUERY PLAN (SQLite, always) and EXPLAIN (PostgreSQL, when OCTOHA_TEST_PG
 * is set).  A plan fails when it reads a large table without an index
 * (SQLite "SCAN t", PostgreSQL "Seq Scan on t"), when a filtered query
 * reads a whole index instead of seeking in it, or when it sorts the rows
 * of a table scan (the index is not in the list's order).  So a new filter
 * without its index fails here.  The checker itself is tested: with an
 * index dropped (in a transaction rolled back after) the plan must fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/dialect.h"
#include "db/events_store.h"
#include "db/keyset.h"
#include "db/maintenance_store.h"
#include "db/managed_store.h"
#include "db/migrate.h"
#include "db/packages_store.h"
#include "db/subscriptions_store.h"
#include "db/tasks_store.h"
#include "db/tentacles_store.h"

#define N_TASKS        50000
#define N_EVENTS       20000
#define N_TENTACLES    10000
#define N_DELIVERIES   5000
#define N_PACKAGES     5000  /* 500 package ids, 10 versions each */
#define N_RUNS         20000 /* maintenance runs, two per second, 3 steps each */
#define N_CLUSTERS     10000 /* managed clusters, 3 nodes each */
#define N_MC_TENTACLES 10000 /* over 20 managed clusters */
#define BASE_MS        1700000000000LL

static const char *const big_tables[] = {"servertasks",
                                         "events",
                                         "tentacles",
                                         "tentaclepolls",
                                         "tentacleservers",
                                         "webhookdeliveries",
                                         "packages",
                                         "maintenanceruns",
                                         "maintenancesteps",
                                         "managedclusters",
                                         "managedclusternodes",
                                         "managedtentacles"};

static db_pool_t *pool_for(const char *cs)
{
	db_pool_opts_t o = {.connstr = cs,
	                    .size = 2,
	                    .login_timeout_s = 5,
	                    .acquire_timeout_ms = 5000,
	                    .max_retries = 1};
	db_pool_t *p = db_pool_new(&o);
	assert_non_null(p);
	return p;
}

/* ---- the data set ---------------------------------------------------------- */

typedef struct {
	const char *sql[16];
	size_t n;
} script_t;

/* "FROM <N rows numbered i>" in DIALECT; PREFIX receives what goes before
 * the INSERT (SQLite's recursive CTE). */
static void rows(db_dialect_id_t d, int n, char *prefix, size_t psize, char *from, size_t fsize)
{
	if (d == DB_DIALECT_POSTGRESQL) {
		prefix[0] = '\0';
		snprintf(from, fsize, "FROM generate_series(1, %d) AS g(i)", n);
	} else {
		snprintf(
		    prefix, psize,
		    "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %d) ",
		    n);
		snprintf(from, fsize, "FROM g");
	}
}

static db_status_t exec_fmt(db_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static db_status_t exec_fmt(db_conn_t *c, const char *fmt, ...)
{
	char sql[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	db_status_t s = db_exec(c, sql, NULL, 0, NULL);
	if (s != DB_OK)
		fprintf(stderr, "load failed: %s\n  %s\n", db_conn_last_error(c), sql);
	return s;
}

static db_status_t load_txn(db_conn_t *c, void *ctx)
{
	(void)ctx;
	db_dialect_id_t d = db_conn_dialect(c);
	char pre[200], from[100];
	int64_t done = 0;
	db_status_t s = db_query_int(c, "SELECT COUNT(*) FROM ServerTasks", NULL, 0, &done);
	if (s != DB_OK || done >= N_TASKS)
		return s; /* a shared database already loaded */
	for (int k = 0; k < 3 && s == DB_OK; k++)
		s = exec_fmt(
		    c,
		    "INSERT INTO OctopusServerNodes (Id, Name, InstanceId, PublicUrl, "
		    "CommunicationsAddress, CommunicationsPort, MaxConcurrentTasks, Platform, "
		    "Version, StartedAt, LastSeen) VALUES ('OctopusServerNodes-plan%d', "
		    "'plan%d', 'i', 'http://x', 'x', 10943, 5, 'linux', 't', %lld, %lld)",
		    k, k, BASE_MS, BASE_MS);
	for (int k = 0; k < 3 && s == DB_OK; k++)
		s = exec_fmt(
		    c, "INSERT INTO CoverageNodes (NodeId) VALUES ('OctopusServerNodes-plan%d')",
		    k);
	/* 2,000 queued (half targeted at a node that is gone), the rest ended:
	 * Failed 2 %, Canceled 1 %, TimedOut 0.5 %, else Success; a Drain
	 * every fifth.  The cases filter on rare values: a dense one is cheap
	 * without its index too (PostgreSQL rightly reads the list's order
	 * index and filters; see judge), a rare one is not. */
	rows(d, N_TASKS, pre, sizeof pre, from, sizeof from);
	if (s == DB_OK)
		s = exec_fmt(
		    c,
		    "%sINSERT INTO ServerTasks (Id, Name, Description, Arguments, State, IsSystem, "
		    "TargetNodeId, ServerNodeId, Attempt, MaxAttempts, NextRunAt, QueueTime, "
		    "StartTime, "
		    "LastUpdatedTime, CompletedTime, Progress) SELECT 'ServerTasks-' || i, "
		    "CASE WHEN i %% 5 = 0 THEN 'Drain' ELSE 'Diagnostic' END, 'plan', '{}', "
		    "CASE WHEN i %% 25 = 0 THEN 'Queued' WHEN i %% 50 = 1 THEN 'Failed' "
		    "WHEN i %% 100 = 3 THEN 'Canceled' WHEN i %% 200 = 7 THEN 'TimedOut' "
		    "ELSE 'Success' END, 0, CASE WHEN i %% 50 = 0 THEN 'OctopusServerNodes-gone' "
		    "END, "
		    "CASE WHEN i %% 25 = 0 THEN NULL ELSE 'OctopusServerNodes-plan' || (i %% 3) "
		    "END, 1, "
		    "3, %lld + i * 1000, %lld + i * 1000, %lld + i * 1000, %lld + i * 1000, "
		    "CASE WHEN i %% 25 = 0 THEN NULL ELSE %lld + i * 1000 + 500 END, 100 %s",
		    pre, BASE_MS, BASE_MS, BASE_MS, BASE_MS, BASE_MS, from);
	rows(d, N_EVENTS, pre, sizeof pre, from, sizeof from);
	if (s == DB_OK)
		s = exec_fmt(
		    c,
		    "%sINSERT INTO Events (Id, Occurred, Category, Operation, ResourceId, "
		    "UserId, Username, Result, Message) SELECT 'Events-' || i, %lld + i * 100, "
		    "CASE WHEN i %% 100 = 2 THEN 'NodeDrained' WHEN i %% 4 = 1 THEN "
		    "'AccessDenied' WHEN i %% 4 = 0 THEN 'TaskQueued' ELSE "
		    "'TentacleRegistered' END, 'op' || (i %% 200), "
		    "'res-' || (i %% 500), 'ApiKeys-' || (i %% 100), 'user' || (i %% 100), "
		    "'Success', 'plan' %s",
		    pre, BASE_MS, from);
	/* Every tenth Tentacle listens; 2 % miss a node, 2 % must re-register. */
	rows(d, N_TENTACLES, pre, sizeof pre, from, sizeof from);
	if (s == DB_OK)
		s = exec_fmt(c,
		             "%sINSERT INTO Tentacles (Id, Name, Thumbprint, CommunicationStyle, "
		             "SubscriptionId, "
		             "Uri, RegisteredAt, NeedsReRegistration, OldestPollAt) SELECT "
		             "'Tentacles-' || i, "
		             "'tentacle-' || i, 'ABCDEF0123456789ABCDEF0123456789ABCDEF01', CASE "
		             "WHEN i %% 10 = 0 "
		             "THEN 'TentaclePassive' ELSE 'TentacleActive' END, CASE WHEN i %% 10 "
		             "= 0 THEN NULL "
		             "ELSE 'poll://x' || i || '/' END, CASE WHEN i %% 10 = 0 THEN "
		             "'https://t' || i || "
		             "':10933/' END, %lld, CASE WHEN i %% 50 = 3 THEN 1 ELSE 0 END, CASE "
		             "WHEN i %% 10 = 0 "
		             "THEN NULL WHEN i %% 50 = 1 THEN 0 ELSE %lld + i END %s",
		             pre, BASE_MS, BASE_MS + 60000000, from);
	for (int k = 0; k < 3 && s == DB_OK; k++) {
		rows(d, N_TENTACLES, pre, sizeof pre, from, sizeof from);
		s = exec_fmt(c,
		             "%sINSERT INTO TentaclePolls (TentacleId, NodeId, LastPollAt) SELECT "
		             "'Tentacles-' || i, 'OctopusServerNodes-plan%d', %lld + i %s",
		             pre, k, BASE_MS + 60000000, from);
		if (s == DB_OK)
			s = exec_fmt(
			    c,
			    "%sINSERT INTO TentacleServers (TentacleId, NodeId, Address, Port, "
			    "AddedAt) SELECT 'Tentacles-' || i, 'OctopusServerNodes-plan%d', "
			    "'x', 10943, %lld %s",
			    pre, k, BASE_MS, from);
	}
	rows(d, N_DELIVERIES, pre, sizeof pre, from, sizeof from);
	if (s == DB_OK)
		s = exec_fmt(
		    c,
		    "%sINSERT INTO WebhookDeliveries (Id, SubscriptionId, EventId, TaskId, "
		    "Attempt, DeliveredAt, Succeeded, DurationMs) SELECT "
		    "'WebhookDeliveries-' || i, 'Subscriptions-' || (i %% 5), 'Events-' || i, "
		    "'ServerTasks-' || i, 1, %lld + i * 10, 1, 5 %s",
		    pre, BASE_MS, from);
	/* VersionSort: six digits, unique, in the order of i. */
	rows(d, N_PACKAGES, pre, sizeof pre, from, sizeof from);
	if (s == DB_OK)
		s = exec_fmt(
		    c,
		    "%sINSERT INTO Packages (Id, SpaceId, PackageId, PackageKey, Version, "
		    "VersionSort, FileExtension, FileName, PackageSizeBytes, Hash, Sha256, "
		    "Published) SELECT 'Packages-' || i, 'Spaces-1', 'Pkg' || (i %% 500), "
		    "'pkg' || (i %% 500), '1.0.' || i, '' || (100000 + i), '.nupkg', 'f' || i, 1, "
		    "'0123456789012345678901234567890123456789', "
		    "'0123456789012345678901234567890123456789012345678901234567890123', %lld %s",
		    pre, BASE_MS, from);
	/* Maintenance runs, two created in each second (ties broken by Id),
	 * with three steps each. */
	rows(d, N_RUNS, pre, sizeof pre, from, sizeof from);
	if (s == DB_OK)
		s = exec_fmt(
		    c,
		    "%sINSERT INTO MaintenanceRuns (Id, ClusterId, TaskId, State, Reason, "
		    "MinOnlineNodes, DrainDeadlineSeconds, DeadlineAction, SettleSeconds, "
		    "BalancerDelaySeconds, UndrainOnAbort, AbortRequested, CurrentStep, "
		    "DriverAttempt, RequestedBy, CreatedAt) SELECT 'MaintenanceRuns-' || i, "
		    "'local', 'ServerTasks-m' || i, 'Completed', 'plan', 1, 600, 'Requeue', 30, 0, "
		    "1, 0, 2, 1, 'plan', %lld + (i / 2) * 1000 %s",
		    pre, BASE_MS, from);
	for (int k = 0; k < 3 && s == DB_OK; k++) {
		rows(d, N_RUNS, pre, sizeof pre, from, sizeof from);
		s = exec_fmt(c,
		             "%sINSERT INTO MaintenanceSteps (RunId, Position, NodeKey, NodeName, "
		             "State, PingLost, ContinueRequested) SELECT 'MaintenanceRuns-' || i, "
		             "%d, 'n%d', 'n%d', 'Done', 0, 0 %s",
		             pre, k, k, k, from);
	}
	rows(d, N_CLUSTERS, pre, sizeof pre, from, sizeof from);
	if (s == DB_OK)
		s = exec_fmt(
		    c,
		    "%sINSERT INTO ManagedClusters (Id, Name, LoadBalancerUrl, SpaceId, "
		    "SealedApiKey, ApiKeyPrefix, VerifyTls, NodesVersion, CreatedBy, "
		    "CreatedAt, UpdatedAt) SELECT 'ManagedClusters-' || i, 'cluster-' || i, "
		    "'https://lb', 'Spaces-1', 'sealed', 'API-PLAN', 1, 1, 'plan', %lld, "
		    "%lld %s",
		    pre, BASE_MS, BASE_MS, from);
	for (int k = 0; k < 3 && s == DB_OK; k++) {
		rows(d, N_CLUSTERS, pre, sizeof pre, from, sizeof from);
		s = exec_fmt(c,
		             "%sINSERT INTO ManagedClusterNodes (ClusterId, Position, Name, Url) "
		             "SELECT 'ManagedClusters-' || i, %d, 'node%d', 'https://n%d' %s",
		             pre, 2 - k, k, k, from);
	}
	rows(d, N_MC_TENTACLES, pre, sizeof pre, from, sizeof from);
	if (s == DB_OK)
		s = exec_fmt(c,
		             "%sINSERT INTO ManagedTentacles (Id, ClusterId, Name, Thumbprint, "
		             "SubscriptionId, RegisteredAt, RegisteredBy, ServersVersion, "
		             "NeedsReRegistration) SELECT 'ManagedTentacles-' || i, "
		             "'ManagedClusters-' || (i %% 20), 'mt-' || i, "
		             "'ABCDEF0123456789ABCDEF0123456789ABCDEF01', 'poll://m' || i || '/', "
		             "%lld, 'plan', 1, 0 %s",
		             pre, BASE_MS, from);
	if (s == DB_OK)
		s = db_exec(c, "ANALYZE", NULL, 0, NULL);
	return s;
}

/* ---- the plan checker ------------------------------------------------------ */

typedef struct {
	bool sqlite; /* id, parent, notused, detail; else one text column */
	char text[64][300];
	int parent[64], id[64];
	size_t n;
} plan_t;

static db_status_t plan_row(void *vctx, db_row_t *r)
{
	plan_t *p = vctx;
	if (p->n >= 64)
		return DB_OK;
	const char *t;
	if (p->sqlite) {
		p->id[p->n] = (int)db_row_int(r, 0, NULL);
		p->parent[p->n] = (int)db_row_int(r, 1, NULL);
		t = db_row_text(r, 3);
	} else {
		t = db_row_text(r, 0);
	}
	snprintf(p->text[p->n], sizeof p->text[0], "%s", t ? t : "");
	for (char *c = p->text[p->n]; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	p->n++;
	return DB_OK;
}

static const struct {
	const char *table;
	double rows;
} table_rows[] = {{"servertasks", N_TASKS},
                  {"events", N_EVENTS},
                  {"tentacles", N_TENTACLES},
                  {"tentaclepolls", 3 * N_TENTACLES},
                  {"tentacleservers", 3 * N_TENTACLES},
                  {"packages", N_PACKAGES},
                  {"webhookdeliveries", N_DELIVERIES},
                  {"maintenanceruns", N_RUNS},
                  {"maintenancesteps", 3 * N_RUNS},
                  {"managedclusters", N_CLUSTERS},
                  {"managedclusternodes", 3 * N_CLUSTERS},
                  {"managedtentacles", N_MC_TENTACLES}};

/* The rows PostgreSQL's plan node T expects, or a huge number. */
static double rows_est(const char *t)
{
	const char *r = strstr(t, "rows=");
	return r ? atof(r + 5) : 1e18;
}

/* True when PostgreSQL's scan node T expects to return at least a tenth of
 * its table: then reading in order and filtering reads at most ten rows
 * per row returned, as cheap as a seek (the planner rightly prefers it for
 * a dense filter value). */
static bool dense(const char *t)
{
	const char *on = strstr(t, " on ");
	const char *r = strstr(t, "rows=");
	if (!on || !r)
		return false;
	double est = atof(r + 5);
	for (size_t i = 0; i < sizeof table_rows / sizeof table_rows[0]; i++) {
		size_t n = strlen(table_rows[i].table);
		if (strncmp(on + 4, table_rows[i].table, n) == 0 && on[4 + n] == ' ')
			return est * 10 >= table_rows[i].rows;
	}
	return false;
}

static bool big(const char *text, const char *prefix)
{
	const char *at = strstr(text, prefix);
	if (!at)
		return false;
	at += strlen(prefix);
	for (size_t i = 0; i < sizeof big_tables / sizeof big_tables[0]; i++) {
		size_t n = strlen(big_tables[i]);
		if (strncmp(at, big_tables[i], n) == 0 && !isalnum((unsigned char)at[n]) &&
		    at[n] != '_')
			return true;
	}
	return false;
}

/* Returns the first problem in P (a plan of DIALECT) or NULL. */
static const char *judge(db_dialect_id_t d, const plan_t *p, bool filtered, bool count, char *why,
                         size_t size)
{
	for (size_t i = 0; i < p->n; i++) {
		const char *t = p->text[i];
		if (d == DB_DIALECT_SQLITE) {
			/* "SCAN t" reads the table; "SCAN t USING INDEX" reads a whole
			 * index, fine only for an unfiltered list (it stops at the page). */
			if (big(t, "scan ") && (!strstr(t, " using ") || filtered)) {
				snprintf(why, size, "reads a whole table or index: %s", t);
				return why;
			}
			if (strstr(t, "use temp b-tree")) {
				/* Sorting the page's rows, each found by its Id, is
				 * bounded by the page; sorting what a range read is not. */
				for (size_t j = 0; j < p->n; j++)
					if (j != i && p->parent[j] == p->parent[i] &&
					    (big(p->text[j], "scan ") ||
					     big(p->text[j], "search ")) &&
					    !strstr(p->text[j], "(id=?)")) {
						snprintf(why, size,
						         "sorts the rows it reads (%s): %s",
						         p->text[j], t);
						return why;
					}
			}
			continue;
		}
		/* A count may read a table it must count whole anyway: one that
		 * holds fewer rows than the cap. */
		if (big(t, "seq scan on ") && !(filtered && dense(t)) &&
		    !(count && rows_est(t) <= DB_LIST_COUNT_CAP + 1)) {
			snprintf(why, size, "reads a whole table: %s", t);
			return why;
		}
		bool scan =
		    big(t, " on ") && (strstr(t, "index scan") || strstr(t, "index only scan"));
		if (scan && filtered && !dense(t)) {
			/* Its details (until the next plan node) must hold an Index Cond. */
			bool cond = false;
			for (size_t j = i + 1; j < p->n && !strstr(p->text[j], "->"); j++)
				cond = cond || strstr(p->text[j], "index cond:");
			if (!cond) {
				snprintf(why, size, "reads a whole index: %s", t);
				return why;
			}
		}
		/* A count may sort what it found by a seek (at most the cap); a
		 * page must read its rows in order. */
		const char *node = strstr(t, "sort  (");
		if (node && !count && !strstr(t, "incremental sort") && i + 1 < p->n) {
			size_t j = i + 1;
			while (j < p->n && !strstr(p->text[j], "->"))
				j++;
			/* Sorting what a seek found is fine while that is a few
			 * pages; the planner only does so when it expects few. */
			bool seek = strstr(p->text[j], "bitmap heap scan");
			for (size_t k = j + 1; k < p->n && !strstr(p->text[k], "->"); k++)
				seek = seek || strstr(p->text[k], "index cond:");
			if (j < p->n && big(p->text[j], " on ") &&
			    (strstr(p->text[j], "scan") || strstr(p->text[j], "seq")) &&
			    !(seek && rows_est(p->text[j]) <= 200)) {
				snprintf(why, size, "sorts the rows of a scan: %s", p->text[j]);
				return why;
			}
		}
	}
	return NULL;
}

static const char *explain(db_conn_t *c, const char *sql, const db_param_t *prm, size_t n,
                           bool filtered, bool count, plan_t *p, char *why, size_t size)
{
	db_dialect_id_t d = db_conn_dialect(c);
	/* A new text each time: a statement prepared before an index was
	 * dropped must not answer with its old plan. */
	static char text[DB_SQL_MAX + 80];
	static unsigned serial;
	snprintf(text, sizeof text, "%s /* %u */ %s",
	         d == DB_DIALECT_SQLITE ? "EXPLAIN QUERY PLAN" : "EXPLAIN", ++serial, sql);
	memset(p, 0, sizeof *p);
	p->sqlite = d == DB_DIALECT_SQLITE;
	db_status_t s = db_query(c, text, prm, n, plan_row, p);
	if (s != DB_OK) {
		snprintf(why, size, "EXPLAIN failed (%s): %s", db_status_name(s),
		         db_conn_last_error(c));
		return why;
	}
	return judge(d, p, filtered, count, why, size);
}

/* ---- the cases ----------------------------------------------------------------- */

typedef enum {
	K_TASKS,
	K_EVENTS,
	K_TENTACLES,
	K_DELIVERIES,
	K_PACKAGES,
	K_MAINT_RUNS,
	K_CLUSTERS,
	K_MC_TENTACLES
} kind_t;

typedef struct {
	const char *name;
	kind_t kind;
	bool filtered;
	oh_task_filter_t task;
	oh_event_filter_t event;
	oh_tentacle_filter_t tentacle;
	packages_filter_t package;
	const char *subscription; /* deliveries; managed Tentacles: the cluster */
	int64_t skip;             /* maintenance runs, managed clusters and Tentacles */
	bool cursor;              /* page after a row in the middle */
} list_case_t;

#define ALL_STATES ((1u << OH_TS__COUNT) - 1)
#define S(x)       (1u << (x))

static const list_case_t cases[] = {
    {"tasks", K_TASKS, false, .task = {.take = 30}},
    {"tasks skip 10000", K_TASKS, false, .task = {.skip = 10000, .take = 30}},
    {"tasks after", K_TASKS, false, .task = {.take = 30}, .cursor = true},
    {"tasks states=Success", K_TASKS, true, .task = {.states = S(OH_TS_SUCCESS), .take = 30}},
    {"tasks states=Failed", K_TASKS, true, .task = {.states = S(OH_TS_FAILED), .take = 30}},
    {"tasks states=TimedOut skip", K_TASKS, true,
     .task = {.states = S(OH_TS_TIMED_OUT), .skip = 100, .take = 30}},
    {"tasks states=Queued,Executing,Cancelling", K_TASKS, true,
     .task = {.states = S(OH_TS_QUEUED) | S(OH_TS_EXECUTING) | S(OH_TS_CANCELLING), .take = 30}},
    {"tasks states=Success,Failed after", K_TASKS, true,
     .task = {.states = S(OH_TS_SUCCESS) | S(OH_TS_FAILED), .take = 30}, .cursor = true},
    {"tasks every state", K_TASKS, true, .task = {.states = ALL_STATES, .take = 30}},
    {"tasks node", K_TASKS, true, .task = {.node = "OctopusServerNodes-plan1", .take = 30}},
    {"tasks name", K_TASKS, true, .task = {.name = "Drain", .take = 30}},
    {"tasks node+states", K_TASKS, true,
     .task = {.node = "OctopusServerNodes-plan2", .states = S(OH_TS_FAILED), .take = 30}},
    {"tasks name+states skip", K_TASKS, true,
     .task = {.name = "Drain", .states = S(OH_TS_SUCCESS), .skip = 500, .take = 30}},
    {"tasks node+name", K_TASKS, true,
     .task = {.node = "OctopusServerNodes-plan0", .name = "Drain", .take = 30}},
    {"events", K_EVENTS, false, .event = {.take = 30}},
    {"events after", K_EVENTS, false, .event = {.take = 30}, .cursor = true},
    {"events user", K_EVENTS, true, .event = {.user = "user7", .take = 30}},
    {"events user nobody", K_EVENTS, true, .event = {.user = "nobody", .take = 30}},
    {"events regarding", K_EVENTS, true, .event = {.resource = "res-42", .take = 30}},
    {"events operation", K_EVENTS, true, .event = {.operation = "op3", .take = 30}},
    {"events category", K_EVENTS, true, .event = {.category = "NodeDrained", .take = 30}},
    {"events from/to", K_EVENTS, true,
     .event = {.from = BASE_MS + 500000, .to = BASE_MS + 900000, .take = 30}},
    {"events category+user after", K_EVENTS, true,
     .event = {.category = "AccessDenied", .user = "ApiKeys-5", .take = 30}, .cursor = true},
    {"tentacles", K_TENTACLES, false, .tentacle = {.take = 30}},
    {"tentacles after", K_TENTACLES, false, .tentacle = {.take = 30}, .cursor = true},
    {"tentacles needsReRegistration", K_TENTACLES, true,
     .tentacle = {.only_rereg = true, .take = 30}},
    {"tentacles notPollingEveryNode", K_TENTACLES, true,
     .tentacle = {.missing = true, .missing_before = BASE_MS + 60000000, .take = 30}},
    {"tentacles notPollingEveryNode after", K_TENTACLES, true,
     .tentacle = {.missing = true, .missing_before = BASE_MS + 60000000, .take = 30},
     .cursor = true},
    {"machines commStyles=TentaclePassive", K_TENTACLES, true,
     .tentacle = {.style = OH_STYLE_LISTENING, .take = 30}},
    {"machines thumbprint", K_TENTACLES, true,
     .tentacle = {.thumbprint = "0123456789ABCDEF0123456789ABCDEF01234567", .take = 30}},
    {"machines thumbprint+commStyles after", K_TENTACLES, true,
     .tentacle = {.thumbprint = "0123456789ABCDEF0123456789ABCDEF01234567",
                  .style = OH_STYLE_POLLING,
                  .take = 30},
     .cursor = true},
    {"packages", K_PACKAGES, false, .package = {.space_id = "Spaces-1", .take = 30}},
    {"packages skip", K_PACKAGES, false,
     .package = {.space_id = "Spaces-1", .skip = 300, .take = 30}},
    {"packages after", K_PACKAGES, false, .package = {.space_id = "Spaces-1", .take = 30},
     .cursor = true},
    {"packages nuGetPackageId", K_PACKAGES, true,
     .package = {.space_id = "Spaces-1", .package_id = "Pkg7", .take = 30}},
    {"packages latest after", K_PACKAGES, false,
     .package = {.space_id = "Spaces-1", .latest = 1, .take = 30}, .cursor = true},
    {"deliveries", K_DELIVERIES, true, .subscription = "Subscriptions-3"},
    {"deliveries after", K_DELIVERIES, true, .subscription = "Subscriptions-3", .cursor = true},
    {"maintenance runs", K_MAINT_RUNS, false, .skip = 0},
    {"maintenance runs skip", K_MAINT_RUNS, false, .skip = 300},
    {"maintenance runs after", K_MAINT_RUNS, false, .cursor = true},
    {"managed clusters", K_CLUSTERS, false, .skip = 0},
    {"managed clusters skip", K_CLUSTERS, false, .skip = 300},
    {"managed clusters after", K_CLUSTERS, false, .cursor = true},
    {"managed tentacles", K_MC_TENTACLES, true, .subscription = "ManagedClusters-7"},
    {"managed tentacles skip", K_MC_TENTACLES, true, .subscription = "ManagedClusters-7",
     .skip = 100},
    {"managed tentacles after", K_MC_TENTACLES, true, .subscription = "ManagedClusters-7",
     .cursor = true},
};

/* Builds case X's page (COUNT false) or count statement into OUT. */
static void build(db_dialect_id_t d, const list_case_t *x, bool count, db_sql_t *out)
{
	db_list_query_t q;
	const db_list_t *l = NULL;
	static char where[2][256], like[410], tentacle_text[TENTACLES_QUERY_TEXT];
	switch (x->kind) {
	case K_TASKS:
		tasks_store_list_query(&x->task, &q, like, sizeof like);
		l = &tasks_store_list_def;
		if (x->cursor) {
			q.after = true;
			q.after_k1 = BASE_MS + 25000 * 1000LL;
			q.after_k2 = "ServerTasks-25000";
		}
		break;
	case K_EVENTS:
		events_store_list_query(&x->event, &q, where);
		l = &events_store_list_def;
		if (x->cursor) {
			q.after = true;
			q.after_k1 = BASE_MS + 10000 * 100LL;
			q.after_k2 = "Events-10000";
		}
		break;
	case K_TENTACLES:
		l = tentacles_store_list_query(&x->tentacle, &q, tentacle_text);
		if (x->cursor) {
			q.after = true;
			q.after_k1 = 0;
			q.after_k1_text = "tentacle-1000";
			q.after_k2 = "Tentacles-1001";
		}
		break;
	case K_PACKAGES: {
		/* The page as db_query_page sends it (appended LIMIT/OFFSET; the
		 * wrapping dialect is checked by lint.tsql, not here). */
		static packages_query_t pq;
		packages_store_list_query(&x->package, x->cursor ? "pkg250" : NULL,
		                          x->cursor ? "102750" : NULL, &pq);
		if (count) {
			packages_store_count_sql(d, pq.where_count, pq.p, pq.n_count, out);
			return;
		}
		char *paged = db_page_sql(d, pq.page);
		assert_non_null(paged);
		db_sql_init(out);
		db_sql_add(out, paged);
		free(paged);
		for (size_t i = 0; i < pq.n; i++)
			db_sql_bind(out, pq.p[i]);
		db_sql_bind(out, DBP_INT(x->package.take));
		db_sql_bind(out, DBP_INT(x->package.skip));
		return;
	}
	case K_DELIVERIES:
		deliveries_store_list_query(x->subscription, 30, &q);
		l = &deliveries_store_list_def;
		if (x->cursor) {
			q.after = true;
			q.after_k1 = BASE_MS + 2500 * 10;
			q.after_k2 = "WebhookDeliveries-2500";
		}
		break;
	case K_MAINT_RUNS:
		maint_store_list_query(x->skip, 30, &q);
		l = &maint_store_list_def;
		if (x->cursor) {
			q.after = true;
			q.after_k1 = BASE_MS + 1250 * 1000LL;
			q.after_k2 = "MaintenanceRuns-2500";
		}
		break;
	case K_CLUSTERS:
		managed_store_list_query(x->skip, 30, &q);
		l = &managed_store_list_def;
		if (x->cursor) {
			q.after = true;
			q.after_k1_text = "cluster-1000";
			q.after_k2 = "ManagedClusters-1000";
		}
		break;
	case K_MC_TENTACLES:
		managed_store_tentacle_list_query(x->subscription, x->skip, 30, &q);
		l = &managed_store_tentacle_list_def;
		if (x->cursor) {
			q.after = true;
			q.after_k1_text = "mt-5007";
			q.after_k2 = "ManagedTentacles-5007";
		}
		break;
	}
	if (count)
		db_list_count_sql(d, l, &q, out);
	else
		db_list_page_sql(d, l, &q, out);
}

/* The rows read with a page by Id: its runs' steps, its clusters' nodes
 * (WHICH 0, 1), for 30 Ids. */
static void build_of(int which, db_sql_t *out)
{
	static char buf[30][40];
	const char *ids[30];
	for (int i = 0; i < 30; i++) {
		snprintf(buf[i], sizeof buf[i], "%s%d",
		         which ? "ManagedClusters-" : "MaintenanceRuns-", 1000 + 7 * i);
		ids[i] = buf[i];
	}
	if (which)
		managed_store_nodes_of_sql(ids, 30, out);
	else
		maint_store_steps_of_sql(ids, 30, out);
}

typedef struct {
	int failures;
} run_t;

static db_status_t check_txn(db_conn_t *c, void *ctx)
{
	run_t *r = ctx;
	db_dialect_id_t d = db_conn_dialect(c);
	static db_sql_t q;
	plan_t p;
	char why[600];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (int count = 0; count < 2; count++) {
			if (count && (cases[i].cursor || cases[i].kind == K_DELIVERIES))
				continue; /* counts ignore the cursor; deliveries have none */
			build(d, &cases[i], count, &q);
			assert_false(q.overflow);
			const char *bad = explain(c, q.sql, q.p, q.n, cases[i].filtered, count, &p,
			                          why, sizeof why);
			if (bad) {
				fprintf(stderr, "PLAN FAIL [%s] %s%s: %s\n", db_dialect_name(d),
				        cases[i].name, count ? " (count)" : "", bad);
				for (size_t k = 0; k < p.n; k++)
					fprintf(stderr, "    %s\n", p.text[k]);
				r->failures++;
			}
		}
	}
	/* The steps and nodes of a page's runs and clusters. */
	for (int which = 0; which < 2; which++) {
		build_of(which, &q);
		assert_false(q.overflow);
		const char *bad = explain(c, q.sql, q.p, q.n, true, false, &p, why, sizeof why);
		if (bad) {
			fprintf(stderr, "PLAN FAIL [%s] %s of a page: %s\n", db_dialect_name(d),
			        which ? "nodes" : "steps", bad);
			for (size_t k = 0; k < p.n; k++)
				fprintf(stderr, "    %s\n", p.text[k]);
			r->failures++;
		}
	}
	/* Totals: exact below the cap, the cap above it. */
	int64_t total = 0;
	db_list_query_t lq;
	oh_task_filter_t all = {.take = 30}, rare = {.states = S(OH_TS_TIMED_OUT), .take = 30};
	char like[410];
	tasks_store_list_query(&all, &lq, like, sizeof like);
	assert_int_equal(db_list_count(c, &tasks_store_list_def, &lq, &total), DB_OK);
	assert_int_equal(total, DB_LIST_COUNT_CAP);
	tasks_store_list_query(&rare, &lq, like, sizeof like);
	assert_int_equal(db_list_count(c, &tasks_store_list_def, &lq, &total), DB_OK);
	assert_int_equal(total, N_TASKS / 200);

	/* The claim: two ordered ranges, never the tasks targeted elsewhere. */
	const db_dialect_t *dt = db_dialect(d);
	/* tasks_store_claim's parameters, in its order: the dialect's map
	 * picks from these. */
	db_param_t canon[] = {DBP_TEXT("OctopusServerNodes-plan0"),
	                      DBP_TEXT("owner"),
	                      DBP_INT(BASE_MS),
	                      DBP_INT(BASE_MS + N_TASKS * 1000LL),
	                      DBP_INT(0),
	                      DBP_INT(64),
	                      DBP_TEXT("claim-token")};
	const long n_canon = (long)(sizeof canon / sizeof canon[0]);
	db_param_t mapped[32];
	size_t n = 0;
	for (const char *m = dt->maps[DB_STMT_CLAIM_TASKS]; m && *m;) {
		char *end;
		long k = strtol(m, &end, 10);
		assert_true(k >= 0 && k < n_canon && n < sizeof mapped / sizeof mapped[0]);
		mapped[n++] = canon[k];
		m = *end == ',' ? end + 1 : end;
	}
	const char *bad =
	    explain(c, dt->stmts[DB_STMT_CLAIM_TASKS], mapped, n, true, false, &p, why, sizeof why);
	if (bad) {
		fprintf(stderr, "PLAN FAIL [%s] claim: %s\n", db_dialect_name(d), bad);
		for (size_t k = 0; k < p.n; k++)
			fprintf(stderr, "    %s\n", p.text[k]);
		r->failures++;
	}
	return DB_ABORT; /* read only; nothing to keep */
}

static void lists_use_indexes(void **state)
{
	run_t r = {0};
	db_status_t s = db_txn(*state, DB_TXN_WRITE, check_txn, &r);
	assert_int_equal(s, DB_ABORT);
	assert_int_equal(r.failures, 0);
}

/* The checker must catch a missing index: with IX_Events_Category and
 * IX_ServerTasks_StateList dropped (rolled back after), those lists fail. */
typedef struct {
	const char *drop;
	size_t case_index;
	bool failed;
	char why[600];
} drop_t;

static db_status_t drop_txn(db_conn_t *c, void *ctx)
{
	drop_t *x = ctx;
	db_dialect_id_t d = db_conn_dialect(c);
	db_status_t s = db_exec(c, x->drop, NULL, 0, NULL);
	if (s != DB_OK)
		return s;
	static db_sql_t q;
	plan_t p;
	build(d, &cases[x->case_index], false, &q);
	x->failed = explain(c, q.sql, q.p, q.n, cases[x->case_index].filtered, false, &p, x->why,
	                    sizeof x->why) != NULL;
	if (!x->failed)
		for (size_t k = 0; k < p.n; k++)
			fprintf(stderr, "    %s\n", p.text[k]);
	return DB_ABORT;
}

static size_t case_named(const char *name)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (strcmp(cases[i].name, name) == 0)
			return i;
	fail_msg("no case %s", name);
	return 0;
}

static void checker_fails_without_the_index(void **state)
{
	const struct {
		const char *drop, *name;
	} drops[] = {
	    {"DROP INDEX IX_Events_Category", "events category"},
	    {"DROP INDEX IX_ServerTasks_StateList", "tasks states=Failed"},
	    {"DROP INDEX IX_Tentacles_Coverage", "tentacles notPollingEveryNode"},
	    {"DROP INDEX IX_Tentacles_Thumbprint", "machines thumbprint"},
	    {"DROP INDEX IX_MaintenanceRuns_List", "maintenance runs"},
	};
	for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
		drop_t x = {.drop = drops[i].drop, .case_index = case_named(drops[i].name)};
		assert_int_equal(db_txn(*state, DB_TXN_WRITE, drop_txn, &x), DB_ABORT);
		fprintf(stderr, "without the index (%s): %s\n", drops[i].drop,
		        x.failed ? x.why : "NOT CAUGHT");
		assert_true(x.failed);
	}
	/* Rolled back: the index is there again and the plan passes. */
	lists_use_indexes(state);
}

static int setup(void **state, const char *cs)
{
	db_pool_t *p = pool_for(cs);
	db_migrate_result_t r;
	if (db_migrate(p, &r) != DB_OK) {
		fprintf(stderr, "migrate failed on %s: %s\n", cs, r.error);
		db_pool_free(p);
		return -1;
	}
	if (db_txn(p, DB_TXN_WRITE, load_txn, NULL) != DB_OK) {
		db_pool_free(p);
		return -1;
	}
	*state = p;
	return 0;
}

static const char *group_cs;

static int group_setup(void **state)
{
	return setup(state, group_cs);
}

static int group_teardown(void **state)
{
	db_pool_free(*state);
	return 0;
}

static int run(const char *name, const char *cs)
{
	group_cs = cs;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(lists_use_indexes),
	    cmocka_unit_test(checker_fails_without_the_index),
	};
	fprintf(stderr, "== list plans on %s\n", name);
	return cmocka_run_group_tests_name(name, tests, group_setup, group_teardown);
}

/* The data set must not meet the other database tests' rows (they claim
 * queued tasks): on PostgreSQL it goes to a schema of its own, created
 * (CREATE) or dropped with what it holds (!CREATE) through CS; OUT receives
 * a connection string whose sessions use it.  False when that failed. */
#define PLANS_SCHEMA "octoha_plans"

static db_status_t schema_txn(db_conn_t *c, void *ctx)
{
	bool create = *(bool *)ctx;
	db_status_t s = db_exec(c, "DROP SCHEMA IF EXISTS " PLANS_SCHEMA " CASCADE", NULL, 0, NULL);
	if (s == DB_OK && create)
		s = db_exec(c, "CREATE SCHEMA " PLANS_SCHEMA, NULL, 0, NULL);
	if (s != DB_OK)
		fprintf(stderr, "schema " PLANS_SCHEMA ": %s\n", db_conn_last_error(c));
	return s;
}

static bool own_schema(const char *cs, char *out, size_t size, bool create)
{
	snprintf(out, size, "%s;ConnSettings={SET search_path TO " PLANS_SCHEMA "}", cs);
	db_pool_t *p = pool_for(cs);
	db_status_t s = db_txn(p, DB_TXN_WRITE, schema_txn, &create);
	db_pool_free(p);
	return s == DB_OK;
}

int main(void)
{
	int failed = 0;
	char path[256], cs[400];
	snprintf(path, sizeof path, "/tmp/octoha-test-plans-%d.sqlite", (int)getpid());
	unlink(path);
	snprintf(cs, sizeof cs, "Driver=SQLite3;Database=%s;Timeout=10000", path);
	failed += run("sqlite", cs);
	unlink(path);
	char wal[300];
	snprintf(wal, sizeof wal, "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof wal, "%s-shm", path);
	unlink(wal);
	const char *pg = getenv("OCTOHA_TEST_PG");
	char plans_cs[600];
	if (pg && *pg && own_schema(pg, plans_cs, sizeof plans_cs, true)) {
		failed += run("postgresql", plans_cs);
		own_schema(pg, plans_cs, sizeof plans_cs, false);
	} else if (pg && *pg)
		failed++;
	else
		fprintf(stderr, "NOTE: OCTOHA_TEST_PG unset: PostgreSQL part not run here "
		                "(scripts/test.sh sets it)\n");
	return failed ? 1 : 0;
}
