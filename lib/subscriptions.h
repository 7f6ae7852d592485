/* Webhook subscriptions: a URL, the event categories it wants and a signing
 * secret.  The secret must be usable to sign, so it cannot be hashed: it is
 * sealed (AES-256-GCM) under the cluster's secrets key, which lives in a
 * file on each node and never in the database.  Deliveries are tasks on the
 * queue (lib/tasks/webhook.c); their outcomes are kept per subscription. */
#ifndef OH_SUBSCRIPTIONS_H
#define OH_SUBSCRIPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "events.h"

#define OH_SUBSCRIPTION_ID_PREFIX "Subscriptions-"
#define OH_WEBHOOK_KIND           "WebhookDelivery"
#define OH_WEBHOOK_MAX_ATTEMPTS   5

typedef struct {
	char id[51];
	char name[201];
	char url[2001];
	char event_types[1001]; /* comma-separated categories */
	char sealed[401];       /* the sealed secret */
	char created_by[201];
	int64_t created_at;
} oh_subscription_t;

typedef struct {
	oh_subscription_t *v;
	size_t n;
} oh_subscription_list_t;

/* Creates a subscription with the secret SECRET sealed under KEY, and
 * records AUDIT (its resource id filled in) in the same transaction.
 * Returns DB_OK and fills *OUT, or a failure. */
db_status_t oh_subscriptions_create(db_pool_t *pool, const unsigned char key[32], const char *name,
                                    const char *url, const char *event_types, const char *secret,
                                    const char *created_by, const oh_event_spec_t *audit,
                                    oh_subscription_t *out);
db_status_t oh_subscriptions_list(db_pool_t *pool, oh_subscription_list_t *out);
void oh_subscription_list_free(oh_subscription_list_t *l);
/* DB_NO_ROWS when there is no such subscription. */
db_status_t oh_subscriptions_get(db_pool_t *pool, const char *id, oh_subscription_t *out);
db_status_t oh_subscriptions_get_tx(db_conn_t *c, const char *id, oh_subscription_t *out);
/* Deletes it and its deliveries, recording AUDIT.  DB_NO_ROWS if none. */
db_status_t oh_subscriptions_delete(db_pool_t *pool, const char *id, const oh_event_spec_t *audit);

/* True when the comma-separated LIST names CATEGORY (or "*"). */
bool oh_subscription_wants(const char *list, const char *category);

/* Queues one delivery task per subscription wanting CATEGORY, for event
 * EVENT_ID, inside the caller's transaction. */
db_status_t oh_subscriptions_enqueue_tx(db_conn_t *c, const char *category, const char *event_id);

typedef struct {
	char id[51];
	char event_id[51];
	char task_id[51];
	int attempt;
	int64_t delivered_at;
	int status_code; /* 0 when no HTTP answer */
	bool succeeded;
	int duration_ms;
	char error[1001];
} oh_delivery_t;

typedef struct {
	oh_delivery_t *v;
	size_t n;
} oh_delivery_list_t;

/* Records one delivery attempt (own transaction), at the database's time
 * (D's delivered_at is not read). */
db_status_t oh_deliveries_record(db_pool_t *pool, const char *subscription_id,
                                 const oh_delivery_t *d);
/* The last TAKE deliveries of a subscription, newest first, after the
 * delivery AFTER when not NULL (DB_NO_ROWS when there is no such one). */
db_status_t oh_deliveries_list(db_pool_t *pool, const char *subscription_id, int64_t take,
                               const char *after, oh_delivery_list_t *out);
void oh_delivery_list_free(oh_delivery_list_t *l);

#endif
