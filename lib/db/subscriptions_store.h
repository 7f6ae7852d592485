/* SQL for Subscriptions and WebhookDeliveries, in the caller's transaction. */
#ifndef DB_SUBSCRIPTIONS_STORE_H
#define DB_SUBSCRIPTIONS_STORE_H

#include "../subscriptions.h"
#include "db.h"
#include "keyset.h"

db_status_t subscriptions_store_insert(db_conn_t *c, const oh_subscription_t *s);
db_status_t subscriptions_store_get(db_conn_t *c, const char *id, oh_subscription_t *out);
/* Calls FN for every subscription, oldest first. */
db_status_t subscriptions_store_each(db_conn_t *c, void (*fn)(void *, const oh_subscription_t *),
                                     void *ctx);
db_status_t subscriptions_store_delete(db_conn_t *c, const char *id, int64_t *rows);

db_status_t deliveries_store_insert(db_conn_t *c, const char *subscription_id,
                                    const oh_delivery_t *d);
/* Calls FN for up to TAKE deliveries of the subscription, newest first,
 * after the delivery AFTER (NULL: from the newest; DB_NO_ROWS when there is
 * no such delivery). */
db_status_t deliveries_store_list(db_conn_t *c, const char *subscription_id, int64_t take,
                                  const char *after, void (*fn)(void *, const oh_delivery_t *),
                                  void *ctx);
extern const db_list_t deliveries_store_list_def;
void deliveries_store_list_query(const char *subscription_id, int64_t take, db_list_query_t *q);

#endif
