/* The five shared storage folders of a cluster and the rules a path must
 * follow to be one of them.  Pure functions: no I/O, no database, so the
 * API, the `path` command and the fuzz target share exactly one rule set.
 * Octopus names the folders Artifacts, TaskLogs, Packages (its
 * --nugetRepository), Imports and EventExports. */
#ifndef OH_STORAGE_PATHS_H
#define OH_STORAGE_PATHS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
	OH_FOLDER_ARTIFACTS = 0,
	OH_FOLDER_TASKLOGS,
	OH_FOLDER_PACKAGES,
	OH_FOLDER_IMPORTS,
	OH_FOLDER_EVENTEXPORTS,
	OH_FOLDER__COUNT
} oh_folder_t;

/* Longest path accepted, in bytes. */
#define OH_STORAGE_PATH_MAX 400

/* "Artifacts", "TaskLogs", … (the API's field names). */
const char *oh_folder_name(oh_folder_t f);

/* Octopus.Server.exe's `path` option for F: "artifacts", "taskLogs",
 * "nugetRepository", "imports", "eventExports". */
const char *oh_folder_option(oh_folder_t f);

/* The field of Octopus's server-folders resource: "ArtifactsDirectory", … */
const char *oh_folder_octopus_field(oh_folder_t f);

/* Finds the folder named NAME (as oh_folder_name).  False when unknown. */
bool oh_folder_parse(const char *name, oh_folder_t *out);

/* Checks that PATH has a form a shared folder may take on PLATFORM
 * ("linux" or "windows"):
 *   linux   an absolute path ("/mnt/octopus/TaskLogs");
 *   windows a drive path ("X:\Octopus\TaskLogs": a mapped drive, or a local
 *           folder that is a symbolic link to a share) or a UNC path
 *           ("\\server\share\TaskLogs").
 * Refused everywhere: an empty or over-long path, control characters, "."
 * or ".." segments, empty segments, a mix of separators, a system folder
 * (oh_storage_system_folder), and on windows the characters Windows forbids
 * in names.  Returns NULL when PATH is
 * acceptable, else a static sentence saying what is wrong. */
const char *oh_storage_path_check(const char *platform, const char *path);

/* Whether PATH, an absolute location on PLATFORM, is a system folder or lies
 * inside one: on linux "/" itself, /proc, /sys, /dev, /etc, /usr, /boot, /bin,
 * /sbin and /lib (with lib32, lib64, libx32); on windows the root of a drive
 * or a drive's \Windows (case-insensitive).  Returns NULL when it is none of
 * them, else a static sentence naming the folder, e.g. "is inside the system
 * folder /etc".  oh_storage_path_check applies it to the path as written;
 * storage.h's oh_storage_real_check to where a path really leads. */
const char *oh_storage_system_folder(const char *platform, const char *path);

#endif
