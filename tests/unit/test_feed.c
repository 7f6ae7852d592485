/* The change feed (lib/feed.c) on real databases through the ODBC drivers:
 * a fresh SQLite file, and OCTOHA_TEST_PG / OCTOHA_TEST_DB when set.  Rows
 * are written with chosen times, as a transaction that commits late leaves
 * them, which the HTTP tests cannot arrange.  Every row carries a random
 * resource id, so a shared database is fine. */
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

#include "db/db.h"
#include "db/events_store.h"
#include "db/migrate.h"
#include "feed.h"
#include "node_state.h"
#include "oh_crypto.h"
#include "tasks.h"

#define POLL_MS 20
#define LATE_MS 1500

static const char *connstr;

static char *render_task(const oh_task_t *t)
{
	char buf[200];
	snprintf(buf, sizeof buf, "{\"Id\":\"%s\",\"State\":\"%s\"}", t->id,
	         oh_task_state_name(t->state));
	return strdup(buf);
}

typedef struct {
	db_pool_t *pool;
	oh_feed_t *feed;
	char tag[24]; /* this test's resource id */
} fx_t;

static oh_feed_t *feed_with(db_pool_t *pool, size_t ring)
{
	oh_feed_opts_t o = {.pool = pool,
	                    .poll_ms = POLL_MS,
	                    .late_ms = LATE_MS,
	                    .ring = ring,
	                    .render_task = render_task};
	oh_feed_t *f = oh_feed_new(&o);
	assert_non_null(f);
	return f;
}

static int setup(void **state)
{
	fx_t *x = calloc(1, sizeof *x);
	db_pool_opts_t o = {.connstr = connstr,
	                    .size = 4,
	                    .login_timeout_s = 2,
	                    .acquire_timeout_ms = 2000,
	                    .max_retries = 3};
	x->pool = db_pool_new(&o);
	db_migrate_result_t r;
	if (!x->pool || db_migrate(x->pool, &r) != DB_OK) {
		fprintf(stderr, "migrate failed on %s: %s\n", connstr, x->pool ? r.error : "");
		return -1;
	}
	x->feed = feed_with(x->pool, 256);
	char rnd[17];
	oh_random_hex(rnd, 8);
	snprintf(x->tag, sizeof x->tag, "Feed-%s", rnd);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fx_t *x = *state;
	oh_feed_free(x->feed);
	db_pool_free(x->pool);
	free(x);
	return 0;
}

static int64_t db_now(db_pool_t *pool);

typedef struct {
	oh_event_t e;
} insert_ctx_t;

static db_status_t insert_txn(db_conn_t *c, void *ctx)
{
	return events_store_insert(c, &((insert_ctx_t *)ctx)->e);
}

/* Writes an event about TAG with time AT; its Id goes to ID (51 bytes). */
static void put_event(fx_t *x, int64_t at, char *id)
{
	insert_ctx_t ic = {0};
	char rnd[21];
	assert_true(oh_random_hex(rnd, 10));
	snprintf(ic.e.id, sizeof ic.e.id, "Events-%s", rnd);
	ic.e.occurred = at;
	snprintf(ic.e.category, sizeof ic.e.category, "TaskQueued");
	snprintf(ic.e.operation, sizeof ic.e.operation, "test");
	snprintf(ic.e.resource_id, sizeof ic.e.resource_id, "%s", x->tag);
	snprintf(ic.e.result, sizeof ic.e.result, "Success");
	snprintf(ic.e.message, sizeof ic.e.message, "feed test");
	assert_int_equal(db_txn(x->pool, DB_TXN_WRITE, insert_txn, &ic), DB_OK);
	if (id)
		memcpy(id, ic.e.id, sizeof ic.e.id);
}

static db_status_t now_txn(db_conn_t *c, void *ctx)
{
	return db_now_ms(c, ctx);
}

static int64_t db_now(db_pool_t *pool)
{
	int64_t t = 0;
	assert_int_equal(db_txn(pool, DB_TXN_READ, now_txn, &t), DB_OK);
	return t;
}

/* Reads the feed for WAIT_MS and counts the items about X's tag whose key
 * names ID (NULL: any). */
static int count_for(fx_t *x, oh_feed_sub_t *sub, const char *id, int64_t wait_ms)
{
	int n = 0;
	int64_t until = oh_mono_ms() + wait_ms;
	while (oh_mono_ms() < until) {
		oh_feed_item_t items[32];
		size_t got = 0;
		oh_feed_status_t s =
		    oh_feed_next(x->feed, sub, items, 32, &got, until - oh_mono_ms());
		assert_int_not_equal(s, OH_FEED_CLOSED);
		for (size_t i = 0; i < got; i++) {
			if (strcmp(items[i].resource, x->tag) == 0 &&
			    (!id || strstr(items[i].key, id)))
				n++;
			oh_feed_item_clear(&items[i]);
		}
	}
	return n;
}

static void what_came_before_the_subscription_is_not_sent(void **state)
{
	fx_t *x = *state;
	char before[51], after[51];
	put_event(x, db_now(x->pool) - 200, before);
	oh_feed_sub_t sub;
	assert_true(oh_feed_subscribe(x->feed, &sub));
	assert_int_equal(count_for(x, &sub, NULL, 200), 0);
	put_event(x, db_now(x->pool), after);
	assert_int_equal(count_for(x, &sub, after, 300), 1);
	assert_int_equal(count_for(x, &sub, before, 1), 0);
	oh_feed_unsubscribe(x->feed, &sub);
}

static void a_late_commit_is_sent_once(void **state)
{
	fx_t *x = *state;
	oh_feed_sub_t sub;
	assert_true(oh_feed_subscribe(x->feed, &sub));
	count_for(x, &sub, NULL, 100); /* primed */
	char fresh[51], late[51], too_late[51];
	put_event(x, db_now(x->pool), fresh);
	assert_int_equal(count_for(x, &sub, fresh, 300), 1);
	/* Became visible after a newer row was read, but within late_ms. */
	put_event(x, db_now(x->pool) - LATE_MS / 2, late);
	/* Beyond late_ms: the documented limit, never sent. */
	put_event(x, db_now(x->pool) - 3 * LATE_MS, too_late);
	assert_int_equal(count_for(x, &sub, late, 2 * LATE_MS), 1); /* once, over three sweeps */
	assert_int_equal(count_for(x, &sub, too_late, 1), 0);
	oh_feed_unsubscribe(x->feed, &sub);
}

static void every_stream_gets_every_change_once(void **state)
{
	fx_t *x = *state;
	oh_feed_sub_t a, b;
	assert_true(oh_feed_subscribe(x->feed, &a));
	assert_true(oh_feed_subscribe(x->feed, &b));
	count_for(x, &a, NULL, 100);
	count_for(x, &b, NULL, 1);
	for (int i = 0; i < 10; i++)
		put_event(x, db_now(x->pool), NULL);
	assert_int_equal(count_for(x, &a, NULL, 2 * LATE_MS), 10);
	assert_int_equal(count_for(x, &b, NULL, 200), 10);
	oh_feed_stats_t st;
	oh_feed_stats(x->feed, &st);
	assert_int_equal(st.streams, 2);
	oh_feed_unsubscribe(x->feed, &a);
	oh_feed_unsubscribe(x->feed, &b);
}

static void a_stream_left_behind_is_told(void **state)
{
	fx_t *x = *state;
	oh_feed_t *small = feed_with(x->pool, 16);
	oh_feed_sub_t fast, slow;
	assert_true(oh_feed_subscribe(small, &fast));
	assert_true(oh_feed_subscribe(small, &slow));
	oh_feed_item_t items[64];
	size_t n;
	oh_feed_next(small, &fast, items, 64, &n, 100);
	for (size_t i = 0; i < n; i++)
		oh_feed_item_clear(&items[i]);
	for (int i = 0; i < 40; i++)
		put_event(x, db_now(x->pool), NULL);
	for (int64_t until = oh_mono_ms() + 500; oh_mono_ms() < until;) {
		oh_feed_next(small, &fast, items, 64, &n, 50);
		for (size_t i = 0; i < n; i++)
			oh_feed_item_clear(&items[i]);
	}
	assert_int_equal(oh_feed_next(small, &slow, items, 64, &n, 0), OH_FEED_BEHIND);
	oh_feed_unsubscribe(small, &fast);
	oh_feed_unsubscribe(small, &slow);
	oh_feed_free(small);
}

typedef struct {
	oh_feed_t *f;
	oh_feed_status_t status;
	int64_t took;
} waiter_t;

static void *wait_main(void *arg)
{
	waiter_t *w = arg;
	oh_feed_sub_t sub;
	oh_feed_subscribe(w->f, &sub);
	oh_feed_item_t items[8];
	size_t n;
	int64_t t0 = oh_mono_ms();
	do {
		w->status = oh_feed_next(w->f, &sub, items, 8, &n, 20000);
		for (size_t i = 0; i < n; i++)
			oh_feed_item_clear(&items[i]);
	} while (w->status == OH_FEED_ITEMS && oh_mono_ms() - t0 < 20000);
	w->took = oh_mono_ms() - t0;
	oh_feed_unsubscribe(w->f, &sub);
	return NULL;
}

static void closing_wakes_every_waiting_stream(void **state)
{
	fx_t *x = *state;
	oh_feed_t *f = feed_with(x->pool, 64);
	waiter_t w[3] = {{.f = f}, {.f = f}, {.f = f}};
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, wait_main, &w[i]), 0);
	usleep(300 * 1000);
	oh_feed_close(f);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].status, OH_FEED_CLOSED);
		assert_true(w[i].took < 2000);
	}
	oh_feed_sub_t late;
	assert_false(oh_feed_subscribe(f, &late));
	oh_feed_free(f);
}

typedef struct {
	char ids[64][80];
	int64_t times[64];
	int kinds[64];
	size_t n;
	const char *tag;
	const char *task_id;
} since_t;

static bool collect(void *ctx, oh_feed_item_t *it)
{
	since_t *s = ctx;
	if ((strcmp(it->resource, s->tag) == 0 || strcmp(it->resource, s->task_id) == 0) &&
	    s->n < 64) {
		snprintf(s->ids[s->n], sizeof s->ids[0], "%s", it->key);
		s->times[s->n] = it->time;
		s->kinds[s->n] = it->kind;
		s->n++;
	}
	oh_feed_item_clear(it);
	return true;
}

static void resuming_reads_events_and_tasks_in_time_order(void **state)
{
	fx_t *x = *state;
	int64_t t0 = db_now(x->pool);
	put_event(x, t0 + 10, NULL);
	oh_task_spec_t spec = {.name = "Diagnostic", .description = "feed test", .max_attempts = 1};
	oh_task_t task;
	bool existed;
	assert_int_equal(oh_tasks_create(x->pool, &spec, &task, &existed), DB_OK);
	put_event(x, task.last_updated + 5, NULL);
	since_t s = {.tag = x->tag, .task_id = task.id};
	bool more = true;
	assert_int_equal(oh_feed_since(x->feed, t0, 10000, collect, &s, &more), DB_OK);
	assert_false(more);
	assert_int_equal(s.n, 3);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.times[i - 1] <= s.times[i]);
	int tasks = 0;
	for (size_t i = 0; i < s.n; i++)
		tasks += s.kinds[i] == OH_FEED_TASK;
	assert_int_equal(tasks, 1);
	/* A cap says there was more. */
	since_t capped = {.tag = x->tag, .task_id = task.id};
	assert_int_equal(oh_feed_since(x->feed, t0, 1, collect, &capped, &more), DB_OK);
	assert_true(more);
	oh_task_clear(&task);
}

static int run_suite(const char *label, const char *cs)
{
	connstr = cs;
	fprintf(stderr, "== feed suite on %s\n", label);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(what_came_before_the_subscription_is_not_sent, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(a_late_commit_is_sent_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(every_stream_gets_every_change_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_stream_left_behind_is_told, setup, teardown),
	    cmocka_unit_test_setup_teardown(closing_wakes_every_waiting_stream, setup, teardown),
	    cmocka_unit_test_setup_teardown(resuming_reads_events_and_tasks_in_time_order, setup,
	                                    teardown),
	};
	return _cmocka_run_group_tests(label, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}

int main(void)
{
	int failed = 0;
	char path[256], cs[400];
	snprintf(path, sizeof path, "/tmp/octoha-test-feed-%d.sqlite", (int)getpid());
	unlink(path);
	snprintf(cs, sizeof cs, "Driver=SQLite3;Database=%s;Timeout=10000", path);
	failed += run_suite("sqlite", cs);
	unlink(path);
	char wal[300];
	snprintf(wal, sizeof wal, "%s-wal", path);
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
