#include "events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/events_store.h"
#include "oh_crypto.h"
#include "oh_json.h"
#include "subscriptions.h"

const char *const oh_event_categories[] = {
    "NodeDrainRequested",
    "NodeUndrainRequested",
    "NodeTaskCapChanged",
    "NodeDrained",
    "NodeUndrained",
    "NodeOffline",
    "NodeDeleted",
    "TaskQueued",
    "TaskCanceled",
    "TaskFailed",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "SubscriptionCreated",
    "SubscriptionDeleted",
    "EventsArchived",
    "StorageChangeRequested",
    "StorageChanged",
    "PollingChanged",
    "TentacleRegistered",
    "TentacleDeleted",
    "TentacleServersChanged",
    "TentacleNotPollingAllNodes",
    "AccessDenied",
    "RequestFailed",
    "PackagePushed",
    "PackageDeleted",
    "ManagedClusterCreated",
    "ManagedClusterChanged",
    "ManagedClusterDeleted",
    "MaintenanceRunStarted",
    "NodeReadyForMaintenance",
    "MaintenanceRunPaused",
    "MaintenanceRunResumed",
    "MaintenanceRunContinued",
    "MaintenanceRunAbortRequested",
    "MaintenanceRunCompleted",
    "MaintenanceRunFailed",
    "MaintenanceRunAborted",
    NULL,
};

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

db_status_t oh_event_record_tx(db_conn_t *c, const oh_event_spec_t *ev, char *id_out)
{
	oh_event_t e;
	memset(&e, 0, sizeof e);
	char rnd[21];
	if (!oh_random_hex(rnd, 10))
		return DB_ERROR;
	snprintf(e.id, sizeof e.id, OH_EVENT_ID_PREFIX "%s", rnd);
	db_status_t s = db_now_ms(c, &e.occurred);
	if (s != DB_OK)
		return s;
	copy(e.category, sizeof e.category, ev->category);
	copy(e.operation, sizeof e.operation, ev->operation);
	copy(e.resource_id, sizeof e.resource_id, ev->resource_id);
	if (ev->actor) {
		copy(e.user_id, sizeof e.user_id, ev->actor->key_id);
		copy(e.username, sizeof e.username, ev->actor->key_name);
		copy(e.remote, sizeof e.remote, ev->actor->remote);
		copy(e.forwarded, sizeof e.forwarded, ev->actor->forwarded);
	} else {
		copy(e.username, sizeof e.username, "system");
	}
	copy(e.result, sizeof e.result, ev->result ? ev->result : "Success");
	e.status = ev->status;
	copy(e.message, sizeof e.message, ev->message);
	e.details = ev->details ? oh_json_dump(ev->details) : NULL;
	s = events_store_insert(c, &e);
	free(e.details);
	if (s == DB_OK && !ev->no_webhooks)
		s = oh_subscriptions_enqueue_tx(c, e.category, e.id);
	if (s == DB_OK && id_out)
		memcpy(id_out, e.id, sizeof e.id);
	return s;
}

static db_status_t record_txn(db_conn_t *c, void *ctx)
{
	return oh_event_record_tx(c, ctx, NULL);
}

db_status_t oh_event_record(db_pool_t *pool, const oh_event_spec_t *ev)
{
	return db_txn(pool, DB_TXN_WRITE, record_txn, (void *)ev);
}

void oh_event_clear(oh_event_t *e)
{
	free(e->details);
	e->details = NULL;
}

void oh_event_list_free(oh_event_list_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		oh_event_clear(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

typedef struct {
	const oh_event_filter_t *f;
	oh_event_list_t *out;
	size_t cap;
} list_ctx_t;

static void collect(void *vctx, oh_event_t *e)
{
	list_ctx_t *x = vctx;
	if (x->out->n == x->cap) {
		x->cap = x->cap ? 2 * x->cap : 16;
		oh_event_t *nv = realloc(x->out->v, x->cap * sizeof *nv);
		if (!nv)
			abort();
		x->out->v = nv;
	}
	x->out->v[x->out->n++] = *e;
}

static db_status_t list_txn(db_conn_t *c, void *vctx)
{
	list_ctx_t *x = vctx;
	oh_event_list_free(x->out);
	x->cap = 0;
	return events_store_list(c, x->f, collect, x, &x->out->total);
}

db_status_t oh_events_list(db_pool_t *pool, const oh_event_filter_t *f, oh_event_list_t *out)
{
	memset(out, 0, sizeof *out);
	list_ctx_t x = {f, out, 0};
	db_status_t s = db_txn(pool, DB_TXN_READ, list_txn, &x);
	if (s != DB_OK)
		oh_event_list_free(out);
	return s;
}

db_status_t oh_event_get_tx(db_conn_t *c, const char *id, oh_event_t *out)
{
	return events_store_get(c, id, out);
}

static json_t *str_or_null(const char *s)
{
	return s && *s ? oh_json_string_safe(s) : json_null();
}

json_t *oh_event_json(const oh_event_t *e)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(e->id));
	oh_json_set_new(o, "Occurred", oh_json_time(e->occurred));
	oh_json_set_new(o, "Category", json_string(e->category));
	oh_json_set_new(o, "Operation", oh_json_string_safe(e->operation));
	oh_json_set_new(o, "ResourceId", str_or_null(e->resource_id));
	oh_json_set_new(o, "UserId", str_or_null(e->user_id));
	oh_json_set_new(o, "Username", str_or_null(e->username));
	oh_json_set_new(o, "RemoteAddress", str_or_null(e->remote));
	oh_json_set_new(o, "ForwardedFor", str_or_null(e->forwarded));
	oh_json_set_new(o, "Result", json_string(e->result));
	oh_json_set_new(o, "StatusCode", e->status ? json_integer(e->status) : json_null());
	/* Text recorded from requests (a path, a forwarded address) is
	 * whatever the client sent: never let it make the list unbuildable. */
	oh_json_set_new(o, "Message", oh_json_string_safe(e->message));
	json_t *d = NULL;
	if (e->details)
		d = json_loads(e->details, 0, NULL);
	oh_json_set_new(o, "Details", d ? d : json_null());
	return o;
}

typedef struct {
	db_status_t (*del)(db_conn_t *, const char *, int64_t *);
	const char *id;
	const oh_event_spec_t *audit;
} delete_ctx_t;

static db_status_t delete_txn(db_conn_t *c, void *ctx)
{
	delete_ctx_t *x = ctx;
	int64_t rows = 0;
	db_status_t s = x->del(c, x->id, &rows);
	if (s == DB_OK && rows == 0)
		return DB_NO_ROWS;
	if (s == DB_OK && x->audit)
		s = oh_event_record_tx(c, x->audit, NULL);
	return s;
}

db_status_t oh_delete_audited(db_pool_t *pool,
                              db_status_t (*del)(db_conn_t *c, const char *id, int64_t *rows),
                              const char *id, const oh_event_spec_t *audit)
{
	delete_ctx_t x = {del, id, audit};
	return db_txn(pool, DB_TXN_WRITE, delete_txn, &x);
}
