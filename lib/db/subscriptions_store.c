#include "subscriptions_store.h"

#include <string.h>

#include "dialect.h"
#include "keyset.h"

#define SUB_COLUMNS "Id, Name, Url, EventTypes, SecretSealed, CreatedBy, CreatedAt"

db_status_t subscriptions_store_insert(db_conn_t *c, const oh_subscription_t *s)
{
	db_param_t p[] = {DBP_TEXT(s->id),          DBP_TEXT(s->name),   DBP_TEXT(s->url),
	                  DBP_TEXT(s->event_types), DBP_TEXT(s->sealed), DBP_TEXT(s->created_by),
	                  DBP_INT(s->created_at)};
	return db_exec(c,
	               "INSERT INTO Subscriptions (" SUB_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?)",
	               p, 7, NULL);
}

static void read_sub(db_row_t *r, oh_subscription_t *s)
{
	memset(s, 0, sizeof *s);
	db_row_copy(r, 0, s->id, sizeof s->id);
	db_row_copy(r, 1, s->name, sizeof s->name);
	db_row_copy(r, 2, s->url, sizeof s->url);
	db_row_copy(r, 3, s->event_types, sizeof s->event_types);
	db_row_copy(r, 4, s->sealed, sizeof s->sealed);
	db_row_copy(r, 5, s->created_by, sizeof s->created_by);
	s->created_at = db_row_int(r, 6, NULL);
}

static db_status_t one_sub(void *ctx, db_row_t *r)
{
	read_sub(r, ctx);
	return DB_OK;
}

db_status_t subscriptions_store_get(db_conn_t *c, const char *id, oh_subscription_t *out)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c, "SELECT " SUB_COLUMNS " FROM Subscriptions WHERE Id = ?", p, 1, one_sub,
	                out);
}

typedef struct {
	void (*fn)(void *, const oh_subscription_t *);
	void *ctx;
} each_sub_t;

static db_status_t each_sub_row(void *vctx, db_row_t *r)
{
	each_sub_t *x = vctx;
	oh_subscription_t s;
	read_sub(r, &s);
	x->fn(x->ctx, &s);
	return DB_OK;
}

db_status_t subscriptions_store_each(db_conn_t *c, void (*fn)(void *, const oh_subscription_t *),
                                     void *ctx)
{
	each_sub_t x = {fn, ctx};
	db_status_t s =
	    db_query(c, "SELECT " SUB_COLUMNS " FROM Subscriptions ORDER BY CreatedAt, Id", NULL, 0,
	             each_sub_row, &x);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t subscriptions_store_delete(db_conn_t *c, const char *id, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	db_status_t s =
	    db_exec(c, "DELETE FROM WebhookDeliveries WHERE SubscriptionId = ?", p, 1, NULL);
	if (s == DB_OK)
		s = db_exec(c, "DELETE FROM Subscriptions WHERE Id = ?", p, 1, rows);
	return s;
}

db_status_t deliveries_store_insert(db_conn_t *c, const char *subscription_id,
                                    const oh_delivery_t *d)
{
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s != DB_OK)
		return s;
	db_param_t p[] = {DBP_TEXT(d->id),
	                  DBP_TEXT(subscription_id),
	                  DBP_TEXT(d->event_id),
	                  DBP_TEXT(d->task_id),
	                  DBP_INT(d->attempt),
	                  DBP_INT(now),
	                  d->status_code ? DBP_INT(d->status_code) : DBP_NULL,
	                  DBP_INT(d->succeeded ? 1 : 0),
	                  DBP_INT(d->duration_ms),
	                  d->error[0] ? DBP_TEXT(d->error) : DBP_NULL};
	return db_exec(
	    c,
	    "INSERT INTO WebhookDeliveries (Id, SubscriptionId, EventId, TaskId, Attempt, "
	    "DeliveredAt, StatusCode, Succeeded, DurationMs, Error) "
	    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    p, 10, NULL);
}

typedef struct {
	void (*fn)(void *, const oh_delivery_t *);
	void *ctx;
} each_delivery_t;

static db_status_t delivery_row(void *vctx, db_row_t *r)
{
	each_delivery_t *x = vctx;
	oh_delivery_t d;
	memset(&d, 0, sizeof d);
	db_row_copy(r, 0, d.id, sizeof d.id);
	db_row_copy(r, 1, d.event_id, sizeof d.event_id);
	db_row_copy(r, 2, d.task_id, sizeof d.task_id);
	d.attempt = (int)db_row_int(r, 3, NULL);
	d.delivered_at = db_row_int(r, 4, NULL);
	d.status_code = (int)db_row_int(r, 5, NULL);
	d.succeeded = db_row_int(r, 6, NULL) != 0;
	d.duration_ms = (int)db_row_int(r, 7, NULL);
	db_row_copy(r, 8, d.error, sizeof d.error);
	x->fn(x->ctx, &d);
	return DB_OK;
}

/* Newest first: IX_WebhookDeliveries_Sub (SubscriptionId, DeliveredAt, Id). */
const db_list_t deliveries_store_list_def = {.table = "WebhookDeliveries",
                                             .columns = "Id, EventId, TaskId, Attempt, "
                                                        "DeliveredAt, StatusCode, Succeeded, "
                                                        "DurationMs, Error",
                                             .k1 = "DeliveredAt",
                                             .k2 = "Id",
                                             .desc = true};

void deliveries_store_list_query(const char *subscription_id, int64_t take, db_list_query_t *q)
{
	memset(q, 0, sizeof *q);
	q->take = take;
	db_branch_bind(db_list_branch(q, "SubscriptionId = ?"), DBP_TEXT(subscription_id));
}

db_status_t deliveries_store_list(db_conn_t *c, const char *subscription_id, int64_t take,
                                  const char *after, void (*fn)(void *, const oh_delivery_t *),
                                  void *ctx)
{
	db_list_query_t q;
	deliveries_store_list_query(subscription_id, take, &q);
	char anchor[32];
	db_status_t s = DB_OK;
	if (after && *after)
		s = db_list_anchor(c, &deliveries_store_list_def, after, &q, anchor, sizeof anchor);
	each_delivery_t x = {fn, ctx};
	if (s == DB_OK)
		s = db_list_page(c, &deliveries_store_list_def, &q, delivery_row, &x);
	return s;
}
