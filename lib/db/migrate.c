#include "migrate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "dialect.h"

static bool is_go_line(const char *p, const char **next)
{
	const char *q = p;
	while (*q == ' ' || *q == '\t')
		q++;
	if ((q[0] != 'G' && q[0] != 'g') || (q[1] != 'O' && q[1] != 'o'))
		return false;
	q += 2;
	while (*q == ' ' || *q == '\t' || *q == '\r')
		q++;
	if (*q != '\n' && *q != '\0')
		return false;
	*next = *q ? q + 1 : q;
	return true;
}

static bool has_go_line(const char *s)
{
	const char *p = s, *next;
	while (*p) {
		if (is_go_line(p, &next))
			return true;
		const char *nl = strchr(p, '\n');
		if (!nl)
			break;
		p = nl + 1;
	}
	return false;
}

/* True when S[0..len) holds something other than white space and comments. */
static bool has_code(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (isspace((unsigned char)s[i])) {
			i++;
		} else if (i + 1 < len && s[i] == '-' && s[i + 1] == '-') {
			while (i < len && s[i] != '\n')
				i++;
		} else if (i + 1 < len && s[i] == '/' && s[i + 1] == '*') {
			i += 2;
			while (i + 1 < len && !(s[i] == '*' && s[i + 1] == '/'))
				i++;
			i += 2;
		} else {
			return true;
		}
	}
	return false;
}

typedef struct {
	char **v;
	size_t n, cap;
} strvec_t;

static void push(strvec_t *sv, const char *s, size_t len)
{
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	if (!has_code(s, len))
		return;
	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->v = realloc(sv->v, sv->cap * sizeof *sv->v);
		if (!sv->v)
			abort();
	}
	char *copy = strndup(s, len);
	if (!copy)
		abort();
	sv->v[sv->n++] = copy;
}

size_t db_split_sql(const char *script, char ***out)
{
	strvec_t sv = {0};
	const char *start = script, *p = script;
	if (has_go_line(script)) {
		while (*p) {
			const char *next;
			if (is_go_line(p, &next)) {
				push(&sv, start, (size_t)(p - start));
				start = p = next;
				continue;
			}
			const char *nl = strchr(p, '\n');
			p = nl ? nl + 1 : p + strlen(p);
		}
		push(&sv, start, strlen(start));
	} else {
		while (*p) {
			if (*p == '\'' || *p == '"') {
				char q = *p++;
				while (*p && !(*p == q && p[1] != q)) {
					if (*p == q)
						p++; /* doubled quote */
					p++;
				}
				if (*p)
					p++;
			} else if (p[0] == '-' && p[1] == '-') {
				while (*p && *p != '\n')
					p++;
			} else if (p[0] == '/' && p[1] == '*') {
				p += 2;
				while (*p && !(p[0] == '*' && p[1] == '/'))
					p++;
				if (*p)
					p += 2;
			} else if (*p == ';') {
				push(&sv, start, (size_t)(p - start));
				start = ++p;
			} else {
				p++;
			}
		}
		push(&sv, start, strlen(start));
	}
	*out = sv.v;
	return sv.n;
}

void db_split_free(char **stmts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(stmts[i]);
	free(stmts);
}

/* Locks, ensures the version table and reads the current version. */
static db_status_t lock_and_read(db_conn_t *c, int *version)
{
	const db_dialect_t *d = db_dialect(db_conn_dialect(c));
	db_status_t s = db_exec(c, d->stmts[DB_STMT_MIGRATION_LOCK], NULL, 0, NULL);
	if (s == DB_OK)
		s = db_exec(c, d->stmts[DB_STMT_SCHEMA_TABLE], NULL, 0, NULL);
	int64_t v = 0;
	if (s == DB_OK)
		s = db_query_int(c, "SELECT COALESCE(MAX(Version), 0) FROM SchemaVersions", NULL, 0,
		                 &v);
	*version = (int)v;
	return s;
}

static db_status_t read_version_txn(db_conn_t *c, void *ctx)
{
	return lock_and_read(c, ctx);
}

db_status_t db_schema_version(db_pool_t *pool, int *version)
{
	*version = 0;
	return db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, read_version_txn, version);
}

static db_status_t migrate_txn(db_conn_t *c, void *ctx)
{
	db_migrate_result_t *res = ctx;
	res->failed_version = 0;
	res->error[0] = '\0';
	int current;
	db_status_t s = lock_and_read(c, &current);
	if (s != DB_OK)
		return s;
	res->from = res->to = current;
	if (current > db_migrations_latest())
		return DB_ABORT;
	size_t n;
	const db_migration_t *m = db_migrations(db_conn_dialect(c), &n);
	for (size_t i = 0; i < n && s == DB_OK; i++) {
		if (m[i].version <= current)
			continue;
		char **stmts;
		size_t ns = db_split_sql(m[i].sql, &stmts);
		for (size_t j = 0; j < ns && s == DB_OK; j++)
			s = db_exec(c, stmts[j], NULL, 0, NULL);
		db_split_free(stmts, ns);
		if (s == DB_OK) {
			db_param_t p[] = {DBP_INT(m[i].version), DBP_TEXT(m[i].name)};
			s = db_exec(c, "INSERT INTO SchemaVersions (Version, Name) VALUES (?, ?)",
			            p, 2, NULL);
		}
		if (s != DB_OK) {
			res->failed_version = m[i].version;
			snprintf(res->error, sizeof res->error, "%s", db_conn_last_error(c));
		} else {
			res->to = m[i].version;
		}
	}
	return s;
}

db_status_t db_migrate(db_pool_t *pool, db_migrate_result_t *res)
{
	memset(res, 0, sizeof *res);
	db_status_t s = db_txn(pool, DB_TXN_WRITE_IDEMPOTENT, migrate_txn, res);
	if (s != DB_OK)
		res->to = res->from; /* rolled back: nothing applied */
	return s;
}
