/* The database layer and the node registry through the real ODBC drivers:
 * always on a fresh SQLite file, and also on each database named by
 * OCTOHA_TEST_PG (PostgreSQL, started by scripts/test.sh) and OCTOHA_TEST_DB
 * (any other, e.g. a SQL Server elsewhere).  Node names carry a random
 * suffix so a shared database is fine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "archive.h"
#include "db/db.h"
#include "db/events_store.h"
#include "db/migrate.h"
#include "nodes.h"
#include "oh_crypto.h"
#include "tasks.h"

static const char *connstr;
static char sqlite_path[256];

static db_pool_t *pool_with(const char *cs, unsigned size, int retries, int idle_txn_limit_ms)
{
	db_pool_opts_t o = {.connstr = cs,
	                    .size = size,
	                    .login_timeout_s = 2,
	                    .acquire_timeout_ms = 2000,
	                    .max_retries = retries,
	                    .idle_txn_limit_ms = idle_txn_limit_ms};
	db_pool_t *p = db_pool_new(&o);
	assert_non_null(p);
	return p;
}

static db_pool_t *pool_for(const char *cs)
{
	return pool_with(cs, 4, 3, 0);
}

static int setup(void **state)
{
	db_pool_t *p = pool_for(connstr);
	db_migrate_result_t r;
	if (db_migrate(p, &r) != DB_OK) {
		fprintf(stderr, "migrate failed on %s: %s\n", connstr, r.error);
		db_pool_free(p);
		return -1;
	}
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	db_pool_free(*state);
	return 0;
}

static void make_node(oh_node_t *n, const char *prefix, const char *platform)
{
	memset(n, 0, sizeof *n);
	char rnd[9];
	assert_true(oh_random_hex(rnd, 4));
	snprintf(n->name, sizeof n->name, "%s-%s", prefix, rnd);
	snprintf(n->public_url, sizeof n->public_url, "http://%s:8080", n->name);
	snprintf(n->comms_address, sizeof n->comms_address, "%s", n->name);
	snprintf(n->platform, sizeof n->platform, "%s", platform);
	snprintf(n->version, sizeof n->version, "test");
	n->comms_port = 10943;
	n->max_tasks = -1;
}

static void migrating_again_changes_nothing(void **state)
{
	db_migrate_result_t r;
	assert_int_equal(db_migrate(*state, &r), DB_OK);
	assert_int_equal(r.from, db_migrations_latest());
	assert_int_equal(r.to, db_migrations_latest());
	int v = 0;
	assert_int_equal(db_schema_version(*state, &v), DB_OK);
	assert_int_equal(v, db_migrations_latest());
}

static void server_clock_is_sane(void **state)
{
	(void)state;
	db_conn_t *c;
	char err[256];
	assert_int_equal(db_connect(connstr, 2, &c, err, sizeof err), DB_OK);
	int64_t now = 0;
	assert_int_equal(db_now_ms(c, &now), DB_OK);
	int64_t local = (int64_t)time(NULL) * 1000;
	assert_true(now > local - 86400000 && now < local + 86400000);
	db_disconnect(c);
}

static db_status_t copy_two(void *ctx, db_row_t *r)
{
	char(*v)[32] = ctx;
	db_row_copy(r, 0, v[0], sizeof v[0]);
	db_row_copy(r, 1, v[1], sizeof v[1]);
	return DB_OK;
}

/* Every session gets the dialect's settings: on PostgreSQL a statement
 * timeout, and no JIT (which cost a first list query 300-400 ms). */
static void sessions_are_set_up(void **state)
{
	(void)state;
	db_conn_t *c;
	char err[256];
	assert_int_equal(db_connect(connstr, 2, &c, err, sizeof err), DB_OK);
	if (db_conn_dialect(c) == DB_DIALECT_POSTGRESQL) {
		char v[2][32] = {"", ""};
		assert_int_equal(db_query(c,
		                          "SELECT current_setting('jit'), "
		                          "current_setting('statement_timeout')",
		                          NULL, 0, copy_two, v),
		                 DB_OK);
		assert_string_equal(v[0], "off");
		assert_string_equal(v[1], "30s");
	}
	db_disconnect(c);
}

static void registration_is_unique_and_fenced(void **state)
{
	db_pool_t *p = *state;
	oh_node_t n;
	make_node(&n, "reg", "linux");
	oh_reg_result_t r;
	assert_int_equal(oh_nodes_register(p, &n, "instance-a", NULL, 60000, &r), DB_OK);
	assert_int_equal(r.outcome, OH_REG_OK);
	assert_int_equal(r.self.max_tasks, 5); /* Octopus's default cap */
	assert_false(r.self.offline);

	/* A second live process with the same name is refused. */
	assert_int_equal(oh_nodes_register(p, &n, "instance-b", NULL, 60000, &r), DB_OK);
	assert_int_equal(r.outcome, OH_REG_NAME_IN_USE);
	assert_string_equal(r.holder.public_url, n.public_url);

	oh_node_t row;
	char id[128];
	oh_node_id_for(n.name, id, sizeof id);
	assert_int_equal(oh_nodes_heartbeat(p, id, "instance-a", 60000, &row), DB_OK);
	assert_int_equal(oh_nodes_heartbeat(p, id, "instance-b", 60000, &row), DB_NO_ROWS);

	/* Once it stopped, another instance takes the name over, keeping the cap,
	 * and the old instance's heartbeat no longer counts. */
	assert_int_equal(oh_nodes_mark_stopped(p, id, "instance-a"), DB_OK);
	assert_int_equal(oh_nodes_get(p, id, 60000, &row), DB_OK);
	assert_true(row.offline);
	n.max_tasks = 7;
	assert_int_equal(oh_nodes_register(p, &n, "instance-b", NULL, 60000, &r), DB_OK);
	assert_int_equal(r.outcome, OH_REG_OK);
	assert_int_equal(r.self.max_tasks, 7);
	n.max_tasks = -1;
	assert_int_equal(oh_nodes_register(p, &n, "instance-b", NULL, 60000, &r), DB_OK);
	assert_int_equal(r.self.max_tasks, 7);
	assert_int_equal(oh_nodes_heartbeat(p, id, "instance-a", 60000, &row), DB_NO_ROWS);
	assert_int_equal(oh_nodes_mark_stopped(p, id, "instance-b"), DB_OK);
}

static void stale_node_is_offline_and_taken_over(void **state)
{
	db_pool_t *p = *state;
	oh_node_t n;
	make_node(&n, "stale", "linux");
	oh_reg_result_t r;
	assert_int_equal(oh_nodes_register(p, &n, "i1", NULL, 300, &r), DB_OK);
	assert_int_equal(r.outcome, OH_REG_OK);
	usleep(500 * 1000);
	oh_node_t row;
	assert_int_equal(oh_nodes_get(p, r.self.id, 300, &row), DB_OK);
	assert_true(row.offline);
	assert_int_equal(oh_nodes_register(p, &n, "i2", NULL, 300, &r), DB_OK);
	assert_int_equal(r.outcome, OH_REG_OK);
	assert_int_equal(oh_nodes_mark_stopped(p, r.self.id, "i2"), DB_OK);
}

static void platform_mix_is_refused(void **state)
{
	db_pool_t *p = *state;
	oh_node_t lin, win;
	make_node(&lin, "lin", "linux");
	make_node(&win, "win", "windows");
	oh_reg_result_t r;
	assert_int_equal(oh_nodes_register(p, &lin, "l1", NULL, 60000, &r), DB_OK);
	assert_int_equal(r.outcome, OH_REG_OK);
	assert_int_equal(oh_nodes_register(p, &win, "w1", NULL, 60000, &r), DB_OK);
	assert_int_equal(r.outcome, OH_REG_PLATFORM_MISMATCH);
	assert_string_equal(r.cluster_platform, "linux");
	char id[128];
	oh_node_id_for(win.name, id, sizeof id);
	oh_node_t row;
	assert_int_equal(oh_nodes_get(p, id, 60000, &row), DB_NO_ROWS); /* nothing written */
	assert_int_equal(oh_nodes_mark_stopped(p, r.self.id[0] ? r.self.id : "", "l1"), DB_OK);
}

static void only_offline_nodes_are_deleted(void **state)
{
	db_pool_t *p = *state;
	oh_node_t n;
	make_node(&n, "del", "linux");
	oh_reg_result_t r;
	assert_int_equal(oh_nodes_register(p, &n, "d1", NULL, 60000, &r), DB_OK);
	oh_del_outcome_t out;
	assert_int_equal(oh_nodes_delete_offline(p, r.self.id, 60000, &out, NULL), DB_OK);
	assert_int_equal(out, OH_DEL_ONLINE);
	assert_int_equal(oh_nodes_mark_stopped(p, r.self.id, "d1"), DB_OK);
	assert_int_equal(oh_nodes_delete_offline(p, r.self.id, 60000, &out, NULL), DB_OK);
	assert_int_equal(out, OH_DEL_DELETED);
	assert_int_equal(oh_nodes_delete_offline(p, r.self.id, 60000, &out, NULL), DB_OK);
	assert_int_equal(out, OH_DEL_NOT_FOUND);
}

static db_status_t insert_twice(db_conn_t *c, void *ctx)
{
	const char *name = ctx;
	db_param_t prm[] = {DBP_TEXT(name), DBP_TEXT("v")};
	const char *sql = "INSERT INTO ClusterSettings (Name, Value) VALUES (?, ?)";
	db_status_t s = db_exec(c, sql, prm, 2, NULL);
	if (s != DB_OK)
		return s;
	return db_exec(c, sql, prm, 2, NULL);
}

static db_status_t insert_then_abort(db_conn_t *c, void *ctx)
{
	db_param_t prm[] = {DBP_TEXT(ctx), DBP_TEXT("v")};
	db_status_t s =
	    db_exec(c, "INSERT INTO ClusterSettings (Name, Value) VALUES (?, ?)", prm, 2, NULL);
	return s == DB_OK ? DB_ABORT : s;
}

static db_status_t count_setting(db_conn_t *c, void *ctx)
{
	void **x = ctx;
	db_param_t prm[] = {DBP_TEXT(x[0])};
	return db_query_int(c, "SELECT COUNT(*) FROM ClusterSettings WHERE Name = ?", prm, 1, x[1]);
}

static void duplicates_are_classified_and_rolled_back(void **state)
{
	db_pool_t *p = *state;
	char name[40] = "dup-";
	assert_true(oh_random_hex(name + 4, 8));
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_twice, name), DB_DUPLICATE);
	int64_t n = -1;
	void *x[] = {name, &n};
	assert_int_equal(db_txn(p, DB_TXN_READ, count_setting, x), DB_OK);
	assert_int_equal(n, 0); /* the first insert was rolled back too */
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_then_abort, name), DB_ABORT);
	assert_int_equal(db_txn(p, DB_TXN_READ, count_setting, x), DB_OK);
	assert_int_equal(n, 0);
}

static void text_with_quotes_and_unicode_round_trips(void **state)
{
	db_pool_t *p = *state;
	oh_node_t n;
	make_node(&n, "txt", "linux");
	snprintf(n.public_url, sizeof n.public_url,
	         "http://x/'; DROP TABLE OctopusServerNodes; --");
	snprintf(n.comms_address, sizeof n.comms_address, "h\xc3\xa9te-\xe2\x9c\x93");
	oh_reg_result_t r;
	assert_int_equal(oh_nodes_register(p, &n, "t1", NULL, 60000, &r), DB_OK);
	assert_int_equal(r.outcome, OH_REG_OK);
	assert_string_equal(r.self.public_url, n.public_url);
	assert_string_equal(r.self.comms_address, n.comms_address);
	assert_int_equal(oh_nodes_mark_stopped(p, r.self.id, "t1"), DB_OK);
}

static void unreachable_database_fails_fast(void **state)
{
	(void)state;
	const char *cs = getenv("OCTOHA_TEST_PG")
	                     ? "Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=1;Database=x;Uid=x;"
	                     : "Driver=SQLite3;Database=/nonexistent-dir/x/y.db;NoCreat=1";
	db_pool_t *p = pool_for(cs);
	db_dialect_id_t d;
	char err[512];
	time_t t0 = time(NULL);
	db_status_t s = db_pool_probe(p, &d, err, sizeof err);
	assert_true(s == DB_CONN_LOST || s == DB_ERROR);
	assert_true(time(NULL) - t0 <= 3);
	db_pool_free(p);
}

/* A client that stalls inside a transaction (a paused VM, a SIGSTOPped
 * node) must not hold its row locks for the rest of the cluster: where the
 * database can end such a session (PostgreSQL), another pool updates the
 * same row soon after the limit, and the stalled one finds its session
 * gone when it wakes. */
typedef struct {
	db_pool_t *other;
	db_status_t other_status, after_stall;
	int64_t other_ms;
} stall_ctx_t;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static db_status_t touch_lock_row(db_conn_t *c, void *ctx)
{
	(void)ctx;
	int64_t rows = 0;
	db_param_t p[] = {DBP_TEXT("polling")};
	db_status_t s =
	    db_exec(c, "UPDATE ClusterLocks SET Period = Period WHERE Name = ?", p, 1, &rows);
	return s == DB_OK && rows != 1 ? DB_ERROR : s;
}

static db_status_t stall_holding_the_row(db_conn_t *c, void *vctx)
{
	stall_ctx_t *x = vctx;
	db_status_t s = touch_lock_row(c, NULL);
	if (s != DB_OK)
		return s;
	usleep(600 * 1000); /* stalled, past the 300 ms limit */
	int64_t t0 = now_ms();
	x->other_status = db_txn(x->other, DB_TXN_WRITE, touch_lock_row, NULL);
	x->other_ms = now_ms() - t0;
	x->after_stall = touch_lock_row(c, NULL);
	return x->after_stall;
}

static void stalled_transaction_releases_its_locks(void **state)
{
	db_pool_t *stalling = pool_with(connstr, 1, 0, 300);
	db_dialect_id_t d;
	char err[512];
	assert_int_equal(db_pool_probe(stalling, &d, err, sizeof err), DB_OK);
	if (d != DB_DIALECT_POSTGRESQL) {
		/* SQLite is one process (a second writer would wait for this one);
		 * SQL Server has no such limit.  The pool works as before. */
		assert_int_equal(db_txn(stalling, DB_TXN_WRITE, touch_lock_row, NULL), DB_OK);
		db_pool_free(stalling);
		return;
	}
	/* Twice: the connection the pool opens again has the limit too. */
	for (int round = 0; round < 2; round++) {
		stall_ctx_t x = {.other = *state};
		db_status_t s = db_txn(stalling, DB_TXN_WRITE, stall_holding_the_row, &x);
		assert_int_equal(x.other_status, DB_OK);
		/* Not held until the 30 s statement timeout: the row was free
		 * once the server ended the stalled session. */
		assert_true(x.other_ms < 5000);
		assert_int_equal(x.after_stall, DB_CONN_LOST);
		assert_int_equal(s, DB_CONN_LOST);
		assert_int_equal(db_txn(stalling, DB_TXN_WRITE, touch_lock_row, NULL), DB_OK);
	}
	db_pool_free(stalling);
}

/* Registers a node with task cap CAP for the queue tests. */
static void queue_node(db_pool_t *p, const char *instance, int cap, oh_reg_result_t *r)
{
	oh_node_t n;
	make_node(&n, "q", "linux");
	n.max_tasks = cap;
	assert_int_equal(oh_nodes_register(p, &n, instance, NULL, 60000, r), DB_OK);
	assert_int_equal(r->outcome, OH_REG_OK);
}

static void queue_task(db_pool_t *p, const char *target, oh_task_t *t)
{
	oh_task_spec_t spec = {.name = "Diagnostic", .target_node = target, .max_attempts = 3};
	bool existed = true;
	assert_int_equal(oh_tasks_create(p, &spec, t, &existed), DB_OK);
	assert_false(existed);
}

static void claims_respect_cap_and_target(void **state)
{
	db_pool_t *p = *state;
	oh_reg_result_t a, b;
	queue_node(p, "qa", 2, &a);
	queue_node(p, "qb", 5, &b);
	oh_task_t t[3];
	for (int i = 0; i < 3; i++)
		queue_task(p, a.self.id, &t[i]); /* targeted at A */
	oh_claimed_t got[8];
	int n = 0;
	/* B may not take A's tasks. */
	assert_int_equal(oh_tasks_claim(p, b.self.id, "qb", 5000, 0, 0, 8, got, &n), DB_OK);
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 3; k++)
			assert_string_not_equal(got[i].id, t[k].id);
		oh_claimed_clear(&got[i]);
	}
	/* A takes at most its cap of 2, then none while it runs 2. */
	assert_int_equal(oh_tasks_claim(p, a.self.id, "qa", 5000, 0, 0, 8, got, &n), DB_OK);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		assert_int_equal(got[i].attempt, 1);
		assert_int_equal(
		    oh_tasks_finish(p, got[i].id, "qa", 1, OH_END_SUCCESS, NULL, NULL, NULL),
		    DB_OK);
		oh_claimed_clear(&got[i]);
	}
	assert_int_equal(oh_tasks_claim(p, a.self.id, "qa", 5000, 2, 0, 8, got, &n), DB_OK);
	assert_int_equal(n, 0);
	assert_int_equal(oh_tasks_claim(p, a.self.id, "qa", 5000, 0, 0, 8, got, &n), DB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(oh_tasks_finish(p, got[0].id, "qa", 1, OH_END_SUCCESS, NULL, NULL, NULL),
	                 DB_OK);
	oh_claimed_clear(&got[0]);
	for (int i = 0; i < 3; i++)
		oh_task_clear(&t[i]);
	assert_int_equal(oh_nodes_mark_stopped(p, a.self.id, "qa"), DB_OK);
	assert_int_equal(oh_nodes_mark_stopped(p, b.self.id, "qb"), DB_OK);
}

static db_status_t free_retention_slot(db_conn_t *c, void *ctx)
{
	(void)ctx;
	return db_exec(c, "UPDATE ClusterLocks SET Period = 0 WHERE Name = 'retention'", NULL, 0,
	               NULL);
}

static void takeover_is_fenced(void **state)
{
	db_pool_t *p = *state;
	oh_reg_result_t a;
	queue_node(p, "fa", 5, &a);
	oh_task_t t;
	queue_task(p, a.self.id, &t);
	oh_claimed_t got[4];
	int n = 0;
	/* Owner 1 claims with a short lease and "dies". */
	assert_int_equal(oh_tasks_claim(p, a.self.id, "owner-1", 200, 0, 0, 4, got, &n), DB_OK);
	assert_int_equal(n, 1);
	oh_claimed_clear(&got[0]);
	usleep(400 * 1000);
	bool ran = false;
	oh_expiry_t ex;
	/* Its own housekeeping never takes its tasks: an owner that runs
	 * housekeeping is alive (its lease ran out in a database outage). */
	for (int tries = 0; tries < 50 && !ran; tries++) {
		assert_int_equal(oh_tasks_housekeeping(p, "owner-1", 100, 0, NULL, 0, &ran, &ex),
		                 DB_OK);
		if (!ran)
			usleep(20 * 1000);
	}
	assert_true(ran);
	assert_int_equal(ex.requeued, 0);
	usleep(150 * 1000); /* the slot it took ends */
	ran = false;
	/* Housekeeping runs once per period, whoever asks. */
	for (int tries = 0; tries < 50 && !ran; tries++) {
		assert_int_equal(
		    oh_tasks_housekeeping(p, "test-housekeeper", 100, 0, NULL, 0, &ran, &ex),
		    DB_OK);
		if (!ran)
			usleep(20 * 1000);
	}
	assert_true(ran);
	assert_true(ex.requeued >= 1);
	/* The slot just taken lasts 100 ms: nobody else runs in it, whatever
	 * period they are configured with. */
	bool again = true;
	assert_int_equal(
	    oh_tasks_housekeeping(p, "test-housekeeper", 60000, 0, NULL, 0, &again, &ex), DB_OK);
	assert_false(again);
	usleep(150 * 1000);
	assert_int_equal(oh_tasks_housekeeping(p, "test-housekeeper", 100, 0, NULL, 0, &again, &ex),
	                 DB_OK);
	assert_true(again);
	/* Owner 2 takes it over as attempt 2; owner 1's late results do not count. */
	assert_int_equal(oh_tasks_claim(p, a.self.id, "owner-2", 5000, 0, 0, 4, got, &n), DB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].attempt, 2);
	assert_int_equal(oh_tasks_progress(p, t.id, "owner-1", 1, 50, "late"), DB_NO_ROWS);
	assert_int_equal(oh_tasks_finish(p, t.id, "owner-1", 1, OH_END_SUCCESS, NULL, NULL, NULL),
	                 DB_NO_ROWS);
	oh_task_state_t final;
	assert_int_equal(oh_tasks_finish(p, t.id, "owner-2", 2, OH_END_SUCCESS, NULL, NULL, &final),
	                 DB_OK);
	assert_int_equal(final, OH_TS_SUCCESS);
	oh_task_t done;
	assert_int_equal(oh_tasks_get(p, t.id, &done), DB_OK);
	/* The same end again (a transaction replayed after its COMMIT's answer
	 * was lost) is recognised as already recorded, and changes nothing:
	 * never completed twice.  Another owner's end of that attempt is not. */
	usleep(5 * 1000);
	assert_int_equal(oh_tasks_finish(p, t.id, "owner-2", 2, OH_END_SUCCESS, NULL, NULL, &final),
	                 DB_OK);
	assert_int_equal(final, OH_TS_SUCCESS);
	assert_int_equal(oh_tasks_finish(p, t.id, "owner-3", 2, OH_END_SUCCESS, NULL, NULL, NULL),
	                 DB_NO_ROWS);
	assert_int_equal(oh_tasks_finish(p, t.id, "owner-2", 2, OH_END_FAILED, "late", NULL, NULL),
	                 DB_NO_ROWS);
	oh_task_t again_t;
	assert_int_equal(oh_tasks_get(p, t.id, &again_t), DB_OK);
	assert_int_equal(again_t.state, OH_TS_SUCCESS);
	assert_int_equal(again_t.completed_time, done.completed_time);
	oh_task_clear(&done);
	oh_task_clear(&again_t);
	oh_claimed_clear(&got[0]);

	/* Retention: ended tasks older than the retention go, with their log
	 * in every TaskLogs folder the node used (the current one first).  Its
	 * slot lasts a minute: free it, in case this database ran the suite a
	 * moment ago. */
	char dirs[2][64], logs[2][200];
	const char *dir_list[3] = {dirs[0], "/nonexistent", dirs[1]};
	for (int i = 0; i < 2; i++) {
		snprintf(dirs[i], sizeof dirs[i], "/tmp/octoha-test-logs-XXXXXX");
		assert_non_null(mkdtemp(dirs[i]));
		snprintf(logs[i], sizeof logs[i], "%s/%s.log", dirs[i], t.id);
		FILE *f = fopen(logs[i], "w");
		assert_non_null(f);
		fputs("a log\n", f);
		fclose(f);
	}
	assert_int_equal(db_txn(p, DB_TXN_WRITE, free_retention_slot, NULL), DB_OK);
	usleep(150 * 1000);
	ran = false;
	for (int tries = 0; tries < 50 && !ran; tries++) {
		assert_int_equal(
		    oh_tasks_housekeeping(p, "test-housekeeper", 100, 50, dir_list, 3, &ran, &ex),
		    DB_OK);
		if (!ran)
			usleep(20 * 1000);
	}
	assert_true(ex.purged >= 1);
	oh_task_t gone;
	assert_int_equal(oh_tasks_get(p, t.id, &gone), DB_NO_ROWS);
	oh_task_clear(&gone);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(access(logs[i], F_OK), -1); /* removed from both folders */
		assert_int_equal(rmdir(dirs[i]), 0);
	}
	oh_task_clear(&t);
	assert_int_equal(oh_nodes_mark_stopped(p, a.self.id, "fa"), DB_OK);
}

/* Events on 1970-01-04 (no other test writes there), three per
 * millisecond so the archive's keyset paging meets ties. */
#define ARCHIVE_DAY_MS (3LL * 86400 * 1000)

typedef struct {
	const char *tag;
	int from, to;
} ev_range_t;

static db_status_t insert_events(db_conn_t *c, void *vctx)
{
	const ev_range_t *x = vctx;
	for (int i = x->from; i < x->to; i++) {
		oh_event_t e = {.occurred = ARCHIVE_DAY_MS + i / 3, .status = 0};
		snprintf(e.id, sizeof e.id, "Events-%s%06d", x->tag, i);
		snprintf(e.category, sizeof e.category, "TaskQueued");
		snprintf(e.operation, sizeof e.operation, "test");
		snprintf(e.result, sizeof e.result, "Success");
		snprintf(e.message, sizeof e.message, "event %d", i);
		db_status_t s = events_store_insert(c, &e);
		if (s != DB_OK)
			return s;
	}
	return DB_OK;
}

static db_status_t count_day(db_conn_t *c, void *vctx)
{
	db_param_t p[] = {DBP_INT(ARCHIVE_DAY_MS), DBP_INT(ARCHIVE_DAY_MS + 86400 * 1000)};
	return db_query_int(c, "SELECT COUNT(*) FROM Events WHERE Occurred >= ? AND Occurred < ?",
	                    p, 2, vctx);
}

/* Lines of PATH, and whether any two are the same event. */
static int file_lines(const char *path, bool *dup)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[2048];
	static char ids[8000][32];
	int n = 0;
	*dup = false;
	while (fgets(line, sizeof line, f) && n < 8000) {
		char *id = strstr(line, "Events-");
		assert_non_null(id);
		snprintf(ids[n], sizeof ids[n], "%.*s", (int)strcspn(id, "\""), id);
		for (int i = 0; i < n; i++)
			if (strcmp(ids[i], ids[n]) == 0)
				*dup = true;
		n++;
	}
	fclose(f);
	return n;
}

typedef struct {
	db_pool_t *p;
	const char *dir;
	int64_t cutoff;
	bool ok;
	oh_archive_result_t r;
} archive_thread_t;

static void *archive_main(void *arg)
{
	archive_thread_t *a = arg;
	char err[512];
	a->ok = oh_archive_run(a->p, a->dir, a->cutoff, NULL, &a->r, err, sizeof err);
	return NULL;
}

static bool stop_at_once(void *ctx)
{
	(void)ctx;
	return true;
}

/* More events in a day than one page; then a run that finds the day file
 * already holding some of its events (a crash between write and delete)
 * writes each once and still deletes them all. */
static void archive_pages_and_finishes_a_crashed_run(void **state)
{
	db_pool_t *p = *state;
	char tag[9], dir[] = "/tmp/octoha-archive-XXXXXX";
	assert_true(oh_random_hex(tag, 4));
	assert_non_null(mkdtemp(dir));
	ev_range_t first = {tag, 0, 2500};
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_events, &first), DB_OK);
	oh_archive_result_t r;
	char err[512] = "";
	int64_t cutoff = ARCHIVE_DAY_MS + 86400 * 1000;
	assert_true(oh_archive_run(p, dir, cutoff, NULL, &r, err, sizeof err));
	assert_int_equal(r.archived, 2500);
	assert_int_equal(r.days, 1);
	int64_t left = -1;
	assert_int_equal(db_txn(p, DB_TXN_READ, count_day, &left), DB_OK);
	assert_int_equal(left, 0);
	char path[400];
	snprintf(path, sizeof path, "%s/events-1970-01-04.jsonl", dir);
	bool dup = true;
	assert_int_equal(file_lines(path, &dup), 2500);
	assert_false(dup);

	/* As after a crash: 100 archived events are back in the database,
	 * beside 10 new ones of the same day. */
	ev_range_t again = {tag, 2400, 2510};
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_events, &again), DB_OK);
	assert_true(oh_archive_run(p, dir, cutoff, NULL, &r, err, sizeof err));
	assert_int_equal(r.archived, 110);
	assert_int_equal(db_txn(p, DB_TXN_READ, count_day, &left), DB_OK);
	assert_int_equal(left, 0);
	assert_int_equal(file_lines(path, &dup), 2510);
	assert_false(dup);

	/* Two runs at once on one folder (two ArchiveEvents tasks): one waits
	 * for the other; each event is in the file once; no temporary file is
	 * left behind.  Before, both wrote "<day>.tmp" opened with O_TRUNC. */
	ev_range_t more = {tag, 3000, 3600};
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_events, &more), DB_OK);
	archive_thread_t th[2] = {{p, dir, cutoff, false, {0}}, {p, dir, cutoff, false, {0}}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, archive_main, &th[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true(th[0].ok && th[1].ok);
	assert_int_equal(th[0].r.archived + th[1].r.archived, 600);
	assert_int_equal(file_lines(path, &dup), 3110);
	assert_false(dup);
	/* A run asked to stop between pages deletes nothing. */
	ev_range_t last = {tag, 4000, 5200};
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_events, &last), DB_OK);
	oh_archive_stop_t stop = {stop_at_once, NULL};
	assert_false(oh_archive_run(p, dir, cutoff, &stop, &r, err, sizeof err));
	assert_int_equal(r.archived, 0);
	assert_int_equal(db_txn(p, DB_TXN_READ, count_day, &left), DB_OK);
	assert_int_equal(left, 1200);
	assert_true(oh_archive_run(p, dir, cutoff, NULL, &r, err, sizeof err));
	assert_int_equal(r.archived, 1200);
	assert_int_equal(file_lines(path, &dup), 4310);

	oh_archive_file_t *files = NULL;
	size_t n = 0;
	assert_true(oh_archive_list(dir, &files, &n));
	assert_int_equal(n, 1);
	assert_string_equal(files[0].day, "1970-01-04");
	assert_true(files[0].checksum_ok);
	free(files);
	char sum[420], lock[420];
	snprintf(sum, sizeof sum, "%s.sha256", path);
	snprintf(lock, sizeof lock, "%s/.archive.lock", dir);
	unlink(path);
	unlink(sum);
	unlink(lock);
	assert_int_equal(rmdir(dir), 0); /* nothing else left: no temporary file */
}

/* ---- connection loss and a saturated pool ------------------------------ */

static db_status_t backend_pid(db_conn_t *c, void *ctx)
{
	return db_query_int(c, "SELECT pg_backend_pid()", NULL, 0, ctx);
}

static db_status_t terminate(db_conn_t *c, void *ctx)
{
	int64_t ok = 0;
	db_param_t p[] = {DBP_INT(*(int64_t *)ctx)};
	return db_query_int(c, "SELECT CASE WHEN pg_terminate_backend(?) THEN 1 ELSE 0 END", p, 1,
	                    &ok);
}

static db_status_t read_cached(db_conn_t *c, void *ctx)
{
	int64_t v = 0;
	(void)ctx;
	return db_query_int(c, "SELECT COUNT(*) FROM ClusterLocks", NULL, 0, &v);
}

static db_status_t read_new(db_conn_t *c, void *ctx)
{
	int64_t v = 0;
	char sql[100];
	/* A text never prepared on this connection before. */
	snprintf(sql, sizeof sql, "SELECT %d + COUNT(*) FROM ClusterLocks", (*(int *)ctx)++);
	return db_query_int(c, sql, NULL, 0, &v);
}

/* The server ends the session between transactions (a restart, a
 * failover, pg_terminate_backend): both a statement the connection had
 * prepared and a new one are recognised as a lost connection, and the
 * runner reconnects and runs the transaction again, so the caller sees
 * success.  psqlODBC reports the second case as "HY000 1: The connection
 * has been lost; Error while preparing parameters". */
static void lost_connections_are_retried(void **state)
{
	(void)state;
	if (strncmp(connstr, "Driver=SQLite3", 14) == 0)
		skip(); /* one process: no server to lose */
	db_pool_t *victim = pool_with(connstr, 1, 3, 0);
	db_pool_t *killer = pool_with(connstr, 1, 0, 0);
	int n = 1;
	for (int round = 0; round < 2; round++) {
		int64_t pid = 0;
		assert_int_equal(db_txn(victim, DB_TXN_READ, backend_pid, &pid), DB_OK);
		assert_int_equal(db_txn(victim, DB_TXN_READ, read_cached, NULL), DB_OK);
		assert_int_equal(db_txn(killer, DB_TXN_READ, terminate, &pid), DB_OK);
		usleep(100 * 1000);
		db_pool_stats_t before, after;
		db_pool_stats(victim, &before);
		db_status_t s = db_txn(victim, DB_TXN_WRITE_IDEMPOTENT,
		                       round == 0 ? read_cached : read_new, &n);
		db_pool_stats(victim, &after);
		assert_int_equal(s, DB_OK);
		assert_true(after.retries > before.retries);
		int64_t pid2 = 0;
		assert_int_equal(db_txn(victim, DB_TXN_READ, backend_pid, &pid2), DB_OK);
		assert_true(pid2 != pid); /* a new session */
	}
	db_pool_free(victim);
	db_pool_free(killer);
}

static db_status_t hold_a_while(db_conn_t *c, void *ctx)
{
	(void)c;
	usleep((useconds_t)(*(int *)ctx) * 1000);
	return DB_OK;
}

typedef struct {
	db_pool_t *p;
	int ms;
} holder_t;

static void *holder_main(void *arg)
{
	holder_t *h = arg;
	db_txn(h->p, DB_TXN_READ, hold_a_while, &h->ms);
	return NULL;
}

/* Every connection busy: a caller waits the acquire timeout once and gets
 * DB_BUSY, which the runner does not retry (waiting again on a saturated
 * pool only makes the queue longer). */
static void saturated_pool_is_busy_at_once(void **state)
{
	(void)state;
	db_pool_opts_t o = {.connstr = connstr,
	                    .size = 1,
	                    .login_timeout_s = 2,
	                    .acquire_timeout_ms = 200,
	                    .max_retries = 3};
	db_pool_t *p = db_pool_new(&o);
	assert_non_null(p);
	holder_t h = {p, 1500};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, holder_main, &h), 0);
	usleep(100 * 1000);
	int64_t t0 = now_ms();
	int zero = 0;
	assert_int_equal(db_txn(p, DB_TXN_READ, hold_a_while, &zero), DB_BUSY);
	int64_t waited = now_ms() - t0;
	assert_true(waited >= 150);
	assert_true(waited < 600); /* one wait, not one per retry */
	db_pool_stats_t st;
	db_pool_stats(p, &st);
	assert_int_equal(st.busy, 1);
	assert_int_equal(st.retries, 0);
	pthread_join(t, NULL);
	db_pool_free(p);
}

typedef struct {
	const char *cs;
	db_status_t status;
} mig_thread_t;

static void *migrate_thread(void *arg)
{
	mig_thread_t *t = arg;
	db_pool_t *p = pool_for(t->cs);
	db_migrate_result_t r;
	t->status = db_migrate(p, &r);
	db_pool_free(p);
	return NULL;
}

/* Two upgraders at once on an empty database: both succeed, applied once. */
static void concurrent_upgrades_apply_once(void **state)
{
	(void)state;
	char path[300], cs[400];
	snprintf(path, sizeof path, "%s.concurrent", sqlite_path);
	unlink(path);
	snprintf(cs, sizeof cs, "Driver=SQLite3;Database=%s;Timeout=10000", path);
	mig_thread_t a = {cs, DB_ERROR}, b = {cs, DB_ERROR};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, migrate_thread, &a);
	pthread_create(&tb, NULL, migrate_thread, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.status, DB_OK);
	assert_int_equal(b.status, DB_OK);
	db_pool_t *p = pool_for(cs);
	int v = 0;
	assert_int_equal(db_schema_version(p, &v), DB_OK);
	assert_int_equal(v, db_migrations_latest());
	db_pool_free(p);
	unlink(path);
}

static int run_suite(const char *label, const char *cs)
{
	connstr = cs;
	fprintf(stderr, "== database suite on %s\n", label);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(migrating_again_changes_nothing),
	    cmocka_unit_test(server_clock_is_sane),
	    cmocka_unit_test(sessions_are_set_up),
	    cmocka_unit_test(registration_is_unique_and_fenced),
	    cmocka_unit_test(stale_node_is_offline_and_taken_over),
	    cmocka_unit_test(platform_mix_is_refused),
	    cmocka_unit_test(only_offline_nodes_are_deleted),
	    cmocka_unit_test(duplicates_are_classified_and_rolled_back),
	    cmocka_unit_test(text_with_quotes_and_unicode_round_trips),
	    cmocka_unit_test(unreachable_database_fails_fast),
	    cmocka_unit_test(stalled_transaction_releases_its_locks),
	    cmocka_unit_test(lost_connections_are_retried),
	    cmocka_unit_test(saturated_pool_is_busy_at_once),
	    cmocka_unit_test(claims_respect_cap_and_target),
	    cmocka_unit_test(takeover_is_fenced),
	    cmocka_unit_test(archive_pages_and_finishes_a_crashed_run),
	};
	return _cmocka_run_group_tests(label, tests, sizeof tests / sizeof tests[0], setup,
	                               teardown);
}

int main(void)
{
	int failed = 0;
	snprintf(sqlite_path, sizeof sqlite_path, "/tmp/octoha-test-db-%d.sqlite", (int)getpid());
	unlink(sqlite_path);
	char cs[400];
	snprintf(cs, sizeof cs, "Driver=SQLite3;Database=%s;Timeout=10000", sqlite_path);
	failed += run_suite("sqlite", cs);
	const struct CMUnitTest once[] = {cmocka_unit_test(concurrent_upgrades_apply_once)};
	failed += cmocka_run_group_tests_name("sqlite-concurrency", once, NULL, NULL);
	unlink(sqlite_path);
	char wal[300];
	snprintf(wal, sizeof wal, "%s-wal", sqlite_path);
	unlink(wal);
	const char *pg = getenv("OCTOHA_TEST_PG");
	if (pg && *pg)
		failed += run_suite("postgresql", pg);
	else
		fprintf(stderr, "NOTE: OCTOHA_TEST_PG unset: PostgreSQL part not run here "
		                "(scripts/test.sh sets it)\n");
	const char *other = getenv("OCTOHA_TEST_DB");
	if (other && *other)
		failed += run_suite("OCTOHA_TEST_DB", other);
	return failed ? 1 : 0;
}
