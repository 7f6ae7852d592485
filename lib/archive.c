#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "db/events_store.h"
#include "events.h"
#include "oh_crypto.h"
#include "oh_json.h"
#include "oh_log.h"

#define PAGE   1000
#define DAY_MS (86400LL * 1000)

typedef char event_id_t[51];

/* A growing array of event Ids. */
typedef struct {
	event_id_t *v;
	size_t n, cap;
} ids_t;

static void ids_add(ids_t *s, const char *id)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 1024;
		event_id_t *nv = realloc(s->v, s->cap * sizeof *nv);
		if (!nv)
			abort();
		s->v = nv;
	}
	snprintf(s->v[s->n++], sizeof(event_id_t), "%s", id);
}

static int id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* True when the sorted set S holds ID. */
static bool ids_has(const ids_t *s, const char *id)
{
	return s->n > 0 && bsearch(id, s->v, s->n, sizeof(event_id_t), id_cmp) != NULL;
}

/* ---- files ------------------------------------------------------------- */

static bool write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool fsync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	bool ok = fsync(dfd) == 0;
	close(dfd);
	return ok;
}

/* Makes TMP (written, open as FD) durable as PATH: fsync, rename, fsync of
 * the folder.  Closes FD; removes TMP on failure. */
static bool commit_file(int fd, const char *tmp, const char *path, const char *dir)
{
	bool ok = fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return false;
	}
	return fsync_dir(dir);
}

/* Reads PATH whole; NULL when it cannot be read (errno says why). */
static char *read_file(const char *path, size_t *len)
{
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		cap *= 2;
		char *nb = realloc(buf, cap + 1);
		if (!nb)
			free(buf);
		buf = nb;
	}
	bool err = ferror(f);
	fclose(f);
	if (!buf || err) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* ---- one day ------------------------------------------------------------ */

/* The day being written: its temporary file, the running digest, the Ids
 * already in the old file (sorted) and those read from the database. */
typedef struct {
	int fd;
	EVP_MD_CTX *md;
	ids_t in_file, read;
	int64_t last_time;
	event_id_t last_id;
	size_t page_n;
	bool write_failed;
} day_t;

static bool day_write(day_t *d, const char *text, size_t len)
{
	if (!write_all(d->fd, text, len) || EVP_DigestUpdate(d->md, text, len) != 1) {
		d->write_failed = true;
		return false;
	}
	return true;
}

/* Copies the old file at PATH (if any) into the day, line by line,
 * collecting the Id each line starts with. */
static bool copy_old(day_t *d, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	static const char prefix[] = "{\"Id\":\"";
	while ((n = getline(&line, &cap, f)) > 0) {
		if (!day_write(d, line, (size_t)n))
			break;
		/* Cannot happen with rename, but never glue two lines together. */
		if (line[n - 1] != '\n' && !day_write(d, "\n", 1))
			break;
		if (strncmp(line, prefix, sizeof prefix - 1) == 0) {
			char *id = line + sizeof prefix - 1;
			char *end = strchr(id, '"');
			if (end && end - id < (ptrdiff_t)sizeof(event_id_t)) {
				*end = '\0';
				ids_add(&d->in_file, id);
			}
		}
	}
	bool ok = !ferror(f) && !d->write_failed;
	free(line);
	fclose(f);
	if (d->in_file.n > 0) /* qsort and bsearch want a real array */
		qsort(d->in_file.v, d->in_file.n, sizeof(event_id_t), id_cmp);
	return ok;
}

/* One page of events as read in a transaction.  It reaches the file only
 * after the transaction ended, so a transaction the pool retries (a lost
 * connection, a session the server ended) starts its page again instead of
 * writing some events twice. */
typedef struct {
	day_t *d;
	int64_t from, to;
	size_t n;
	char *lines[PAGE]; /* each ends with '\n', not NUL-terminated */
	size_t lens[PAGE];
	event_id_t ids[PAGE];
	int64_t times[PAGE];
} page_ctx_t;

static void page_clear(page_ctx_t *x)
{
	for (size_t i = 0; i < x->n; i++)
		free(x->lines[i]);
	x->n = 0;
}

static void page_row(void *vctx, oh_event_t *e)
{
	page_ctx_t *x = vctx;
	if (x->n < PAGE) {
		json_t *j = oh_event_json(e);
		char *line = oh_json_dump(j);
		json_decref(j);
		size_t len = strlen(line);
		line[len] = '\n'; /* the NUL becomes the line end */
		x->lines[x->n] = line;
		x->lens[x->n] = len + 1;
		snprintf(x->ids[x->n], sizeof x->ids[x->n], "%s", e->id);
		x->times[x->n] = e->occurred;
		x->n++;
	}
	oh_event_clear(e);
}

static db_status_t page_txn(db_conn_t *c, void *vctx)
{
	page_ctx_t *x = vctx;
	page_clear(x);
	return events_store_range(c, x->from, x->to, x->d->last_time, x->d->last_id, PAGE, page_row,
	                          x);
}

/* Writes the page read into the day and moves its cursor past it. */
static void page_write(page_ctx_t *x)
{
	day_t *d = x->d;
	for (size_t i = 0; i < x->n; i++) {
		d->last_time = x->times[i];
		snprintf(d->last_id, sizeof d->last_id, "%s", x->ids[i]);
		ids_add(&d->read, x->ids[i]);
		/* Already in the file: a run that crashed before deleting wrote it. */
		if (!d->write_failed && !ids_has(&d->in_file, x->ids[i]))
			day_write(d, x->lines[i], x->lens[i]);
	}
	d->page_n = x->n;
	page_clear(x);
}

typedef struct {
	const ids_t *ids;
	int64_t deleted;
} delete_ctx_t;

static db_status_t delete_txn(db_conn_t *c, void *vctx)
{
	delete_ctx_t *x = vctx;
	x->deleted = 0;
	for (size_t i = 0; i < x->ids->n; i++) {
		int64_t rows = 0;
		db_status_t s = events_store_delete(c, x->ids->v[i], &rows);
		if (s != DB_OK)
			return s;
		x->deleted += rows;
	}
	return DB_OK;
}

/* Test hook: OCTOHA_FAULT_INJECT=archive-after-write ends the process
 * right after a day file is safely written and before its events are
 * deleted, the worst moment for a crash. */
static void maybe_crash(void)
{
	const char *f = getenv("OCTOHA_FAULT_INJECT");
	if (f && strcmp(f, "archive-after-write") == 0) {
		oh_log(OH_LOG_WARN, "fault injected: exiting after the archive write", NULL);
		_exit(70);
	}
}

/* Archives the events with FROM <= Occurred < TO (all of one UTC day,
 * named DAY) into that day's file, then deletes them. */
static bool archive_day(db_pool_t *pool, const char *dir, const char *day, int64_t from, int64_t to,
                        const oh_archive_stop_t *stop, int64_t *archived, char *err, size_t errlen)
{
	char path[4200], tmp[4300], sumpath[4300];
	snprintf(path, sizeof path, "%s/events-%s.jsonl", dir, day);
	/* A temporary file of this run's own (never another run's, truncated). */
	snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
	snprintf(sumpath, sizeof sumpath, "%s.sha256", path);
	day_t d = {.fd = mkostemp(tmp, O_CLOEXEC), .md = EVP_MD_CTX_new()};
	bool ok = false;
	if (d.fd < 0 || !d.md || EVP_DigestInit_ex(d.md, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (!copy_old(&d, path)) {
		snprintf(err, errlen, "cannot copy %s: %s", path, strerror(errno));
		goto done;
	}
	page_ctx_t *px = calloc(1, sizeof *px);
	if (!px) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	*px = (page_ctx_t){.d = &d, .from = from, .to = to};
	do {
		db_status_t s = db_txn(pool, DB_TXN_READ, page_txn, px);
		if (s != DB_OK) {
			page_clear(px);
			free(px);
			snprintf(err, errlen, "cannot read events: %s", db_status_name(s));
			goto done;
		}
		page_write(px);
		if (stop && stop->fn(stop->ctx)) {
			/* Nothing of this day is deleted yet: the next run redoes it. */
			free(px);
			snprintf(err, errlen, "stopped before the end of %s", day);
			goto done;
		}
	} while (d.page_n == PAGE && !d.write_failed);
	free(px);
	if (d.write_failed) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto done;
	}
	unsigned char md[32];
	unsigned int mdlen = 0;
	char sum[65], sumline[200];
	EVP_DigestFinal_ex(d.md, md, &mdlen);
	for (int i = 0; i < 32; i++)
		snprintf(sum + 2 * i, 3, "%02x", md[i]);
	int fd = d.fd;
	d.fd = -1;
	if (!commit_file(fd, tmp, path, dir)) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		goto done;
	}
	int sl = snprintf(sumline, sizeof sumline, "%s  events-%s.jsonl\n", sum, day);
	char sumtmp[4400];
	snprintf(sumtmp, sizeof sumtmp, "%s.XXXXXX", sumpath);
	fd = mkostemp(sumtmp, O_CLOEXEC);
	if (fd < 0 || !write_all(fd, sumline, (size_t)sl) ||
	    !commit_file(fd, sumtmp, sumpath, dir)) {
		snprintf(err, errlen, "cannot write %s: %s", sumpath, strerror(errno));
		goto done;
	}
	maybe_crash();
	delete_ctx_t dx = {&d.read, 0};
	db_status_t s = db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, delete_txn, &dx);
	if (s != DB_OK) {
		snprintf(err, errlen, "events written to %s but not yet deleted: %s", path,
		         db_status_name(s));
		goto done;
	}
	*archived += dx.deleted;
	ok = true;
done:
	if (d.fd >= 0) {
		close(d.fd);
		unlink(tmp);
	}
	EVP_MD_CTX_free(d.md);
	free(d.in_file.v);
	free(d.read.v);
	return ok;
}

static db_status_t oldest_txn(db_conn_t *c, void *vctx)
{
	int64_t *io = vctx; /* in: the cut-off; out: the oldest time */
	return events_store_oldest_time(c, io[0], &io[1]);
}

static bool archive_days(db_pool_t *pool, const char *dir, int64_t cutoff_ms,
                         const oh_archive_stop_t *stop, oh_archive_result_t *out, char *err,
                         size_t errlen);

/* One run at a time per EventExports folder, whichever node runs it: the
 * runs of two nodes (or two tasks) on one day would race on its file. */
static int lock_folder(const char *dir, const oh_archive_stop_t *stop, char *err, size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/.archive.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK || (stop && stop->fn(stop->ctx))) {
			snprintf(err, errlen, "%s is locked by another archive run", dir);
			close(fd);
			return -1;
		}
		struct timespec ts = {0, 200 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return fd;
}

bool oh_archive_run(db_pool_t *pool, const char *dir, int64_t cutoff_ms,
                    const oh_archive_stop_t *stop, oh_archive_result_t *out, char *err,
                    size_t errlen)
{
	memset(out, 0, sizeof *out);
	int lock = lock_folder(dir, stop, err, errlen);
	if (lock < 0)
		return false;
	bool ok = archive_days(pool, dir, cutoff_ms, stop, out, err, errlen);
	close(lock);
	return ok;
}

static bool archive_days(db_pool_t *pool, const char *dir, int64_t cutoff_ms,
                         const oh_archive_stop_t *stop, oh_archive_result_t *out, char *err,
                         size_t errlen)
{
	for (;;) {
		if (stop && stop->fn(stop->ctx)) {
			snprintf(err, errlen, "stopped");
			return false;
		}
		int64_t io[2] = {cutoff_ms, 0};
		db_status_t s = db_txn(pool, DB_TXN_READ, oldest_txn, io);
		if (s == DB_NO_ROWS)
			return true;
		if (s != DB_OK) {
			snprintf(err, errlen, "cannot read events: %s", db_status_name(s));
			return false;
		}
		int64_t from = io[1] - ((io[1] % DAY_MS) + DAY_MS) % DAY_MS;
		int64_t to = from + DAY_MS < cutoff_ms ? from + DAY_MS : cutoff_ms;
		time_t t = (time_t)(from / 1000);
		struct tm tm;
		char day[16];
		gmtime_r(&t, &tm);
		strftime(day, sizeof day, "%Y-%m-%d", &tm);
		if (!archive_day(pool, dir, day, from, to, stop, &out->archived, err, errlen))
			return false;
		out->days++;
	}
}

/* The SHA-256 of the file at PATH (hex into OUT) and its size, read a
 * buffer at a time: archives can be large.  False when it cannot be read. */
static bool hash_file(const char *path, char out[65], long long *size)
{
	*size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	static __thread char buf[65536];
	for (ssize_t n; ok && (n = read(fd, buf, sizeof buf)) != 0;) {
		if (n < 0) {
			ok = errno == EINTR;
			continue;
		}
		ok = EVP_DigestUpdate(md, buf, (size_t)n) == 1;
		*size += n;
	}
	unsigned char digest[32];
	unsigned int dlen = 0;
	ok = ok && EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == 32;
	for (int i = 0; ok && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
	EVP_MD_CTX_free(md);
	close(fd);
	return ok;
}

/* Day names sort as the days do. */
static int by_name(const void *a, const void *b)
{
	return strcmp(((const oh_archive_file_t *)a)->name, ((const oh_archive_file_t *)b)->name);
}

bool oh_archive_list(const char *dir, oh_archive_file_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT;
	struct dirent *de;
	size_t cap = 0;
	while ((de = readdir(d))) {
		const char *nm = de->d_name;
		size_t l = strlen(nm);
		if (l != strlen("events-YYYY-MM-DD.jsonl") || strncmp(nm, "events-", 7) != 0 ||
		    strcmp(nm + l - 6, ".jsonl") != 0)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			oh_archive_file_t *nv = realloc(*out, cap * sizeof *nv);
			if (!nv)
				abort();
			*out = nv;
		}
		oh_archive_file_t *f = &(*out)[(*n)++];
		memset(f, 0, sizeof *f);
		snprintf(f->name, sizeof f->name, "%.63s", nm);
		snprintf(f->day, sizeof f->day, "%.10s", nm + 7);
		char path[4200], sumpath[4300];
		snprintf(path, sizeof path, "%s/%s", dir, nm);
		snprintf(sumpath, sizeof sumpath, "%s.sha256", path);
		size_t slen = 0;
		char *sum = read_file(sumpath, &slen);
		char actual[65];
		long long size = 0;
		bool hashed = hash_file(path, actual, &size);
		f->size = size;
		if (sum && slen >= 64) {
			snprintf(f->sha256, sizeof f->sha256, "%.64s", sum);
			f->checksum_ok = hashed && strcmp(actual, f->sha256) == 0;
		}
		free(sum);
	}
	closedir(d);
	if (*n > 0)
		qsort(*out, *n, sizeof **out, by_name);
	return true;
}
