/* Shared storage: the cluster's active folder paths (in the database), the
 * proof that a node can use a folder (create, write, fsync, read back,
 * delete a probe file), each node's last proof per folder, and this node's
 * live view of the paths, which follows the database without a restart.
 * A folder the cluster has no path for is the node's own local folder. */
#ifndef OH_STORAGE_H
#define OH_STORAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "storage_paths.h"
#include "tasks.h"

struct oh_event_spec; /* events.h */

typedef struct {
	bool set; /* the cluster has a path for this folder */
	char path[OH_STORAGE_PATH_MAX + 1];
	int64_t changed_at;
	char changed_by[201];
	char task_id[64];
} oh_storage_folder_t;

typedef struct {
	oh_storage_folder_t f[OH_FOLDER__COUNT];
} oh_storage_active_t;

/* Reads the cluster's active paths (all unset when none).  DB_OK or a
 * failure. */
db_status_t oh_storage_active_get(db_pool_t *pool, oh_storage_active_t *out);

/* One node's check of one folder. */
typedef struct {
	char node_id[101];
	oh_folder_t folder;
	char path[OH_STORAGE_PATH_MAX + 1];
	bool ok;
	int64_t verified_at; /* database clock; 0 in a result not yet recorded */
	char error[512];
} oh_storage_check_t;

typedef struct {
	oh_storage_check_t *v;
	size_t n;
} oh_storage_check_list_t;

/* Reads every node's last check of every folder.  On DB_OK the caller
 * frees with oh_storage_check_list_free. */
db_status_t oh_storage_checks_list(db_pool_t *pool, oh_storage_check_list_t *out);
void oh_storage_check_list_free(oh_storage_check_list_t *l);

/* Judges where DIR really leads on this machine (oh_real_location: every
 * symbolic link followed, so "/mnt/share" linked to "/" counts as "/").
 * Returns NULL when that is not a system folder (oh_storage_system_folder;
 * a path that cannot be resolved passes, and the probe then says why it
 * cannot be used); else the reason, written into BUF (SIZE bytes), e.g.
 * "leads to /etc/x, which is inside the system folder /etc".  Links differ
 * from machine to machine, so each node judges for itself. */
const char *oh_storage_real_check(const char *dir, char *buf, size_t size);

/* Proves this process can use folder DIR: refuses it when it really leads
 * to a system folder (oh_storage_real_check), then creates it (and its
 * parents) when missing, writes a probe file named after NODE_ID, fsyncs
 * it, reads it back, compares and deletes it.  Returns true, or false with
 * the failing step and errno's text (or the refusal) in ERR.  CREATED (may
 * be NULL; CREATED_SIZE bytes) receives the topmost folder the probe
 * created, or "". */
bool oh_storage_probe(const char *dir, const char *node_id, char *err, size_t errlen, char *created,
                      size_t created_size);

/* Records the N checks in V (all of one node) with the database clock. */
db_status_t oh_storage_record_checks(db_pool_t *pool, const oh_storage_check_t *v, size_t n);

/* Makes PATHS the active paths in one transaction: NULL entries are left
 * as they are, "" clears a folder's cluster path (each node back to its
 * own); the N checks (may be 0) are recorded with them, and the
 * StorageChanged event AUDIT.  BY and TASK_ID say who and which task;
 * *AT (may be NULL) receives the database time of the change.  Returns
 * DB_OK or a failure (nothing changed). */
db_status_t oh_storage_activate(db_pool_t *pool, const char *const paths[OH_FOLDER__COUNT],
                                const oh_storage_check_t *checks, size_t n, const char *by,
                                const char *task_id, const struct oh_event_spec *audit,
                                int64_t *at);

/* Queues SPEC, a SetStoragePaths task, unless another storage change is
 * queued or running (one at a time, so changes cannot starve each other's
 * checks nor finish out of order), recording SPEC's idempotency key with
 * it.  Returns DB_OK with *OUT set,
 * DB_DUPLICATE with the running change's Id in BUSY_ID (64 bytes), or a
 * failure. */
db_status_t oh_storage_change_queue(db_pool_t *pool, const oh_task_spec_t *spec, oh_task_t *out,
                                    bool *existed, char *busy_id);

/* ---- this node's live view ------------------------------------------- */

typedef struct oh_storage oh_storage_t;

/* A view whose folders start as DEFAULTS (this node's local folders, used
 * while the cluster has no path of its own).  NULL on OOM. */
oh_storage_t *oh_storage_new(const char *const defaults[OH_FOLDER__COUNT]);
void oh_storage_free(oh_storage_t *st);

/* Copies the path this node uses for F into BUF (SIZE bytes).  Safe from
 * any thread. */
void oh_storage_path(oh_storage_t *st, oh_folder_t f, char *buf, size_t size);

/* How many folders of one kind a node remembers: the current one and the
 * last 4 it used before (logs are not moved when a folder changes). */
#define OH_STORAGE_USED_MAX 5

typedef struct {
	char path[OH_STORAGE_USED_MAX][OH_STORAGE_PATH_MAX + 1];
	const char *v[OH_STORAGE_USED_MAX]; /* v[i] is path[i] */
	size_t n;
} oh_storage_used_t;

/* Copies into OUT the paths this node used for F since it started, the
 * current one first, at most OH_STORAGE_USED_MAX. */
void oh_storage_paths_used(oh_storage_t *st, oh_folder_t f, oh_storage_used_t *out);

/* True when this node's last check of every folder passed. */
bool oh_storage_ok(oh_storage_t *st);

/* Reads the active paths, switches to them, and checks every folder whose
 * path changed, whose last check failed, or every folder when FORCE;
 * records the checks made for NODE_ID.  *CHANGED (may be NULL) says whether
 * a path changed.  Returns DB_OK or the failure that left the view as it
 * was. */
db_status_t oh_storage_sync(oh_storage_t *st, db_pool_t *pool, const char *node_id, bool force,
                            bool *changed);

#endif
