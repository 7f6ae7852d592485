/* The audit log: every change to the cluster is an event written in the
 * same database transaction as the change (who, from where, what, result),
 * and so are refused attempts.  Recording an event also queues one
 * WebhookDelivery task per subscription that asked for its category, in
 * that same transaction, so a committed change is never left unannounced
 * and a rolled-back one is never announced. */
#ifndef OH_EVENTS_H
#define OH_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define OH_EVENT_ID_PREFIX "Events-"

/* Who acted.  An empty key id is the system itself (housekeeping, a task)
 * or a caller that presented no valid key. */
typedef struct {
	char key_id[51];
	char key_name[201];
	char remote[64];     /* the peer's address */
	char forwarded[201]; /* X-Forwarded-For, only from a trusted proxy */
} oh_actor_t;

/* One event to record.  Everything is borrowed. */
typedef struct oh_event_spec {
	const oh_actor_t *actor; /* NULL: the system */
	const char *category;    /* event type subscriptions match: "NodeDrainRequested", … */
	const char *operation;   /* the API operation or task kind */
	const char *resource_id; /* may be NULL */
	const char *result;      /* "Success", "Failed" or "Refused" */
	int status;              /* HTTP status, 0 when none */
	const char *message;     /* one line for people */
	const json_t *details;   /* the fields changed, or NULL */
	bool no_webhooks;        /* about a delivery itself: announcing it could loop */
} oh_event_spec_t;

/* Records EV inside the caller's transaction and queues its webhook
 * deliveries.  ID_OUT (51 bytes, may be NULL) receives the event's Id.
 * Returns DB_OK or a failure (the caller's transaction then rolls back). */
db_status_t oh_event_record_tx(db_conn_t *c, const oh_event_spec_t *ev, char *id_out);

/* The same in a transaction of its own (refusals, failures). */
db_status_t oh_event_record(db_pool_t *pool, const oh_event_spec_t *ev);

/* Deletes row ID with DEL (which sets *ROWS to the rows deleted) and records
 * AUDIT (may be NULL) in the same transaction.  Returns DB_OK, DB_NO_ROWS
 * when there was no such row (nothing recorded), or a failure. */
db_status_t oh_delete_audited(db_pool_t *pool,
                              db_status_t (*del)(db_conn_t *c, const char *id, int64_t *rows),
                              const char *id, const oh_event_spec_t *audit);

typedef struct {
	char id[51];
	int64_t occurred;
	char category[51];
	char operation[101];
	char resource_id[201];
	char user_id[51];
	char username[201];
	char remote[101];
	char forwarded[201];
	char result[21];
	int status;
	char message[1001];
	char *details; /* JSON text or NULL, malloc'd */
} oh_event_t;

typedef struct {
	int64_t from, to;      /* epoch ms, inclusive / exclusive; 0 = open */
	const char *user;      /* key id or key name, or NULL */
	const char *resource;  /* ResourceId, or NULL */
	const char *operation; /* or NULL */
	const char *category;  /* or NULL */
	const char *after;     /* the page starts after this event Id, or NULL */
	int64_t skip, take;
} oh_event_filter_t;

typedef struct {
	oh_event_t *v;
	size_t n;
	int64_t total;
} oh_event_list_t;

/* Lists a page of the events matching F, newest first; total up to
 * DB_LIST_COUNT_CAP.  DB_OK, DB_NO_ROWS when F->after names no event, or a
 * failure. */
db_status_t oh_events_list(db_pool_t *pool, const oh_event_filter_t *f, oh_event_list_t *out);
void oh_event_list_free(oh_event_list_t *l);

/* Reads one event inside a transaction.  DB_NO_ROWS if none. */
db_status_t oh_event_get_tx(db_conn_t *c, const char *id, oh_event_t *out);
void oh_event_clear(oh_event_t *e);

/* The event as its JSON resource (new reference). */
json_t *oh_event_json(const oh_event_t *e);

/* The event categories a subscription may ask for (NULL-terminated). */
extern const char *const oh_event_categories[];

#endif
