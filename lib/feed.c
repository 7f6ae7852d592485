#include "feed.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/events_store.h"
#include "db/tasks_store.h"
#include "events.h"
#include "node_state.h"
#include "oh_json.h"
#include "oh_log.h"

#define PAGE          200   /* rows per table per query */
#define READ_MAX_ROWS 20000 /* rows per table per poll; the rest comes next poll */
#define WARN_EVERY_MS 10000

struct oh_feed {
	oh_feed_opts_t o;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC: ring grew, a read ended, or closed */
	oh_feed_item_t *ring;
	uint64_t head; /* the position the next item takes; the ring holds the
	                  positions [head - count, head) */
	size_t count;
	unsigned subs;
	bool closed;
	bool polling;         /* a thread is reading the database */
	bool warm;            /* the position below is current (someone listened) */
	int64_t hw_time;      /* the newest change time read so far */
	json_t *seen;         /* key -> time of the changes handed out recently */
	int64_t next_poll_at; /* monotonic ms */
	int64_t next_late_at;
	int64_t last_warn;
	uint64_t reads, delivered;
};

void oh_feed_item_clear(oh_feed_item_t *it)
{
	free(it->key);
	free(it->data);
	it->key = it->data = NULL;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		abort();
	return d;
}

oh_feed_t *oh_feed_new(const oh_feed_opts_t *opts)
{
	oh_feed_t *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->o = *opts;
	if (f->o.ring < 16)
		f->o.ring = 16;
	if (f->o.poll_ms < 1)
		f->o.poll_ms = 1;
	f->ring = calloc(f->o.ring, sizeof *f->ring);
	f->seen = json_object();
	if (!f->ring || !f->seen) {
		free(f->ring);
		json_decref(f->seen);
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	return f;
}

void oh_feed_free(oh_feed_t *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->o.ring; i++)
		oh_feed_item_clear(&f->ring[i]);
	free(f->ring);
	json_decref(f->seen);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void oh_feed_close(oh_feed_t *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->closed = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

bool oh_feed_subscribe(oh_feed_t *f, oh_feed_sub_t *sub)
{
	pthread_mutex_lock(&f->mu);
	bool ok = !f->closed;
	if (ok) {
		f->subs++;
		sub->next = f->head;
		if (!f->warm)
			f->next_poll_at = 0; /* the first reader primes at once */
	}
	pthread_mutex_unlock(&f->mu);
	return ok;
}

void oh_feed_unsubscribe(oh_feed_t *f, oh_feed_sub_t *sub)
{
	(void)sub;
	pthread_mutex_lock(&f->mu);
	if (f->subs > 0 && --f->subs == 0)
		f->warm = false; /* nobody listens: stop reading, prime again later */
	pthread_mutex_unlock(&f->mu);
}

void oh_feed_stats(oh_feed_t *f, oh_feed_stats_t *out)
{
	pthread_mutex_lock(&f->mu);
	out->reads = f->reads;
	out->delivered = f->delivered;
	out->streams = f->subs;
	pthread_mutex_unlock(&f->mu);
}

/* ---- reading the database ----------------------------------------------- */

/* Rows read in one transaction, before they become items. */
typedef struct {
	oh_event_t *ev;
	size_t n_ev, cap_ev;
	oh_task_t *tk;
	size_t n_tk, cap_tk;
	bool ev_full, tk_full; /* the last page of that table was full */
} rows_t;

static void rows_clear(rows_t *r)
{
	for (size_t i = 0; i < r->n_ev; i++)
		oh_event_clear(&r->ev[i]);
	for (size_t i = 0; i < r->n_tk; i++)
		oh_task_clear(&r->tk[i]);
	free(r->ev);
	free(r->tk);
	memset(r, 0, sizeof *r);
}

static void grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return;
	*cap = *cap ? 2 * *cap : 64;
	void *nv = realloc(*v, *cap * size);
	if (!nv)
		abort();
	*v = nv;
}

static void add_event(void *ctx, oh_event_t *e)
{
	rows_t *r = ctx;
	grow((void **)&r->ev, &r->cap_ev, r->n_ev, sizeof *r->ev);
	r->ev[r->n_ev++] = *e; /* takes e's strings */
}

static void add_task(void *ctx, oh_task_t *t)
{
	rows_t *r = ctx;
	grow((void **)&r->tk, &r->cap_tk, r->n_tk, sizeof *r->tk);
	r->tk[r->n_tk++] = *t;
}

/* Reads up to MAX rows of each table after the positions given, a page at
 * a time.  Sets the *_full flags when a table may hold more. */
static db_status_t read_rows(db_conn_t *c, int64_t ev_time, const char *ev_id, int64_t tk_time,
                             const char *tk_id, size_t max, rows_t *r)
{
	char after[64];
	int64_t t = ev_time;
	snprintf(after, sizeof after, "%s", ev_id);
	for (size_t got = 0; got < max;) {
		size_t before = r->n_ev;
		db_status_t s = events_store_range(c, t, INT64_MAX, t, after, PAGE, add_event, r);
		if (s != DB_OK)
			return s;
		size_t n = r->n_ev - before;
		got += n;
		r->ev_full = n == PAGE;
		if (n < PAGE)
			break;
		t = r->ev[r->n_ev - 1].occurred;
		snprintf(after, sizeof after, "%s", r->ev[r->n_ev - 1].id);
	}
	t = tk_time;
	snprintf(after, sizeof after, "%s", tk_id);
	for (size_t got = 0; got < max;) {
		size_t before = r->n_tk;
		db_status_t s = tasks_store_changed(c, t, after, PAGE, add_task, r);
		if (s != DB_OK)
			return s;
		size_t n = r->n_tk - before;
		got += n;
		r->tk_full = n == PAGE;
		if (n < PAGE)
			break;
		t = r->tk[r->n_tk - 1].last_updated;
		snprintf(after, sizeof after, "%s", r->tk[r->n_tk - 1].id);
	}
	return DB_OK;
}

static void event_item(const oh_event_t *e, oh_feed_item_t *it)
{
	memset(it, 0, sizeof *it);
	it->kind = OH_FEED_EVENT;
	it->time = e->occurred;
	snprintf(it->category, sizeof it->category, "%s", e->category);
	snprintf(it->resource, sizeof it->resource, "%s", e->resource_id);
	char key[64];
	snprintf(key, sizeof key, "E%s", e->id);
	it->key = xstrdup(key);
	json_t *j = oh_event_json(e);
	it->data = oh_json_dump(j);
	json_decref(j);
}

static void task_item(const oh_feed_t *f, const oh_task_t *t, oh_feed_item_t *it)
{
	memset(it, 0, sizeof *it);
	it->kind = OH_FEED_TASK;
	it->time = t->last_updated;
	snprintf(it->category, sizeof it->category, "%s", OH_FEED_TASK_CATEGORY);
	snprintf(it->resource, sizeof it->resource, "%s", t->id);
	char key[160];
	snprintf(key, sizeof key, "T%s@%" PRId64 "/%s/%d", t->id, t->last_updated,
	         oh_task_state_name(t->state), t->progress);
	it->key = xstrdup(key);
	it->data = f->o.render_task(t);
	if (!it->data)
		abort();
}

/* Turns R into items ordered by time (events before tasks at the same
 * millisecond), up to BOUND inclusive when LIMITED; *N receives the count.
 * The caller frees the array and clears the items. */
static oh_feed_item_t *merge(const oh_feed_t *f, const rows_t *r, bool limited, int64_t bound,
                             size_t *n, size_t *used_ev, size_t *used_tk)
{
	oh_feed_item_t *v = calloc(r->n_ev + r->n_tk + 1, sizeof *v);
	if (!v)
		abort();
	size_t i = 0, j = 0, k = 0;
	for (;;) {
		bool ev_ok = i < r->n_ev && (!limited || r->ev[i].occurred <= bound);
		bool tk_ok = j < r->n_tk && (!limited || r->tk[j].last_updated <= bound);
		if (!ev_ok && !tk_ok)
			break;
		if (ev_ok && (!tk_ok || r->ev[i].occurred <= r->tk[j].last_updated))
			event_item(&r->ev[i++], &v[k++]);
		else
			task_item(f, &r->tk[j++], &v[k++]);
	}
	*n = k;
	*used_ev = i;
	*used_tk = j;
	return v;
}

/* When a table had more rows than one read takes, the other table's rows
 * past its last one wait for the next read, so nothing is passed over. */
static int64_t page_bound(const rows_t *r)
{
	int64_t bound = INT64_MAX;
	if (r->ev_full && r->ev[r->n_ev - 1].occurred < bound)
		bound = r->ev[r->n_ev - 1].occurred;
	if (r->tk_full && r->tk[r->n_tk - 1].last_updated < bound)
		bound = r->tk[r->n_tk - 1].last_updated;
	return bound;
}

typedef struct {
	int64_t from; /* read changes at or after this time */
	bool prime;   /* first read: FROM is set from the database clock */
	int64_t late; /* how far before "now" the prime looks */
	int64_t t0;   /* out (prime): the database's time at the read */
	rows_t *rows; /* out */
} poll_ctx_t;

static db_status_t poll_txn(db_conn_t *c, void *vctx)
{
	poll_ctx_t *x = vctx;
	rows_clear(x->rows); /* the runner may retry */
	if (x->prime) {
		db_status_t s = db_now_ms(c, &x->t0);
		if (s != DB_OK)
			return s;
		x->from = x->t0 - x->late;
	}
	return read_rows(c, x->from, "", x->from, "", READ_MAX_ROWS, x->rows);
}

/* One read of the database, with F's lock released (f->polling set by the
 * caller); then, locked again, what is new goes into the ring. */
static void poll_once(oh_feed_t *f, bool prime, bool late)
{
	rows_t rows = {0};
	poll_ctx_t x = {.prime = prime, .late = f->o.late_ms, .rows = &rows};
	pthread_mutex_lock(&f->mu);
	x.from = late ? f->hw_time - f->o.late_ms : f->hw_time;
	pthread_mutex_unlock(&f->mu);

	db_status_t s = db_txn(f->o.pool, DB_TXN_READ, poll_txn, &x);
	size_t n = 0, ue, ut;
	oh_feed_item_t *items = NULL;
	if (s == DB_OK)
		items =
		    merge(f, &rows, rows.ev_full || rows.tk_full, page_bound(&rows), &n, &ue, &ut);
	rows_clear(&rows);

	pthread_mutex_lock(&f->mu);
	f->reads++;
	if (s != DB_OK) {
		int64_t now = oh_mono_ms();
		if (now - f->last_warn >= WARN_EVERY_MS) {
			f->last_warn = now;
			oh_log(OH_LOG_WARN, "event stream: cannot read the changes", "db=%s",
			       db_status_name(s));
		}
		return; /* still locked: the caller unlocks */
	}
	if (prime) {
		f->hw_time = x.t0;
		f->warm = true;
	}
	for (size_t i = 0; i < n; i++) {
		oh_feed_item_t *it = &items[i];
		if (json_object_get(f->seen, it->key)) {
			oh_feed_item_clear(it);
			continue;
		}
		oh_json_set_new(f->seen, it->key, json_integer(it->time));
		if (it->time > f->hw_time)
			f->hw_time = it->time;
		if (prime && it->time < x.t0) { /* before anyone listened */
			oh_feed_item_clear(it);
			continue;
		}
		oh_feed_item_t *slot = &f->ring[f->head % f->o.ring];
		oh_feed_item_clear(slot);
		*slot = *it;
		f->head++;
		if (f->count < f->o.ring)
			f->count++;
		f->delivered++;
	}
	free(items);
	/* What no read can return again need not be remembered. */
	int64_t keep = f->hw_time - f->o.late_ms - 1000;
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(f->seen, tmp, k, v)
	{
		if (json_integer_value(v) < keep)
			json_object_del(f->seen, k);
	}
}

oh_feed_status_t oh_feed_next(oh_feed_t *f, oh_feed_sub_t *sub, oh_feed_item_t *out, size_t max,
                              size_t *n, int64_t wait_ms)
{
	*n = 0;
	int64_t deadline = oh_mono_ms() + wait_ms;
	int64_t late_every = f->o.late_ms > f->o.poll_ms ? f->o.late_ms / 5 : f->o.poll_ms;
	if (late_every < f->o.poll_ms)
		late_every = f->o.poll_ms;
	pthread_mutex_lock(&f->mu);
	for (;;) {
		if (f->closed) {
			pthread_mutex_unlock(&f->mu);
			return OH_FEED_CLOSED;
		}
		uint64_t oldest = f->head - f->count;
		if (sub->next < oldest) {
			sub->next = f->head;
			pthread_mutex_unlock(&f->mu);
			return OH_FEED_BEHIND;
		}
		if (sub->next < f->head) {
			while (*n < max && sub->next < f->head) {
				const oh_feed_item_t *it = &f->ring[sub->next % f->o.ring];
				out[*n] = *it;
				out[*n].key = xstrdup(it->key);
				out[*n].data = xstrdup(it->data);
				(*n)++;
				sub->next++;
			}
			pthread_mutex_unlock(&f->mu);
			return OH_FEED_ITEMS;
		}
		int64_t now = oh_mono_ms();
		if (!f->polling && now >= f->next_poll_at) {
			bool prime = !f->warm;
			bool late = !prime && now >= f->next_late_at;
			f->polling = true;
			pthread_mutex_unlock(&f->mu);
			poll_once(f, prime, late); /* returns locked */
			f->polling = false;
			now = oh_mono_ms();
			f->next_poll_at = now + f->o.poll_ms;
			if (late || prime)
				f->next_late_at = now + late_every;
			pthread_cond_broadcast(&f->cv);
			continue;
		}
		if (now >= deadline) {
			pthread_mutex_unlock(&f->mu);
			return OH_FEED_ITEMS;
		}
		int64_t until = deadline;
		if (!f->polling && f->next_poll_at < until)
			until = f->next_poll_at;
		struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
	}
}

/* ---- reading straight from the database (a stream resuming) ----------- */

typedef struct {
	int64_t ev_time, tk_time;
	char ev_id[64], tk_id[64];
	rows_t *rows;
} since_ctx_t;

static db_status_t since_txn(db_conn_t *c, void *vctx)
{
	since_ctx_t *x = vctx;
	rows_clear(x->rows);
	return read_rows(c, x->ev_time, x->ev_id, x->tk_time, x->tk_id, PAGE, x->rows);
}

db_status_t oh_feed_since(oh_feed_t *f, int64_t since_ms, size_t max,
                          bool (*fn)(void *ctx, oh_feed_item_t *it), void *ctx, bool *more)
{
	since_ctx_t x = {.ev_time = since_ms, .tk_time = since_ms};
	size_t sent = 0;
	*more = false;
	for (;;) {
		rows_t rows = {0};
		x.rows = &rows;
		db_status_t s = db_txn(f->o.pool, DB_TXN_READ, since_txn, &x);
		if (s != DB_OK) {
			rows_clear(&rows);
			return s;
		}
		if (rows.n_ev == 0 && rows.n_tk == 0) {
			rows_clear(&rows);
			return DB_OK;
		}
		/* A full page may continue with rows older than the other table's
		 * last: hand out only up to the earlier of the full pages' ends. */
		bool limited = rows.ev_full || rows.tk_full;
		size_t n, ue, ut;
		oh_feed_item_t *items = merge(f, &rows, limited, page_bound(&rows), &n, &ue, &ut);
		if (ue > 0) {
			x.ev_time = rows.ev[ue - 1].occurred;
			snprintf(x.ev_id, sizeof x.ev_id, "%s", rows.ev[ue - 1].id);
		}
		if (ut > 0) {
			x.tk_time = rows.tk[ut - 1].last_updated;
			snprintf(x.tk_id, sizeof x.tk_id, "%s", rows.tk[ut - 1].id);
		}
		bool go = true;
		size_t i = 0;
		for (; i < n && go; i++) {
			if (sent == max) {
				*more = true;
				go = false;
				break;
			}
			sent++;
			go = fn(ctx, &items[i]); /* takes the item */
		}
		for (; i < n; i++)
			oh_feed_item_clear(&items[i]);
		free(items);
		rows_clear(&rows);
		if (!go || !limited)
			return DB_OK;
	}
}
