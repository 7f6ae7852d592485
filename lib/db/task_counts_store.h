/* SQL for TaskCounts: how many tasks are in each state, without counting
 * the whole ServerTasks table.  Ended tasks are counted once, by a pass
 * that moves each state's CountedTo forward over the recent completions
 * (IX_ServerTasks_Completed); a read adds the few that ended since; the
 * queued and running ones are counted directly (few, IX_ServerTasks_State
 * List).  Retention subtracts what it deletes.  Each function runs in the
 * caller's transaction. */
#ifndef DB_TASK_COUNTS_STORE_H
#define DB_TASK_COUNTS_STORE_H

#include "db.h"
#include "keyset.h"

/* Calls FN(CTX, state, count) once per state with tasks (ended states from
 * the counts plus what ended since; active states counted). */
db_status_t task_counts_store_read(db_conn_t *c, void (*fn)(void *, const char *, int64_t),
                                   void *ctx);

/* The lowest CountedTo (where the next pass starts). */
db_status_t task_counts_store_counted_to(db_conn_t *c, int64_t *out);

/* *END: the CompletedTime of the ended task ROWS after the first at or
 * after FROM (an index range of that many entries); *FOUND false when
 * fewer have ended since. */
db_status_t task_counts_store_chunk_end(db_conn_t *c, int64_t from, int64_t rows, int64_t *end,
                                        bool *found);

/* Counts the tasks that ended before TO into the totals.  Safe beside a
 * concurrent call: each row's update counts from its own CountedTo. */
db_status_t task_counts_store_advance(db_conn_t *c, int64_t to);

/* Before retention deletes the ended tasks up to and including LAST_ID in
 * (CompletedTime, Id) order: takes them out of the totals. */
db_status_t task_counts_store_forget_through(db_conn_t *c, const char *last_id);

/* The statements above that are assembled per dialect, into Q (for the
 * T-SQL check, tests/tsql_page.c). */
void task_counts_store_range_sql(db_dialect_id_t d, const char *where, const db_param_t *p,
                                 size_t n, db_sql_t *q);
void task_counts_store_read_sql(db_dialect_id_t d, db_sql_t *q);
void task_counts_store_chunk_sql(db_dialect_id_t d, int64_t from, int64_t rows, db_sql_t *q);

#endif
