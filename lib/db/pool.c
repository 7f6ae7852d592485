/* A small, fixed-size connection pool and the one transaction runner.
 *
 * Connections open lazily and are dropped when a diagnostic says the link is
 * gone; the next transaction reconnects.  While the database is unreachable,
 * connect attempts are spaced (a failed connect makes the following callers
 * fail fast for a short while) so that requests answer 503 promptly instead
 * of each waiting out a login timeout. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../oh_log.h"
#include "db_internal.h"
#include "dialect.h"

#define DB_FAIL_FAST_MS 500

struct db_pool {
	db_pool_opts_t o;
	char *connstr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	db_conn_t **conns;
	bool *busy;
	int64_t last_connect_fail_ms; /* monotonic; guarded by mu */
	char last_connect_error[512];
	_Atomic uint64_t txns, retries, reconnects, failures, n_busy, n_unknown;
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

db_pool_t *db_pool_new(const db_pool_opts_t *opts)
{
	db_pool_t *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->o = *opts;
	if (p->o.size == 0)
		p->o.size = 1;
	p->connstr = strdup(opts->connstr);
	p->conns = calloc(p->o.size, sizeof *p->conns);
	p->busy = calloc(p->o.size, sizeof *p->busy);
	if (!p->connstr || !p->conns || !p->busy) {
		db_pool_free(p);
		return NULL;
	}
	p->o.connstr = p->connstr;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

void db_pool_free(db_pool_t *p)
{
	if (!p)
		return;
	if (p->conns) {
		for (unsigned i = 0; i < p->o.size; i++)
			db_disconnect(p->conns[i]);
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
	}
	free(p->conns);
	free(p->busy);
	free(p->connstr);
	free(p);
}

/* Takes a free slot and makes sure it holds an open connection; with
 * FRESH, a new one (the caller just met a dead connection: when the server
 * ends every session, as a restart or failover does, the other idle ones
 * are dead too, and a retry on them would only fail again). */
static db_status_t acquire(db_pool_t *p, db_conn_t **out, bool fresh)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += p->o.acquire_timeout_ms / 1000;
	deadline.tv_nsec += (long)(p->o.acquire_timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	int slot = -1;
	for (;;) {
		/* Prefer a slot with an open connection. */
		for (unsigned i = 0; i < p->o.size; i++)
			if (!p->busy[i] && p->conns[i]) {
				slot = (int)i;
				break;
			}
		if (slot < 0)
			for (unsigned i = 0; i < p->o.size; i++)
				if (!p->busy[i]) {
					slot = (int)i;
					break;
				}
		if (slot >= 0)
			break;
		if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&p->mu);
			atomic_fetch_add(&p->n_busy, 1);
			oh_log(OH_LOG_WARN, "database pool exhausted", "size=%u waited_ms=%d",
			       p->o.size, p->o.acquire_timeout_ms);
			return DB_BUSY;
		}
	}
	p->busy[slot] = true;
	db_conn_t *c = p->conns[slot];
	if (c && fresh) {
		p->conns[slot] = NULL;
		pthread_mutex_unlock(&p->mu);
		db_disconnect(c);
		c = NULL;
		pthread_mutex_lock(&p->mu);
	}
	bool fail_fast =
	    !c && p->last_connect_fail_ms && mono_ms() - p->last_connect_fail_ms < DB_FAIL_FAST_MS;
	pthread_mutex_unlock(&p->mu);

	if (!c) {
		if (fail_fast) {
			pthread_mutex_lock(&p->mu);
			p->busy[slot] = false;
			pthread_cond_signal(&p->cv);
			pthread_mutex_unlock(&p->mu);
			return DB_CONN_LOST;
		}
		char err[512];
		db_status_t s = db_connect(p->connstr, p->o.login_timeout_s, &c, err, sizeof err);
		if (s == DB_OK && p->o.idle_txn_limit_ms > 0) {
			s = db_limit_idle_txn(c, p->o.idle_txn_limit_ms);
			if (s != DB_OK) {
				snprintf(err, sizeof err,
				         "cannot set the idle transaction limit: %s",
				         db_conn_last_error(c));
				db_disconnect(c);
				c = NULL;
			}
		}
		pthread_mutex_lock(&p->mu);
		if (s != DB_OK) {
			bool first =
			    p->last_connect_fail_ms == 0 || strcmp(err, p->last_connect_error) != 0;
			p->last_connect_fail_ms = mono_ms();
			snprintf(p->last_connect_error, sizeof p->last_connect_error, "%s", err);
			p->busy[slot] = false;
			pthread_cond_signal(&p->cv);
			pthread_mutex_unlock(&p->mu);
			if (first)
				oh_log(OH_LOG_ERROR, "cannot connect to the database", "error=%s",
				       oh_q(err));
			return s;
		}
		if (p->last_connect_fail_ms) {
			oh_log(OH_LOG_INFO, "database connection re-established", NULL);
			atomic_fetch_add(&p->reconnects, 1);
		}
		p->last_connect_fail_ms = 0;
		p->last_connect_error[0] = '\0';
		p->conns[slot] = c;
		pthread_mutex_unlock(&p->mu);
	}
	c->slot = slot;
	c->query_timeout_s = 15;
	*out = c;
	return DB_OK;
}

static void release(db_pool_t *p, db_conn_t *c)
{
	int slot = c->slot;
	pthread_mutex_lock(&p->mu);
	if (c->broken) {
		p->conns[slot] = NULL;
		pthread_mutex_unlock(&p->mu);
		db_disconnect(c);
		pthread_mutex_lock(&p->mu);
	}
	p->busy[slot] = false;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

db_status_t db_pool_probe(db_pool_t *p, db_dialect_id_t *dialect, char *errbuf, size_t errlen)
{
	db_conn_t *c;
	db_status_t s = acquire(p, &c, false);
	if (s != DB_OK) {
		pthread_mutex_lock(&p->mu);
		snprintf(errbuf, errlen, "%s",
		         p->last_connect_error[0] ? p->last_connect_error : db_status_name(s));
		pthread_mutex_unlock(&p->mu);
		return s;
	}
	*dialect = c->dialect;
	release(p, c);
	return DB_OK;
}

/* Runs one attempt of FN: begin, body, commit (or rollback).  Returns the
 * body's failure, or the commit's outcome with *AT_COMMIT set when it was
 * the commit that failed. */
static db_status_t attempt_txn(db_pool_t *p, db_txn_mode_t mode, db_txn_fn fn, void *ctx,
                               bool fresh, bool *at_commit)
{
	*at_commit = false;
	db_conn_t *c = NULL;
	db_status_t s = acquire(p, &c, fresh);
	if (s != DB_OK)
		return s;
	s = db_begin_txn(c, mode != DB_TXN_READ);
	if (s == DB_OK)
		s = fn(c, ctx);
	if (s == DB_OK) {
		s = db_end_txn(c, true);
		if (s != DB_OK) {
			*at_commit = true;
			if (!c->broken && db_end_txn(c, false) != DB_OK)
				c->broken = true;
		}
	} else if (!c->broken) {
		if (db_end_txn(c, false) != DB_OK)
			c->broken = true; /* unknown state: start afresh */
	}
	if (s == DB_ERROR)
		oh_log(OH_LOG_ERROR, "database error", "error=%s", oh_q(c->last_error));
	release(p, c);
	return s;
}

/* Sleeps before retry ATTEMPT: 5, 10, 20 … ms with jitter, which lets a
 * deadlock's winner finish. */
static void backoff(int attempt)
{
	long ms = (5L << (attempt < 6 ? attempt : 6)) + (rand() % 5);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool retryable(db_status_t s)
{
	return s == DB_TRANSIENT || s == DB_CONN_LOST;
}

/* Asks VERIFY, in transactions of its own retried like any read, whether
 * the change was committed. */
static db_status_t verify_commit(db_pool_t *p, db_verify_fn verify, void *ctx)
{
	db_status_t s = DB_ERROR;
	for (int attempt = 0; attempt <= p->o.max_retries + 2; attempt++) {
		bool at_commit;
		s = attempt_txn(p, DB_TXN_READ, verify, ctx, true, &at_commit);
		if (!retryable(s))
			return s;
		backoff(attempt + 2);
	}
	return s;
}

static db_status_t run_txn(db_pool_t *p, db_txn_mode_t mode, db_txn_fn fn, db_verify_fn verify,
                           void *ctx)
{
	atomic_fetch_add(&p->txns, 1);
	bool fresh = false;
	for (int attempt = 0;; attempt++) {
		bool at_commit = false;
		db_status_t s = attempt_txn(p, mode, fn, ctx, fresh, &at_commit);
		fresh = s == DB_CONN_LOST;
		/* A COMMIT that failed for anything but a refusal that rolled it
		 * back (deadlock, serialization) may have been applied: the server
		 * can commit and then lose the link before it answers. */
		if (at_commit && s != DB_TRANSIENT && mode == DB_TXN_WRITE) {
			if (!verify) {
				atomic_fetch_add(&p->n_unknown, 1);
				oh_log(OH_LOG_WARN, "a commit's outcome is unknown: not replayed",
				       "status=%s", db_status_name(s));
				return DB_UNKNOWN;
			}
			db_status_t v = verify_commit(p, verify, ctx);
			if (v == DB_OK)
				return DB_OK; /* it was committed: do not do it twice */
			if (v != DB_NO_ROWS) {
				atomic_fetch_add(&p->n_unknown, 1);
				atomic_fetch_add(&p->failures, 1);
				return DB_UNKNOWN;
			}
			s = DB_CONN_LOST; /* not committed: run the body again */
		}
		if (retryable(s) && attempt < p->o.max_retries) {
			atomic_fetch_add(&p->retries, 1);
			backoff(attempt);
			continue;
		}
		if (s == DB_BUSY)
			return s; /* counted by acquire */
		if (s != DB_OK && s != DB_ABORT && s != DB_NO_ROWS && s != DB_DUPLICATE)
			atomic_fetch_add(&p->failures, 1);
		return s;
	}
}

db_status_t db_txn(db_pool_t *p, db_txn_mode_t mode, db_txn_fn fn, void *ctx)
{
	return run_txn(p, mode, fn, NULL, ctx);
}

db_status_t db_txn_verified(db_pool_t *p, db_txn_fn fn, db_verify_fn verify, void *ctx)
{
	return run_txn(p, DB_TXN_WRITE, fn, verify, ctx);
}

void db_pool_stats(db_pool_t *p, db_pool_stats_t *out)
{
	out->txns = atomic_load(&p->txns);
	out->retries = atomic_load(&p->retries);
	out->reconnects = atomic_load(&p->reconnects);
	out->failures = atomic_load(&p->failures);
	out->busy = atomic_load(&p->n_busy);
	out->unknown = atomic_load(&p->n_unknown);
}
