/* The built-in package repository in the shared Packages folder.  An upload
 * streams from its reader through the multipart parser into a temporary
 * file (Packages/.uploads) while its SHA-1 and SHA-256 are computed, in
 * constant memory whatever its size; the file is fsynced and renamed into
 * place (Packages/<SpaceId>/<PackageId>/<PackageId>.<Version>_<token><ext>,
 * a name no other upload uses), and only then is its row written.  The
 * database decides between concurrent uploads of one version (a unique
 * key), so with FailIfExists exactly one wins and the loser removes its
 * own file.  A cut or refused upload leaves no row and no file; temporary
 * files of uploads that died with their node, and files no row names, are
 * swept by the PackageRetention task. */
#ifndef OH_PACKAGES_H
#define OH_PACKAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "db/packages_store.h"
#include "oh_reader.h"
#include "storage.h"

struct oh_event_spec; /* events.h */

#define OH_PACKAGE_ID_PREFIX      "packages-"
#define OH_PACKAGE_RETENTION_KIND "PackageRetention"
/* A temporary upload file untouched this long belongs to a dead upload
 * (a live one is written at least every request timeout). */
#define OH_PACKAGE_STALE_MS (10LL * 60 * 1000)

typedef packages_row_t oh_package_t;

typedef enum {
	OH_OVERWRITE_FAIL = 0, /* FailIfExists */
	OH_OVERWRITE_REPLACE,  /* OverwriteExisting */
	OH_OVERWRITE_IGNORE    /* IgnoreIfExists */
} oh_overwrite_t;

/* Parses "FailIfExists", "OverwriteExisting" or "IgnoreIfExists". */
bool oh_overwrite_parse(const char *name, oh_overwrite_t *out);

typedef struct {
	db_pool_t *pool;
	oh_storage_t *storage; /* the Packages folder(s) of this node */
	const char *space_id;
	oh_overwrite_t mode;
	int64_t max_bytes;        /* largest package accepted; 0 = no limit */
	const char *published_by; /* who, for the row */
	/* Recorded (its resource, message and details set here) in the
	 * transaction that writes the row. */
	const struct oh_event_spec *audit;
} oh_push_t;

typedef enum {
	OH_PUSH_CREATED = 0, /* a new package version */
	OH_PUSH_REPLACED,    /* OverwriteExisting replaced one */
	OH_PUSH_IGNORED,     /* IgnoreIfExists: the existing one is kept */
	OH_PUSH_EXISTS,      /* FailIfExists: the version exists */
	OH_PUSH_INVALID,     /* the request is wrong: MESSAGE, FIELD */
	OH_PUSH_TOO_LARGE,   /* over max_bytes */
	OH_PUSH_NO_SPACE,    /* the Packages folder is full */
	OH_PUSH_CUT,         /* the body ended or failed before it was complete */
	OH_PUSH_STORAGE,     /* the Packages folder cannot be written: MESSAGE */
	OH_PUSH_DB           /* the database failed: DB */
} oh_push_outcome_t;

typedef struct {
	oh_push_outcome_t outcome;
	db_status_t db;
	char message[600];
	const char *field;    /* static, or NULL */
	oh_package_t package; /* the package: new, replaced, or the one that exists */
} oh_push_result_t;

/* Reads a multipart/form-data body (Content-Type CONTENT_TYPE) from BODY
 * and stores its single file part as a package of P->space_id as
 * described above.  Reads BODY to its end when it can (a refused upload
 * is drained up to 64 MiB so the client sees the answer).  Fills *OUT;
 * whatever the outcome other than CREATED/REPLACED, nothing of this upload
 * is left behind. */
void oh_package_push(const oh_push_t *p, oh_reader_t *body, const char *content_type,
                     oh_push_result_t *out);

/* Reads package ID.  DB_NO_ROWS when there is none. */
db_status_t oh_package_get(db_pool_t *pool, const char *id, oh_package_t *out);

typedef struct {
	oh_package_t *v;
	size_t n;
	int64_t total;
} oh_package_list_t;

/* Lists packages as F says (see packages_filter_t).  Free with
 * oh_package_list_free. */
db_status_t oh_packages_list(db_pool_t *pool, const packages_filter_t *f, oh_package_list_t *out);
void oh_package_list_free(oh_package_list_t *l);

/* Opens the file of package P for reading, looking in the Packages folders
 * this node has used (current first).  Returns the descriptor, or -1 with
 * errno (ENOENT when no folder has it). */
int oh_package_open(oh_storage_t *storage, const oh_package_t *p);

/* Deletes package ID (row first, recording AUDIT, then its file).
 * DB_NO_ROWS when there is none; *OUT (may be NULL) receives the row. */
db_status_t oh_package_delete(db_pool_t *pool, oh_storage_t *storage, const char *id,
                              const struct oh_event_spec *audit, oh_package_t *out);

typedef struct {
	int64_t deleted;    /* versions removed by retention */
	int64_t temp_swept; /* dead uploads' temporary files */
	int64_t orphans;    /* files no row named */
} oh_retention_result_t;

/* Keeps the KEEP newest versions of each package id in SPACE_ID (0 keeps
 * all), deleting the older ones (rows, then files), then sweeps the
 * Packages folder DIR: temporary files untouched for OH_PACKAGE_STALE_MS
 * and package files no row names that are as old.  LOG (may be NULL) is
 * told each step.  Returns DB_OK or the failure that stopped it. */
db_status_t oh_packages_retain(db_pool_t *pool, oh_storage_t *storage, const char *space_id,
                               int64_t keep, void (*log)(void *, const char *), void *log_ctx,
                               oh_retention_result_t *out);

/* Cluster housekeeping: once per EVERY_MS for the whole cluster (the
 * slot of whichever node gets there first), queues a PackageRetention task
 * keeping KEEP versions (0 = all; it still sweeps), but only once the
 * repository was used (a package recorded, or this node's Packages folder
 * STORAGE holds uploads): no empty task an hour on a cluster without
 * packages.  *QUEUED says whether it did. */
db_status_t oh_packages_housekeeping(db_pool_t *pool, oh_storage_t *storage, int64_t every_ms,
                                     int64_t keep, bool *queued);

#endif
