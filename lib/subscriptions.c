#include "subscriptions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/subscriptions_store.h"
#include "oh_crypto.h"
#include "oh_json.h"
#include "tasks.h"

bool oh_subscription_wants(const char *list, const char *category)
{
	size_t clen = strlen(category);
	const char *p = list;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if ((n == 1 && *p == '*') || (n == clen && strncmp(p, category, n) == 0))
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

typedef struct {
	const char *category;
	char (*ids)[51];
	size_t n, cap;
} match_ctx_t;

static void match_one(void *vctx, const oh_subscription_t *s)
{
	match_ctx_t *x = vctx;
	if (!oh_subscription_wants(s->event_types, x->category))
		return;
	if (x->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 8;
		char(*nv)[51] = realloc(x->ids, x->cap * sizeof *nv);
		if (!nv)
			abort();
		x->ids = nv;
	}
	memcpy(x->ids[x->n++], s->id, 51);
}

db_status_t oh_subscriptions_enqueue_tx(db_conn_t *c, const char *category, const char *event_id)
{
	match_ctx_t x = {category, NULL, 0, 0};
	db_status_t s = subscriptions_store_each(c, match_one, &x);
	for (size_t i = 0; s == DB_OK && i < x.n; i++) {
		json_t *args = oh_json_check(json_object());
		oh_json_set_new(args, "SubscriptionId", json_string(x.ids[i]));
		oh_json_set_new(args, "EventId", json_string(event_id));
		char desc[160];
		snprintf(desc, sizeof desc, "Deliver %s to %s", category, x.ids[i]);
		oh_task_spec_t spec = {.name = OH_WEBHOOK_KIND,
		                       .description = desc,
		                       .arguments = args,
		                       .max_attempts = OH_WEBHOOK_MAX_ATTEMPTS,
		                       .requested_by = "system"};
		oh_task_t t;
		s = oh_task_insert(c, &spec, &t);
		if (s == DB_OK)
			oh_task_clear(&t);
		json_decref(args);
	}
	free(x.ids);
	return s;
}

typedef struct {
	oh_subscription_t *sub;
	const oh_event_spec_t *audit;
} create_ctx_t;

static db_status_t create_txn(db_conn_t *c, void *vctx)
{
	create_ctx_t *x = vctx;
	db_status_t s = db_now_ms(c, &x->sub->created_at);
	if (s == DB_OK)
		s = subscriptions_store_insert(c, x->sub);
	if (s == DB_OK && x->audit) {
		oh_event_spec_t ev = *x->audit;
		ev.resource_id = x->sub->id;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	return s;
}

/* After a create whose COMMIT lost its answer: its Id is there exactly
 * when it was committed. */
static db_status_t create_verify(db_conn_t *c, void *vctx)
{
	create_ctx_t *x = vctx;
	oh_subscription_t found;
	return subscriptions_store_get(c, x->sub->id, &found);
}

db_status_t oh_subscriptions_create(db_pool_t *pool, const unsigned char key[32], const char *name,
                                    const char *url, const char *event_types, const char *secret,
                                    const char *created_by, const oh_event_spec_t *audit,
                                    oh_subscription_t *out)
{
	memset(out, 0, sizeof *out);
	char rnd[21];
	if (!oh_random_hex(rnd, 10) || !oh_seal(key, secret, out->sealed, sizeof out->sealed))
		return DB_ERROR;
	snprintf(out->id, sizeof out->id, OH_SUBSCRIPTION_ID_PREFIX "%s", rnd);
	snprintf(out->name, sizeof out->name, "%s", name);
	snprintf(out->url, sizeof out->url, "%s", url);
	snprintf(out->event_types, sizeof out->event_types, "%s", event_types);
	snprintf(out->created_by, sizeof out->created_by, "%s", created_by);
	create_ctx_t x = {out, audit};
	return db_txn_verified(pool, create_txn, create_verify, &x);
}

static void collect(void *vctx, const oh_subscription_t *s)
{
	oh_subscription_list_t *l = vctx;
	oh_subscription_t *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (!nv)
		abort();
	l->v = nv;
	l->v[l->n++] = *s;
}

static db_status_t list_txn(db_conn_t *c, void *vctx)
{
	oh_subscription_list_t *l = vctx;
	oh_subscription_list_free(l);
	return subscriptions_store_each(c, collect, l);
}

db_status_t oh_subscriptions_list(db_pool_t *pool, oh_subscription_list_t *out)
{
	memset(out, 0, sizeof *out);
	return db_txn(pool, DB_TXN_READ, list_txn, out);
}

void oh_subscription_list_free(oh_subscription_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

db_status_t oh_subscriptions_get_tx(db_conn_t *c, const char *id, oh_subscription_t *out)
{
	return subscriptions_store_get(c, id, out);
}

typedef struct {
	const char *id;
	oh_subscription_t *out;
} get_ctx_t;

static db_status_t get_txn(db_conn_t *c, void *vctx)
{
	get_ctx_t *x = vctx;
	return subscriptions_store_get(c, x->id, x->out);
}

db_status_t oh_subscriptions_get(db_pool_t *pool, const char *id, oh_subscription_t *out)
{
	get_ctx_t x = {id, out};
	return db_txn(pool, DB_TXN_READ, get_txn, &x);
}

db_status_t oh_subscriptions_delete(db_pool_t *pool, const char *id, const oh_event_spec_t *audit)
{
	return oh_delete_audited(pool, subscriptions_store_delete, id, audit);
}

typedef struct {
	const char *sub;
	const oh_delivery_t *d;
} record_ctx_t;

static db_status_t record_txn(db_conn_t *c, void *vctx)
{
	record_ctx_t *x = vctx;
	return deliveries_store_insert(c, x->sub, x->d);
}

db_status_t oh_deliveries_record(db_pool_t *pool, const char *subscription_id,
                                 const oh_delivery_t *d)
{
	record_ctx_t x = {subscription_id, d};
	return db_txn(pool, DB_TXN_WRITE, record_txn, &x);
}

static void collect_delivery(void *vctx, const oh_delivery_t *d)
{
	oh_delivery_list_t *l = vctx;
	oh_delivery_t *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (!nv)
		abort();
	l->v = nv;
	l->v[l->n++] = *d;
}

typedef struct {
	const char *sub;
	int64_t take;
	const char *after;
	oh_delivery_list_t *out;
} dlist_ctx_t;

static db_status_t dlist_txn(db_conn_t *c, void *vctx)
{
	dlist_ctx_t *x = vctx;
	oh_delivery_list_free(x->out);
	return deliveries_store_list(c, x->sub, x->take, x->after, collect_delivery, x->out);
}

db_status_t oh_deliveries_list(db_pool_t *pool, const char *subscription_id, int64_t take,
                               const char *after, oh_delivery_list_t *out)
{
	memset(out, 0, sizeof *out);
	dlist_ctx_t x = {subscription_id, take, after, out};
	return db_txn(pool, DB_TXN_READ, dlist_txn, &x);
}

void oh_delivery_list_free(oh_delivery_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
