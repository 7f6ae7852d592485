/* SQL for the Packages table (the built-in package repository) and the
 * cluster's InstallationId.  Each function runs in the caller's
 * transaction; lib/packages.c composes them. */
#ifndef DB_PACKAGES_STORE_H
#define DB_PACKAGES_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "keyset.h"

/* One package version as stored. */
typedef struct {
	char id[251]; /* packages-<PackageId>.<Version> */
	char space_id[51];
	char package_id[101];
	char version[101];
	char version_sort[1001];
	char ext[21];
	char file_name[401]; /* relative to the Packages folder */
	int64_t size;
	char sha1[41];
	char sha256[65];
	int64_t published; /* epoch ms, database clock */
	char published_by[201];
	char title[401];
	char summary[4001];
	char description[4001];
	char release_notes[4001];
} packages_row_t;

/* Inserts R.  DB_DUPLICATE when its Id or its (space, id, version) is taken. */
db_status_t packages_store_insert(db_conn_t *c, const packages_row_t *r);

/* Reads the row with Id ID into *OUT.  DB_NO_ROWS when none. */
db_status_t packages_store_get(db_conn_t *c, const char *id, packages_row_t *out);

/* Reads the row of SPACE_ID, PACKAGE_KEY (lower-cased id) and VERSION_SORT
 * into *OUT.  DB_NO_ROWS when none. */
db_status_t packages_store_get_version(db_conn_t *c, const char *space_id, const char *package_key,
                                       const char *version_sort, packages_row_t *out);

/* Deletes row ID only while it still names FILE_NAME; *ROWS says whether
 * it did. */
db_status_t packages_store_delete_if(db_conn_t *c, const char *id, const char *file_name,
                                     int64_t *rows);

/* Deletes row ID; *ROWS says whether there was one. */
db_status_t packages_store_delete(db_conn_t *c, const char *id, int64_t *rows);

typedef struct {
	const char *space_id;
	const char *filter;     /* part of the package id (case-insensitive), or NULL */
	const char *package_id; /* exactly this package id (case-insensitive), or NULL */
	int latest;             /* only the highest version of each package id */
	const char *after;      /* the page starts after this package's row, or NULL */
	int64_t skip, take;
} packages_filter_t;

/* Calls FN with each row matching F (PackageId, then version newest
 * first), paged: read in the order of IX_Packages_List, from F->after
 * when given (DB_NO_ROWS when no package of the space has that Id), so a
 * page costs its rows.  *TOTAL receives the count of all matches, up to
 * DB_LIST_COUNT_CAP. */
db_status_t packages_store_list(db_conn_t *c, const packages_filter_t *f,
                                void (*fn)(void *, const packages_row_t *), void *ctx,
                                int64_t *total);

/* Calls FN with each package key of SPACE_ID that has more than KEEP
 * versions. */
db_status_t packages_store_over_retention(db_conn_t *c, const char *space_id, int64_t keep,
                                          void (*fn)(void *, const char *), void *ctx);

/* Calls FN with the rows of PACKAGE_KEY in SPACE_ID beyond the KEEP
 * newest versions. */
db_status_t packages_store_beyond(db_conn_t *c, const char *space_id, const char *package_key,
                                  int64_t keep, void (*fn)(void *, const packages_row_t *),
                                  void *ctx);

/* Counts every package version in *N. */
db_status_t packages_store_count(db_conn_t *c, int64_t *n);

/* Sets *USED when a row names FILE_NAME. */
db_status_t packages_store_file_used(db_conn_t *c, const char *file_name, bool *used);

/* A package list query, built from fixed fragments; its values (P, N of
 * them) borrow the filter's strings, the anchor's keys and PATTERN/KEY. */
typedef struct {
	char where[900];       /* " FROM Packages p WHERE …", with the cursor */
	char where_count[900]; /* the same without the cursor: its values are P[0..N_COUNT) */
	char page[1400];       /* the page's SELECT … ORDER BY, to page with db_query_page */
	db_param_t p[8];
	size_t n, n_count;
	char pattern[420], key[101];
} packages_query_t;

/* Builds F's query into Q, starting after the row whose keys are AFTER_KEY
 * and AFTER_SORT (its PackageKey and VersionSort) when AFTER_KEY is not
 * NULL.  Pure: for the store and the plan test. */
void packages_store_list_query(const packages_filter_t *f, const char *after_key,
                               const char *after_sort, packages_query_t *q);

/* The statement counting up to DB_LIST_COUNT_CAP + 1 rows of WHERE (" FROM
 * Packages p WHERE …", fixed fragments whose N values are P) in list order,
 * into Q: for the store and the T-SQL check (tests/tsql_page.c). */
void packages_store_count_sql(db_dialect_id_t d, const char *where, const db_param_t *p, size_t n,
                              db_sql_t *q);

#endif
