/* The cluster's change feed, as this node's event streams see it: audit
 * events and task state changes made by any node, read from the shared
 * database and handed to every stream on this node from one ring.
 *
 * Nothing is pushed between nodes: the database is the bus.  While at least
 * one stream is open, one of the streams' own threads reads what changed
 * (Events by Occurred, ServerTasks by LastUpdatedTime, both indexed) every
 * poll period; no thread runs while nobody listens.  A row's time is taken
 * before its transaction commits, so a row can become visible after rows
 * with later times: every read starts a little before the newest position
 * seen and every late_ms the read goes back late_ms, and a set of what was
 * already handed out keeps each change to one delivery.
 *
 * A task appears as a snapshot of its row: two changes between two reads
 * show as the later one. */
#ifndef OH_FEED_H
#define OH_FEED_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "tasks.h"

typedef enum { OH_FEED_EVENT = 0, OH_FEED_TASK } oh_feed_kind_t;

/* The Category of a task change, as stream filters name it. */
#define OH_FEED_TASK_CATEGORY "TaskStateChanged"

/* One change.  Strings are owned by the item (oh_feed_item_clear). */
typedef struct {
	oh_feed_kind_t kind;
	int64_t time;       /* Occurred or LastUpdatedTime: database clock, epoch ms */
	char category[51];  /* the event's Category, or OH_FEED_TASK_CATEGORY */
	char resource[201]; /* the event's ResourceId, or the task's Id */
	char *key;  /* unique per change: "E<event id>" or "T<id>@<time>/<state>/<progress>" */
	char *data; /* the resource as JSON text */
} oh_feed_item_t;

void oh_feed_item_clear(oh_feed_item_t *it);

typedef struct {
	db_pool_t *pool; /* borrowed */
	int64_t poll_ms; /* how often the database is read while streams are open */
	int64_t late_ms; /* how late a commit may become visible and still be delivered */
	size_t ring;     /* changes kept for streams that are behind (at least 16) */
	/* Renders a task as its JSON resource; returns malloc'd text.  The feed
	 * lives in lib/, the task's HTTP shape in api/. */
	char *(*render_task)(const oh_task_t *t);
} oh_feed_opts_t;

typedef struct oh_feed oh_feed_t;

/* Creates an idle feed.  Returns NULL on OOM. */
oh_feed_t *oh_feed_new(const oh_feed_opts_t *opts);

/* Frees the feed; no stream may use it any more. */
void oh_feed_free(oh_feed_t *f);

/* Wakes every waiting stream and makes oh_feed_next answer
 * OH_FEED_CLOSED from now on (the node is stopping). */
void oh_feed_close(oh_feed_t *f);

/* A stream's place in the ring. */
typedef struct {
	uint64_t next; /* the ring position it reads next */
} oh_feed_sub_t;

/* Registers a stream: it receives what is read from now on.  Returns
 * false when the feed is closed. */
bool oh_feed_subscribe(oh_feed_t *f, oh_feed_sub_t *sub);
void oh_feed_unsubscribe(oh_feed_t *f, oh_feed_sub_t *sub);

typedef enum {
	OH_FEED_ITEMS = 0, /* *N items were copied out (0 when the wait ended) */
	OH_FEED_BEHIND,    /* the ring moved past SUB: changes were lost; SUB now
	                      reads from the newest */
	OH_FEED_CLOSED,    /* the feed was closed */
} oh_feed_status_t;

/* Waits at most WAIT_MS for changes after SUB and copies up to MAX of
 * them into OUT (the caller clears each).  While waiting, this thread
 * reads the database when a read is due and no other thread is reading. */
oh_feed_status_t oh_feed_next(oh_feed_t *f, oh_feed_sub_t *sub, oh_feed_item_t *out, size_t max,
                              size_t *n, int64_t wait_ms);

/* Reads, straight from the database, the changes at or after SINCE_MS
 * (epoch ms), oldest first, calling FN for each (FN takes the item and
 * returns false to stop).  At most MAX items; *MORE says whether more
 * remained.  Returns DB_OK or the failure. */
db_status_t oh_feed_since(oh_feed_t *f, int64_t since_ms, size_t max,
                          bool (*fn)(void *ctx, oh_feed_item_t *it), void *ctx, bool *more);

/* Counters, for tests and metrics. */
typedef struct {
	uint64_t reads;     /* database reads done */
	uint64_t delivered; /* changes put in the ring */
	unsigned streams;   /* subscribers now */
} oh_feed_stats_t;
void oh_feed_stats(oh_feed_t *f, oh_feed_stats_t *out);

#endif
