#include "packages_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialect.h"
#include "keyset.h"

#define PACKAGE_COLUMNS                                                                            \
	"Id, SpaceId, PackageId, Version, VersionSort, FileExtension, FileName, "                  \
	"PackageSizeBytes, "                                                                       \
	"Hash, Sha256, Published, PublishedBy, Title, Summary, Description, ReleaseNotes"

static void read_row(db_row_t *r, packages_row_t *p)
{
	memset(p, 0, sizeof *p);
	db_row_copy(r, 0, p->id, sizeof p->id);
	db_row_copy(r, 1, p->space_id, sizeof p->space_id);
	db_row_copy(r, 2, p->package_id, sizeof p->package_id);
	db_row_copy(r, 3, p->version, sizeof p->version);
	db_row_copy(r, 4, p->version_sort, sizeof p->version_sort);
	db_row_copy(r, 5, p->ext, sizeof p->ext);
	db_row_copy(r, 6, p->file_name, sizeof p->file_name);
	p->size = db_row_int(r, 7, NULL);
	db_row_copy(r, 8, p->sha1, sizeof p->sha1);
	db_row_copy(r, 9, p->sha256, sizeof p->sha256);
	p->published = db_row_int(r, 10, NULL);
	db_row_copy(r, 11, p->published_by, sizeof p->published_by);
	db_row_copy(r, 12, p->title, sizeof p->title);
	db_row_copy(r, 13, p->summary, sizeof p->summary);
	db_row_copy(r, 14, p->description, sizeof p->description);
	db_row_copy(r, 15, p->release_notes, sizeof p->release_notes);
}

static db_param_t text_or_null(const char *s)
{
	return s && *s ? DBP_TEXT(s) : DBP_NULL;
}

db_status_t packages_store_insert(db_conn_t *c, const packages_row_t *r)
{
	char key[101];
	size_t i = 0;
	for (; r->package_id[i] && i + 1 < sizeof key; i++)
		key[i] = (char)((r->package_id[i] >= 'A' && r->package_id[i] <= 'Z')
		                    ? r->package_id[i] + 32
		                    : r->package_id[i]);
	key[i] = '\0';
	db_param_t p[] = {DBP_TEXT(r->id),
	                  DBP_TEXT(r->space_id),
	                  DBP_TEXT(r->package_id),
	                  DBP_TEXT(key),
	                  DBP_TEXT(r->version),
	                  DBP_TEXT(r->version_sort),
	                  DBP_TEXT(r->ext),
	                  DBP_TEXT(r->file_name),
	                  DBP_INT(r->size),
	                  DBP_TEXT(r->sha1),
	                  DBP_TEXT(r->sha256),
	                  DBP_INT(r->published),
	                  text_or_null(r->published_by),
	                  text_or_null(r->title),
	                  text_or_null(r->summary),
	                  text_or_null(r->description),
	                  text_or_null(r->release_notes)};
	return db_exec(c,
	               "INSERT INTO Packages (Id, SpaceId, PackageId, PackageKey, Version, "
	               "VersionSort, FileExtension, FileName, PackageSizeBytes, Hash, Sha256, "
	               "Published, PublishedBy, Title, Summary, Description, ReleaseNotes) "
	               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	               p, sizeof p / sizeof p[0], NULL);
}

static db_status_t one_row(void *ctx, db_row_t *r)
{
	read_row(r, ctx);
	return DB_OK;
}

db_status_t packages_store_get(db_conn_t *c, const char *id, packages_row_t *out)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_query(c, "SELECT " PACKAGE_COLUMNS " FROM Packages WHERE Id = ?", p, 1, one_row,
	                out);
}

db_status_t packages_store_get_version(db_conn_t *c, const char *space_id, const char *package_key,
                                       const char *version_sort, packages_row_t *out)
{
	db_param_t p[] = {DBP_TEXT(space_id), DBP_TEXT(package_key), DBP_TEXT(version_sort)};
	return db_query(c,
	                "SELECT " PACKAGE_COLUMNS " FROM Packages WHERE SpaceId = ? AND "
	                "PackageKey = ? AND VersionSort = ?",
	                p, 3, one_row, out);
}

db_status_t packages_store_delete_if(db_conn_t *c, const char *id, const char *file_name,
                                     int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id), DBP_TEXT(file_name)};
	return db_exec(c, "DELETE FROM Packages WHERE Id = ? AND FileName = ?", p, 2, rows);
}

db_status_t packages_store_delete(db_conn_t *c, const char *id, int64_t *rows)
{
	db_param_t p[] = {DBP_TEXT(id)};
	return db_exec(c, "DELETE FROM Packages WHERE Id = ?", p, 1, rows);
}

typedef struct {
	void (*fn)(void *, const packages_row_t *);
	void *ctx;
	packages_row_t row;
} each_t;

static db_status_t each_row(void *vctx, db_row_t *r)
{
	each_t *e = vctx;
	read_row(r, &e->row);
	e->fn(e->ctx, &e->row);
	return DB_OK;
}

/* The list's order, IX_Packages_List's (migration 0012). */
#define PACKAGES_ORDER " ORDER BY p.PackageKey, p.VersionSort DESC"

void packages_store_count_sql(db_dialect_id_t d, const char *where, const db_param_t *p, size_t n,
                              db_sql_t *q)
{
	db_sql_init(q);
	db_sql_add(q, "SELECT COUNT(*) FROM (");
	db_sql_select(q, d, DB_LIST_COUNT_CAP + 1);
	db_sql_add(q, "p.Id");
	db_sql_add(q, where);
	for (size_t i = 0; i < n; i++)
		db_sql_bind(q, p[i]);
	db_sql_add(q, PACKAGES_ORDER);
	db_sql_limit(q, d, DB_LIST_COUNT_CAP + 1);
	db_sql_add(q, ") c");
}

typedef struct {
	char key[101];
	char sort[1001];
} anchor_t;

static db_status_t anchor_row(void *vctx, db_row_t *r)
{
	anchor_t *a = vctx;
	db_row_copy(r, 0, a->key, sizeof a->key);
	db_row_copy(r, 1, a->sort, sizeof a->sort);
	return DB_OK;
}

void packages_store_list_query(const packages_filter_t *f, const char *after_key,
                               const char *after_sort, packages_query_t *q)
{
	memset(q, 0, sizeof *q);
	snprintf(q->where, sizeof q->where, " FROM Packages p WHERE p.SpaceId = ?");
	q->p[q->n++] = DBP_TEXT(f->space_id);
	if (f->filter && *f->filter) {
		db_like_pattern(f->filter, q->pattern, sizeof q->pattern);
		strncat(q->where, " AND p.PackageKey LIKE ? ESCAPE '!'",
		        sizeof q->where - strlen(q->where) - 1);
		q->p[q->n++] = DBP_TEXT(q->pattern);
	}
	if (f->package_id && *f->package_id) {
		size_t i = 0;
		for (; f->package_id[i] && i + 1 < sizeof q->key; i++)
			q->key[i] = (char)((f->package_id[i] >= 'A' && f->package_id[i] <= 'Z')
			                       ? f->package_id[i] + 32
			                       : f->package_id[i]);
		q->key[i] = '\0';
		strncat(q->where, " AND p.PackageKey = ?", sizeof q->where - strlen(q->where) - 1);
		q->p[q->n++] = DBP_TEXT(q->key);
	}
	if (f->latest)
		strncat(q->where,
		        " AND NOT EXISTS (SELECT 1 FROM Packages q WHERE q.SpaceId = p.SpaceId AND "
		        "q.PackageKey = p.PackageKey AND q.VersionSort > p.VersionSort)",
		        sizeof q->where - strlen(q->where) - 1);
	q->n_count = q->n;
	snprintf(q->where_count, sizeof q->where_count, "%s", q->where);
	/* The cursor: rows after the anchor's in (PackageKey, VersionSort
	 * DESC) order, written as a range on PackageKey and a tie-break only
	 * the anchor's own package can fail, so the read seeks to it. */
	if (after_key) {
		strncat(q->where,
		        " AND p.PackageKey >= ? AND (p.PackageKey > ? OR p.VersionSort < ?)",
		        sizeof q->where - strlen(q->where) - 1);
		q->p[q->n++] = DBP_TEXT(after_key);
		q->p[q->n++] = DBP_TEXT(after_key);
		q->p[q->n++] = DBP_TEXT(after_sort);
	}
	snprintf(q->page, sizeof q->page,
	         "SELECT p.Id, p.SpaceId, p.PackageId, p.Version, p.VersionSort, p.FileExtension, "
	         "p.FileName, p.PackageSizeBytes, p.Hash, p.Sha256, p.Published, p.PublishedBy, "
	         "p.Title, p.Summary, p.Description, p.ReleaseNotes%s" PACKAGES_ORDER,
	         q->where);
}

db_status_t packages_store_list(db_conn_t *c, const packages_filter_t *f,
                                void (*fn)(void *, const packages_row_t *), void *ctx,
                                int64_t *total)
{
	anchor_t a;
	db_status_t s = DB_OK;
	if (f->after && *f->after) {
		db_param_t ap[] = {DBP_TEXT(f->after), DBP_TEXT(f->space_id)};
		s = db_query(
		    c, "SELECT PackageKey, VersionSort FROM Packages WHERE Id = ? AND SpaceId = ?",
		    ap, 2, anchor_row, &a);
		if (s != DB_OK)
			return s; /* DB_NO_ROWS: no such package */
	}
	packages_query_t *q = malloc(sizeof *q);
	db_sql_t *cq = malloc(sizeof *cq);
	if (!q || !cq) {
		free(q);
		free(cq);
		return DB_ERROR;
	}
	bool after = f->after && *f->after;
	packages_store_list_query(f, after ? a.key : NULL, after ? a.sort : NULL, q);
	/* The total counts the list from its start (without the cursor), up to
	 * the cap. */
	packages_store_count_sql(db_conn_dialect(c), q->where_count, q->p, q->n_count, cq);
	*total = 0;
	s = cq->overflow ? DB_ERROR : db_query_int(c, cq->sql, cq->p, cq->n, total);
	if (*total > DB_LIST_COUNT_CAP)
		*total = DB_LIST_COUNT_CAP;
	if (s == DB_OK && *total > 0 && f->take > 0) {
		each_t e = {.fn = fn, .ctx = ctx};
		s = db_query_page(c, q->page, q->p, q->n, f->take, f->skip, each_row, &e);
		if (s == DB_NO_ROWS)
			s = DB_OK;
	}
	free(q);
	free(cq);
	return s;
}

typedef struct {
	void (*fn)(void *, const char *);
	void *ctx;
} keys_t;

static db_status_t each_key(void *vctx, db_row_t *r)
{
	keys_t *k = vctx;
	char key[101];
	db_row_copy(r, 0, key, sizeof key);
	k->fn(k->ctx, key);
	return DB_OK;
}

db_status_t packages_store_over_retention(db_conn_t *c, const char *space_id, int64_t keep,
                                          void (*fn)(void *, const char *), void *ctx)
{
	db_param_t p[] = {DBP_TEXT(space_id), DBP_INT(keep)};
	keys_t k = {fn, ctx};
	db_status_t s = db_query(c,
	                         "SELECT PackageKey FROM Packages WHERE SpaceId = ? GROUP BY "
	                         "PackageKey HAVING COUNT(*) > ? ORDER BY PackageKey",
	                         p, 2, each_key, &k);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t packages_store_beyond(db_conn_t *c, const char *space_id, const char *package_key,
                                  int64_t keep, void (*fn)(void *, const packages_row_t *),
                                  void *ctx)
{
	db_param_t p[] = {DBP_TEXT(space_id), DBP_TEXT(package_key)};
	each_t e = {.fn = fn, .ctx = ctx};
	db_status_t s = db_query_page(c,
	                              "SELECT " PACKAGE_COLUMNS " FROM Packages WHERE SpaceId = ? "
	                              "AND PackageKey = ? ORDER BY VersionSort DESC, Id",
	                              p, 2, 1000000, keep, each_row, &e);
	return s == DB_NO_ROWS ? DB_OK : s;
}

db_status_t packages_store_count(db_conn_t *c, int64_t *n)
{
	return db_query_int(c, "SELECT COUNT(*) FROM Packages", NULL, 0, n);
}

db_status_t packages_store_file_used(db_conn_t *c, const char *file_name, bool *used)
{
	int64_t n = 0;
	db_param_t p[] = {DBP_TEXT(file_name)};
	db_status_t s =
	    db_query_int(c, "SELECT COUNT(*) FROM Packages WHERE FileName = ?", p, 1, &n);
	*used = n > 0;
	return s;
}
