/* SQL for StoragePaths and StorageVerifications, in the caller's
 * transaction. */
#ifndef DB_STORAGE_STORE_H
#define DB_STORAGE_STORE_H

#include "db.h"

/* Calls FN for each row of StoragePaths: Folder, Path, ChangedAt,
 * ChangedBy, TaskId (columns 0-4). */
db_status_t storage_store_paths(db_conn_t *c, db_row_fn fn, void *ctx);

/* Sets the active path of FOLDER. */
db_status_t storage_store_put_path(db_conn_t *c, const char *folder, const char *path, int64_t now,
                                   const char *by, const char *task_id);

/* Calls FN for each row of StorageVerifications: NodeId, Folder, Path, Ok,
 * VerifiedAt, Error (columns 0-5), ordered by NodeId and Folder. */
db_status_t storage_store_checks(db_conn_t *c, db_row_fn fn, void *ctx);

/* Records the last check of FOLDER on NODE_ID (ERROR may be NULL). */
db_status_t storage_store_put_check(db_conn_t *c, const char *node_id, const char *folder,
                                    const char *path, bool ok, int64_t now, const char *error);

/* Clears the cluster path of FOLDER (each node goes back to its own). */
db_status_t storage_store_delete_path(db_conn_t *c, const char *folder);

/* The Id of a SetStoragePaths task queued or running, into ID (DB_NO_ROWS
 * when there is none). */
db_status_t storage_store_active_change(db_conn_t *c, char *id, size_t size);

/* Forgets the checks of nodes that are no longer registered. */
db_status_t storage_store_purge_checks(db_conn_t *c);

#endif
