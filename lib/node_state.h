/* This node's live state as the load balancer sees it: published by the
 * heartbeat, read by the ping handler on every request without touching the
 * database.  Reads and writes are short critical sections over a small
 * struct, so the ping path never waits on I/O. */
#ifndef OH_NODE_STATE_H
#define OH_NODE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "nodes.h"

typedef struct {
	char id[sizeof(((oh_node_t *)0)->id)];
	char name[OH_NODE_NAME_MAX + 1];
	char version[64];
	int max_tasks;
	bool maintenance;
	bool registered; /* the node holds its row */
	bool db_ok;      /* the last heartbeat reached the database */
	bool shutting_down;
	int64_t last_seen;    /* database clock of the last good heartbeat */
	int64_t last_ok_mono; /* monotonic ms of the last good heartbeat */
} oh_node_snapshot_t;

typedef struct oh_node_state oh_node_state_t;

/* Returns a new state (all false / zero) or NULL on OOM. */
oh_node_state_t *oh_node_state_new(void);
void oh_node_state_free(oh_node_state_t *st);

/* Copies the current snapshot into *OUT. */
void oh_node_state_read(oh_node_state_t *st, oh_node_snapshot_t *out);

/* Replaces the snapshot with *IN. */
void oh_node_state_publish(oh_node_state_t *st, const oh_node_snapshot_t *in);

/* How many times set_maintenance has been called: taken before a database
 * read of the node's row, it tells whether the read may be older than a
 * drain this node applied meanwhile. */
uint64_t oh_node_state_changes(oh_node_state_t *st);

/* As publish, for IN read from the database after oh_node_state_changes
 * returned CHANGES_BEFORE: when the drain flag was set locally since, that
 * newer flag is kept (the read cannot turn a 418 back to 200 for a beat). */
void oh_node_state_publish_read(oh_node_state_t *st, const oh_node_snapshot_t *in,
                                uint64_t changes_before);

/* Updates one flag without a full publish. */
void oh_node_state_set_shutting_down(oh_node_state_t *st);

/* Sets the drain flag at once (a drain accepted by this very node). */
void oh_node_state_set_maintenance(oh_node_state_t *st, bool on);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t oh_mono_ms(void);

#endif
