/* SQL for the Events table (the audit log).  Each function runs in the
 * caller's transaction; lib/events.c and lib/archive.c compose them. */
#ifndef DB_EVENTS_STORE_H
#define DB_EVENTS_STORE_H

#include "../events.h"
#include "db.h"
#include "keyset.h"

db_status_t events_store_insert(db_conn_t *c, const oh_event_t *e);
db_status_t events_store_get(db_conn_t *c, const char *id, oh_event_t *out);

/* Calls FN for each event of F's page, newest first (after the event
 * F->after when given: DB_NO_ROWS when there is no such event); *TOTAL
 * receives the count of all matches, up to DB_LIST_COUNT_CAP. */
db_status_t events_store_list(db_conn_t *c, const oh_event_filter_t *f,
                              void (*fn)(void *, oh_event_t *), void *ctx, int64_t *total);

/* The list's table and order, and F as its branches (WHERE holds their
 * text), for the store and the plan test. */
extern const db_list_t events_store_list_def;
void events_store_list_query(const oh_event_filter_t *f, db_list_query_t *q, char (*where)[256]);

/* The time of the oldest event before BEFORE in *OUT; DB_NO_ROWS when
 * there is none. */
db_status_t events_store_oldest_time(db_conn_t *c, int64_t before, int64_t *out);

/* Calls FN for up to LIMIT events with FROM <= Occurred < TO that come
 * after (AFTER_TIME, AFTER_ID) in (Occurred, Id) order (AFTER_ID "" for
 * the start), oldest first: keyset paging that stays cheap however deep. */
db_status_t events_store_range(db_conn_t *c, int64_t from, int64_t to, int64_t after_time,
                               const char *after_id, int64_t limit,
                               void (*fn)(void *, oh_event_t *), void *ctx);

/* Deletes the event ID; *ROWS receives the count. */
db_status_t events_store_delete(db_conn_t *c, const char *id, int64_t *rows);

#endif
