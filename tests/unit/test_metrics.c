/* lib/metrics: bucket and code selection, label escaping, and the rendered
 * exposition text (counters, cumulative buckets, every family announced). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void bucket_bounds_are_inclusive(void **state)
{
	(void)state;
	assert_int_equal(oh_metrics_bucket_of(-5), 0);
	assert_int_equal(oh_metrics_bucket_of(0), 0);
	assert_int_equal(oh_metrics_bucket_of(1000), 0); /* le="0.001" holds 1 ms */
	assert_int_equal(oh_metrics_bucket_of(1001), 1);
	assert_int_equal(oh_metrics_bucket_of(2500), 1);
	assert_int_equal(oh_metrics_bucket_of(2501), 2);
	assert_int_equal(oh_metrics_bucket_of(1000000), 9);  /* le="1" */
	assert_int_equal(oh_metrics_bucket_of(5000000), 11); /* le="5" */
	assert_int_equal(oh_metrics_bucket_of(5000001), 12); /* +Inf */
	assert_int_equal(oh_metrics_bucket_of(INT64_MAX), OH_METRICS_BOUNDS);
}

static void codes_have_their_own_index_or_other(void **state)
{
	(void)state;
	int known[] = {200, 201, 202, 204, 400, 411, 401, 403, 404,
	               405, 409, 413, 414, 415, 418, 500, 503};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
		size_t idx = oh_metrics_code_index(known[i]);
		assert_true(idx < OH_METRICS_CODES - 1);
		char want[8];
		snprintf(want, sizeof want, "%d", known[i]);
		assert_string_equal(oh_metrics_code_label(idx), want);
	}
	/* Every label names the code it counts. */
	for (size_t i = 0; i < OH_METRICS_CODES - 1; i++)
		assert_int_equal(oh_metrics_code_index(atoi(oh_metrics_code_label(i))), i);
	assert_string_equal(oh_metrics_code_label(oh_metrics_code_index(299)), "other");
	assert_string_equal(oh_metrics_code_label(oh_metrics_code_index(0)), "other");
	assert_string_equal(oh_metrics_code_label(oh_metrics_code_index(-1)), "other");
	assert_string_equal(oh_metrics_code_label(999), "other");
}

static void label_values_are_escaped(void **state)
{
	(void)state;
	oh_metrics_text_t t = {0};
	oh_metrics_text_label_value(&t, "plain");
	assert_string_equal(t.data, "plain");
	oh_metrics_text_label_value(&t, "|a\\b\"c\nd|");
	assert_string_equal(t.data, "plain|a\\\\b\\\"c\\nd|");
	assert_int_equal(t.len, strlen(t.data));
	oh_metrics_text_label_value(&t, "");
	assert_int_equal(t.len, strlen("plain|a\\\\b\\\"c\\nd|"));
	oh_metrics_text_free(&t);
	assert_null(t.data);
}

static void long_values_grow_the_buffer(void **state)
{
	(void)state;
	oh_metrics_text_t t = {0};
	char big[10000];
	memset(big, '"', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	oh_metrics_text_label_value(&t, big);
	assert_int_equal(t.len, 2 * (sizeof big - 1));
	assert_int_equal(t.data[t.len], '\0');
	oh_metrics_text_free(&t);
}

/* The value of the sample line that starts with PREFIX followed by a
 * space, or -1 when there is none. */
static long long sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
	return -1;
}

static int count_lines_starting(const char *text, const char *prefix)
{
	int n = 0;
	size_t len = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, len) == 0)
			n++;
	return n;
}

static void render_counts_requests_and_buckets(void **state)
{
	(void)state;
	const char *names[] = {"getA", "get\"B"};
	oh_metrics_t *m = oh_metrics_new(names, 2);
	assert_non_null(m);
	oh_metrics_observe(m, 0, 200, 500);     /* le 0.001 */
	oh_metrics_observe(m, 0, 200, 3000);    /* le 0.005 */
	oh_metrics_observe(m, 0, 404, 7000000); /* +Inf */
	oh_metrics_observe(m, 1, 201, 1000);
	oh_metrics_observe(m, OH_METRICS_UNMATCHED, 404, 10);
	oh_metrics_observe(m, 77, 405, 10); /* out of range: unmatched */
	oh_metrics_count(m, OH_METRICS_UNMATCHED, 431);
	oh_metrics_count(m, OH_METRICS_UNMATCHED, 299);

	db_pool_stats_t stats = {.txns = 7, .retries = 2, .reconnects = 1, .failures = 3};
	oh_metrics_text_t t = {0};
	oh_metrics_render(m, &stats, NULL, &t);
	const char *x = t.data;

	assert_int_equal(sample(x, "octoha_http_requests_total{route=\"getA\",code=\"200\"}"), 2);
	assert_int_equal(sample(x, "octoha_http_requests_total{route=\"getA\",code=\"404\"}"), 1);
	assert_int_equal(sample(x, "octoha_http_requests_total{route=\"get\\\"B\",code=\"201\"}"),
	                 1);
	assert_int_equal(sample(x, "octoha_http_requests_total{route=\"unmatched\",code=\"404\"}"),
	                 1);
	assert_int_equal(sample(x, "octoha_http_requests_total{route=\"unmatched\",code=\"405\"}"),
	                 1);
	assert_int_equal(sample(x, "octoha_http_requests_total{route=\"unmatched\",code=\"431\"}"),
	                 1);
	assert_int_equal(
	    sample(x, "octoha_http_requests_total{route=\"unmatched\",code=\"other\"}"), 1);
	/* Zero series are left out. */
	assert_int_equal(sample(x, "octoha_http_requests_total{route=\"getA\",code=\"500\"}"), -1);

	const char *b = "octoha_http_request_duration_seconds_bucket{route=\"getA\",le=";
	char key[200];
	const char *les[] = {"0.001", "0.0025", "0.005", "5", "+Inf"};
	long long want[] = {1, 1, 2, 2, 3};
	for (size_t i = 0; i < 5; i++) {
		snprintf(key, sizeof key, "%s\"%s\"}", b, les[i]);
		assert_int_equal(sample(x, key), want[i]);
	}
	assert_int_equal(count_lines_starting(x, b), OH_METRICS_BUCKETS);
	assert_int_equal(sample(x, "octoha_http_request_duration_seconds_count{route=\"getA\"}"),
	                 3);
	assert_non_null(
	    strstr(x, "octoha_http_request_duration_seconds_sum{route=\"getA\"} 7.003500\n"));
	/* Counted without a duration: the histogram of unmatched has 2, not 4. */
	assert_int_equal(
	    sample(x, "octoha_http_request_duration_seconds_count{route=\"unmatched\"}"), 2);

	assert_int_equal(sample(x, "octoha_db_transactions_total"), 7);
	assert_int_equal(sample(x, "octoha_db_retries_total"), 2);
	assert_int_equal(sample(x, "octoha_db_reconnects_total"), 1);
	assert_int_equal(sample(x, "octoha_db_failures_total"), 3);
	assert_int_equal(sample(x, "octoha_db_up"), 0);
	assert_null(strstr(x, "octoha_tasks"));
	assert_null(strstr(x, "octoha_node_"));
	oh_metrics_text_free(&t);
	oh_metrics_free(m);
}

static void render_cluster_lists_every_state_and_node(void **state)
{
	(void)state;
	oh_metrics_node_t nodes[2] = {
	    {.name = "a", .draining = true, .online = true, .max_tasks = 5, .running = 3},
	    {.name = "b", .draining = false, .online = false, .max_tasks = 20, .running = 0},
	};
	oh_metrics_cluster_t c = {.queue_depth = 4, .nodes = nodes, .n_nodes = 2};
	c.tasks[OH_TS_QUEUED] = 6;
	c.tasks[OH_TS_SUCCESS] = 9;
	db_pool_stats_t stats = {0};
	oh_metrics_text_t t = {0};
	oh_metrics_render(NULL, &stats, &c, &t);
	const char *x = t.data;
	assert_int_equal(sample(x, "octoha_db_up"), 1);
	for (int s = 0; s < OH_TS__COUNT; s++) {
		char key[80];
		snprintf(key, sizeof key, "octoha_tasks{state=\"%s\"}",
		         oh_task_state_name((oh_task_state_t)s));
		assert_int_equal(sample(x, key), c.tasks[s]);
	}
	assert_int_equal(sample(x, "octoha_task_queue_depth"), 4);
	assert_int_equal(sample(x, "octoha_node_running_tasks{node=\"a\"}"), 3);
	assert_int_equal(sample(x, "octoha_node_max_concurrent_tasks{node=\"b\"}"), 20);
	assert_int_equal(sample(x, "octoha_node_draining{node=\"a\"}"), 1);
	assert_int_equal(sample(x, "octoha_node_draining{node=\"b\"}"), 0);
	assert_int_equal(sample(x, "octoha_node_online{node=\"a\"}"), 1);
	assert_int_equal(sample(x, "octoha_node_online{node=\"b\"}"), 0);

	/* Every family announced once, HELP before TYPE. */
	const char *families[] = {"octoha_http_requests_total",
	                          "octoha_http_request_duration_seconds",
	                          "octoha_db_transactions_total",
	                          "octoha_db_retries_total",
	                          "octoha_db_reconnects_total",
	                          "octoha_db_failures_total",
	                          "octoha_db_up",
	                          "octoha_tasks",
	                          "octoha_task_queue_depth",
	                          "octoha_node_running_tasks",
	                          "octoha_node_max_concurrent_tasks",
	                          "octoha_node_draining",
	                          "octoha_node_online"};
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
		char help[120], type[120];
		snprintf(help, sizeof help, "# HELP %s ", families[i]);
		snprintf(type, sizeof type, "# TYPE %s ", families[i]);
		assert_int_equal(count_lines_starting(x, help), 1);
		assert_int_equal(count_lines_starting(x, type), 1);
		assert_true(strstr(x, help) < strstr(x, type));
	}
	assert_int_equal(count_lines_starting(x, "# HELP "), 13);
	assert_int_equal(x[t.len - 1], '\n');
	oh_metrics_text_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bucket_bounds_are_inclusive),
	    cmocka_unit_test(codes_have_their_own_index_or_other),
	    cmocka_unit_test(label_values_are_escaped),
	    cmocka_unit_test(long_values_grow_the_buffer),
	    cmocka_unit_test(render_counts_requests_and_buckets),
	    cmocka_unit_test(render_cluster_lists_every_state_and_node),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
