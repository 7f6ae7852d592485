#include "chat_replies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "db/cluster_store.h"
#include "db/tasks_store.h"
#include "events.h"
#include "oh_json.h"

#define REPLAY_WINDOW_MS (10 * 60 * 1000)
#define MAX_BATCH        64

typedef struct {
	const char *task_id, *url;
} reply_args_t;

static db_status_t register_txn(db_conn_t *c, void *vctx)
{
	reply_args_t *x = vctx;
	return cluster_store_add_reply(c, x->task_id, x->url);
}

db_status_t oh_chat_reply_register(db_pool_t *pool, const char *task_id, const char *response_url)
{
	reply_args_t x = {task_id, response_url};
	db_status_t s = db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, register_txn, &x);
	return s == DB_DUPLICATE ? DB_OK : s; /* the same task asked twice: one reply */
}

typedef struct {
	const char *name;
	int64_t now; /* when this request wrote its row */
} replay_ctx_t;

static db_status_t replay_txn(db_conn_t *c, void *vctx)
{
	replay_ctx_t *x = vctx;
	db_status_t s = db_now_ms(c, &x->now);
	return s == DB_OK ? cluster_store_add_replay(c, x->name, x->now) : s;
}

/* After a COMMIT that lost its answer: the row with this request's own
 * time is this request's (a replay by someone else would have been
 * refused, not written). */
static db_status_t replay_verify(db_conn_t *c, void *vctx)
{
	replay_ctx_t *x = vctx;
	return cluster_store_has_replay(c, x->name, x->now);
}

typedef struct {
	const char *task_id;
	char *url;
	size_t size;
} url_ctx_t;

static db_status_t url_txn(db_conn_t *c, void *vctx)
{
	url_ctx_t *x = vctx;
	return cluster_store_reply_url(c, x->task_id, x->url, x->size);
}

db_status_t oh_chat_reply_url(db_pool_t *pool, const char *task_id, char *url, size_t size)
{
	url_ctx_t x = {task_id, url, size};
	return db_txn(pool, DB_TXN_READ, url_txn, &x);
}

db_status_t oh_replay_guard(db_pool_t *pool, const char *sig, bool *fresh)
{
	char name[100];
	snprintf(name, sizeof name, "replay:%.90s", sig);
	replay_ctx_t x = {name, 0};
	db_status_t s = db_txn_verified(pool, replay_txn, replay_verify, &x);
	*fresh = s == DB_OK;
	return s == DB_DUPLICATE ? DB_OK : s;
}

typedef struct {
	char id[MAX_BATCH][64];
	char url[MAX_BATCH][2001];
	int n;
} due_t;

static void add_due(void *vctx, const char *id, const char *url)
{
	due_t *d = vctx;
	if (d->n >= MAX_BATCH)
		return;
	snprintf(d->id[d->n], sizeof d->id[0], "%s", id);
	snprintf(d->url[d->n], sizeof d->url[0], "%s", url);
	d->n++;
}

typedef struct {
	char id[MAX_BATCH][128];
	int n;
} offline_t;

static void add_offline(void *vctx, const char *id)
{
	offline_t *o = vctx;
	if (o->n < MAX_BATCH)
		snprintf(o->id[o->n++], sizeof o->id[0], "%s", id);
}

typedef struct {
	int64_t offline_timeout_ms, archive_every_ms, event_retention_ms;
	oh_cluster_jobs_t *out;
	due_t *due;
	offline_t *off;
} jobs_ctx_t;

static db_status_t jobs_txn(db_conn_t *c, void *vctx)
{
	jobs_ctx_t *x = vctx;
	memset(x->out, 0, sizeof *x->out);
	x->due->n = 0;
	x->off->n = 0;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = cluster_store_due_replies(c, add_due, x->due);
	for (int i = 0; s == DB_OK && i < x->due->n; i++) {
		int64_t rows = 0;
		s = cluster_store_mark_reply(c, x->due->id[i], now, &rows);
		if (s != DB_OK || rows == 0)
			continue;
		json_t *args = oh_json_check(json_object());
		/* The response_url is a credential for that chat: it stays in
		 * ChatReplies, not in the task's Arguments that Readers see. */
		oh_json_set_new(args, "TaskId", json_string(x->due->id[i]));
		oh_task_spec_t spec = {.name = OH_CHAT_REPLY_KIND,
		                       .description = "Post a task's outcome to the chat",
		                       .arguments = args,
		                       .max_attempts = 5,
		                       .requested_by = "system"};
		oh_task_t t;
		s = oh_task_insert(c, &spec, &t);
		json_decref(args);
		if (s == DB_OK) {
			oh_task_clear(&t);
			x->out->chat_replies++;
		}
	}
	if (s == DB_OK)
		s = cluster_store_newly_offline(c, now - x->offline_timeout_ms, add_offline,
		                                x->off);
	for (int i = 0; s == DB_OK && i < x->off->n; i++) {
		char msg[300];
		snprintf(msg, sizeof msg, "%s stopped answering: it is offline.", x->off->id[i]);
		oh_event_spec_t ev = {.category = "NodeOffline",
		                      .operation = "housekeeping",
		                      .resource_id = x->off->id[i],
		                      .result = "Success",
		                      .message = msg};
		s = oh_event_record_tx(c, &ev, NULL);
		if (s == DB_OK)
			s = cluster_store_mark_offline(c, x->off->id[i], now);
		if (s == DB_OK)
			x->out->offline_events++;
	}
	bool archive = false;
	if (s == DB_OK)
		s = tasks_store_take_slot(c, "archive", now, x->archive_every_ms, &archive);
	if (s == DB_OK && archive) {
		/* Only when there is something to archive: no empty task an hour. */
		int64_t due = 0;
		s = cluster_store_count_events_before(c, now - x->event_retention_ms, &due);
		archive = s == DB_OK && due > 0;
	}
	if (s == DB_OK && archive) {
		oh_task_spec_t spec = {.name = OH_ARCHIVE_KIND,
		                       .description = "Archive old audit events to EventExports",
		                       .max_attempts = 5,
		                       .requested_by = "system"};
		oh_task_t t;
		s = oh_task_insert(c, &spec, &t);
		if (s == DB_OK) {
			oh_task_clear(&t);
			x->out->archive_queued = true;
		}
	}
	if (s == DB_OK)
		s = cluster_store_purge_replays(c, now - REPLAY_WINDOW_MS);
	return s;
}

db_status_t oh_cluster_jobs(db_pool_t *pool, int64_t offline_timeout_ms, int64_t archive_every_ms,
                            int64_t event_retention_ms, oh_cluster_jobs_t *out)
{
	due_t *due = malloc(sizeof *due);
	offline_t *off = malloc(sizeof *off);
	if (!due || !off) {
		free(due);
		free(off);
		return DB_ERROR;
	}
	jobs_ctx_t x = {offline_timeout_ms,
	                archive_every_ms > 0 ? archive_every_ms : 3600000,
	                event_retention_ms,
	                out,
	                due,
	                off};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, jobs_txn, &x);
	free(due);
	free(off);
	return s;
}
