/* Shared storage: see storage.h. */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/cluster_store.h"
#include "db/storage_store.h"
#include "events.h"
#include "oh_crypto.h"
#include "oh_fs.h"

/* ---- active paths and checks ----------------------------------------- */

static db_status_t read_path_row(void *ctx, db_row_t *r)
{
	oh_storage_active_t *a = ctx;
	oh_folder_t f;
	const char *name = db_row_text(r, 0);
	if (!name || !oh_folder_parse(name, &f))
		return DB_OK; /* a folder this version does not know */
	oh_storage_folder_t *x = &a->f[f];
	x->set = true;
	db_row_copy(r, 1, x->path, sizeof x->path);
	x->changed_at = db_row_int(r, 2, NULL);
	db_row_copy(r, 3, x->changed_by, sizeof x->changed_by);
	db_row_copy(r, 4, x->task_id, sizeof x->task_id);
	return DB_OK;
}

static db_status_t active_txn(db_conn_t *c, void *ctx)
{
	memset(ctx, 0, sizeof(oh_storage_active_t));
	db_status_t s = storage_store_paths(c, read_path_row, ctx);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t oh_storage_active_get(db_pool_t *pool, oh_storage_active_t *out)
{
	return db_txn(pool, DB_TXN_READ, active_txn, out);
}

static db_status_t read_check_row(void *ctx, db_row_t *r)
{
	oh_storage_check_list_t *l = ctx;
	oh_folder_t f;
	const char *name = db_row_text(r, 1);
	if (!name || !oh_folder_parse(name, &f))
		return DB_OK;
	oh_storage_check_t *v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (!v)
		abort();
	l->v = v;
	oh_storage_check_t *x = &v[l->n++];
	memset(x, 0, sizeof *x);
	db_row_copy(r, 0, x->node_id, sizeof x->node_id);
	x->folder = f;
	db_row_copy(r, 2, x->path, sizeof x->path);
	x->ok = db_row_int(r, 3, NULL) != 0;
	x->verified_at = db_row_int(r, 4, NULL);
	db_row_copy(r, 5, x->error, sizeof x->error);
	return DB_OK;
}

static db_status_t checks_txn(db_conn_t *c, void *ctx)
{
	oh_storage_check_list_t *l = ctx;
	oh_storage_check_list_free(l);
	db_status_t s = storage_store_checks(c, read_check_row, l);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t oh_storage_checks_list(db_pool_t *pool, oh_storage_check_list_t *out)
{
	memset(out, 0, sizeof *out);
	db_status_t s = db_txn(pool, DB_TXN_READ, checks_txn, out);
	if (s != DB_OK)
		oh_storage_check_list_free(out);
	return s;
}

void oh_storage_check_list_free(oh_storage_check_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

typedef struct {
	const oh_storage_check_t *v;
	size_t n;
} record_ctx_t;

static db_status_t record_txn(db_conn_t *c, void *ctx)
{
	record_ctx_t *x = ctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	for (size_t i = 0; s == DB_OK && i < x->n; i++) {
		const oh_storage_check_t *k = &x->v[i];
		s = storage_store_put_check(c, k->node_id, oh_folder_name(k->folder), k->path,
		                            k->ok, now, k->ok ? NULL : k->error);
	}
	return s;
}

db_status_t oh_storage_record_checks(db_pool_t *pool, const oh_storage_check_t *v, size_t n)
{
	record_ctx_t x = {v, n};
	return n ? db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, record_txn, &x) : DB_OK;
}

typedef struct {
	const char *const *paths;
	record_ctx_t checks;
	const char *by, *task_id;
	const oh_event_spec_t *audit;
	int64_t *at;
} activate_ctx_t;

static db_status_t activate_txn(db_conn_t *c, void *ctx)
{
	activate_ctx_t *x = ctx;
	int64_t now;
	db_status_t s = db_now_ms(c, &now);
	*x->at = now;
	for (int f = 0; s == DB_OK && f < OH_FOLDER__COUNT; f++) {
		const char *name = oh_folder_name((oh_folder_t)f);
		if (x->paths[f] && x->paths[f][0])
			s = storage_store_put_path(c, name, x->paths[f], now, x->by, x->task_id);
		else if (x->paths[f])
			s = storage_store_delete_path(c, name);
	}
	if (s == DB_OK)
		s = record_txn(c, &x->checks);
	if (s == DB_OK)
		s = storage_store_purge_checks(c);
	if (s == DB_OK && x->audit)
		s = oh_event_record_tx(c, x->audit, NULL);
	return s;
}

db_status_t oh_storage_activate(db_pool_t *pool, const char *const paths[OH_FOLDER__COUNT],
                                const oh_storage_check_t *checks, size_t n, const char *by,
                                const char *task_id, const oh_event_spec_t *audit, int64_t *at)
{
	int64_t when = 0;
	activate_ctx_t x = {paths, {checks, n}, by, task_id, audit, at ? at : &when};
	return db_txn(pool, DB_TXN_WRITE, activate_txn, &x);
}

typedef struct {
	oh_task_spec_t spec; /* with its Id chosen before the transaction */
	oh_task_t *out;
	bool *existed;
	char *busy;
} change_ctx_t;

static db_status_t change_txn(db_conn_t *c, void *ctx)
{
	change_ctx_t *x = ctx;
	*x->existed = false;
	x->busy[0] = '\0';
	oh_task_clear(x->out);
	db_status_t s = cluster_store_lock(c, "storage-change");
	if (s == DB_OK)
		s = storage_store_active_change(c, x->busy, 64);
	if (s == DB_NO_ROWS) /* none under way: queue it */
		return oh_task_create_tx(c, &x->spec, x->out, x->existed);
	return s == DB_OK ? DB_DUPLICATE : s;
}

/* Whether the change a lost COMMIT was queueing exists. */
static db_status_t change_verify(db_conn_t *c, void *ctx)
{
	change_ctx_t *x = ctx;
	oh_task_clear(x->out);
	return oh_task_get_tx(c, x->spec.id, x->out);
}

db_status_t oh_storage_change_queue(db_pool_t *pool, const oh_task_spec_t *spec, oh_task_t *out,
                                    bool *existed, char *busy_id)
{
	memset(out, 0, sizeof *out);
	char id[64];
	if (!oh_task_new_id(id, sizeof id))
		return DB_ERROR;
	change_ctx_t x = {*spec, out, existed, busy_id};
	x.spec.id = id;
	return db_txn_verified(pool, change_txn, change_verify, &x);
}

/* ---- the probe --------------------------------------------------------- */

static bool fail(char *err, size_t errlen, const char *step, const char *path)
{
	snprintf(err, errlen, "cannot %s %.300s: %s", step, path, strerror(errno));
	return false;
}

const char *oh_storage_real_check(const char *dir, char *buf, size_t size)
{
	char *real = malloc(PATH_MAX);
	if (!real)
		return NULL;
	const char *why = NULL;
	if (oh_real_location(dir, real, PATH_MAX)) {
		const char *sys = oh_storage_system_folder("linux", real);
		if (sys) {
			snprintf(buf, size, "leads to %.300s, which %s", real, sys);
			why = buf;
		}
	}
	free(real);
	return why;
}

bool oh_storage_probe(const char *dir, const char *node_id, char *err, size_t errlen, char *created,
                      size_t created_size)
{
	if (created && created_size)
		created[0] = '\0';
	/* Judged before anything is created: a link to / must not get a
	 * folder or a probe file made through it. */
	char why[400];
	if (oh_storage_real_check(dir, why, sizeof why)) {
		snprintf(err, errlen, "%.80s %s", dir, why);
		return false;
	}
	if (!oh_mkdirs_created(dir, 0750, created, created_size))
		return fail(err, errlen, "create the folder", dir);
	struct stat sb;
	if (stat(dir, &sb) != 0)
		return fail(err, errlen, "read", dir);
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(err, errlen, "%s is not a folder", dir);
		return false;
	}
	char token[33];
	if (!oh_random_hex(token, 16)) {
		snprintf(err, errlen, "no randomness for the probe file");
		return false;
	}
	char path[OH_STORAGE_PATH_MAX + 256];
	int pn = snprintf(path, sizeof path, "%s/.octoha-probe-%.100s-%s", dir, node_id, token);
	if (pn < 0 || (size_t)pn >= sizeof path) {
		snprintf(err, errlen, "the folder path is too long");
		return false;
	}
	char content[128];
	int len = snprintf(content, sizeof content, "octoha storage probe %s %s\n", node_id, token);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return fail(err, errlen, "create a file in", dir);
	bool ok = write(fd, content, (size_t)len) == len;
	if (!ok)
		fail(err, errlen, "write to", dir);
	if (ok && fsync(fd) != 0)
		ok = fail(err, errlen, "fsync a file in", dir);
	if (close(fd) != 0 && ok)
		ok = fail(err, errlen, "close a file in", dir);
	if (ok) {
		char back[sizeof content];
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ok = fail(err, errlen, "read back a file in", dir);
		} else {
			ssize_t got = read(fd, back, sizeof back);
			if (got != len || memcmp(back, content, (size_t)len) != 0) {
				snprintf(err, errlen, "a file written to %s read back different",
				         dir);
				ok = false;
			}
			close(fd);
		}
	}
	if (unlink(path) != 0 && ok)
		ok = fail(err, errlen, "delete a file in", dir);
	return ok;
}

/* ---- the live view ----------------------------------------------------- */

struct oh_storage {
	pthread_mutex_t mu;
	char defaults[OH_FOLDER__COUNT][OH_STORAGE_PATH_MAX + 1];
	char path[OH_FOLDER__COUNT][OH_STORAGE_PATH_MAX + 1]; /* in use */
	bool ok[OH_FOLDER__COUNT];                            /* last check passed */
	bool checked[OH_FOLDER__COUNT];
	/* Paths used before, most recent first, for logs left behind. */
	char used[OH_FOLDER__COUNT][OH_STORAGE_USED_MAX - 1][OH_STORAGE_PATH_MAX + 1];
};

oh_storage_t *oh_storage_new(const char *const defaults[OH_FOLDER__COUNT])
{
	oh_storage_t *st = calloc(1, sizeof *st);
	if (!st)
		return NULL;
	pthread_mutex_init(&st->mu, NULL);
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		snprintf(st->defaults[f], sizeof st->defaults[f], "%s", defaults[f]);
		snprintf(st->path[f], sizeof st->path[f], "%s", defaults[f]);
	}
	return st;
}

void oh_storage_free(oh_storage_t *st)
{
	if (!st)
		return;
	pthread_mutex_destroy(&st->mu);
	free(st);
}

void oh_storage_path(oh_storage_t *st, oh_folder_t f, char *buf, size_t size)
{
	pthread_mutex_lock(&st->mu);
	snprintf(buf, size, "%s", f < OH_FOLDER__COUNT ? st->path[f] : "");
	pthread_mutex_unlock(&st->mu);
}

void oh_storage_paths_used(oh_storage_t *st, oh_folder_t f, oh_storage_used_t *out)
{
	out->n = 0;
	if (f >= OH_FOLDER__COUNT)
		return;
	pthread_mutex_lock(&st->mu);
	snprintf(out->path[out->n++], sizeof out->path[0], "%s", st->path[f]);
	for (size_t i = 0; i < OH_STORAGE_USED_MAX - 1 && st->used[f][i][0]; i++)
		snprintf(out->path[out->n++], sizeof out->path[0], "%s", st->used[f][i]);
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < out->n; i++)
		out->v[i] = out->path[i];
}

bool oh_storage_ok(oh_storage_t *st)
{
	pthread_mutex_lock(&st->mu);
	bool ok = true;
	for (int f = 0; f < OH_FOLDER__COUNT; f++)
		ok = ok && st->checked[f] && st->ok[f];
	pthread_mutex_unlock(&st->mu);
	return ok;
}

db_status_t oh_storage_sync(oh_storage_t *st, db_pool_t *pool, const char *node_id, bool force,
                            bool *changed)
{
	if (changed)
		*changed = false;
	oh_storage_active_t a;
	db_status_t s = oh_storage_active_get(pool, &a);
	if (s != DB_OK)
		return s;
	char want[OH_FOLDER__COUNT][OH_STORAGE_PATH_MAX + 1];
	bool check[OH_FOLDER__COUNT];
	pthread_mutex_lock(&st->mu);
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		snprintf(want[f], sizeof want[f], "%s", a.f[f].set ? a.f[f].path : st->defaults[f]);
		bool moved = strcmp(want[f], st->path[f]) != 0;
		if (moved && changed)
			*changed = true;
		check[f] = force || moved || !st->checked[f] || !st->ok[f];
	}
	pthread_mutex_unlock(&st->mu);

	/* The probes run without the lock: a slow share must not stall readers. */
	oh_storage_check_t done[OH_FOLDER__COUNT];
	size_t n = 0;
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		if (!check[f])
			continue;
		oh_storage_check_t *k = &done[n++];
		memset(k, 0, sizeof *k);
		snprintf(k->node_id, sizeof k->node_id, "%s", node_id);
		k->folder = (oh_folder_t)f;
		snprintf(k->path, sizeof k->path, "%.400s", want[f]);
		k->ok = oh_storage_probe(want[f], node_id, k->error, sizeof k->error, NULL, 0);
	}
	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < n; i++) {
		oh_folder_t f = done[i].folder;
		if (strcmp(st->path[f], done[i].path) != 0) {
			memmove(st->used[f][1], st->used[f][0],
			        (OH_STORAGE_USED_MAX - 2) * sizeof st->used[f][0]);
			memcpy(st->used[f][0], st->path[f], sizeof st->used[f][0]);
		}
		snprintf(st->path[f], sizeof st->path[f], "%s", done[i].path);
		st->ok[f] = done[i].ok;
		st->checked[f] = true;
	}
	pthread_mutex_unlock(&st->mu);
	s = oh_storage_record_checks(pool, done, n);
	if (s != DB_OK) {
		/* Not recorded: check these again next time, so the record follows. */
		pthread_mutex_lock(&st->mu);
		for (size_t i = 0; i < n; i++)
			st->checked[done[i].folder] = false;
		pthread_mutex_unlock(&st->mu);
	}
	return s;
}
