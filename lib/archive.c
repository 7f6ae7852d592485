#include "archive.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/events_store.h"
#include "events.h"
#include "oh_json.h"
#include "oh_log.h"

#define BATCH 2000

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

/* Replaces PATH with LEN bytes at DATA: temporary file, fsync, rename,
 * fsync of the folder. */
static bool replace_file(const char *dir, const char *path, const char *data, size_t len)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return false;
	bool ok = write_all(fd, data, len) && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return false;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	ok = fsync(dfd) == 0;
	close(dfd);
	return ok;
}

/* Reads PATH whole; NULL with *LEN 0 when it does not exist (errno ENOENT). */
static char *read_file(const char *path, size_t *len)
{
	*len = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		cap *= 2;
		char *nb = realloc(buf, cap + 1);
		if (!nb) {
			free(buf);
			buf = NULL;
		}
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

static void sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- one day ------------------------------------------------------------ */

typedef struct {
	oh_event_t *v;
	size_t n, cap;
} batch_t;

static void collect(void *vctx, oh_event_t *e)
{
	batch_t *b = vctx;
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 256;
		oh_event_t *nv = realloc(b->v, b->cap * sizeof *nv);
		if (!nv)
			abort();
		b->v = nv;
	}
	b->v[b->n++] = *e;
}

typedef struct {
	int64_t cutoff;
	batch_t *b;
} oldest_ctx_t;

static db_status_t oldest_txn(db_conn_t *c, void *vctx)
{
	oldest_ctx_t *x = vctx;
	for (size_t i = 0; i < x->b->n; i++)
		oh_event_clear(&x->b->v[i]);
	x->b->n = 0;
	return events_store_oldest(c, x->cutoff, BATCH, collect, x->b);
}

typedef struct {
	oh_event_t *v;
	size_t n;
	int64_t deleted;
} delete_ctx_t;

static db_status_t delete_txn(db_conn_t *c, void *vctx)
{
	delete_ctx_t *x = vctx;
	x->deleted = 0;
	for (size_t i = 0; i < x->n; i++) {
		int64_t rows = 0;
		db_status_t s = events_store_delete(c, x->v[i].id, &rows);
		if (s != DB_OK)
			return s;
		x->deleted += rows;
	}
	return DB_OK;
}

static void day_of(int64_t ms, char out[16])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

/* True when the file text OLD holds a line of event ID. */
static bool has_id(const char *old, const char *id)
{
	char needle[80];
	snprintf(needle, sizeof needle, "\"Id\":\"%s\"", id);
	return old && strstr(old, needle) != NULL;
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

/* Writes the events V[0..N) (all of DAY) into DAY's file, merged with what
 * the file already holds, then deletes them from the database. */
static bool archive_day(db_pool_t *pool, const char *dir, const char *day, oh_event_t *v, size_t n,
                        int64_t *archived, char *err, size_t errlen)
{
	char path[4200], sumpath[4300];
	snprintf(path, sizeof path, "%s/events-%s.jsonl", dir, day);
	snprintf(sumpath, sizeof sumpath, "%s.sha256", path);
	size_t old_len = 0;
	errno = 0;
	char *old = read_file(path, &old_len);
	if (!old && errno != ENOENT) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	size_t cap = old_len + 1024, len = old_len;
	char *text = malloc(cap);
	if (!text)
		abort();
	if (old_len)
		memcpy(text, old, old_len);
	if (len > 0 && text[len - 1] != '\n')
		text[len++] = '\n';
	for (size_t i = 0; i < n; i++) {
		if (has_id(old, v[i].id))
			continue; /* written by a run that crashed before deleting */
		json_t *j = oh_event_json(&v[i]);
		char *line = oh_json_dump(j);
		json_decref(j);
		size_t ll = strlen(line);
		if (len + ll + 2 > cap) {
			cap = 2 * (len + ll + 2);
			char *nt = realloc(text, cap);
			if (!nt)
				abort();
			text = nt;
		}
		memcpy(text + len, line, ll);
		len += ll;
		text[len++] = '\n';
		free(line);
	}
	free(old);
	char sum[65], sumline[200];
	sha256_hex(text, len, sum);
	int sl = snprintf(sumline, sizeof sumline, "%s  events-%s.jsonl\n", sum, day);
	bool ok =
	    replace_file(dir, path, text, len) && replace_file(dir, sumpath, sumline, (size_t)sl);
	free(text);
	if (!ok) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return false;
	}
	maybe_crash();
	delete_ctx_t d = {v, n, 0};
	db_status_t s = db_txn(pool, DB_TXN_WRITE, delete_txn, &d);
	if (s != DB_OK) {
		snprintf(err, errlen, "events written to %s but not yet deleted: %s", path,
		         db_status_name(s));
		return false;
	}
	*archived += d.deleted;
	return true;
}

bool oh_archive_run(db_pool_t *pool, const char *dir, int64_t cutoff_ms, oh_archive_result_t *out,
                    char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	batch_t b = {0};
	oldest_ctx_t x = {cutoff_ms, &b};
	bool ok = true;
	for (;;) {
		db_status_t s = db_txn(pool, DB_TXN_READ, oldest_txn, &x);
		if (s != DB_OK) {
			snprintf(err, errlen, "cannot read events: %s", db_status_name(s));
			ok = false;
			break;
		}
		if (b.n == 0)
			break;
		/* The batch is oldest first, so each day is one run of it. */
		size_t i = 0;
		while (ok && i < b.n) {
			char day[16], d2[16];
			day_of(b.v[i].occurred, day);
			size_t j = i + 1;
			while (j < b.n && (day_of(b.v[j].occurred, d2), strcmp(d2, day) == 0))
				j++;
			ok = archive_day(pool, dir, day, b.v + i, j - i, &out->archived, err,
			                 errlen);
			out->days++;
			i = j;
		}
		if (!ok)
			break;
	}
	for (size_t i = 0; i < b.n; i++)
		oh_event_clear(&b.v[i]);
	free(b.v);
	return ok;
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
		size_t len = 0, slen = 0;
		char *text = read_file(path, &len);
		char *sum = read_file(sumpath, &slen);
		f->size = (long long)len;
		if (sum && slen >= 64) {
			snprintf(f->sha256, sizeof f->sha256, "%.64s", sum);
			char actual[65];
			sha256_hex(text ? text : "", len, actual);
			f->checksum_ok = text && strcmp(actual, f->sha256) == 0;
		}
		free(text);
		free(sum);
	}
	closedir(d);
	return true;
}
