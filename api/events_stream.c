/* GET /api/events/stream: audit events and task state changes of the whole
 * cluster as Server-Sent Events.
 *
 * Each message is `id: <time>` (the change's database time in epoch ms),
 * `event: audit` (data: the Event resource) or `event: task` (data: the
 * Task resource, Category TaskStateChanged), and its data on one line.  A
 * client that reconnects with Last-Event-ID gets every change from shortly
 * before that time (changes can commit out of time order), so a change
 * sent just before the break may come again: Id (and a task's State and
 * LastUpdatedTime) tell repeats apart.  An idle stream gets a comment every
 * stream-heartbeat-ms.  `event: reset` says changes were skipped (a client
 * too far behind): reload what is shown.
 *
 * A stream holds a civetweb worker thread for its whole life, so a node
 * serves at most stream-max of them (configuration keeps that well below
 * http-threads) and answers 503 TooManyStreams with Retry-After beyond.
 * At shutdown every stream ends at once. */
#include <civetweb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/feed.h"
#include "../lib/node_state.h"
#include "../lib/oh_json.h"
#include "../lib/oh_log.h"
#include "api_handlers_gen.h"
#include "portal.h"

#define FEED_LATE_MS 5000  /* a commit this late is still delivered */
#define FEED_RING    4096  /* changes kept for streams that fall behind */
#define CATCHUP_MAX  10000 /* changes a resuming stream gets from the database */
#define BATCH        64
#define RETRY_MS     "3000"
#define FLUSH_AT     16384
#define RETRY_AFTER  "5"

struct api_streams {
	oh_feed_t *feed;
	atomic_int active;
	int max;
	int64_t heartbeat_ms;
};

typedef struct {
	api_streams_t *s;
	char category[51]; /* "" = every category */
	char regarding[201];
	bool has_since;
	int64_t since; /* Last-Event-ID */
} stream_t;

static char *render_task(const oh_task_t *t)
{
	json_t *j = api_task_json(t);
	char *s = oh_json_dump(j);
	json_decref(j);
	return s;
}

api_streams_t *api_streams_new(const api_config_t *cfg)
{
	api_streams_t *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	oh_feed_opts_t o = {.pool = cfg->pool,
	                    .poll_ms = cfg->stream_poll_ms > 0 ? cfg->stream_poll_ms : 200,
	                    .late_ms = FEED_LATE_MS,
	                    .ring = FEED_RING,
	                    .render_task = render_task};
	s->feed = oh_feed_new(&o);
	if (!s->feed) {
		free(s);
		return NULL;
	}
	s->max = cfg->stream_max;
	s->heartbeat_ms = cfg->stream_heartbeat_ms > 0 ? cfg->stream_heartbeat_ms : 15000;
	return s;
}

void api_streams_close(api_streams_t *s)
{
	if (s)
		oh_feed_close(s->feed);
}

void api_streams_free(api_streams_t *s)
{
	if (!s)
		return;
	oh_feed_free(s->feed);
	free(s);
}

void api_op_streamEvents(const api_req_t *req, api_resp_t *resp)
{
	api_streams_t *s = req->cfg->streams;
	if (atomic_fetch_add(&s->active, 1) >= s->max) {
		atomic_fetch_sub(&s->active, 1);
		char msg[200];
		snprintf(
		    msg, sizeof msg,
		    "This node serves %d event streams at most and all are in use; retry later "
		    "or through another node.",
		    s->max);
		api_header(resp, "Retry-After", RETRY_AFTER);
		api_error(resp, OH_E_TOO_MANY_STREAMS, msg, NULL);
		return;
	}
	stream_t *st = calloc(1, sizeof *st);
	if (!st) {
		atomic_fetch_sub(&s->active, 1);
		api_error(resp, OH_E_INTERNAL, NULL, NULL);
		return;
	}
	st->s = s;
	const char *cat = json_string_value(json_object_get(req->query, "category"));
	const char *reg = json_string_value(json_object_get(req->query, "regarding"));
	snprintf(st->category, sizeof st->category, "%s", cat ? cat : "");
	snprintf(st->regarding, sizeof st->regarding, "%s", reg ? reg : "");
	/* The spec's pattern let only digits through. */
	const char *last = api_header_in(req, "Last-Event-ID");
	if (last && *last) {
		st->has_since = true;
		st->since = strtoll(last, NULL, 10);
	}
	resp->status = 200;
	resp->stream = st;
}

/* ---- writing -------------------------------------------------------------- */

typedef struct {
	struct mg_connection *conn;
	bool chunked;
	bool failed;
	char *buf;
	size_t len, cap;
} sink_t;

static void put(sink_t *k, const char *s, size_t n)
{
	if (k->len + n + 1 > k->cap) {
		size_t ncap = k->cap ? k->cap : 4096;
		while (ncap < k->len + n + 1)
			ncap *= 2;
		char *nb = realloc(k->buf, ncap);
		if (!nb)
			abort();
		k->buf = nb;
		k->cap = ncap;
	}
	memcpy(k->buf + k->len, s, n);
	k->len += n;
}

static void puts_(sink_t *k, const char *s)
{
	put(k, s, strlen(s));
}

/* Sends what is buffered (as one chunk).  Returns false once a write has
 * failed: the client is gone or the server is stopping. */
static bool flush(sink_t *k)
{
	if (k->failed)
		return false;
	if (k->len == 0)
		return true;
	int ok;
	if (k->chunked) {
		char head[24];
		int hn = snprintf(head, sizeof head, "%zx\r\n", k->len);
		char *all = malloc((size_t)hn + k->len + 2);
		if (!all)
			abort();
		memcpy(all, head, (size_t)hn);
		memcpy(all + hn, k->buf, k->len);
		memcpy(all + hn + k->len, "\r\n", 2);
		size_t total = (size_t)hn + k->len + 2;
		ok = mg_write(k->conn, all, total) == (int)total;
		free(all);
	} else {
		ok = mg_write(k->conn, k->buf, k->len) == (int)k->len;
	}
	k->len = 0;
	if (!ok)
		k->failed = true;
	return ok;
}

static bool wanted(const stream_t *st, const oh_feed_item_t *it)
{
	if (st->category[0] && strcmp(st->category, it->category) != 0)
		return false;
	return !st->regarding[0] || strcmp(st->regarding, it->resource) == 0;
}

static void frame(sink_t *k, const oh_feed_item_t *it)
{
	char head[80];
	snprintf(head, sizeof head, "id: %lld\nevent: %s\ndata: ", (long long)it->time,
	         it->kind == OH_FEED_TASK ? "task" : "audit");
	puts_(k, head);
	puts_(k, it->data);
	puts_(k, "\n\n");
}

static void reset_frame(sink_t *k, const char *reason)
{
	puts_(k, "event: reset\ndata: {\"Reason\":\"");
	puts_(k, reason);
	puts_(k, "\"}\n\n");
}

typedef struct {
	const stream_t *st;
	sink_t *k;
	json_t *sent;      /* keys sent while catching up */
	int64_t last_time; /* the newest of them */
} catchup_t;

static bool catchup_item(void *ctx, oh_feed_item_t *it)
{
	catchup_t *c = ctx;
	oh_json_check_rc(json_object_set_new(c->sent, it->key, json_true()));
	if (it->time > c->last_time)
		c->last_time = it->time;
	if (wanted(c->st, it))
		frame(c->k, it);
	oh_feed_item_clear(it);
	return c->k->len < FLUSH_AT || flush(c->k);
}

void api_stream_serve(const api_req_t *req, const char *rid, api_resp_t *resp)
{
	stream_t *st = resp->stream;
	resp->stream = NULL;
	api_streams_t *s = st->s;
	struct mg_connection *conn = req->conn;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	bool chunked = ri->http_version && strcmp(ri->http_version, "1.0") != 0;
	sink_t k = {.conn = conn, .chunked = chunked};
	char head[2048];
	int hn = snprintf(head, sizeof head,
	                  "HTTP/1.1 200 OK\r\n"
	                  "Content-Type: text/event-stream; charset=utf-8\r\n"
	                  "Cache-Control: no-store\r\n"
	                  "X-Accel-Buffering: no\r\n"
	                  "X-Request-Id: %s\r\n"
	                  "%s"
	                  "%s\r\n",
	                  rid, chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n",
	                  resp->headers);
	bool ok = hn > 0 && (size_t)hn < sizeof head && mg_write(conn, head, (size_t)hn) == hn;
	oh_feed_sub_t sub;
	bool subscribed = false;
	json_t *sent = NULL;
	int64_t sent_until = 0;
	if (!ok || strcmp(ri->request_method, "HEAD") == 0)
		goto done;
	subscribed = oh_feed_subscribe(s->feed, &sub);
	if (!subscribed)
		goto done; /* the node is stopping */
	puts_(&k, "retry: " RETRY_MS "\n: octoha event stream\n\n");
	if (!flush(&k))
		goto done;

	if (st->has_since) {
		/* Subscribed first, then read: whatever commits meanwhile is in
		 * the ring, and what both give is sent once. */
		sent = oh_json_check(json_object());
		catchup_t c = {.st = st, .k = &k, .sent = sent};
		bool more = false;
		db_status_t ds = oh_feed_since(s->feed, st->since - FEED_LATE_MS, CATCHUP_MAX,
		                               catchup_item, &c, &more);
		if (ds != DB_OK) {
			oh_log(OH_LOG_WARN, "event stream: cannot resume", "rid=%s db=%s", rid,
			       db_status_name(ds));
			flush(&k);
			goto done; /* the client retries with the same Last-Event-ID */
		}
		if (more)
			reset_frame(&k, "TooFarBehind");
		if (!flush(&k))
			goto done;
		sent_until = c.last_time + FEED_LATE_MS;
	}

	int64_t next_beat = oh_mono_ms() + s->heartbeat_ms;
	oh_feed_item_t items[BATCH];
	for (;;) {
		int64_t wait = next_beat - oh_mono_ms();
		size_t n = 0;
		oh_feed_status_t fs =
		    oh_feed_next(s->feed, &sub, items, BATCH, &n, wait > 0 ? wait : 0);
		if (fs == OH_FEED_CLOSED)
			break;
		if (fs == OH_FEED_BEHIND)
			reset_frame(&k, "Behind");
		for (size_t i = 0; i < n; i++) {
			bool repeat = sent && json_object_get(sent, items[i].key);
			if (sent && items[i].time > sent_until) {
				json_decref(sent); /* the catch-up is behind us */
				sent = NULL;
			}
			if (!repeat && wanted(st, &items[i]))
				frame(&k, &items[i]);
			oh_feed_item_clear(&items[i]);
		}
		if (oh_mono_ms() >= next_beat) {
			if (k.len == 0)
				puts_(&k, ": heartbeat\n\n");
			next_beat = oh_mono_ms() + s->heartbeat_ms;
		}
		if (k.len > 0) {
			if (!flush(&k))
				break;
			next_beat = oh_mono_ms() + s->heartbeat_ms;
		}
	}
	if (!k.failed && chunked)
		mg_write(conn, "0\r\n\r\n", 5);
done:
	if (subscribed)
		oh_feed_unsubscribe(s->feed, &sub);
	json_decref(sent);
	free(k.buf);
	free(st);
	atomic_fetch_sub(&s->active, 1);
}
