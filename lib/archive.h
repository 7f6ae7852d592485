/* The seed's "archived audit logs": events older than the retention period
 * move from the database to the EventExports folder, one JSON-lines file
 * per UTC day (events-YYYY-MM-DD.jsonl) with a sha256sum-style checksum
 * file beside it.  A day is done in one pass: the old file is copied into
 * a temporary one, the day's due events are streamed after it in keyset
 * pages, the file is fsynced and renamed over the old one (then the folder
 * is fsynced), and only then are the events that were read deleted from
 * the database, by Id.  Events already in the file are recognised by Id,
 * so a run that crashed anywhere in between is finished by the next one
 * with nothing lost and nothing twice. */
#ifndef OH_ARCHIVE_H
#define OH_ARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

#define OH_ARCHIVE_KIND "ArchiveEvents"

typedef struct {
	int64_t archived; /* events written to files and deleted */
	int days;         /* day files written */
} oh_archive_result_t;

/* Asked between pages: true when the run must stop (its task is stopping). */
typedef struct {
	bool (*fn)(void *ctx);
	void *ctx;
} oh_archive_stop_t;

/* Archives events that occurred before CUTOFF_MS (database clock) into
 * DIR, one run at a time per folder (a lock file in DIR), each day in a
 * temporary file of the run's own.  STOP (may be NULL) is asked between
 * pages; a stopped day is left for the next run.  Returns true, or false
 * with ERR set (what is done stays done). */
bool oh_archive_run(db_pool_t *pool, const char *dir, int64_t cutoff_ms,
                    const oh_archive_stop_t *stop, oh_archive_result_t *out, char *err,
                    size_t errlen);

typedef struct {
	char name[64];   /* events-YYYY-MM-DD.jsonl */
	char day[16];    /* YYYY-MM-DD */
	long long size;  /* bytes */
	char sha256[65]; /* from the checksum file, "" when it is missing */
	bool checksum_ok;
} oh_archive_file_t;

/* Lists the day files in DIR, oldest day first (malloc'd array in *OUT,
 * free it), checking
 * each against its checksum file.  False when DIR cannot be read. */
bool oh_archive_list(const char *dir, oh_archive_file_t **out, size_t *n);

#endif
