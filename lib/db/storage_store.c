#include "storage_store.h"

#include <stdint.h>

db_status_t storage_store_paths(db_conn_t *c, db_row_fn fn, void *ctx)
{
	return db_query(c,
	                "SELECT Folder, Path, ChangedAt, ChangedBy, TaskId FROM StoragePaths "
	                "ORDER BY Folder",
	                NULL, 0, fn, ctx);
}

db_status_t storage_store_put_path(db_conn_t *c, const char *folder, const char *path, int64_t now,
                                   const char *by, const char *task_id)
{
	db_param_t d[] = {DBP_TEXT(folder)};
	db_status_t s = db_exec(c, "DELETE FROM StoragePaths WHERE Folder = ?", d, 1, NULL);
	if (s != DB_OK)
		return s;
	db_param_t p[] = {DBP_TEXT(folder), DBP_TEXT(path), DBP_INT(now),
	                  by && *by ? DBP_TEXT(by) : DBP_NULL,
	                  task_id && *task_id ? DBP_TEXT(task_id) : DBP_NULL};
	return db_exec(c,
	               "INSERT INTO StoragePaths (Folder, Path, ChangedAt, ChangedBy, TaskId) "
	               "VALUES (?, ?, ?, ?, ?)",
	               p, 5, NULL);
}

db_status_t storage_store_checks(db_conn_t *c, db_row_fn fn, void *ctx)
{
	return db_query(c,
	                "SELECT NodeId, Folder, Path, Ok, VerifiedAt, Error "
	                "FROM StorageVerifications ORDER BY NodeId, Folder",
	                NULL, 0, fn, ctx);
}

db_status_t storage_store_put_check(db_conn_t *c, const char *node_id, const char *folder,
                                    const char *path, bool ok, int64_t now, const char *error)
{
	db_param_t d[] = {DBP_TEXT(node_id), DBP_TEXT(folder)};
	db_status_t s = db_exec(
	    c, "DELETE FROM StorageVerifications WHERE NodeId = ? AND Folder = ?", d, 2, NULL);
	if (s != DB_OK)
		return s;
	db_param_t p[] = {DBP_TEXT(node_id), DBP_TEXT(folder),
	                  DBP_TEXT(path),    DBP_INT(ok ? 1 : 0),
	                  DBP_INT(now),      error && *error ? DBP_TEXT(error) : DBP_NULL};
	return db_exec(c,
	               "INSERT INTO StorageVerifications (NodeId, Folder, Path, Ok, VerifiedAt, "
	               "Error) VALUES (?, ?, ?, ?, ?, ?)",
	               p, 6, NULL);
}

db_status_t storage_store_purge_checks(db_conn_t *c)
{
	return db_exec(c,
	               "DELETE FROM StorageVerifications WHERE NodeId NOT IN "
	               "(SELECT Id FROM OctopusServerNodes)",
	               NULL, 0, NULL);
}

db_status_t storage_store_delete_path(db_conn_t *c, const char *folder)
{
	db_param_t p[] = {DBP_TEXT(folder)};
	return db_exec(c, "DELETE FROM StoragePaths WHERE Folder = ?", p, 1, NULL);
}

static db_status_t first_id(void *ctx, db_row_t *r)
{
	char **buf = ctx;
	db_row_copy(r, 0, buf[0], (size_t)(uintptr_t)buf[1]);
	return DB_ABORT; /* one is enough */
}

db_status_t storage_store_active_change(db_conn_t *c, char *id, size_t size)
{
	id[0] = '\0';
	char *ctx[2] = {id, (char *)(uintptr_t)size};
	db_status_t s = db_query(c,
	                         "SELECT Id FROM ServerTasks WHERE Name = 'SetStoragePaths' AND "
	                         "State IN ('Queued', 'Executing', 'Cancelling')",
	                         NULL, 0, first_id, ctx);
	return s == DB_ABORT ? DB_OK : s;
}
