/* For tools/check_tsql.py: reads "SELECT … ORDER BY …" statements, one per
 * line, and prints each as SQL Server runs it paged (db_page_sql), so the
 * T-SQL check parses the very text the dialect table makes.
 *
 * With --built: prints instead, one per line, the statements the stores
 * assemble from fragments (lib/db/keyset.h: list pages, counts and cursors
 * for each kind of filter; the counts, coverage and batch reads) as they
 * are built for SQL Server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/cluster_store.h"
#include "db/dialect.h"
#include "db/events_store.h"
#include "db/keyset.h"
#include "db/maintenance_store.h"
#include "db/managed_store.h"
#include "db/packages_store.h"
#include "db/subscriptions_store.h"
#include "db/task_counts_store.h"
#include "db/tasks_store.h"
#include "db/tentacles_store.h"

/* The dialect --built prints (SQL Server; another one's name after it, to
 * read its statements when studying a plan). */
static db_dialect_id_t D = DB_DIALECT_SQLSERVER;

static int emit(const db_sql_t *q)
{
	if (q->overflow) {
		fprintf(stderr, "tsql_page: a built statement overflowed: %.200s\n", q->sql);
		return 1;
	}
	puts(q->sql);
	return 0;
}

/* The page (plain, past a skip, after a cursor), the count and the cursor's
 * anchor of list L with the query Q. */
static int list(const db_list_t *l, db_list_query_t *q)
{
	db_sql_t *s = malloc(sizeof *s);
	if (!s)
		return 1;
	int rc = 0;
	q->take = 30;
	q->skip = 0;
	q->after = false;
	db_list_page_sql(D, l, q, s);
	rc |= emit(s);
	q->skip = 60;
	db_list_page_sql(D, l, q, s);
	rc |= emit(s);
	q->skip = 0;
	q->after = true;
	q->after_k1 = 1;
	q->after_k1_text = "name";
	q->after_k2 = "Id-1";
	db_list_page_sql(D, l, q, s);
	rc |= emit(s);
	q->after = false;
	db_list_count_sql(D, l, q, s);
	rc |= emit(s);
	db_list_anchor_sql(l, "Id-1", s);
	rc |= emit(s);
	free(s);
	return rc;
}

static int built(void)
{
	int rc = 0;
	db_list_query_t q;
	char like[410], text[TENTACLES_QUERY_TEXT], where[2][256];
	const unsigned all = (1u << OH_TS__COUNT) - 1;
	const oh_task_filter_t tasks[] = {
	    {.take = 30},
	    {.states = 1u << OH_TS_QUEUED, .take = 30},
	    {.states = all, .node = "n", .name = "Drain", .take = 30},
	    {.node = "n", .take = 30},
	    {.partial_name = "x", .take = 30},
	    {.states = 1u << OH_TS_FAILED, .partial_name = "x", .take = 30},
	};
	for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
		tasks_store_list_query(&tasks[i], &q, like, sizeof like);
		rc |= list(&tasks_store_list_def, &q);
	}
	const oh_event_filter_t events[] = {
	    {.take = 30},
	    {.user = "u", .category = "c", .take = 30},
	    {.operation = "o", .resource = "r", .from = 1, .to = 2, .take = 30},
	};
	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
		events_store_list_query(&events[i], &q, where);
		rc |= list(&events_store_list_def, &q);
	}
	const oh_tentacle_filter_t tentacles[] = {
	    {.take = 30},
	    {.only_rereg = true, .take = 30},
	    {.missing = true, .missing_before = 1, .take = 30},
	    {.missing = true, .only_rereg = true, .missing_before = 1, .take = 30},
	    {.style = OH_STYLE_POLLING, .thumbprint = "AB", .partial_name = "x", .take = 30},
	};
	for (size_t i = 0; i < sizeof tentacles / sizeof tentacles[0]; i++) {
		const db_list_t *l = tentacles_store_list_query(&tentacles[i], &q, text);
		rc |= list(l, &q);
	}
	char pwhere[] = " FROM Packages p WHERE p.SpaceId = ? AND p.PackageKey LIKE ? ESCAPE '!'";
	db_param_t pp[] = {DBP_TEXT("Spaces-1"), DBP_TEXT("%x%")};
	db_sql_t *ps = malloc(sizeof *ps);
	if (!ps)
		return 1;
	packages_store_count_sql(D, pwhere, pp, 2, ps);
	rc |= emit(ps);
	free(ps);
	deliveries_store_list_query("Subscriptions-1", 30, &q);
	rc |= list(&deliveries_store_list_def, &q);
	maint_store_list_query(0, 30, &q);
	rc |= list(&maint_store_list_def, &q);
	managed_store_list_query(0, 30, &q);
	rc |= list(&managed_store_list_def, &q);
	managed_store_tentacle_list_query("ManagedClusters-1", 0, 30, &q);
	rc |= list(&managed_store_tentacle_list_def, &q);

	db_sql_t *s = malloc(sizeof *s);
	if (!s)
		return 1;
	const char *ids[] = {"Tentacles-1", "Tentacles-2"};
	db_param_t p[] = {DBP_INT(1), DBP_INT(2)};
	task_counts_store_range_sql(D, "CompletedTime >= ? AND CompletedTime < ?", p, 2, s);
	rc |= emit(s);
	task_counts_store_read_sql(D, s);
	rc |= emit(s);
	task_counts_store_chunk_sql(D, 1, 500, s);
	rc |= emit(s);
	cluster_store_events_before_sql(D, 1, s);
	rc |= emit(s);
	tentacles_store_polls_of_sql(ids, 2, s);
	rc |= emit(s);
	maint_store_steps_of_sql(ids, 2, s);
	rc |= emit(s);
	managed_store_nodes_of_sql(ids, 2, s);
	rc |= emit(s);
	tentacles_store_server_counts_sql(ids, 2, s);
	rc |= emit(s);
	tentacles_store_servers_of_sql(ids, 2, s);
	rc |= emit(s);
	tentacles_store_counts_sql(D, 1, s);
	rc |= emit(s);
	for (int unwarned = 0; unwarned < 2; unwarned++) {
		tentacles_store_missing_sql(D, 1, 0, unwarned, 10, s);
		rc |= emit(s);
		tentacles_store_missing_sql(D, 1, 2, unwarned, 10, s);
		rc |= emit(s);
	}
	tentacles_store_next_polling_sql(D, "", 500, s);
	rc |= emit(s);
	tentacles_store_by_style_sql(D, false, "", 100, s);
	rc |= emit(s);
	free(s);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--built") == 0) {
		for (int i = 0; argc > 2 && i < DB_DIALECT__COUNT; i++)
			if (strcmp(argv[2], db_dialect_name((db_dialect_id_t)i)) == 0)
				D = (db_dialect_id_t)i;
		return built();
	}

	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		line[strcspn(line, "\n")] = '\0';
		char *paged = db_page_sql(DB_DIALECT_SQLSERVER, line);
		if (!paged) {
			fprintf(stderr, "tsql_page: cannot page: %s\n", line);
			rc = 1;
			puts("");
			continue;
		}
		puts(paged);
		free(paged);
	}
	free(line);
	return rc;
}
