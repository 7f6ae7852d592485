/* The task counts of /metrics (and of task lists filtered by states) are
 * kept without counting the table: a pass adds the tasks that ended since
 * its last run, retention subtracts what it deletes, and a read adds what
 * ended since the pass.  Here they are checked against a plain GROUP BY
 * after each of those steps, on SQLite and (OCTOHA_TEST_PG) PostgreSQL in
 * a schema of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"
#include "db/migrate.h"
#include "db/task_counts_store.h"
#include "task_counts.h"
#include "tasks.h"

#define DAY_MS (86400LL * 1000)

typedef struct {
	int64_t n[OH_TS__COUNT];
} counts_t;

static void add(void *ctx, const char *state, int64_t n)
{
	counts_t *c = ctx;
	oh_task_state_t s;
	if (oh_task_state_parse(state, &s))
		c->n[s] += n;
}

static db_status_t kept_txn(db_conn_t *c, void *ctx)
{
	memset(ctx, 0, sizeof(counts_t));
	return task_counts_store_read(c, add, ctx);
}

static db_status_t truth_row(void *ctx, db_row_t *r)
{
	char state[24];
	db_row_copy(r, 0, state, sizeof state);
	add(ctx, state, db_row_int(r, 1, NULL));
	return DB_OK;
}

static db_status_t truth_txn(db_conn_t *c, void *ctx)
{
	memset(ctx, 0, sizeof(counts_t));
	db_status_t s = db_query(c, "SELECT State, COUNT(*) FROM ServerTasks GROUP BY State", NULL,
	                         0, truth_row, ctx);
	return s == DB_NO_ROWS ? DB_OK : s;
}

static void assert_counts(db_pool_t *p, const char *when)
{
	counts_t kept, truth;
	assert_int_equal(db_txn(p, DB_TXN_READ, kept_txn, &kept), DB_OK);
	assert_int_equal(db_txn(p, DB_TXN_READ, truth_txn, &truth), DB_OK);
	for (int s = 0; s < OH_TS__COUNT; s++) {
		if (kept.n[s] != truth.n[s])
			fprintf(stderr, "%s: %s kept %lld, table %lld\n", when,
			        oh_task_state_name((oh_task_state_t)s), (long long)kept.n[s],
			        (long long)truth.n[s]);
		assert_int_equal(kept.n[s], truth.n[s]);
	}
}

typedef struct {
	int first, n;
	int64_t ended_at; /* 0: queued */
} batch_t;

/* Inserts tasks FIRST.. with ids, states cycling over the ended states. */
static db_status_t insert_txn(db_conn_t *c, void *ctx)
{
	const batch_t *b = ctx;
	static const char *const ended[] = {"Success", "Failed", "Canceled", "TimedOut", "Success"};
	db_status_t s = DB_OK;
	for (int i = b->first; i < b->first + b->n && s == DB_OK; i++) {
		char id[64];
		snprintf(id, sizeof id, "ServerTasks-count%05d", i);
		db_param_t p[] = {DBP_TEXT(id), DBP_TEXT(b->ended_at ? ended[i % 5] : "Queued"),
		                  DBP_INT(b->ended_at - DAY_MS),
		                  b->ended_at ? DBP_INT(b->ended_at + i) : DBP_NULL};
		s = db_exec(
		    c,
		    "INSERT INTO ServerTasks (Id, Name, Description, Arguments, State, "
		    "IsSystem, Attempt, MaxAttempts, NextRunAt, QueueTime, LastUpdatedTime, "
		    "CompletedTime, Progress) VALUES (?, 'Diagnostic', 'count', '{}', ?, 0, 1, "
		    "3, 0, ?, 0, ?, 0)",
		    p, 4, NULL);
	}
	return s;
}

static db_status_t now_txn(db_conn_t *c, void *ctx)
{
	return db_now_ms(c, ctx);
}

static void counts_follow_passes_and_retention(void **state)
{
	db_pool_t *p = *state;
	int64_t now = 0;
	assert_int_equal(db_txn(p, DB_TXN_READ, now_txn, &now), DB_OK);
	/* History 10 days old, a few queued, before any pass. */
	batch_t old = {0, 1500, now - 10 * DAY_MS}, queued = {5000, 7, 0};
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_txn, &old), DB_OK);
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_txn, &queued), DB_OK);
	assert_counts(p, "before any pass (everything since CountedTo 0)");

	bool ran = false;
	assert_int_equal(oh_task_counts_pass(p, 1, &ran), DB_OK);
	assert_true(ran);
	assert_counts(p, "after the pass");

	/* Ended just now: past the pass, counted by the read. */
	batch_t recent = {2000, 40, now};
	assert_int_equal(db_txn(p, DB_TXN_WRITE, insert_txn, &recent), DB_OK);
	assert_counts(p, "tasks ended since the pass");

	/* Retention deletes the oldest 200 (a batch) and subtracts them. */
	bool hk = false;
	oh_expiry_t ex;
	usleep(5000); /* the first pass's slot of 1 ms has ended */
	assert_int_equal(oh_tasks_housekeeping(p, "test-owner", 1, 5 * DAY_MS, NULL, 0, &hk, &ex),
	                 DB_OK);
	assert_true(hk);
	assert_int_equal(ex.purged, 200);
	assert_counts(p, "after retention");

	/* Another pass counts nothing twice. */
	usleep(5000);
	assert_int_equal(oh_task_counts_pass(p, 1, &ran), DB_OK);
	assert_true(ran);
	assert_counts(p, "after a second pass");
}

static const char *group_cs;

static int setup(void **state)
{
	db_pool_opts_t o = {.connstr = group_cs,
	                    .size = 2,
	                    .login_timeout_s = 5,
	                    .acquire_timeout_ms = 5000,
	                    .max_retries = 2};
	db_pool_t *p = db_pool_new(&o);
	db_migrate_result_t r;
	if (!p || db_migrate(p, &r) != DB_OK) {
		fprintf(stderr, "migrate failed on %s\n", group_cs);
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

#define COUNTS_SCHEMA "octoha_counts"

static db_status_t schema_txn(db_conn_t *c, void *ctx)
{
	bool create = *(bool *)ctx;
	db_status_t s =
	    db_exec(c, "DROP SCHEMA IF EXISTS " COUNTS_SCHEMA " CASCADE", NULL, 0, NULL);
	if (s == DB_OK && create)
		s = db_exec(c, "CREATE SCHEMA " COUNTS_SCHEMA, NULL, 0, NULL);
	return s;
}

static bool own_schema(const char *cs, bool create)
{
	db_pool_opts_t o = {.connstr = cs,
	                    .size = 1,
	                    .login_timeout_s = 5,
	                    .acquire_timeout_ms = 5000,
	                    .max_retries = 1};
	db_pool_t *p = db_pool_new(&o);
	db_status_t s = p ? db_txn(p, DB_TXN_WRITE, schema_txn, &create) : DB_ERROR;
	db_pool_free(p);
	return s == DB_OK;
}

static int run(const char *name, const char *cs)
{
	group_cs = cs;
	const struct CMUnitTest tests[] = {cmocka_unit_test(counts_follow_passes_and_retention)};
	return cmocka_run_group_tests_name(name, tests, setup, teardown);
}

int main(void)
{
	int failed = 0;
	char path[256], cs[400];
	snprintf(path, sizeof path, "/tmp/octoha-test-counts-%d.sqlite", (int)getpid());
	unlink(path);
	snprintf(cs, sizeof cs, "Driver=SQLite3;Database=%s;Timeout=10000", path);
	failed += run("sqlite", cs);
	unlink(path);
	snprintf(cs, sizeof cs, "%s-wal", path);
	unlink(cs);
	snprintf(cs, sizeof cs, "%s-shm", path);
	unlink(cs);
	const char *pg = getenv("OCTOHA_TEST_PG");
	if (pg && *pg && own_schema(pg, true)) {
		char pcs[700];
		snprintf(pcs, sizeof pcs, "%s;ConnSettings={SET search_path TO " COUNTS_SCHEMA "}",
		         pg);
		failed += run("postgresql", pcs);
		own_schema(pg, false);
	} else if (pg && *pg) {
		failed++;
	} else {
		fprintf(stderr, "NOTE: OCTOHA_TEST_PG unset: PostgreSQL part not run here "
		                "(scripts/test.sh sets it)\n");
	}
	return failed ? 1 : 0;
}
