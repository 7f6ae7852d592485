#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../api/api.h"
#include "../lib/apikeys.h"
#include "../lib/db/dialect.h"
#include "../lib/db/migrate.h"
#include "../lib/http_client.h"
#include "../lib/node_state.h"
#include "../lib/nodes.h"
#include "../lib/oh_crypto.h"
#include "../lib/oh_fs.h"
#include "../lib/oh_log.h"
#include "../lib/storage.h"
#include "workers.h"

static const char *const storage_folders[] = {"Artifacts", "TaskLogs", "Packages", "Imports",
                                              "EventExports"};

#define STARTUP_DB_WAIT_MS 30000

static bool prepare_data_dir(const svc_config_t *cfg)
{
	if (!oh_mkdirs(cfg->task_logs_dir, 0750)) {
		oh_log(OH_LOG_ERROR, "cannot create the task logs folder", "path=%s error=%s",
		       oh_q(cfg->task_logs_dir), oh_q(strerror(errno)));
		return false;
	}
	if (!oh_mkdirs(cfg->event_exports_dir, 0750)) {
		oh_log(OH_LOG_ERROR, "cannot create the event exports folder", "path=%s error=%s",
		       oh_q(cfg->event_exports_dir), oh_q(strerror(errno)));
		return false;
	}
	if (!oh_mkdirs(cfg->data_dir, 0750)) {
		oh_log(OH_LOG_ERROR, "cannot create the data directory", "path=%s error=%s",
		       oh_q(cfg->data_dir), oh_q(strerror(errno)));
		return false;
	}
	for (size_t i = 0; i < sizeof storage_folders / sizeof storage_folders[0]; i++) {
		char path[4200];
		snprintf(path, sizeof path, "%s/%s", cfg->data_dir, storage_folders[i]);
		if (!oh_mkdirs(path, 0750)) {
			oh_log(OH_LOG_ERROR, "cannot create a storage folder", "path=%s error=%s",
			       oh_q(path), oh_q(strerror(errno)));
			return false;
		}
	}
	return true;
}

/* Reads the 32-byte secrets key (64 hex characters) from PATH, creating
 * it (mode 0600) with fresh randomness when it does not exist.  Every node
 * of a cluster must share the same file, as every Octopus node shares one
 * Master Key.  Returns false with the reason logged. */
static bool load_secrets_key(const char *path, unsigned char key[32])
{
	char hex[80] = "";
	FILE *f = fopen(path, "r");
	if (!f && errno == ENOENT) {
		char fresh[65];
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0 && errno == EEXIST) {
			f = fopen(path, "r"); /* another process made it first */
		} else if (fd < 0 || !oh_random_hex(fresh, 32) || write(fd, fresh, 64) != 64 ||
		           write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
			oh_log(OH_LOG_ERROR, "cannot create the secrets key", "path=%s error=%s",
			       oh_q(path), oh_q(strerror(errno)));
			if (fd >= 0)
				close(fd);
			return false;
		} else {
			close(fd);
			oh_log(OH_LOG_INFO, "created a secrets key; copy it to every node",
			       "path=%s", oh_q(path));
			f = fopen(path, "r");
		}
	}
	if (!f || !fgets(hex, sizeof hex, f)) {
		oh_log(OH_LOG_ERROR, "cannot read the secrets key", "path=%s error=%s", oh_q(path),
		       oh_q(f ? "empty" : strerror(errno)));
		if (f)
			fclose(f);
		return false;
	}
	fclose(f);
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			oh_log(OH_LOG_ERROR, "the secrets key must be 64 hex characters", "path=%s",
			       oh_q(path));
			return false;
		}
		key[i] = (unsigned char)v;
	}
	OPENSSL_cleanse(hex, sizeof hex);
	return true;
}

/* How long an HTTP request (or a task) waits for a free connection before
 * it is answered 503 with Retry-After. */
#define POOL_WAIT_MS 2000
/* The liveness pool: one connection each for the heartbeat, the lease
 * renewer and the dispatcher (claims, ends, housekeeping).  No request can
 * take them, so a flood of slow reads cannot make the node miss its
 * heartbeat or lose its leases. */
#define CORE_POOL_SIZE 3

static db_pool_t *open_pool_sized(const svc_config_t *cfg, unsigned size, int wait_ms)
{
	int login = (int)(cfg->offline_timeout_ms / 2000);
	db_pool_opts_t o = {.connstr = cfg->db,
	                    .size = size,
	                    .login_timeout_s = login < 1   ? 1
	                                       : login > 5 ? 5
	                                                   : login,
	                    .acquire_timeout_ms = wait_ms,
	                    .max_retries = 3,
	                    .idle_txn_limit_ms = (int)cfg->lease_ms};
	return db_pool_new(&o);
}

static db_pool_t *open_pool(const svc_config_t *cfg)
{
	return open_pool_sized(cfg, (unsigned)cfg->db_pool_size, POOL_WAIT_MS);
}

/* Waits until the database answers (it may start after us in a container).
 * Returns false when it stays unreachable. A shell command (`announce`
 * false) keeps stderr for its own messages: success is not logged there. */
static bool wait_for_db(db_pool_t *pool, bool announce)
{
	int64_t deadline = oh_mono_ms() + STARTUP_DB_WAIT_MS;
	for (int attempt = 0;; attempt++) {
		db_dialect_id_t d;
		char err[512];
		db_status_t s = db_pool_probe(pool, &d, err, sizeof err);
		if (s == DB_OK) {
			if (announce)
				oh_log(OH_LOG_INFO, "database reachable", "dialect=%s",
				       db_dialect_name(d));
			return true;
		}
		if (s == DB_ERROR || oh_mono_ms() > deadline) {
			oh_log(OH_LOG_ERROR, "database unreachable", "error=%s", oh_q(err));
			return false;
		}
		if (attempt == 0)
			oh_log(OH_LOG_WARN, "waiting for the database", "error=%s", oh_q(err));
		struct timespec ts = {0, 500 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Brings the schema to this binary's version or explains why not.
 * Returns an exit code, SVC_EXIT_OK to go on. */
static int check_schema(db_pool_t *pool, bool upgrade)
{
	int version = 0, latest = db_migrations_latest();
	db_status_t s = db_schema_version(pool, &version);
	if (s != DB_OK) {
		oh_log(OH_LOG_ERROR, "cannot read the schema version", "status=%s",
		       db_status_name(s));
		return SVC_EXIT_FAILURE;
	}
	if (version > latest) {
		oh_log(OH_LOG_ERROR,
		       "the database schema is newer than this octoha-server supports: "
		       "upgrade this node's binary",
		       "schema_version=%d binary_supports=%d binary_version=%s", version, latest,
		       OCTOHA_VERSION);
		return SVC_EXIT_REFUSED;
	}
	if (version == latest)
		return SVC_EXIT_OK;
	if (!upgrade) {
		oh_log(OH_LOG_ERROR,
		       "the database schema is older than this binary and db-upgrade is never: "
		       "run octoha-server database --upgrade",
		       "schema_version=%d binary_needs=%d", version, latest);
		return SVC_EXIT_REFUSED;
	}
	db_migrate_result_t res;
	s = db_migrate(pool, &res);
	if (s == DB_ABORT) {
		oh_log(OH_LOG_ERROR,
		       "the database schema is newer than this octoha-server supports",
		       "schema_version=%d binary_supports=%d", res.from, latest);
		return SVC_EXIT_REFUSED;
	}
	if (s != DB_OK) {
		oh_log(OH_LOG_ERROR, "schema migration failed; nothing was applied",
		       "migration=%d error=%s", res.failed_version, oh_q(res.error));
		return SVC_EXIT_FAILURE;
	}
	oh_log(OH_LOG_INFO, "schema migrated", "from=%d to=%d", res.from, res.to);
	return SVC_EXIT_OK;
}

int svc_database(const svc_config_t *cfg, bool upgrade)
{
	if (!prepare_data_dir(cfg))
		return SVC_EXIT_FAILURE;
	db_pool_t *pool = open_pool(cfg);
	if (!pool)
		return SVC_EXIT_FAILURE;
	int rc = SVC_EXIT_OK;
	if (!wait_for_db(pool, true)) {
		rc = SVC_EXIT_FAILURE;
	} else if (upgrade) {
		rc = check_schema(pool, true);
	}
	if (rc == SVC_EXIT_OK) {
		int version = 0;
		if (db_schema_version(pool, &version) == DB_OK)
			printf("schema version %d (this binary supports %d)\n", version,
			       db_migrations_latest());
		else
			rc = SVC_EXIT_FAILURE;
	}
	db_pool_free(pool);
	return rc;
}

db_pool_t *svc_command_pool(const svc_config_t *cfg)
{
	if (!prepare_data_dir(cfg))
		return NULL;
	db_pool_opts_t o = {.connstr = cfg->db,
	                    .size = 2,
	                    .login_timeout_s = 5,
	                    .acquire_timeout_ms = 5000,
	                    .max_retries = 3,
	                    .idle_txn_limit_ms = (int)cfg->lease_ms};
	db_pool_t *pool = db_pool_new(&o);
	/* The same schema rule as `run`: a command on a fresh data directory
	 * (the first API key of a cluster) brings the schema up first. */
	if (pool && (!wait_for_db(pool, false) ||
	             check_schema(pool, strcmp(cfg->db_upgrade, "auto") == 0) != SVC_EXIT_OK)) {
		db_pool_free(pool);
		return NULL;
	}
	return pool;
}

typedef struct {
	const svc_config_t *cfg;
	db_pool_t *pool;
	db_pool_t *core; /* liveness: heartbeat, leases, claims */
	oh_node_state_t *state;
	oh_node_t self; /* what we register */
	char instance[33];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	oh_node_snapshot_t snap;   /* heartbeat thread's working copy */
	oh_storage_t *storage;     /* this node's view of the storage folders */
	bool storage_first_done;   /* the first check of the folders has ended */
	const char *prev_instance; /* the previous process on this data directory */
	char node_id[sizeof(((oh_node_t *)0)->id)];
} node_ctx_t;

/* Publishes ROW, read after oh_node_state_changes gave CHANGES_BEFORE. */
static void publish_from_row(node_ctx_t *n, const oh_node_t *row, uint64_t changes_before)
{
	oh_node_snapshot_t *s = &n->snap;
	snprintf(s->id, sizeof s->id, "%s", row->id);
	snprintf(s->name, sizeof s->name, "%s", row->name);
	snprintf(s->version, sizeof s->version, "%s", OCTOHA_VERSION);
	s->max_tasks = row->max_tasks;
	s->maintenance = row->maintenance;
	s->last_seen = row->last_seen;
	s->last_ok_mono = oh_mono_ms();
	s->db_ok = true;
	s->registered = true;
	oh_node_state_publish_read(n->state, s, changes_before);
}

/* Registers the node.  Returns an exit code, SVC_EXIT_OK on success. */
static int register_node(node_ctx_t *n, bool at_start)
{
	oh_reg_result_t res;
	uint64_t changes = oh_node_state_changes(n->state);
	db_status_t s = oh_nodes_register(n->core, &n->self, n->instance, n->prev_instance,
	                                  n->cfg->offline_timeout_ms, &res);
	if (s != DB_OK) {
		oh_log(OH_LOG_ERROR, "node registration failed", "status=%s", db_status_name(s));
		return SVC_EXIT_FAILURE;
	}
	switch (res.outcome) {
	case OH_REG_OK:
		publish_from_row(n, &res.self, changes);
		oh_log(OH_LOG_INFO, at_start ? "node registered" : "node re-registered",
		       "node=%s id=%s platform=%s task_cap=%d", oh_q(res.self.name),
		       oh_q(res.self.id), res.self.platform, res.self.max_tasks);
		if (res.requeued || res.failed || res.canceled)
			oh_log(OH_LOG_INFO,
			       "took over the tasks of this node's previous process at once",
			       "requeued=%lld failed=%lld canceled=%lld", (long long)res.requeued,
			       (long long)res.failed, (long long)res.canceled);
		return SVC_EXIT_OK;
	case OH_REG_NAME_IN_USE:
		oh_log(OH_LOG_ERROR,
		       "node name is in use by a live node: choose another --node-name, or stop "
		       "the other node and wait until it is offline",
		       "node=%s holder_url=%s last_seen_ms_ago=%lld offline_timeout_ms=%ld",
		       oh_q(n->self.name), oh_q(res.holder.public_url),
		       (long long)(res.db_now - res.holder.last_seen), n->cfg->offline_timeout_ms);
		return SVC_EXIT_REFUSED;
	case OH_REG_PLATFORM_MISMATCH:
		oh_log(OH_LOG_ERROR,
		       "this node's platform differs from the cluster's: Windows and Linux nodes "
		       "cannot be mixed in one cluster",
		       "node_platform=%s cluster_platform=%s", n->self.platform,
		       res.cluster_platform);
		return SVC_EXIT_REFUSED;
	}
	return SVC_EXIT_FAILURE;
}

/* Waits MS or until the node stops, with N->mu held.  False when it must
 * stop. */
static bool wait_or_stop(node_ctx_t *n, long ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!n->stop && pthread_cond_timedwait(&n->cv, &n->mu, &until) != ETIMEDOUT)
		;
	return !n->stop;
}

static void *heartbeat_main(void *arg)
{
	node_ctx_t *n = arg;
	bool was_ok = true;
	pthread_mutex_lock(&n->mu);
	while (!n->stop) {
		if (!wait_or_stop(n, n->cfg->heartbeat_ms))
			break;
		pthread_mutex_unlock(&n->mu);

		oh_node_t row;
		uint64_t changes = oh_node_state_changes(n->state);
		db_status_t s = oh_nodes_heartbeat(n->core, n->node_id, n->instance,
		                                   n->cfg->offline_timeout_ms, &row);
		if (s == DB_OK) {
			publish_from_row(n, &row, changes);
			if (!was_ok)
				oh_log(OH_LOG_INFO, "heartbeat restored", NULL);
			was_ok = true;
		} else if (s == DB_NO_ROWS) {
			/* Presumed dead by the cluster (row taken over or deleted). */
			oh_log(OH_LOG_WARN, "this node lost its registration; registering again",
			       NULL);
			n->snap.registered = false;
			oh_node_state_publish(n->state, &n->snap);
			register_node(n, false);
		} else {
			if (was_ok)
				oh_log(OH_LOG_ERROR,
				       "heartbeat failed: answering 503 until the database is back",
				       "status=%s", db_status_name(s));
			was_ok = false;
			n->snap.db_ok = false;
			oh_node_state_publish(n->state, &n->snap);
		}
		pthread_mutex_lock(&n->mu);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

/* Proves this node can use its storage folders and records the outcome;
 * logs the changes of path and of outcome.  WAS_OK carries the previous
 * outcome between calls. */
static void sync_storage(node_ctx_t *n, bool force, bool *was_ok)
{
	bool changed = false;
	db_status_t s = oh_storage_sync(n->storage, n->pool, n->node_id, force, &changed);
	if (s != DB_OK) {
		oh_log(OH_LOG_WARN, "cannot read or record the storage paths", "db=%s",
		       db_status_name(s));
		return;
	}
	bool ok = oh_storage_ok(n->storage);
	if (changed || ok != *was_ok) {
		for (int f = 0; f < OH_FOLDER__COUNT; f++) {
			char path[OH_STORAGE_PATH_MAX + 1];
			oh_storage_path(n->storage, (oh_folder_t)f, path, sizeof path);
			oh_log(ok ? OH_LOG_INFO : OH_LOG_WARN, "storage folder",
			       "folder=%s path=%s", oh_folder_name((oh_folder_t)f), oh_q(path));
		}
	}
	if (ok != *was_ok)
		oh_log(ok ? OH_LOG_INFO : OH_LOG_ERROR,
		       ok ? "every storage folder is usable: taking work"
		          : "a storage folder is not usable: taking system tasks only (see "
		            "/api/configuration/storage)",
		       NULL);
	*was_ok = ok;
}

/* Follows the cluster's storage paths: reads them every storage-check-ms,
 * switches to new ones without a restart, and proves every folder again
 * every storage-reverify-ms.  A thread of its own, so a share that hangs
 * delays neither the heartbeat nor the task workers. */
static void *storage_main(void *arg)
{
	node_ctx_t *n = arg;
	/* A node proves it can use the cluster's folders before it takes work:
	 * until this first check the workers claim system tasks only. */
	bool was_ok = true;
	sync_storage(n, true, &was_ok);
	int64_t last_full = oh_mono_ms();
	pthread_mutex_lock(&n->mu);
	n->storage_first_done = true;
	pthread_cond_broadcast(&n->cv);
	while (!n->stop) {
		if (!wait_or_stop(n, n->cfg->storage_check_ms))
			break;
		pthread_mutex_unlock(&n->mu);
		int64_t now = oh_mono_ms();
		bool force = now - last_full >= n->cfg->storage_reverify_ms;
		if (force)
			last_full = now;
		sync_storage(n, force, &was_ok);
		pthread_mutex_lock(&n->mu);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

/* Holds the start until the first check of the storage folders has ended,
 * so a node that says it is up has recorded, in the normal case, whether it
 * can use them.  A share that hangs delays the start by STARTUP_STORAGE_MS at
 * most; the node then serves and takes system tasks only until it knows. */
enum { STARTUP_STORAGE_MS = 10000 };

static void wait_first_storage_check(node_ctx_t *n)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += STARTUP_STORAGE_MS / 1000;
	pthread_mutex_lock(&n->mu);
	int e = 0;
	while (!n->storage_first_done && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&n->cv, &n->mu, &until);
	bool done = n->storage_first_done;
	pthread_mutex_unlock(&n->mu);
	if (!done)
		oh_log(OH_LOG_WARN,
		       "the first storage check has not ended: serving, taking system tasks only "
		       "until it does",
		       "waited_ms=%d", STARTUP_STORAGE_MS);
}

/* ---- one process per data directory ------------------------------------ */

/* Locks <data-dir>/node.lock for the life of the process (the kernel drops
 * the lock when the process dies, however it dies).  Returns the file
 * descriptor to keep open, or -1: *BUSY when another live process holds it.
 * PREV (size PREVLEN) receives the instance token the previous process on
 * this directory recorded for node NAME, "" if none: holding the lock proves
 * that process is gone, so its registration can be taken over at once. */
static int lock_data_dir(const svc_config_t *cfg, bool *busy, char *prev, size_t prevlen)
{
	*busy = false;
	prev[0] = '\0';
	char path[4200];
	snprintf(path, sizeof path, "%s/node.lock", cfg->data_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		oh_log(OH_LOG_ERROR, "cannot open the data directory's lock file",
		       "path=%s error=%s", oh_q(path), oh_q(strerror(errno)));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		*busy = errno == EWOULDBLOCK;
		if (!*busy)
			oh_log(OH_LOG_ERROR, "cannot lock the data directory", "path=%s error=%s",
			       oh_q(path), oh_q(strerror(errno)));
		close(fd);
		return -1;
	}
	snprintf(path, sizeof path, "%s/node.instance", cfg->data_dir);
	FILE *f = fopen(path, "r");
	if (f) {
		char name[128] = "", inst[64] = "";
		if (fscanf(f, "%127s %63s", name, inst) == 2 && strcmp(name, cfg->node_name) == 0)
			snprintf(prev, prevlen, "%s", inst);
		fclose(f);
	}
	return fd;
}

/* Records INSTANCE as this directory's process for node NAME (written to a
 * temporary file, synced and renamed: never half written).  False with the
 * reason logged. */
static bool record_instance(const svc_config_t *cfg, const char *instance)
{
	char path[4200], tmp[4300];
	snprintf(path, sizeof path, "%s/node.instance", cfg->data_dir);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	char line[256];
	int n = snprintf(line, sizeof line, "%s %s\n", cfg->node_name, instance);
	bool ok = fd >= 0 && n > 0 && write(fd, line, (size_t)n) == n && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	ok = ok && rename(tmp, path) == 0;
	if (!ok)
		oh_log(OH_LOG_ERROR, "cannot record this process in the data directory",
		       "path=%s error=%s", oh_q(path), oh_q(strerror(errno)));
	return ok;
}

/* ---- a bounded stop ------------------------------------------------------ */

/* How long past the task grace the whole stop may take (the HTTP server's
 * in-flight requests, the last ends, marking the node offline). */
#define STOP_SLACK_MS 5000

typedef struct {
	int64_t deadline; /* oh_mono_ms */
	db_pool_t *core;
	char node_id[128], instance[33];
} watchdog_t;

/* Ends the process when the orderly stop overran its deadline (a handler
 * or a task blocked in a call that does not return, a hung share): marks
 * the node offline if the database answers within a few seconds, and exits.
 * Leases and the heartbeat's silence let the cluster take over the rest. */
static void *watchdog_main(void *arg)
{
	watchdog_t *d = arg;
	int64_t left;
	while ((left = d->deadline - oh_mono_ms()) > 0) {
		struct timespec ts = {left / 1000, (left % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	oh_log(OH_LOG_WARN, "the stop overran its deadline: marking the node offline and exiting",
	       NULL);
	alarm(3); /* the database too may not answer: SIGALRM ends it */
	if (d->core && oh_nodes_mark_stopped(d->core, d->node_id, d->instance) == DB_OK)
		oh_log(OH_LOG_INFO, "node marked offline", "node_id=%s", oh_q(d->node_id));
	_exit(SVC_EXIT_OK);
	return NULL;
}

int svc_run(const svc_config_t *cfg)
{
	/* Block the stop signals in every thread; the main thread waits for
	 * them with sigwait. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP); /* a closed terminal or a reload: stop cleanly */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!prepare_data_dir(cfg))
		return SVC_EXIT_FAILURE;
	node_ctx_t n = {.cfg = cfg};
	pthread_mutex_init(&n.mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n.cv, &ca);
	pthread_condattr_destroy(&ca);
	int rc = SVC_EXIT_FAILURE;
	unsigned char secrets_key[32] = {0};
	api_server_t *srv = NULL;
	oh_oidc_t *oidc = NULL;
	svc_workers_t *workers = NULL;
	oh_outbound_policy_t *outbound = NULL;
	pthread_t hb, sto;
	bool hb_started = false, sto_started = false;
	const char *defaults[OH_FOLDER__COUNT];
	char local[3][4200];
	snprintf(local[0], sizeof local[0], "%s/Artifacts", cfg->data_dir);
	snprintf(local[1], sizeof local[1], "%s/Packages", cfg->data_dir);
	snprintf(local[2], sizeof local[2], "%s/Imports", cfg->data_dir);
	defaults[OH_FOLDER_ARTIFACTS] = local[0];
	defaults[OH_FOLDER_TASKLOGS] = cfg->task_logs_dir;
	defaults[OH_FOLDER_PACKAGES] = local[1];
	defaults[OH_FOLDER_IMPORTS] = local[2];
	defaults[OH_FOLDER_EVENTEXPORTS] = cfg->event_exports_dir;
	n.storage = oh_storage_new(defaults);

	bool dir_busy = false;
	char prev_instance[64];
	int lock_fd = lock_data_dir(cfg, &dir_busy, prev_instance, sizeof prev_instance);
	if (lock_fd < 0) {
		if (dir_busy) {
			oh_log(
			    OH_LOG_ERROR,
			    "another octoha-server process uses this data directory: one node per "
			    "data directory",
			    "data_dir=%s", oh_q(cfg->data_dir));
			rc = SVC_EXIT_REFUSED;
		}
		goto out;
	}
	char perr[200] = "";
	outbound = oh_outbound_policy_new(cfg->outbound_allow, perr, sizeof perr);
	if (!outbound) {
		oh_log(OH_LOG_ERROR, "bad outbound-allow", "error=%s", oh_q(perr));
		goto out;
	}
	n.pool = open_pool(cfg);
	n.core = open_pool_sized(cfg, CORE_POOL_SIZE, POOL_WAIT_MS);
	n.state = oh_node_state_new();
	if (!n.pool || !n.core || !n.state || !n.storage || !oh_random_hex(n.instance, 16))
		goto out;
	if (!wait_for_db(n.pool, true))
		goto out;
	rc = check_schema(n.pool, strcmp(cfg->db_upgrade, "auto") == 0);
	if (rc != SVC_EXIT_OK)
		goto out;
	rc = SVC_EXIT_FAILURE;
	if (!load_secrets_key(cfg->secrets_key_file, secrets_key))
		goto out;
	if (cfg->bootstrap_admin_key[0]) {
		bool seeded = false;
		db_status_t bs =
		    oh_apikeys_bootstrap(n.pool, cfg->bootstrap_admin_key, "bootstrap", &seeded);
		if (bs != DB_OK) {
			oh_log(OH_LOG_ERROR, "cannot seed the bootstrap Admin key", "db=%s",
			       db_status_name(bs));
			goto out;
		}
		oh_log(OH_LOG_INFO,
		       seeded ? "seeded the bootstrap Admin key"
		              : "bootstrap Admin key ignored: this cluster was seeded before",
		       NULL);
	}

	snprintf(n.self.name, sizeof n.self.name, "%s", cfg->node_name);
	snprintf(n.self.public_url, sizeof n.self.public_url, "%s", cfg->public_url);
	snprintf(n.self.comms_address, sizeof n.self.comms_address, "%s", cfg->comms_address);
	snprintf(n.self.platform, sizeof n.self.platform, "%s", cfg->platform);
	snprintf(n.self.version, sizeof n.self.version, "%s", OCTOHA_VERSION);
	n.self.comms_port = (int)cfg->comms_port;
	n.self.max_tasks = cfg->task_cap_set ? (int)cfg->task_cap : -1;
	/* Recorded before registering: if this process dies at any point from
	 * here, the next one on this directory knows whose place it takes. */
	if (!record_instance(cfg, n.instance))
		goto out;
	n.prev_instance = prev_instance;
	rc = register_node(&n, true);
	if (rc != SVC_EXIT_OK)
		goto out;
	rc = SVC_EXIT_FAILURE;
	/* The heartbeat rewrites its snapshot; everyone else reads this copy. */
	snprintf(n.node_id, sizeof n.node_id, "%s", n.snap.id);
	if (pthread_create(&hb, NULL, heartbeat_main, &n) != 0)
		goto out;
	hb_started = true;
	if (pthread_create(&sto, NULL, storage_main, &n) != 0)
		goto out;
	sto_started = true;
	wait_first_storage_check(&n);

	svc_workers_cfg_t wcfg = {
	    .pool = n.pool,
	    .core_pool = n.core,
	    .state = n.state,
	    .node_id = n.node_id,
	    .owner = n.instance,
	    .storage = n.storage,
	    .lease_ms = cfg->lease_ms,
	    .poll_ms = cfg->poll_ms,
	    .housekeeping_ms = cfg->housekeeping_ms,
	    .offline_timeout_ms = cfg->offline_timeout_ms,
	    .retention_ms = cfg->task_retention_hours * 3600 * 1000,
	    .archive_every_ms = cfg->archive_every_ms,
	    .package_retention_ms = cfg->package_retention_ms,
	    .package_keep_versions = cfg->package_keep_versions,
	    .env = {.secrets_key = secrets_key,
	            .storage = n.storage,
	            .event_retention_ms = cfg->event_retention_hours * 3600 * 1000,
	            .outbound = outbound,
	            .http_timeout_ms = cfg->webhook_timeout_ms}};
	workers = svc_workers_start(&wcfg);
	if (!workers)
		goto out;

	if (cfg->oidc_issuer[0]) {
		char oerr[300];
		oh_oidc_opts_t oo = {.issuer = cfg->oidc_issuer,
		                     .audience = cfg->oidc_audience,
		                     .role_claim = cfg->oidc_role_claim,
		                     .role_map = cfg->oidc_roles,
		                     .leeway_s = cfg->oidc_leeway_seconds,
		                     .keys_max_age_ms = cfg->oidc_keys_max_age_ms,
		                     .refresh_min_ms = cfg->oidc_refresh_min_ms,
		                     .http_timeout_ms = 5000};
		oidc = oh_oidc_new(&oo, oerr, sizeof oerr);
		if (!oidc) {
			oh_log(OH_LOG_ERROR, "cannot use the OIDC settings", "error=%s",
			       oh_q(oerr));
			goto out;
		}
	}

	char tag[9];
	snprintf(tag, sizeof tag, "%.8s", n.instance);
	api_config_t acfg = {.pool = n.pool,
	                     .state = n.state,
	                     .offline_timeout_ms = cfg->offline_timeout_ms,
	                     .draining_status = (int)cfg->draining_status,
	                     .max_body = (size_t)cfg->max_body_bytes,
	                     .listen = cfg->listen,
	                     .tls_cert = cfg->tls_cert,
	                     .tls_key = cfg->tls_key,
	                     .threads = (int)cfg->http_threads,
	                     .instance_tag = tag,
	                     .self_node_id = n.node_id,
	                     .storage = n.storage,
	                     .on_task_queued = svc_workers_wake,
	                     .notify_ctx = workers,
	                     .redirect_listen = cfg->redirect_listen,
	                     .trusted_proxies = cfg->trusted_proxies,
	                     .auth_cache_ms = cfg->auth_cache_ms,
	                     .secrets_key = secrets_key,
	                     .slack_signing_secret = cfg->slack_signing_secret,
	                     .chatops_users = cfg->chatops_users,
	                     .idempotency_ttl_ms = cfg->idempotency_ttl_hours * 3600 * 1000,
	                     .max_package_bytes = cfg->max_package_bytes,
	                     .health_listen = cfg->health_listen,
	                     .request_timeout_ms = (int)cfg->request_timeout_ms,
	                     .max_conns_per_client = (int)cfg->max_conns_per_client,
	                     .cors_origins = cfg->cors_origins,
	                     .stream_max = (int)cfg->stream_max,
	                     .stream_heartbeat_ms = cfg->stream_heartbeat_ms,
	                     .stream_poll_ms = cfg->stream_poll_ms,
	                     .oidc = oidc,
	                     .oidc_client_id = cfg->oidc_client_id,
	                     .oidc_scopes = cfg->oidc_scopes,
	                     .outbound = outbound};
	char err[512] = "";
	srv = api_server_start(&acfg, err, sizeof err);
	if (!srv) {
		oh_log(OH_LOG_ERROR, "cannot start the HTTP server", "listen=%s error=%s",
		       oh_q(cfg->listen), oh_q(err));
		goto out;
	}
	oh_log(OH_LOG_INFO, "ready", "node=%s listen=%s tls=%s public_url=%s", oh_q(cfg->node_name),
	       oh_q(cfg->listen), cfg->tls_cert[0] ? "on" : "off", oh_q(cfg->public_url));

	int sig = 0;
	sigwait(&sigs, &sig);
	oh_log(OH_LOG_INFO, "stopping", "signal=%d", sig);
	rc = SVC_EXIT_OK;

out:;
	/* One deadline for the whole stop; past it a watchdog marks the node
	 * offline and ends the process whatever is still blocked. */
	int64_t deadline = oh_mono_ms() + cfg->shutdown_grace_ms + STOP_SLACK_MS;
	static watchdog_t dog;
	dog = (watchdog_t){.deadline = deadline + 1000, .core = hb_started ? n.core : NULL};
	snprintf(dog.node_id, sizeof dog.node_id, "%s", n.node_id);
	snprintf(dog.instance, sizeof dog.instance, "%s", n.instance);
	pthread_t dog_thread;
	if (pthread_create(&dog_thread, NULL, watchdog_main, &dog) == 0)
		pthread_detach(dog_thread);
	/* Ping says 503 from here on, so the load balancer stops sending, and
	 * requests waiting on a task (waitSeconds) answer at once. */
	if (n.state)
		oh_node_state_set_shutting_down(n.state);
	api_server_quiesce(srv, oh_mono_ms() + STOP_SLACK_MS / 2); /* in-flight requests answer */
	api_server_stop(srv);
	oh_oidc_free(oidc);
	bool workers_done = svc_workers_stop(workers, cfg->shutdown_grace_ms, deadline);
	if (hb_started) {
		pthread_mutex_lock(&n.mu);
		n.stop = true;
		pthread_cond_broadcast(&n.cv);
		pthread_mutex_unlock(&n.mu);
		pthread_join(hb, NULL);
		db_status_t s = oh_nodes_mark_stopped(n.core, n.node_id, n.instance);
		if (s == DB_OK)
			oh_log(OH_LOG_INFO, "node marked offline", "node=%s", oh_q(cfg->node_name));
		else
			oh_log(OH_LOG_WARN, "could not mark the node offline; it will time out",
			       "status=%s", db_status_name(s));
	}
	/* A probe stuck on a share that hangs must not hold the exit: after a
	 * grace the thread is left behind, and what it uses is not freed. */
	bool sto_joined = !sto_started;
	if (sto_started) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		int64_t left = deadline - oh_mono_ms();
		until.tv_sec += left > 1000 ? left / 1000 : 1;
		sto_joined = pthread_timedjoin_np(sto, NULL, &until) == 0;
		if (!sto_joined)
			oh_log(OH_LOG_WARN, "a storage check is still hanging; exiting without it",
			       NULL);
	}
	if (sto_joined && workers_done) {
		db_pool_free(n.pool);
		db_pool_free(n.core);
		oh_storage_free(n.storage);
		oh_outbound_policy_free(outbound);
	}
	if (lock_fd >= 0)
		close(lock_fd); /* the next process on this directory may start */
	oh_node_state_free(n.state);
	OPENSSL_cleanse(secrets_key, sizeof secrets_key);
	if (sto_joined && workers_done) {
		pthread_cond_destroy(&n.cv);
		pthread_mutex_destroy(&n.mu);
	}
	if (rc == SVC_EXIT_OK)
		oh_log(OH_LOG_INFO, "stopped", NULL);
	return rc;
}
