/* SQL for the Events table (the audit log).  Each function runs in the
 * caller's transaction; lib/events.c and lib/archive.c compose them. */
#ifndef DB_EVENTS_STORE_H
#define DB_EVENTS_STORE_H

#include "../events.h"
#include "db.h"

db_status_t events_store_insert(db_conn_t *c, const oh_event_t *e);
db_status_t events_store_get(db_conn_t *c, const char *id, oh_event_t *out);

/* Calls FN for each event matching F, newest first, paged; *TOTAL
 * receives the count of all matches. */
db_status_t events_store_list(db_conn_t *c, const oh_event_filter_t *f,
                              void (*fn)(void *, oh_event_t *), void *ctx, int64_t *total);

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
