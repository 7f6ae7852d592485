#include "node_state.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct oh_node_state {
	pthread_mutex_t mu;
	oh_node_snapshot_t snap;
	uint64_t local_changes; /* set_maintenance calls so far */
};

oh_node_state_t *oh_node_state_new(void)
{
	oh_node_state_t *st = calloc(1, sizeof *st);
	if (st)
		pthread_mutex_init(&st->mu, NULL);
	return st;
}

void oh_node_state_free(oh_node_state_t *st)
{
	if (!st)
		return;
	pthread_mutex_destroy(&st->mu);
	free(st);
}

void oh_node_state_read(oh_node_state_t *st, oh_node_snapshot_t *out)
{
	pthread_mutex_lock(&st->mu);
	*out = st->snap;
	pthread_mutex_unlock(&st->mu);
}

void oh_node_state_publish(oh_node_state_t *st, const oh_node_snapshot_t *in)
{
	pthread_mutex_lock(&st->mu);
	bool down = st->snap.shutting_down;
	st->snap = *in;
	st->snap.shutting_down = down || in->shutting_down;
	pthread_mutex_unlock(&st->mu);
}

uint64_t oh_node_state_changes(oh_node_state_t *st)
{
	pthread_mutex_lock(&st->mu);
	uint64_t n = st->local_changes;
	pthread_mutex_unlock(&st->mu);
	return n;
}

void oh_node_state_publish_read(oh_node_state_t *st, const oh_node_snapshot_t *in,
                                uint64_t changes_before)
{
	pthread_mutex_lock(&st->mu);
	bool down = st->snap.shutting_down, maintenance = st->snap.maintenance;
	st->snap = *in;
	st->snap.shutting_down = down || in->shutting_down;
	if (st->local_changes != changes_before)
		st->snap.maintenance = maintenance; /* newer than that read */
	pthread_mutex_unlock(&st->mu);
}

void oh_node_state_set_shutting_down(oh_node_state_t *st)
{
	pthread_mutex_lock(&st->mu);
	st->snap.shutting_down = true;
	pthread_mutex_unlock(&st->mu);
}

void oh_node_state_set_maintenance(oh_node_state_t *st, bool on)
{
	pthread_mutex_lock(&st->mu);
	st->snap.maintenance = on;
	st->local_changes++;
	pthread_mutex_unlock(&st->mu);
}

int64_t oh_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
