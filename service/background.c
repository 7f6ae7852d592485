#include "background.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/oh_log.h"
#include "../lib/task_counts.h"
#include "../lib/tentacles.h"

/* The task counts advance at most this often (one node per period). */
#define COUNTS_PERIOD_MS 10000
/* How often the heap's free pages go back to the system.  A burst of
 * large responses leaves free memory inside every arena that the top-of-
 * heap trim after each free never reaches; malloc_trim returns those
 * pages too, so RSS follows what is in use rather than the peak. */
#define TRIM_PERIOD_MS 30000

struct svc_background {
	svc_background_cfg_t cfg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	volatile bool stop;      /* read by the coverage recompute between batches */
	struct timespec trimmed; /* the last malloc_trim */
};

static void trim_heap(svc_background_t *b)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(now.tv_sec - b->trimmed.tv_sec) * 1000 +
	             (now.tv_nsec - b->trimmed.tv_nsec) / 1000000;
	if (ms < TRIM_PERIOD_MS)
		return;
	b->trimmed = now;
	malloc_trim(0);
}

static void pass(svc_background_t *b)
{
	oh_node_snapshot_t snap;
	oh_node_state_read(b->cfg.state, &snap);
	if (!snap.registered || !snap.db_ok || snap.shutting_down)
		return;
	bool queued = false;
	db_status_t s = oh_tentacles_housekeeping(b->cfg.pool, b->cfg.offline_timeout_ms, &queued);
	if (s == DB_OK && queued && b->cfg.wake)
		b->cfg.wake(b->cfg.wake_ctx);
	s = oh_tentacles_coverage_pass(b->cfg.pool, b->cfg.offline_timeout_ms, &b->stop);
	if (s != DB_OK)
		oh_log(OH_LOG_WARN, "the Tentacle coverage pass failed; it runs again shortly",
		       "status=%s", db_status_name(s));
	s = oh_task_counts_pass(b->cfg.pool, COUNTS_PERIOD_MS, NULL);
	if (s != DB_OK)
		oh_log(OH_LOG_WARN, "the task counts pass failed; it runs again shortly",
		       "status=%s", db_status_name(s));
}

static void *background_main(void *arg)
{
	svc_background_t *b = arg;
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		pthread_mutex_unlock(&b->mu);
		pass(b);
		trim_heap(b);
		pthread_mutex_lock(&b->mu);
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += b->cfg.period_ms / 1000;
		until.tv_nsec += (b->cfg.period_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!b->stop && pthread_cond_timedwait(&b->cv, &b->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

svc_background_t *svc_background_start(const svc_background_cfg_t *cfg)
{
	svc_background_t *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->cfg = *cfg;
	if (b->cfg.period_ms <= 0)
		b->cfg.period_ms = 1000;
	pthread_mutex_init(&b->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&b->thread, NULL, background_main, b) != 0) {
		pthread_cond_destroy(&b->cv);
		pthread_mutex_destroy(&b->mu);
		free(b);
		return NULL;
	}
	return b;
}

void svc_background_stop(svc_background_t *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->thread, NULL);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}
