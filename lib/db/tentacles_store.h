/* SQL for Tentacles, TentacleServers, TentaclePolls and the polling columns
 * of OctopusServerNodes, in the caller's transaction. */
#ifndef DB_TENTACLES_STORE_H
#define DB_TENTACLES_STORE_H

#include "../tentacles.h"
#include "db.h"
#include "keyset.h"

db_status_t tentacles_store_insert(db_conn_t *c, const oh_tentacle_t *t);
db_status_t tentacles_store_delete(db_conn_t *c, const char *id, int64_t *rows);

/* Reads tentacle ID.  DB_NO_ROWS when there is none. */
db_status_t tentacles_store_get(db_conn_t *c, const char *id, oh_tentacle_t *out);

/* Calls FN(ctx, tentacle_id, node_id, address, port) for the server
 * entries of ID (all Tentacles when ID is NULL). */
db_status_t tentacles_store_servers(db_conn_t *c, const char *id,
                                    void (*fn)(void *, const char *, const char *, const char *,
                                               int),
                                    void *ctx);
db_status_t tentacles_store_clear_servers(db_conn_t *c, const char *id);
db_status_t tentacles_store_add_server(db_conn_t *c, const char *id, const char *node_id,
                                       const char *address, int port, int64_t now);
/* Sets ServersChangedAt and NeedsReRegistration of ID. */
db_status_t tentacles_store_mark_changed(db_conn_t *c, const char *id, int64_t now, bool rereg);
db_status_t tentacles_store_clear_rereg(db_conn_t *c, const char *id);
/* Takes the lock every writer of polling settings and ports holds. */
db_status_t tentacles_store_lock_polling(db_conn_t *c);
/* Counts the polling Tentacles. */
db_status_t tentacles_store_count_polling(db_conn_t *c, int64_t *n);
/* DB_OK when a Tentacle is named NAME, else DB_NO_ROWS. */
db_status_t tentacles_store_name_used(db_conn_t *c, const char *name);
/* Locks the row of ID until the transaction ends (a no-op update). */
db_status_t tentacles_store_lock(db_conn_t *c, const char *id);

/* Calls FN(ctx, tentacle_id, node_id, last_poll) for the polls of ID (all
 * when NULL). */
db_status_t tentacles_store_polls(db_conn_t *c, const char *id,
                                  void (*fn)(void *, const char *, const char *, int64_t),
                                  void *ctx);
db_status_t tentacles_store_put_poll(db_conn_t *c, const char *id, const char *node_id,
                                     int64_t now);

db_status_t tentacles_store_set_health(db_conn_t *c, const char *id, const char *status,
                                       const char *detail, int64_t now);
db_status_t tentacles_store_set_warned(db_conn_t *c, const char *id, int64_t at);

/* PollingPort of node ID (0 = NULL). */
db_status_t tentacles_store_set_node_port(db_conn_t *c, const char *node_id, int port);

/* ---- pages and coverage -------------------------------------------------- */

extern const db_list_t tentacles_store_list_def;    /* by Name */
extern const db_list_t tentacles_store_missing_def; /* by OldestPollAt, Id */

/* The size of the text a Tentacle list query borrows. */
#define TENTACLES_QUERY_TEXT 640

/* F as a list query; returns the list (order) it reads.  Q's filter text
 * and partialName pattern are written into TEXT (TENTACLES_QUERY_TEXT
 * bytes), which Q borrows: keep it while Q is used. */
const db_list_t *tentacles_store_list_query(const oh_tentacle_filter_t *f, db_list_query_t *q,
                                            char *text);

/* Calls FN for each Tentacle of F's page; *TOTAL up to DB_LIST_COUNT_CAP.
 * DB_NO_ROWS when F->after names no Tentacle (in that list). */
db_status_t tentacles_store_page(db_conn_t *c, const oh_tentacle_filter_t *f,
                                 void (*fn)(void *, const oh_tentacle_t *), void *ctx,
                                 int64_t *total);

/* Polls at the coverage (online) nodes, and counts of server entries, of
 * the N Tentacles IDS. */
db_status_t tentacles_store_polls_of(db_conn_t *c, const char *const *ids, size_t n,
                                     void (*fn)(void *, const char *, const char *, int64_t),
                                     void *ctx);
db_status_t tentacles_store_server_counts(db_conn_t *c, const char *const *ids, size_t n,
                                          void (*fn)(void *, const char *, int64_t), void *ctx);

typedef struct {
	int64_t total, polling, listening, rereg, missing;
} oh_tentacle_counts_t;

/* Counts, each one index range; missing: OldestPollAt < MISSING_BEFORE. */
db_status_t tentacles_store_counts(db_conn_t *c, int64_t missing_before, oh_tentacle_counts_t *out);

/* FN(ctx, tentacle id, name, node name) per node missed by each of the first
 * LIMIT Tentacles whose oldest poll is before MISSING_BEFORE (registered
 * before REGISTERED_BEFORE when > 0; not yet warned when UNWARNED_ONLY). */
db_status_t tentacles_store_missing(db_conn_t *c, int64_t missing_before, int64_t registered_before,
                                    bool unwarned_only, int limit,
                                    void (*fn)(void *, const char *, const char *, const char *),
                                    void *ctx);

/* The nodes coverage is computed for, and replacing them. */
db_status_t tentacles_store_coverage_nodes(db_conn_t *c, void (*fn)(void *, const char *),
                                           void *ctx);
db_status_t tentacles_store_set_coverage_nodes(db_conn_t *c, const char *const *ids, size_t n);

/* Recomputes OldestPollAt of polling Tentacle ID into *OLDEST (INT64_MAX
 * when none) and re-arms its warning when it is at or after COVERED_SINCE. */
db_status_t tentacles_store_update_coverage(db_conn_t *c, const char *id, int64_t covered_since,
                                            int64_t *oldest);

/* The Id of the LIMIT-th polling Tentacle after AFTER (or the last there
 * is) in *LAST, *N how many there were. */
db_status_t tentacles_store_next_polling(db_conn_t *c, const char *after, int limit, char *last,
                                         size_t size, int *n);
/* As tentacles_store_update_coverage for the polling Tentacles with
 * AFTER < Id <= LAST. */
db_status_t tentacles_store_update_coverage_range(db_conn_t *c, const char *after, const char *last,
                                                  int64_t covered_since);
/* Up to LIMIT polling (else listening) Tentacles with Id after AFTER, by Id. */
db_status_t tentacles_store_by_style(db_conn_t *c, bool polling, const char *after, int limit,
                                     void (*fn)(void *, const oh_tentacle_t *), void *ctx);
/* Server entries of the N Tentacles IDS. */
db_status_t tentacles_store_servers_of(db_conn_t *c, const char *const *ids, size_t n,
                                       void (*fn)(void *, const char *, const char *, const char *,
                                                  int),
                                       void *ctx);
/* Serialises coverage recomputes and warnings across nodes. */
db_status_t tentacles_store_lock_coverage(db_conn_t *c);

/* The statements above that are assembled per dialect or per batch of
 * Ids (N of IDS, up to 32 per statement), into Q: for the stores and the
 * T-SQL check (tests/tsql_page.c). */
void tentacles_store_polls_of_sql(const char *const *ids, size_t n, db_sql_t *q);
void tentacles_store_server_counts_sql(const char *const *ids, size_t n, db_sql_t *q);
void tentacles_store_servers_of_sql(const char *const *ids, size_t n, db_sql_t *q);
void tentacles_store_counts_sql(db_dialect_id_t d, int64_t missing_before, db_sql_t *q);
void tentacles_store_missing_sql(db_dialect_id_t d, int64_t missing_before,
                                 int64_t registered_before, bool unwarned_only, int limit,
                                 db_sql_t *q);
void tentacles_store_next_polling_sql(db_dialect_id_t d, const char *after, int limit, db_sql_t *q);
void tentacles_store_by_style_sql(db_dialect_id_t d, bool polling, const char *after, int limit,
                                  db_sql_t *q);

#endif
