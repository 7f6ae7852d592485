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
#include "../lib/tentacles.h"

#define MAX_SLOTS 1000

typedef struct slot {
	struct slot *next;
	oh_claimed_t task;
	atomic_bool cancel, lost, done;
	struct slot *next_queued; /* the work queue's link */
	svc_workers_t *w;
	/* The attempt's outcome, left by its thread for the dispatcher, which
	 * records the ends of many tasks in one transaction. */
	int fd;
	oh_end_t end;
	char error[512];
	char *result;
	bool discard; /* lease lost or node stopping: record nothing */
} slot_t;

struct svc_workers {
	svc_workers_cfg_t cfg;
	pthread_t dispatcher;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* no more claims */
	bool woken;
	atomic_bool shutdown;      /* running tasks must stop */
	oh_held_t held[MAX_SLOTS]; /* renew()'s scratch: dispatcher, then stop */
	pthread_attr_t task_attr;  /* small stacks: glibc reuses them */
	slot_t *running;           /* guarded by mu */
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
	s->fd = fd;
	s->discard = atomic_load(&s->lost);
	if (s->discard)
		oh_task_log_fd(
		    fd, "WARN",
		    "The lease on this task was lost; this attempt's outcome is discarded");
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

#define FINISH_BATCH 64

/* Records the ends of the finished slots in FIN (one transaction per
 * batch), writes each task's last log line, joins and frees them. */
static void finish(svc_workers_t *w, slot_t **fin, int n)
{
	oh_finish_t items[FINISH_BATCH];
	int k = 0;
	for (int i = 0; i < n; i++)
		if (!fin[i]->discard) {
			const oh_task_kind_t *kind = oh_task_kind_find(fin[i]->task.name);
			items[k++] = (oh_finish_t){.id = fin[i]->task.id,
			                           .attempt = fin[i]->task.attempt,
			                           .end = fin[i]->end,
			                           .error = fin[i]->error[0] ? fin[i]->error : NULL,
			                           .result = fin[i]->result,
			                           .quiet = kind && kind->delivers};
		}
	db_status_t st = oh_tasks_finish_many(w->cfg.pool, w->cfg.owner, items, (size_t)k);
	if (st != DB_OK)
		oh_log(OH_LOG_WARN, "could not record the end of tasks; their leases will expire",
		       "tasks=%d status=%s", k, db_status_name(st));
	k = 0;
	for (int i = 0; i < n; i++) {
		slot_t *s = fin[i];
		if (!s->discard) {
			oh_finish_t *it = &items[k++];
			char line[700];
			if (st != DB_OK)
				snprintf(line, sizeof line,
				         "Attempt %d: its end could not be recorded",
				         s->task.attempt);
			else if (it->status != DB_OK)
				snprintf(line, sizeof line,
				         "The lease was lost before the end; outcome discarded");
			else
				snprintf(line, sizeof line, "Attempt %d ended: %s%s%s",
				         s->task.attempt,
				         it->final == OH_TS_QUEUED ? "Retry (requeued with backoff)"
				                                   : oh_task_state_name(it->final),
				         s->error[0] ? " - " : "", s->error);
			oh_task_log_fd(s->fd,
			               st == DB_OK && it->status == DB_OK &&
			                       it->final == OH_TS_SUCCESS
			                   ? "INFO"
			                   : "WARN",
			               line);
		}
		if (s->fd >= 0)
			close(s->fd);
		free(s->result);
		oh_claimed_clear(&s->task);
		free(s);
	}
}

/* Takes the finished slots off the running list and finishes them.
 * Called with mu held; returns with it held. */
static void reap(svc_workers_t *w)
{
	slot_t *fin[FINISH_BATCH];
	for (;;) {
		int n = 0;
		slot_t **pp = &w->running;
		while (*pp && n < FINISH_BATCH) {
			slot_t *s = *pp;
			if (atomic_load(&s->done)) {
				*pp = s->next;
				if (s->task.is_system)
					w->n_system--;
				else
					w->n_running--;
				fin[n++] = s;
			} else {
				pp = &s->next;
			}
		}
		if (n == 0)
			return;
		pthread_mutex_unlock(&w->mu);
		finish(w, fin, n);
		pthread_mutex_lock(&w->mu);
	}
}

static void claim(svc_workers_t *w, int running, int running_system)
{
	oh_claimed_t got[64];
	int n = 0;
	/* The database has the last word on the cap and the drain flag. */
	db_status_t st = oh_tasks_claim(w->cfg.pool, w->cfg.node_id, w->cfg.owner, w->cfg.lease_ms,
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
		s->fd = -1;
		pthread_mutex_lock(&w->mu);
		s->next = w->running;
		w->running = s;
		if (s->task.is_system)
			w->n_system++;
		else
			w->n_running++;
		pthread_mutex_unlock(&w->mu);
		if (!submit(w, s)) {
			atomic_store(&s->lost, true);
			atomic_store(&s->done, true);
			oh_log(OH_LOG_ERROR, "cannot start a task thread", "task=%s", s->task.id);
		}
	}
}

/* Renews leases and tells running tasks what the database says about them. */
static void renew(svc_workers_t *w)
{
	pthread_mutex_lock(&w->mu);
	int n_running = w->n_running + w->n_system;
	pthread_mutex_unlock(&w->mu);
	if (n_running == 0)
		return;
	oh_held_t *held = w->held;
	int n = 0;
	if (oh_tasks_renew(w->cfg.pool, w->cfg.owner, w->cfg.lease_ms, held, MAX_SLOTS, &n) !=
	    DB_OK)
		return; /* keep running; the lease has slack for a missed renewal */
	pthread_mutex_lock(&w->mu);
	for (slot_t *s = w->running; s; s = s->next) {
		bool found = false;
		for (int i = 0; i < n && !found; i++) {
			if (strcmp(held[i].id, s->task.id) == 0 &&
			    held[i].attempt == s->task.attempt) {
				found = true;
				if (held[i].cancelling)
					atomic_store(&s->cancel, true);
			}
		}
		if (!found && !atomic_load(&s->done))
			atomic_store(&s->lost, true);
	}
	pthread_mutex_unlock(&w->mu);
}

static void *dispatcher_main(void *arg)
{
	svc_workers_t *w = arg;
	int64_t last_renew = 0, last_hk = 0, last_coverage = 0;
	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		reap(w);
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
		if (now - last_renew >= w->cfg.lease_ms / 4) {
			renew(w);
			last_renew = now;
		}
		if (healthy && now - last_hk >= w->cfg.housekeeping_ms) {
			bool ran = false;
			oh_expiry_t ex;
			oh_storage_used_t logs;
			oh_storage_paths_used(w->cfg.storage, OH_FOLDER_TASKLOGS, &logs);
			if (oh_tasks_housekeeping(w->cfg.pool, w->cfg.housekeeping_ms,
			                          w->cfg.retention_ms, logs.v, logs.n, &ran,
			                          &ex) == DB_OK &&
			    ran) {
				oh_cluster_jobs_t jobs = {0};
				if (oh_cluster_jobs(w->cfg.pool, w->cfg.offline_timeout_ms,
				                    w->cfg.archive_every_ms,
				                    w->cfg.env.event_retention_ms,
				                    &jobs) == DB_OK &&
				    (jobs.chat_replies || jobs.archive_queued)) {
					pthread_mutex_lock(&w->mu);
					w->woken = true; /* claim what was queued at once */
					pthread_mutex_unlock(&w->mu);
				}
				/* The coverage pass reads every Tentacle and poll: every
				 * 5 s is soon enough for a window of 10 s or more. */
				bool refresh = false, coverage = now - last_coverage >= 5000;
				if (coverage)
					last_coverage = now;
				if (oh_tentacles_housekeeping(w->cfg.pool,
				                              w->cfg.offline_timeout_ms, coverage,
				                              &refresh) == DB_OK &&
				    refresh) {
					pthread_mutex_lock(&w->mu);
					w->woken = true;
					pthread_mutex_unlock(&w->mu);
				}
				bool pq = false;
				if (oh_packages_housekeeping(
				        w->cfg.pool, w->cfg.storage, w->cfg.package_retention_ms,
				        w->cfg.package_keep_versions, &pq) == DB_OK &&
				    pq) {
					pthread_mutex_lock(&w->mu);
					w->woken = true;
					pthread_mutex_unlock(&w->mu);
				}
				if (jobs.offline_events)
					oh_log(OH_LOG_INFO, "nodes went offline", "count=%lld",
					       (long long)jobs.offline_events);
				if (ex.requeued) {
					pthread_mutex_lock(&w->mu);
					w->woken = true; /* claim what came back at once */
					pthread_mutex_unlock(&w->mu);
				}
				if (ex.requeued || ex.failed || ex.canceled)
					oh_log(
					    OH_LOG_INFO,
					    "took over the tasks of nodes that stopped answering",
					    "requeued=%lld failed=%lld canceled=%lld",
					    (long long)ex.requeued, (long long)ex.failed,
					    (long long)ex.canceled);
				if (ex.purged)
					oh_log(OH_LOG_INFO, "deleted tasks past their retention",
					       "tasks=%lld", (long long)ex.purged);
			}
			last_hk = now;
		}

		pthread_mutex_lock(&w->mu);
		if (!w->woken && !w->stop) {
			struct timespec until;
			timespec_after(&until, w->cfg.poll_ms);
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
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->dispatcher, NULL, dispatcher_main, w) != 0) {
		free(w);
		return NULL;
	}
	return w;
}

void svc_workers_wake(void *vw)
{
	svc_workers_t *w = vw;
	pthread_mutex_lock(&w->mu);
	w->woken = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void svc_workers_stop(svc_workers_t *w, int64_t grace_ms)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->dispatcher, NULL);

	int64_t deadline = oh_mono_ms() + grace_ms;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		reap(w);
		int left = w->n_running + w->n_system;
		pthread_mutex_unlock(&w->mu);
		if (left == 0)
			break;
		if (oh_mono_ms() >= deadline && !atomic_load(&w->shutdown)) {
			oh_log(OH_LOG_INFO,
			       "stopping the tasks still running; they go back to the queue",
			       "tasks=%d", left);
			atomic_store(&w->shutdown, true);
		}
		/* Keep their leases alive while they wind down. */
		renew(w);
		usleep(50 * 1000);
	}
	int64_t released = 0;
	if (oh_tasks_release_owner(w->cfg.pool, w->cfg.owner, &released) == DB_OK && released > 0)
		oh_log(OH_LOG_INFO, "requeued the tasks this node was running", "tasks=%lld",
		       (long long)released);
	pthread_mutex_lock(&w->qmu);
	w->quit = true;
	pthread_cond_broadcast(&w->qcv);
	pthread_mutex_unlock(&w->qmu);
	for (int i = 0; i < w->n_threads; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	pthread_mutex_destroy(&w->qmu);
	pthread_cond_destroy(&w->qcv);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_attr_destroy(&w->task_attr);
	free(w);
}
