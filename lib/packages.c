#include "packages.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/tasks_store.h"
#include "events.h"
#include "hash_pipe.h"
#include "multipart.h"
#include "nuspec.h"
#include "oh_crypto.h"
#include "oh_fs.h"
#include "oh_json.h"
#include "oh_log.h"
#include "package_names.h"
#include "spaces.h"
#include "tasks.h"

#define READ_CHUNK   (256 * 1024)
#define DRAIN_MAX    (64LL * 1024 * 1024)
#define UPLOADS_DIR  ".uploads"
#define TEMP_SUFFIX  ".part"
#define PUSH_RETRIES 5

bool oh_overwrite_parse(const char *name, oh_overwrite_t *out)
{
	static const char *const names[] = {"FailIfExists", "OverwriteExisting", "IgnoreIfExists"};
	for (int i = 0; i < 3; i++)
		if (strcmp(name, names[i]) == 0) {
			*out = (oh_overwrite_t)i;
			return true;
		}
	return false;
}

/* ---- the upload's receiving end --------------------------------------- */

typedef enum { UP_OK = 0, UP_INVALID, UP_TOO_LARGE, UP_NO_SPACE, UP_STORAGE } up_fail_t;

typedef struct {
	int fd;
	int64_t size, max;
	oh_hash_pipe_t *hp; /* hashes what is written, on its own thread */
	bool in_file;
	int files;
	oh_package_name_t name;
	char part_name[256];
	up_fail_t fail;
	char why[400];
} upload_t;

static int part_begin(void *ctx, const oh_part_t *part)
{
	upload_t *u = ctx;
	if (!part->has_filename) {
		u->in_file = false; /* an ordinary form field: ignored */
		return 0;
	}
	if (++u->files > 1) {
		u->fail = UP_INVALID;
		snprintf(u->why, sizeof u->why,
		         "The request has more than one file part; send one package per request.");
		return 1;
	}
	snprintf(u->part_name, sizeof u->part_name, "%s", part->name);
	if (!oh_package_name_parse(part->filename, &u->name, u->why, sizeof u->why)) {
		u->fail = UP_INVALID;
		return 1;
	}
	u->in_file = true;
	return 0;
}

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = ENOSPC;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static int part_data(void *ctx, const char *data, size_t len)
{
	upload_t *u = ctx;
	if (!u->in_file)
		return 0;
	u->size += (int64_t)len;
	if (u->max > 0 && u->size > u->max) {
		u->fail = UP_TOO_LARGE;
		snprintf(u->why, sizeof u->why,
		         "The package is larger than this server accepts (%lld bytes).",
		         (long long)u->max);
		return 1;
	}
	if (!write_all(u->fd, data, len)) {
		int e = errno;
		u->fail = (e == ENOSPC || e == EDQUOT) ? UP_NO_SPACE : UP_STORAGE;
		snprintf(u->why, sizeof u->why,
		         "Writing the package to the Packages folder failed: %s.", strerror(e));
		return 1;
	}
	oh_hash_pipe_add(u->hp, data, len);
	return 0;
}

static int part_end(void *ctx)
{
	upload_t *u = ctx;
	u->in_file = false;
	return 0;
}

/* Reads and discards what is left of BODY, up to MAX bytes, so that the
 * client (still sending) gets to read the answer. */
static void drain(oh_reader_t *body, char *buf, int64_t max)
{
	int64_t got = 0;
	while (got < max) {
		ssize_t r = body->read(body, buf, READ_CHUNK);
		if (r <= 0)
			return;
		got += r;
	}
}

static bool fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

/* Removes REL from every Packages folder this node used. */
static void remove_file(oh_storage_t *storage, const char *rel)
{
	if (!rel[0])
		return;
	oh_storage_used_t used;
	oh_storage_paths_used(storage, OH_FOLDER_PACKAGES, &used);
	for (size_t i = 0; i < used.n; i++) {
		char path[OH_STORAGE_PATH_MAX + 450];
		snprintf(path, sizeof path, "%s/%s", used.v[i], rel);
		if (unlink(path) != 0 && errno != ENOENT)
			oh_log(OH_LOG_WARN, "cannot remove a package file", "path=%s error=%s",
			       oh_q(path), strerror(errno));
	}
}

/* ---- writing the row -------------------------------------------------- */

typedef struct {
	const oh_push_t *p;
	oh_package_t *row;      /* the new row (published set here) */
	oh_package_t *existing; /* out: the row found */
	bool found;             /* out */
	bool replaced;          /* out: EXISTING was replaced */
	bool conflict;          /* out: a concurrent replace moved the row */
} write_ctx_t;

static db_status_t write_txn(db_conn_t *c, void *vctx)
{
	write_ctx_t *x = vctx;
	x->found = x->replaced = x->conflict = false;
	db_status_t s = db_now_ms(c, &x->row->published);
	if (s != DB_OK)
		return s;
	char key[OH_PACKAGE_ID_MAX + 1];
	oh_package_key(x->row->package_id, key, sizeof key);
	if (x->p->mode == OH_OVERWRITE_REPLACE) {
		s = packages_store_get_version(c, x->row->space_id, key, x->row->version_sort,
		                               x->existing);
		if (s == DB_OK) {
			int64_t rows = 0;
			s = packages_store_delete_if(c, x->existing->id, x->existing->file_name,
			                             &rows);
			if (s != DB_OK)
				return s;
			if (rows == 0) {
				x->conflict = true;
				return DB_ABORT;
			}
			x->replaced = true;
		} else if (s != DB_NO_ROWS) {
			return s;
		}
	}
	s = packages_store_insert(c, x->row);
	if (s == DB_DUPLICATE) {
		db_status_t g = packages_store_get_version(c, x->row->space_id, key,
		                                           x->row->version_sort, x->existing);
		if (g == DB_NO_ROWS) /* the Id itself is taken under another key */
			g = packages_store_get(c, x->row->id, x->existing);
		x->found = g == DB_OK;
		if (g != DB_OK && g != DB_NO_ROWS)
			return g;
		return DB_DUPLICATE;
	}
	if (s != DB_OK)
		return s;
	const oh_event_spec_t *audit = x->p->audit;
	if (audit) {
		json_t *d = oh_json_check(json_object());
		oh_json_set_new(d, "PackageId", json_string(x->row->package_id));
		oh_json_set_new(d, "Version", json_string(x->row->version));
		oh_json_set_new(d, "PackageSizeBytes", json_integer(x->row->size));
		oh_json_set_new(d, "Hash", json_string(x->row->sha1));
		oh_json_set_new(d, "Replaced", json_boolean(x->replaced));
		char msg[300];
		snprintf(msg, sizeof msg, "Package %s %s was %s.", x->row->package_id,
		         x->row->version, x->replaced ? "replaced" : "pushed");
		oh_event_spec_t ev = *audit;
		ev.resource_id = x->row->id;
		ev.message = msg;
		ev.details = d;
		s = oh_event_record_tx(c, &ev, NULL);
		json_decref(d);
	}
	return s;
}

/* After a write whose COMMIT lost its answer: the row with this upload's Id
 * and its own file name is there exactly when it was committed (its file is
 * then the package's; without this check it would be deleted under a live
 * row). */
static db_status_t write_verify(db_conn_t *c, void *vctx)
{
	write_ctx_t *x = vctx;
	oh_package_t found;
	memset(&found, 0, sizeof found);
	db_status_t s = packages_store_get(c, x->row->id, &found);
	if (s == DB_OK && strcmp(found.file_name, x->row->file_name) != 0)
		s = DB_NO_ROWS;
	return s;
}

typedef struct {
	const char *space, *key, *sort;
	oh_package_t *row;
} probe_t;

static db_status_t probe_txn(db_conn_t *c, void *vctx)
{
	probe_t *pr = vctx;
	return packages_store_get_version(c, pr->space, pr->key, pr->sort, pr->row);
}

/* ---- push --------------------------------------------------------------- */

/* Copies SRC into DST (SIZE bytes), cut short when it must be. */
static void copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n > size - 1)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void set_out(oh_push_result_t *out, oh_push_outcome_t o, const char *field, const char *msg)
{
	out->outcome = o;
	out->field = field;
	copy(out->message, sizeof out->message, msg ? msg : "");
}

/* Fills ROW's identity from the name or the nuspec.  False with OUT set. */
static bool identify(const char *tmp, upload_t *u, oh_package_t *row, oh_push_result_t *out)
{
	const char *id = u->name.id, *version = u->name.version;
	oh_nuspec_t *ns = NULL;
	if (strcmp(u->name.ext, ".nupkg") == 0) {
		ns = calloc(1, sizeof *ns);
		if (!ns) {
			set_out(out, OH_PUSH_STORAGE, NULL, "out of memory");
			return false;
		}
		char why[400];
		oh_nuspec_status_t st = oh_nuspec_read(tmp, ns, why, sizeof why);
		if (st == OH_NUSPEC_NOT_ZIP || st == OH_NUSPEC_INVALID) {
			set_out(out, OH_PUSH_INVALID, "fileToUpload", why);
			free(ns);
			return false;
		}
		if (st == OH_NUSPEC_OK) {
			if (!oh_package_id_valid(ns->id) ||
			    !oh_package_version_valid(ns->version)) {
				set_out(
				    out, OH_PUSH_INVALID, "fileToUpload",
				    "The package's .nuspec id or version is not a valid package id "
				    "and SemVer version.");
				free(ns);
				return false;
			}
			id = ns->id;
			version = ns->version;
			copy(row->title, sizeof row->title, ns->title);
			copy(row->summary, sizeof row->summary, ns->summary);
			copy(row->description, sizeof row->description, ns->description);
			copy(row->release_notes, sizeof row->release_notes, ns->release_notes);
		}
	}
	/* Both were validated: at most 100 characters each. */
	copy(row->package_id, sizeof row->package_id, id);
	copy(row->version, sizeof row->version, version);
	snprintf(row->id, sizeof row->id, OH_PACKAGE_ID_PREFIX "%s.%s", row->package_id,
	         row->version);
	copy(row->ext, sizeof row->ext, u->name.ext);
	oh_version_sort_key(version, row->version_sort, sizeof row->version_sort);
	free(ns);
	return true;
}

void oh_package_push(const oh_push_t *p, oh_reader_t *body, const char *content_type,
                     oh_push_result_t *out)
{
	memset(out, 0, sizeof *out);
	char boundary[OH_MULTIPART_BOUNDARY_MAX + 1];
	char *buf = malloc(READ_CHUNK);
	oh_package_t *row = calloc(1, sizeof *row);
	if (!buf || !row) {
		set_out(out, OH_PUSH_STORAGE, NULL, "out of memory");
		free(buf);
		free(row);
		return;
	}
	char dir[OH_STORAGE_PATH_MAX + 1], tmpdir[OH_STORAGE_PATH_MAX + 20];
	char tmp[OH_STORAGE_PATH_MAX + 80], final[OH_STORAGE_PATH_MAX + 450];
	tmp[0] = final[0] = '\0';
	upload_t u = {.fd = -1, .max = p->max_bytes};
	oh_multipart_t *mp = NULL;
	bool drain_rest = true;

	if (!oh_multipart_boundary(content_type, boundary, sizeof boundary)) {
		set_out(out, OH_PUSH_INVALID, NULL,
		        "The request must be multipart/form-data with a boundary, the package in "
		        "a file part.");
		goto done;
	}
	oh_storage_path(p->storage, OH_FOLDER_PACKAGES, dir, sizeof dir);
	snprintf(tmpdir, sizeof tmpdir, "%s/" UPLOADS_DIR, dir);
	char token[17];
	if (!oh_random_hex(token, 8) || !oh_mkdirs(tmpdir, 0750)) {
		char m[OH_STORAGE_PATH_MAX + 100];
		snprintf(m, sizeof m, "The Packages folder %s cannot be used: %s.", tmpdir,
		         strerror(errno));
		set_out(out, errno == ENOSPC ? OH_PUSH_NO_SPACE : OH_PUSH_STORAGE, NULL, m);
		goto done;
	}
	snprintf(tmp, sizeof tmp, "%s/%s" TEMP_SUFFIX, tmpdir, token);
	u.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	u.hp = u.fd >= 0 ? oh_hash_pipe_new(READ_CHUNK) : NULL;
	if (u.fd < 0 || !u.hp) {
		char m[OH_STORAGE_PATH_MAX + 200];
		snprintf(m, sizeof m, "A temporary file cannot be created in %s: %s.", tmpdir,
		         strerror(errno));
		set_out(out, errno == ENOSPC ? OH_PUSH_NO_SPACE : OH_PUSH_STORAGE, NULL, m);
		goto done;
	}
	oh_multipart_cb_t cb = {part_begin, part_data, part_end};
	mp = oh_multipart_new(boundary, &cb, &u);
	if (!mp) {
		set_out(out, OH_PUSH_STORAGE, NULL, "out of memory");
		goto done;
	}
	oh_mp_status_t ms = OH_MP_OK;
	int64_t epilogue = 0;
	for (;;) {
		/* Epilogue bytes go to BUF; the body's to the hasher's buffers. */
		char *rb = ms == OH_MP_DONE ? buf : oh_hash_pipe_buffer(u.hp);
		ssize_t r = body->read(body, rb, READ_CHUNK);
		if (rb != buf && r <= 0)
			oh_hash_pipe_release(u.hp);
		if (r < 0) {
			set_out(out, OH_PUSH_CUT, NULL,
			        "The upload failed before it was complete.");
			drain_rest = false;
			goto done;
		}
		if (r == 0)
			break;
		if (ms == OH_MP_DONE) {
			/* The epilogue: read (for keep-alive) but not kept. */
			epilogue += r;
			if (epilogue > READ_CHUNK)
				break;
			continue;
		}
		ms = oh_multipart_feed(mp, rb, (size_t)r);
		oh_hash_pipe_release(u.hp);
		if (ms != OH_MP_OK && ms != OH_MP_DONE)
			break;
	}
	if (ms == OH_MP_OK)
		ms = oh_multipart_finish(mp);
	if (ms == OH_MP_STOPPED) {
		static const oh_push_outcome_t map[] = {
		    [UP_INVALID] = OH_PUSH_INVALID,
		    [UP_TOO_LARGE] = OH_PUSH_TOO_LARGE,
		    [UP_NO_SPACE] = OH_PUSH_NO_SPACE,
		    [UP_STORAGE] = OH_PUSH_STORAGE,
		};
		set_out(out, map[u.fail], u.fail == UP_INVALID ? "fileToUpload" : NULL, u.why);
		goto done;
	}
	if (ms == OH_MP_BAD_HEADERS) {
		set_out(out, OH_PUSH_INVALID, NULL,
		        "The multipart body is malformed (a part's headers).");
		goto done;
	}
	if (ms == OH_MP_TRUNCATED) {
		set_out(out, OH_PUSH_CUT, NULL,
		        "The upload ended before the multipart body was complete.");
		drain_rest = false;
		goto done;
	}
	drain_rest = false;
	if (u.files == 0) {
		set_out(out, OH_PUSH_INVALID, "fileToUpload",
		        "The request has no file part: send the package as a file part "
		        "(fileToUpload) of a multipart/form-data body.");
		goto done;
	}
	if (u.size == 0) {
		set_out(out, OH_PUSH_INVALID, "fileToUpload", "The package file is empty.");
		goto done;
	}
	if (fsync(u.fd) != 0) {
		int e = errno;
		char m[300];
		snprintf(m, sizeof m, "The package cannot be made durable: %s.", strerror(e));
		set_out(out, e == ENOSPC || e == EDQUOT ? OH_PUSH_NO_SPACE : OH_PUSH_STORAGE, NULL,
		        m);
		goto done;
	}
	close(u.fd);
	u.fd = -1;
	if (!oh_hash_pipe_finish(u.hp, row->sha1, row->sha256)) {
		set_out(out, OH_PUSH_STORAGE, NULL, "Hashing the package failed.");
		goto done;
	}
	row->size = u.size;
	snprintf(row->space_id, sizeof row->space_id, "%s", p->space_id);
	snprintf(row->published_by, sizeof row->published_by, "%s",
	         p->published_by ? p->published_by : "");
	if (!identify(tmp, &u, row, out))
		goto done;

	/* A version that is there already needs no rename at all. */
	char key[OH_PACKAGE_ID_MAX + 1];
	oh_package_key(row->package_id, key, sizeof key);
	if (p->mode != OH_OVERWRITE_REPLACE) {
		probe_t pr = {row->space_id, key, row->version_sort, &out->package};
		if (db_txn(p->pool, DB_TXN_READ, probe_txn, &pr) == DB_OK) {
			set_out(out,
			        p->mode == OH_OVERWRITE_IGNORE ? OH_PUSH_IGNORED : OH_PUSH_EXISTS,
			        "fileToUpload", "This package version already exists.");
			goto done;
		}
		memset(&out->package, 0, sizeof out->package);
	}
	char rel[sizeof row->file_name];
	snprintf(rel, sizeof rel, "%s/%s/%s.%s_%s%s", row->space_id, row->package_id,
	         row->package_id, row->version, token, row->ext);
	memcpy(row->file_name, rel, sizeof rel);
	char pkgdir[OH_STORAGE_PATH_MAX + 250];
	snprintf(pkgdir, sizeof pkgdir, "%s/%s/%s", dir, row->space_id, row->package_id);
	snprintf(final, sizeof final, "%s/%s", dir, rel);
	if (!oh_mkdirs(pkgdir, 0750) || rename(tmp, final) != 0) {
		int e = errno;
		char m[OH_STORAGE_PATH_MAX + 400];
		snprintf(m, sizeof m, "The package cannot be moved into %s: %s.", pkgdir,
		         strerror(e));
		set_out(out, e == ENOSPC ? OH_PUSH_NO_SPACE : OH_PUSH_STORAGE, NULL, m);
		final[0] = '\0';
		goto done;
	}
	tmp[0] = '\0';
	if (!fsync_dir(pkgdir) || !fsync_dir(tmpdir)) {
		char m[OH_STORAGE_PATH_MAX + 300];
		snprintf(m, sizeof m, "The Packages folder %s cannot be synced: %s.", pkgdir,
		         strerror(errno));
		set_out(out, OH_PUSH_STORAGE, NULL, m);
		goto done;
	}
	oh_package_t *existing = calloc(1, sizeof *existing);
	if (!existing) {
		set_out(out, OH_PUSH_STORAGE, NULL, "out of memory");
		goto done;
	}
	write_ctx_t x = {.p = p, .row = row, .existing = existing};
	db_status_t s = DB_ABORT;
	for (int attempt = 0; attempt < PUSH_RETRIES; attempt++) {
		s = db_txn_verified(p->pool, write_txn, write_verify, &x);
		/* Another replace moved the row first, or (OverwriteExisting)
		 * another upload inserted this version between our read and our
		 * insert: read again and replace that one. */
		bool again = (s == DB_ABORT && x.conflict) ||
		             (s == DB_DUPLICATE && p->mode == OH_OVERWRITE_REPLACE);
		if (!again)
			break;
	}
	if (s == DB_OK) {
		final[0] = '\0'; /* it is the package's now */
		if (x.replaced)
			remove_file(p->storage, existing->file_name);
		out->package = *row;
		set_out(out, x.replaced ? OH_PUSH_REPLACED : OH_PUSH_CREATED, NULL, NULL);
	} else if (s == DB_DUPLICATE && x.found) {
		out->package = *existing;
		set_out(out, p->mode == OH_OVERWRITE_IGNORE ? OH_PUSH_IGNORED : OH_PUSH_EXISTS,
		        "fileToUpload", "This package version already exists.");
	} else {
		out->db = s == DB_ABORT || s == DB_DUPLICATE ? DB_TRANSIENT : s;
		set_out(out, OH_PUSH_DB, NULL, "The package could not be recorded.");
	}
	free(existing);

done:
	if (drain_rest && out->outcome != OH_PUSH_CUT)
		drain(body, buf, DRAIN_MAX);
	if (u.fd >= 0)
		close(u.fd);
	if (tmp[0])
		unlink(tmp);
	if (final[0])
		unlink(final);
	oh_hash_pipe_free(u.hp);
	oh_multipart_free(mp);
	free(row);
	free(buf);
}

/* ---- reading and deleting ------------------------------------------------ */

typedef struct {
	const char *id;
	oh_package_t *out;
} get_t;

static db_status_t get_txn(db_conn_t *c, void *vctx)
{
	get_t *g = vctx;
	return packages_store_get(c, g->id, g->out);
}

db_status_t oh_package_get(db_pool_t *pool, const char *id, oh_package_t *out)
{
	memset(out, 0, sizeof *out);
	get_t g = {id, out};
	return db_txn(pool, DB_TXN_READ, get_txn, &g);
}

typedef struct {
	const packages_filter_t *f;
	oh_package_list_t *out;
} list_t;

static void add_row(void *ctx, const packages_row_t *r)
{
	oh_package_list_t *l = ctx;
	oh_package_t *nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (!nv)
		abort(); /* out of memory: stop loudly rather than list half */
	l->v = nv;
	l->v[l->n++] = *r;
}

static db_status_t list_txn(db_conn_t *c, void *vctx)
{
	list_t *x = vctx;
	oh_package_list_free(x->out);
	return packages_store_list(c, x->f, add_row, x->out, &x->out->total);
}

db_status_t oh_packages_list(db_pool_t *pool, const packages_filter_t *f, oh_package_list_t *out)
{
	memset(out, 0, sizeof *out);
	list_t x = {f, out};
	db_status_t s = db_txn(pool, DB_TXN_READ, list_txn, &x);
	if (s != DB_OK)
		oh_package_list_free(out);
	return s;
}

void oh_package_list_free(oh_package_list_t *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
	l->total = 0;
}

int oh_package_open(oh_storage_t *storage, const oh_package_t *p)
{
	oh_storage_used_t used;
	oh_storage_paths_used(storage, OH_FOLDER_PACKAGES, &used);
	int err = ENOENT;
	for (size_t i = 0; i < used.n; i++) {
		char path[OH_STORAGE_PATH_MAX + 450];
		snprintf(path, sizeof path, "%s/%s", used.v[i], p->file_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != ENOENT && i == 0)
			err = errno;
	}
	errno = err;
	return -1;
}

typedef struct {
	const char *id;
	const oh_event_spec_t *audit;
	oh_package_t *row;
} delete_t;

static db_status_t delete_txn(db_conn_t *c, void *vctx)
{
	delete_t *d = vctx;
	db_status_t s = packages_store_get(c, d->id, d->row);
	if (s != DB_OK)
		return s;
	int64_t rows = 0;
	s = packages_store_delete(c, d->id, &rows);
	if (s == DB_OK && rows == 0)
		s = DB_NO_ROWS;
	if (s == DB_OK && d->audit) {
		char msg[300];
		snprintf(msg, sizeof msg, "Package %s %s was deleted.", d->row->package_id,
		         d->row->version);
		oh_event_spec_t ev = *d->audit;
		ev.resource_id = d->row->id;
		ev.message = msg;
		s = oh_event_record_tx(c, &ev, NULL);
	}
	return s;
}

db_status_t oh_package_delete(db_pool_t *pool, oh_storage_t *storage, const char *id,
                              const struct oh_event_spec *audit, oh_package_t *out)
{
	oh_package_t row;
	memset(&row, 0, sizeof row);
	delete_t d = {id, audit, &row};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, delete_txn, &d);
	if (s == DB_OK)
		remove_file(storage, row.file_name);
	if (out)
		*out = row;
	return s;
}

/* ---- retention and sweeping ---------------------------------------------- */

typedef struct {
	char (*keys)[OH_PACKAGE_ID_MAX + 1];
	size_t n, cap;
} keys_t;

static void add_key(void *ctx, const char *key)
{
	keys_t *k = ctx;
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 64;
		void *nv = realloc(k->keys, k->cap * sizeof *k->keys);
		if (!nv)
			abort();
		k->keys = nv;
	}
	snprintf(k->keys[k->n++], sizeof k->keys[0], "%s", key);
}

typedef struct {
	const char *space;
	int64_t keep;
	keys_t *keys;
} over_t;

static db_status_t over_txn(db_conn_t *c, void *vctx)
{
	over_t *o = vctx;
	o->keys->n = 0;
	return packages_store_over_retention(c, o->space, o->keep, add_key, o->keys);
}

typedef struct {
	const char *space, *key;
	int64_t keep;
	oh_package_list_t *old;
} beyond_t;

static db_status_t beyond_txn(db_conn_t *c, void *vctx)
{
	beyond_t *b = vctx;
	oh_package_list_free(b->old);
	return packages_store_beyond(c, b->space, b->key, b->keep, add_row, b->old);
}

typedef struct {
	const char *id, *file;
	int64_t rows;
} delete_if_t;

static db_status_t delete_if_txn(db_conn_t *c, void *vctx)
{
	delete_if_t *d = vctx;
	return packages_store_delete_if(c, d->id, d->file, &d->rows);
}

typedef struct {
	const char *file;
	bool used;
} used_t;

static db_status_t used_txn(db_conn_t *c, void *vctx)
{
	used_t *u = vctx;
	return packages_store_file_used(c, u->file, &u->used);
}

static bool stale(const struct stat *st)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t age = ((int64_t)now.tv_sec - (int64_t)st->st_mtim.tv_sec) * 1000;
	return age >= OH_PACKAGE_STALE_MS;
}

static void say(void (*log)(void *, const char *), void *ctx, const char *fmt, const char *a,
                long long n)
{
	if (!log)
		return;
	char line[900];
	snprintf(line, sizeof line, fmt, a, n);
	log(ctx, line);
}

/* Sweeps the dead uploads' temporary files in DIR/.uploads. */
static void sweep_temp(const char *dir, void (*log)(void *, const char *), void *log_ctx,
                       oh_retention_result_t *out)
{
	char tmpdir[OH_STORAGE_PATH_MAX + 20];
	snprintf(tmpdir, sizeof tmpdir, "%s/" UPLOADS_DIR, dir);
	DIR *d = opendir(tmpdir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n <= strlen(TEMP_SUFFIX) ||
		    strcmp(e->d_name + n - strlen(TEMP_SUFFIX), TEMP_SUFFIX) != 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || !stale(&st))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
			out->temp_swept++;
			say(log, log_ctx, "Removed the temporary file of a dead upload: %s%.0lld",
			    e->d_name, 0);
		}
	}
	closedir(d);
}

/* Sweeps files under DIR/SPACE/<PackageId>/ that no row names. */
static db_status_t sweep_orphans(db_pool_t *pool, const char *dir, const char *space,
                                 void (*log)(void *, const char *), void *log_ctx,
                                 oh_retention_result_t *out)
{
	char sdir[OH_STORAGE_PATH_MAX + 60];
	snprintf(sdir, sizeof sdir, "%s/%s", dir, space);
	DIR *d = opendir(sdir);
	if (!d)
		return DB_OK;
	db_status_t s = DB_OK;
	struct dirent *e;
	while (s == DB_OK && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !oh_package_id_valid(e->d_name))
			continue;
		char pdir[OH_STORAGE_PATH_MAX + 200];
		if (snprintf(pdir, sizeof pdir, "%s/%s", sdir, e->d_name) >= (int)sizeof pdir)
			continue;
		DIR *pd = opendir(pdir);
		if (!pd)
			continue;
		struct dirent *f;
		while (s == DB_OK && (f = readdir(pd)) != NULL) {
			struct stat st;
			if (f->d_name[0] == '.' ||
			    fstatat(dirfd(pd), f->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
			    !S_ISREG(st.st_mode) || !stale(&st))
				continue;
			char rel[sizeof((oh_package_t *)0)->file_name];
			if (snprintf(rel, sizeof rel, "%s/%s/%s", space, e->d_name, f->d_name) >=
			    (int)sizeof rel)
				continue;
			used_t u = {rel, true};
			s = db_txn(pool, DB_TXN_READ, used_txn, &u);
			if (s == DB_OK && !u.used && unlinkat(dirfd(pd), f->d_name, 0) == 0) {
				out->orphans++;
				say(log, log_ctx, "Removed a file no package names: %s%.0lld", rel,
				    0);
			}
		}
		closedir(pd);
	}
	closedir(d);
	return s;
}

db_status_t oh_packages_retain(db_pool_t *pool, oh_storage_t *storage, const char *space_id,
                               int64_t keep, void (*log)(void *, const char *), void *log_ctx,
                               oh_retention_result_t *out)
{
	memset(out, 0, sizeof *out);
	db_status_t s = DB_OK;
	if (keep > 0) {
		keys_t keys = {0};
		over_t o = {space_id, keep, &keys};
		s = db_txn(pool, DB_TXN_READ, over_txn, &o);
		for (size_t i = 0; s == DB_OK && i < keys.n; i++) {
			oh_package_list_t old = {0};
			beyond_t b = {space_id, keys.keys[i], keep, &old};
			s = db_txn(pool, DB_TXN_READ, beyond_txn, &b);
			for (size_t j = 0; s == DB_OK && j < old.n; j++) {
				/* Row first, only while it still names this file; then
				 * the file. */
				delete_if_t d = {old.v[j].id, old.v[j].file_name, 0};
				s = db_txn(pool, DB_TXN_WRITE, delete_if_txn, &d);
				if (s == DB_OK && d.rows > 0) {
					remove_file(storage, old.v[j].file_name);
					out->deleted++;
					char what[300];
					snprintf(what, sizeof what, "%s %s", old.v[j].package_id,
					         old.v[j].version);
					say(log, log_ctx,
					    "Deleted %s: only the newest %lld versions of a "
					    "package are kept.",
					    what, (long long)keep);
				}
			}
			oh_package_list_free(&old);
		}
		free(keys.keys);
		if (s != DB_OK)
			return s;
	}
	char dir[OH_STORAGE_PATH_MAX + 1];
	oh_storage_path(storage, OH_FOLDER_PACKAGES, dir, sizeof dir);
	sweep_temp(dir, log, log_ctx, out);
	return sweep_orphans(pool, dir, space_id, log, log_ctx, out);
}

typedef struct {
	int64_t every_ms, keep;
	bool used; /* this node's Packages folder holds uploads */
	bool *queued;
} hk_t;

static db_status_t hk_txn(db_conn_t *c, void *vctx)
{
	hk_t *h = vctx;
	*h->queued = false;
	int64_t now;
	bool won = false;
	db_status_t s = db_now_ms(c, &now);
	if (s == DB_OK)
		s = tasks_store_take_slot(c, "package-retention", now, h->every_ms, &won);
	if (s != DB_OK || !won)
		return s;
	if (!h->used) {
		int64_t n = 0;
		s = packages_store_count(c, &n);
		if (s != DB_OK || n == 0)
			return s;
	}
	json_t *args = oh_json_check(json_object());
	oh_json_set_new(args, "SpaceId", json_string(OH_DEFAULT_SPACE_ID));
	oh_json_set_new(args, "KeepVersions", json_integer(h->keep));
	oh_task_spec_t spec = {.name = OH_PACKAGE_RETENTION_KIND,
	                       .description =
	                           "Apply package retention and sweep the Packages folder",
	                       .arguments = args,
	                       .max_attempts = 3,
	                       .requested_by = "system"};
	oh_task_t t;
	s = oh_task_insert(c, &spec, &t);
	json_decref(args);
	if (s == DB_OK) {
		oh_task_clear(&t);
		*h->queued = true;
	}
	return s;
}

db_status_t oh_packages_housekeeping(db_pool_t *pool, oh_storage_t *storage, int64_t every_ms,
                                     int64_t keep, bool *queued)
{
	bool q = false;
	char dir[OH_STORAGE_PATH_MAX + 1], sub[OH_STORAGE_PATH_MAX + 64];
	oh_storage_path(storage, OH_FOLDER_PACKAGES, dir, sizeof dir);
	struct stat st;
	snprintf(sub, sizeof sub, "%s/" UPLOADS_DIR, dir);
	bool used = stat(sub, &st) == 0;
	snprintf(sub, sizeof sub, "%s/" OH_DEFAULT_SPACE_ID, dir);
	used = used || stat(sub, &st) == 0;
	hk_t h = {every_ms > 0 ? every_ms : 3600000, keep, used, &q};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, hk_txn, &h);
	if (queued)
		*queued = s == DB_OK && q;
	return s;
}
