#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/chat_replies.h"
#include "../lib/oh_json.h"
#include "../lib/oh_log.h"
#include "../lib/packages.h"
#include "../lib/task_run.h"
#include "../lib/tasks.h"
#include "background.h"

/* Retrying the record of an end: 100 ms, doubling, at most this far apart,
 * so an end is recorded well within a second of the database answering. */
#define END_RETRY_FIRST_MS 100
#define END_RETRY_MAX_MS   400

typedef struct slot {
	struct slot *next;
	oh_claimed_t task;
	atomic_bool cancel, lost, done;
	struct slot *next_queued; /* the work queue's link */
	svc_workers_t *w;
	uint64_t seq; /* order of claim: the renewer judges only slots it listed */
	/* The attempt's outcome, left by its thread for the dispatcher, which
	 * records the ends of many tasks in one transaction and keeps trying
	 * while the database cannot be reached. */
	oh_end_t end;
	char error[512];
	char *result;
	bool discard;       /* guarded by mu: lease lost or node stopping: record nothing */
	bool recording;     /* guarded by mu: the dispatcher is recording its end */
	int64_t retry_at;   /* guarded by mu: monotonic ms of the next try to record it */
	int64_t backoff_ms; /* guarded by mu */
} slot_t;

struct svc_workers {
	svc_workers_cfg_t cfg;
	db_pool_t *core; /* claims, ends, leases, housekeeping */
	pthread_t dispatcher, renewer;
	bool renewer_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* wakes the dispatcher */
	pthread_cond_t rcv; /* wakes the renewer */
	bool stop;          /* no more claims */
	bool renew_stop;
	bool woken;
	bool ends_failing;        /* guarded by mu: logged that ends cannot be recorded */
	atomic_bool shutdown;     /* running tasks must stop */
	uint64_t seq;             /* guarded by mu */
	pthread_attr_t task_attr; /* small stacks: glibc reuses them */
	/* Claimed tasks, running or with an end still to record. */
	slot_t *running; /* guarded by mu */
	/* A pool of task threads that grows to the most tasks run at once and
	 * stays: creating a thread per task cost more than a no-op task. */
	pthread_mutex_t qmu;
	pthread_cond_t qcv;
	slot_t *queue_head, *queue_tail; /* guarded by qmu */
	int idle;                        /* guarded by qmu: threads waiting */
	int queued;                      /* guarded by qmu: slots not yet taken */
	bool quit;                       /* guarded by qmu */
	pthread_t *threads;              /* guarded by qmu */
	int n_threads, cap_threads;      /* guarded by qmu */
	int n_running;                   /* guarded by mu: ordinary tasks */
	int n_system;                    /* guarded by mu: system tasks */
	/* Tentacle coverage and task counts: a thread of their own, so they
	 * never hold up claims and lease renewal. */
	svc_background_t *background;
};

static void timespec_after(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* The task's last log line: how this attempt ended, as the task decided.
 * Written here, on the task's thread, so no file I/O (an fdatasync on a
 * slow share) ever delays the dispatcher or the leases. */
static void log_end(const slot_t *s, bool discard, int fd)
{
	if (discard) {
		oh_task_log_fd(
		    fd, "WARN",
		    "The lease on this task was lost; this attempt's outcome is discarded");
		return;
	}
	const char *what = s->end == OH_END_SUCCESS    ? "Success"
	                   : s->end == OH_END_CANCELED ? "Canceled"
	                   : s->end == OH_END_FAILED   ? "Failed"
	                   : s->task.attempt < s->task.max_attempts
	                       ? "Retry (requeued with backoff)"
	                       : "Failed (no attempts left)";
	char line[700];
	snprintf(line, sizeof line, "Attempt %d ended: %s%s%s", s->task.attempt, what,
	         s->error[0] ? " - " : "", s->error);
	oh_task_log_fd(fd, s->end == OH_END_SUCCESS ? "INFO" : "WARN", line);
}

static void run_task(slot_t *s)
{
	svc_workers_t *w = s->w;
	json_error_t je;
	json_t *args = json_loads(s->task.arguments ? s->task.arguments : "{}", 0, &je);
	/* A quiet diagnostic task is a pure no-op: no log file at all. */
	bool quiet =
	    strcmp(s->task.name, "Diagnostic") == 0 && json_is_true(json_object_get(args, "Quiet"));
	char logs[OH_STORAGE_PATH_MAX + 1];
	oh_storage_path(w->cfg.storage, OH_FOLDER_TASKLOGS, logs, sizeof logs);
	int fd = quiet ? -1 : oh_task_log_open(logs, s->task.id);
	char line[200];
	snprintf(line, sizeof line, "Attempt %d of %d on node %s", s->task.attempt,
	         s->task.max_attempts, w->cfg.node_id);
	oh_task_log_fd(fd, "INFO", line);
	oh_task_outcome_t out = {.end = OH_END_FAILED};
	const oh_task_kind_t *kind = oh_task_kind_find(s->task.name);
	if (!kind) {
		snprintf(out.error, sizeof out.error, "Unknown task kind '%s'.", s->task.name);
	} else if (!json_is_object(args)) {
		snprintf(out.error, sizeof out.error,
		         "The task's arguments are not a JSON object.");
	} else {
		oh_task_run_t run = {.pool = w->cfg.pool,
		                     .env = &w->cfg.env,
		                     .node_id = w->cfg.node_id,
		                     .owner = w->cfg.owner,
		                     .task = &s->task,
		                     .args = args,
		                     .log_fd = fd,
		                     .cancel = &s->cancel,
		                     .lost = &s->lost,
		                     .shutdown = &w->shutdown,
		                     .offline_timeout_ms = w->cfg.offline_timeout_ms,
		                     .lease_ms = w->cfg.lease_ms};
		kind->run(&run, &out);
	}
	json_decref(args);
	if (atomic_load(&s->cancel) && out.end != OH_END_SUCCESS && out.end != OH_END_FAILED)
		out.end = OH_END_CANCELED;
	if (atomic_load(&w->shutdown) && !atomic_load(&s->cancel) && out.end != OH_END_SUCCESS &&
	    out.end != OH_END_FAILED) {
		/* Stopped by this node's shutdown: leave it to be requeued. */
		oh_task_log_fd(fd, "WARN",
		               "This node is stopping; the task goes back to the queue");
		atomic_store(&s->lost, true);
	}
	s->result = out.result ? oh_json_dump(out.result) : NULL;
	json_decref(out.result);
	s->end = out.end;
	snprintf(s->error, sizeof s->error, "%s", out.error);
	bool discard = atomic_load(&s->lost);
	if (discard) {
		pthread_mutex_lock(&w->mu);
		s->discard = true;
		pthread_mutex_unlock(&w->mu);
	}
	log_end(s, discard, fd);
	if (fd >= 0)
		close(fd);
	atomic_store(&s->done, true);
	svc_workers_wake(w);
}

static void *task_thread_main(void *arg)
{
	svc_workers_t *w = arg;
	pthread_mutex_lock(&w->qmu);
	for (;;) {
		while (!w->queue_head && !w->quit)
			pthread_cond_wait(&w->qcv, &w->qmu);
		slot_t *s = w->queue_head;
		if (!s)
			break; /* quit with nothing left to run */
		w->queue_head = s->next_queued;
		if (!w->queue_head)
			w->queue_tail = NULL;
		w->queued--;
		w->idle--;
		pthread_mutex_unlock(&w->qmu);
		run_task(s);
		pthread_mutex_lock(&w->qmu);
		w->idle++;
	}
	pthread_mutex_unlock(&w->qmu);
	return NULL;
}

/* Queues S for a task thread, starting one when none is idle.  Returns
 * false when no thread could run it. */
static bool submit(svc_workers_t *w, slot_t *s)
{
	pthread_mutex_lock(&w->qmu);
	bool ok = true;
	/* Every queued slot needs a thread of its own: idle threads that have
	 * not yet taken what is already queued do not count. */
	if (w->idle <= w->queued) {
		if (w->n_threads == w->cap_threads) {
			int ncap = w->cap_threads ? w->cap_threads * 2 : 16;
			pthread_t *nt = realloc(w->threads, (size_t)ncap * sizeof *nt);
			if (nt) {
				w->threads = nt;
				w->cap_threads = ncap;
			}
		}
		if (w->n_threads < w->cap_threads &&
		    pthread_create(&w->threads[w->n_threads], &w->task_attr, task_thread_main, w) ==
		        0) {
			w->n_threads++;
			w->idle++;
		} else if (w->n_threads == 0) {
			ok = false;
		}
	}
	if (ok) {
		s->next_queued = NULL;
		if (w->queue_tail)
			w->queue_tail->next_queued = s;
		else
			w->queue_head = s;
		w->queue_tail = s;
		w->queued++;
		pthread_cond_signal(&w->qcv);
	}
	pthread_mutex_unlock(&w->qmu);
	return ok;
}

/* Takes S off the running list and frees it.  Called with mu held. */
static void drop_slot(svc_workers_t *w, slot_t *s)
{
	for (slot_t **pp = &w->running; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	if (s->task.is_system)
		w->n_system--;
	else
		w->n_running--;
	free(s->result);
	oh_claimed_clear(&s->task);
	free(s);
}

#define FINISH_BATCH 64

/* Records the ends of the slots of one batch in one transaction.  Called
 * with mu held; returns with it held.  Recorded (or refused: the lease was
 * not this node's any more) slots are dropped; when the database cannot be
 * reached the slots stay, to be tried again with backoff while their
 * leases are still renewed (ends are never dropped for a passing outage). */
static void record_batch(svc_workers_t *w, slot_t **fin, int n)
{
	oh_finish_t items[FINISH_BATCH];
	for (int i = 0; i < n; i++) {
		const oh_task_kind_t *kind = oh_task_kind_find(fin[i]->task.name);
		fin[i]->recording = true;
		items[i] = (oh_finish_t){.id = fin[i]->task.id,
		                         .attempt = fin[i]->task.attempt,
		                         .end = fin[i]->end,
		                         .error = fin[i]->error[0] ? fin[i]->error : NULL,
		                         .result = fin[i]->result,
		                         .quiet = kind && kind->delivers};
	}
	pthread_mutex_unlock(&w->mu);
	db_status_t st = oh_tasks_finish_many(w->core, w->cfg.owner, items, (size_t)n);
	pthread_mutex_lock(&w->mu);
	int64_t now = oh_mono_ms();
	if (st != DB_OK) {
		if (!w->ends_failing)
			oh_log(OH_LOG_WARN,
			       "cannot record the end of tasks; trying again while their leases "
			       "are kept",
			       "tasks=%d status=%s", n, db_status_name(st));
		w->ends_failing = true;
		for (int i = 0; i < n; i++) {
			slot_t *s = fin[i];
			s->recording = false;
			s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : END_RETRY_FIRST_MS;
			if (s->backoff_ms > END_RETRY_MAX_MS)
				s->backoff_ms = END_RETRY_MAX_MS;
			s->retry_at = now + s->backoff_ms;
		}
		return;
	}
	if (w->ends_failing)
		oh_log(OH_LOG_INFO, "recording the end of tasks again", NULL);
	w->ends_failing = false;
	for (int i = 0; i < n; i++) {
		if (items[i].status != DB_OK)
			oh_log(OH_LOG_WARN, "a task's end was not recorded: its lease was lost",
			       "task=%s attempt=%d", fin[i]->task.id, fin[i]->task.attempt);
		drop_slot(w, fin[i]);
	}
}

/* Records the ends of finished slots that are due, a batch at a time, and
 * drops the discarded ones.  Called with mu held; returns with it held.
 * Returns the monotonic time of the earliest retry still waiting, or 0. */
static int64_t reap(svc_workers_t *w)
{
	for (;;) {
		slot_t *fin[FINISH_BATCH];
		int n = 0;
		int64_t now = oh_mono_ms(), next_retry = 0;
		slot_t *s = w->running;
		while (s && n < FINISH_BATCH) {
			slot_t *next = s->next;
			if (atomic_load(&s->done) && !s->recording) {
				if (s->discard) {
					drop_slot(w, s);
				} else if (s->retry_at <= now) {
					fin[n++] = s;
				} else if (!next_retry || s->retry_at < next_retry) {
					next_retry = s->retry_at;
				}
			}
			s = next;
		}
		if (n == 0)
			return next_retry;
		record_batch(w, fin, n);
		if (w->ends_failing)
			return oh_mono_ms() + END_RETRY_FIRST_MS;
	}
}

static void claim(svc_workers_t *w, int running, int running_system)
{
	oh_claimed_t got[64];
	int n = 0;
	/* The database has the last word on the cap and the drain flag. */
	db_status_t st = oh_tasks_claim(w->core, w->cfg.node_id, w->cfg.owner, w->cfg.lease_ms,
	                                running, running_system, 64, got, &n);
	if (st != DB_OK)
		return;
	for (int i = 0; i < n; i++) {
		slot_t *s = calloc(1, sizeof *s);
		if (!s) {
			oh_claimed_clear(&got[i]);
			continue; /* its lease expires and another node takes it */
		}
		s->task = got[i];
		s->w = w;
		pthread_mutex_lock(&w->mu);
		s->seq = ++w->seq;
		s->next = w->running;
		w->running = s;
		if (s->task.is_system)
			w->n_system++;
		else
			w->n_running++;
		pthread_mutex_unlock(&w->mu);
		if (!submit(w, s)) {
			pthread_mutex_lock(&w->mu);
			s->discard = true;
			pthread_mutex_unlock(&w->mu);
			atomic_store(&s->done, true);
			oh_log(OH_LOG_ERROR, "cannot start a task thread", "task=%s", s->task.id);
		}
	}
}

/* One round of lease renewal: renews exactly the tasks this node holds
 * (running, or ended and waiting for their end to be recorded) and tells
 * each what the database says: cancel requested, or taken over. */
static void renew_once(svc_workers_t *w)
{
	pthread_mutex_lock(&w->mu);
	int n = 0;
	for (slot_t *s = w->running; s; s = s->next)
		n += !s->discard;
	uint64_t listed = w->seq;
	oh_held_t *hold = n ? malloc((size_t)n * sizeof *hold) : NULL;
	int k = 0;
	for (slot_t *s = w->running; s && hold; s = s->next)
		if (!s->discard && k < n) {
			snprintf(hold[k].id, sizeof hold[k].id, "%s", s->task.id);
			hold[k].attempt = s->task.attempt;
			hold[k].cancelling = false;
			k++;
		}
	pthread_mutex_unlock(&w->mu);
	if (!hold)
		return;
	/* What the node holds, and some room for rows it no longer tracks. */
	int cap = n + 64;
	oh_held_t *held = malloc((size_t)cap * sizeof *held);
	int nh = 0;
	db_status_t st =
	    held ? oh_tasks_renew(w->core, w->cfg.owner, w->cfg.lease_ms, hold, k, held, cap, &nh)
	         : DB_ERROR;
	free(hold);
	if (st != DB_OK) {
		free(held); /* keep running; the lease has slack for a missed renewal */
		return;
	}
	pthread_mutex_lock(&w->mu);
	for (slot_t *s = w->running; s; s = s->next) {
		if (s->discard || s->seq > listed)
			continue; /* claimed after the list was taken: not judged */
		bool found = false;
		for (int i = 0; i < nh && !found; i++) {
			if (strcmp(held[i].id, s->task.id) == 0 &&
			    held[i].attempt == s->task.attempt) {
				found = true;
				if (held[i].cancelling)
					atomic_store(&s->cancel, true);
			}
		}
		if (found || s->recording)
			continue;
		if (!atomic_load(&s->done)) {
			atomic_store(&s->lost, true);
		} else {
			/* Its end waits to be recorded but the lease is gone (taken
			 * over after an outage longer than the lease): stop trying. */
			s->discard = true;
			oh_log(OH_LOG_WARN, "a task's end was not recorded: its lease was lost",
			       "task=%s attempt=%d", s->task.id, s->task.attempt);
		}
	}
	pthread_mutex_unlock(&w->mu);
	free(held);
}

/* The renewer: leases are renewed every lease/4 on a thread that does
 * nothing else, so neither file I/O nor a long housekeeping pass on the
 * dispatcher can let another node take over live tasks. */
static void *renewer_main(void *arg)
{
	svc_workers_t *w = arg;
	pthread_mutex_lock(&w->mu);
	while (!w->renew_stop) {
		struct timespec until;
		timespec_after(&until, w->cfg.lease_ms / 4);
		while (!w->renew_stop &&
		       pthread_cond_timedwait(&w->rcv, &w->mu, &until) != ETIMEDOUT)
			;
		if (w->renew_stop)
			break;
		pthread_mutex_unlock(&w->mu);
		renew_once(w);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void wake_locked(svc_workers_t *w)
{
	w->woken = true;
	pthread_cond_signal(&w->cv);
}

/* Takes this node's turn at cluster housekeeping when its period is due. */
static void housekeeping(svc_workers_t *w)
{
	bool ran = false;
	oh_expiry_t ex;
	oh_storage_used_t logs;
	oh_storage_paths_used(w->cfg.storage, OH_FOLDER_TASKLOGS, &logs);
	if (oh_tasks_housekeeping(w->core, w->cfg.owner, w->cfg.housekeeping_ms,
	                          w->cfg.retention_ms, logs.v, logs.n, &ran, &ex) != DB_OK ||
	    !ran)
		return;
	bool wake = false;
	oh_cluster_jobs_t jobs = {0};
	if (oh_cluster_jobs(w->core, w->cfg.offline_timeout_ms, w->cfg.archive_every_ms,
	                    w->cfg.env.event_retention_ms, &jobs) == DB_OK &&
	    (jobs.chat_replies || jobs.archive_queued))
		wake = true; /* claim what was queued at once */
	bool packages = false;
	if (oh_packages_housekeeping(w->cfg.pool, w->cfg.storage, w->cfg.package_retention_ms,
	                             w->cfg.package_keep_versions, &packages) == DB_OK &&
	    packages)
		wake = true;
	if (jobs.offline_events)
		oh_log(OH_LOG_INFO, "nodes went offline", "count=%lld",
		       (long long)jobs.offline_events);
	if (ex.requeued)
		wake = true; /* claim what came back at once */
	if (ex.requeued || ex.failed || ex.canceled)
		oh_log(OH_LOG_INFO, "took over the tasks of nodes that stopped answering",
		       "requeued=%lld failed=%lld canceled=%lld", (long long)ex.requeued,
		       (long long)ex.failed, (long long)ex.canceled);
	if (ex.purged)
		oh_log(OH_LOG_INFO, "deleted tasks past their retention", "tasks=%lld",
		       (long long)ex.purged);
	if (wake) {
		pthread_mutex_lock(&w->mu);
		w->woken = true;
		pthread_mutex_unlock(&w->mu);
	}
}

static void *dispatcher_main(void *arg)
{
	svc_workers_t *w = arg;
	int64_t last_hk = 0;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		int64_t next_retry = reap(w);
		int running = w->n_running, running_system = w->n_system;
		pthread_mutex_unlock(&w->mu);

		oh_node_snapshot_t snap;
		oh_node_state_read(w->cfg.state, &snap);
		int64_t now = oh_mono_ms();
		bool healthy = snap.registered && snap.db_ok && !snap.shutting_down;
		/* The snapshot's cap is only a hint that saves a query when full;
		 * the claim re-reads cap and drain flag in its transaction. */
		/* A node that cannot use a storage folder takes only system tasks
		 * (its own checks among them) until it can. */
		if (healthy && !oh_storage_ok(w->cfg.storage))
			running = OH_CLAIM_SYSTEM_ONLY;
		if (healthy && (running < snap.max_tasks || running_system < OH_SYSTEM_TASK_SLOTS))
			claim(w, running, running_system);
		if (healthy && now - last_hk >= w->cfg.housekeeping_ms) {
			housekeeping(w);
			last_hk = now;
		}

		pthread_mutex_lock(&w->mu);
		if (!w->woken && !w->stop) {
			int64_t wait = w->cfg.poll_ms;
			if (next_retry && next_retry - oh_mono_ms() < wait)
				wait = next_retry > oh_mono_ms() ? next_retry - oh_mono_ms() : 1;
			struct timespec until;
			timespec_after(&until, wait);
			while (!w->woken && !w->stop &&
			       pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
				;
		}
		w->woken = false;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

svc_workers_t *svc_workers_start(const svc_workers_cfg_t *cfg)
{
	svc_workers_t *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->cfg = *cfg;
	w->core = cfg->core_pool ? cfg->core_pool : cfg->pool;
	/* Task threads come and go with tasks; with 8 MiB default stacks glibc's
	 * stack cache holds only a few and the rest are mapped and unmapped each
	 * time.  Task kinds need little stack: 512 KiB is plenty. */
	pthread_attr_init(&w->task_attr);
	pthread_mutex_init(&w->qmu, NULL);
	pthread_cond_init(&w->qcv, NULL);
	pthread_attr_setstacksize(&w->task_attr, 512 * 1024);
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_cond_init(&w->rcv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->renewer, NULL, renewer_main, w) != 0) {
		free(w);
		return NULL;
	}
	w->renewer_started = true;
	if (pthread_create(&w->dispatcher, NULL, dispatcher_main, w) != 0) {
		pthread_mutex_lock(&w->mu);
		w->renew_stop = true;
		pthread_cond_signal(&w->rcv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->renewer, NULL);
		free(w);
		return NULL;
	}
	svc_background_cfg_t bcfg = {.pool = cfg->pool,
	                             .state = cfg->state,
	                             .offline_timeout_ms = cfg->offline_timeout_ms,
	                             .period_ms = 1000,
	                             .wake = svc_workers_wake,
	                             .wake_ctx = w};
	w->background = svc_background_start(&bcfg);
	if (!w->background)
		oh_log(OH_LOG_ERROR, "cannot start the background passes (Tentacle coverage)",
		       NULL);
	return w;
}

void svc_workers_wake(void *vw)
{
	svc_workers_t *w = vw;
	pthread_mutex_lock(&w->mu);
	wake_locked(w);
	pthread_mutex_unlock(&w->mu);
}

bool svc_workers_stop(svc_workers_t *w, int64_t grace_ms, int64_t deadline_mono)
{
	if (!w)
		return true;
	svc_background_stop(w->background);
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->dispatcher, NULL);

	int64_t grace_end = oh_mono_ms() + grace_ms;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		reap(w);
		int left = 0, unended = 0;
		for (slot_t *s = w->running; s; s = s->next) {
			left++;
			unended += !atomic_load(&s->done);
		}
		pthread_mutex_unlock(&w->mu);
		if (left == 0)
			break;
		int64_t now = oh_mono_ms();
		if (now >= grace_end && !atomic_load(&w->shutdown)) {
			oh_log(OH_LOG_INFO,
			       "stopping the tasks still running; they go back to the queue",
			       "tasks=%d", unended);
			atomic_store(&w->shutdown, true);
		}
		if (now >= deadline_mono) {
			oh_log(OH_LOG_WARN,
			       "the stop deadline passed: leaving the rest to their leases",
			       "tasks=%d still_running=%d", left, unended);
			break;
		}
		usleep(50 * 1000); /* the renewer keeps their leases meanwhile */
	}
	pthread_mutex_lock(&w->mu);
	w->renew_stop = true;
	pthread_cond_signal(&w->rcv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->renewer, NULL);
	int64_t released = 0;
	if (oh_tasks_release_owner(w->core, w->cfg.owner, &released) == DB_OK && released > 0)
		oh_log(OH_LOG_INFO, "requeued the tasks this node was running", "tasks=%lld",
		       (long long)released);
	pthread_mutex_lock(&w->qmu);
	w->quit = true;
	pthread_cond_broadcast(&w->qcv);
	int n_threads = w->n_threads;
	pthread_mutex_unlock(&w->qmu);
	/* A task stuck in a call that does not return (a hung share) must not
	 * hold the exit: threads not back by the deadline are left behind, and
	 * W with them. */
	bool all = true;
	for (int i = 0; i < n_threads; i++) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		int64_t left_ms = deadline_mono - oh_mono_ms();
		if (left_ms < 0)
			left_ms = 0;
		until.tv_sec += left_ms / 1000;
		until.tv_nsec += (left_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(w->threads[i], NULL, &until) != 0)
			all = false;
	}
	if (!all) {
		oh_log(OH_LOG_WARN,
		       "task threads still busy at the stop deadline; exiting without them", NULL);
		return false;
	}
	pthread_mutex_lock(&w->mu);
	while (w->running)
		drop_slot(w, w->running);
	pthread_mutex_unlock(&w->mu);
	free(w->threads);
	pthread_mutex_destroy(&w->qmu);
	pthread_cond_destroy(&w->qcv);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->rcv);
	pthread_attr_destroy(&w->task_attr);
	free(w);
	return true;
}
