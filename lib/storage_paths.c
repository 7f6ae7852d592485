/* Shared folder names and path rules: see storage_paths.h. */
#include "storage_paths.h"

#include <string.h>

static const struct {
	const char *name, *option, *octopus;
} folders[OH_FOLDER__COUNT] = {
    [OH_FOLDER_ARTIFACTS] = {"Artifacts", "artifacts", "ArtifactsDirectory"},
    [OH_FOLDER_TASKLOGS] = {"TaskLogs", "taskLogs", "TaskLogsDirectory"},
    [OH_FOLDER_PACKAGES] = {"Packages", "nugetRepository", "PackagesDirectory"},
    [OH_FOLDER_IMPORTS] = {"Imports", "imports", "ImportsDirectory"},
    [OH_FOLDER_EVENTEXPORTS] = {"EventExports", "eventExports", "EventExportsDirectory"},
};

const char *oh_folder_name(oh_folder_t f)
{
	return f < OH_FOLDER__COUNT ? folders[f].name : "";
}

const char *oh_folder_option(oh_folder_t f)
{
	return f < OH_FOLDER__COUNT ? folders[f].option : "";
}

const char *oh_folder_octopus_field(oh_folder_t f)
{
	return f < OH_FOLDER__COUNT ? folders[f].octopus : "";
}

bool oh_folder_parse(const char *name, oh_folder_t *out)
{
	for (int i = 0; i < OH_FOLDER__COUNT; i++) {
		if (strcmp(name, folders[i].name) == 0) {
			*out = (oh_folder_t)i;
			return true;
		}
	}
	return false;
}

/* Checks the segments of P (after its root) separated by SEP.  Returns
 * NULL or the reason. */
static const char *check_segments(const char *p, char sep, bool windows)
{
	const char *seg = p;
	for (;;) {
		const char *end = strchr(seg, sep);
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		if (len == 0 && end)
			return "has an empty segment (two separators in a row)";
		if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return "has a '.' or '..' segment; give the folder itself";
		if (windows && len > 0 && (seg[len - 1] == ' ' || seg[len - 1] == '.'))
			return "has a segment ending in a space or a dot, which Windows drops";
		if (!end)
			return NULL;
		seg = end + 1;
		if (*seg == '\0')
			return NULL; /* one trailing separator is fine */
	}
}

static const char *check_linux(const char *p)
{
	if (p[0] != '/')
		return "must be an absolute path (start with /) on linux";
	if (strchr(p, '\\'))
		return "mixes separators: use / only on linux";
	if (p[1] == '\0')
		return "must not be the root folder";
	return check_segments(p + 1, '/', false);
}

static bool is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static const char *check_windows(const char *p)
{
	if (strchr(p, '/'))
		return "mixes separators: use \\ only on windows";
	const char *rest;
	if (is_alpha(p[0]) && p[1] == ':') {
		if (p[2] != '\\')
			return "must be absolute: a drive letter needs a backslash (X:\\folder)";
		if (p[3] == '\0')
			return "must not be the root of a drive";
		rest = p + 3;
	} else if (p[0] == '\\' && p[1] == '\\') {
		/* \\server\share[\…]: both parts present. */
		const char *server = p + 2;
		const char *slash = strchr(server, '\\');
		if (!slash || slash == server)
			return "is not a complete UNC path (\\\\server\\share\\folder)";
		const char *share = slash + 1;
		const char *share_end = strchr(share, '\\');
		size_t share_len = share_end ? (size_t)(share_end - share) : strlen(share);
		if (share_len == 0)
			return "is not a complete UNC path (\\\\server\\share\\folder)";
		rest = server;
	} else {
		return "must be a mapped drive (X:\\folder), a local folder linked to a share "
		       "(C:\\folder) or a UNC path (\\\\server\\share\\folder) on windows";
	}
	for (const char *c = rest; *c; c++) {
		if (strchr("<>:\"|?*", *c))
			return "contains a character Windows does not allow in a path (<>:\"|?*)";
	}
	return check_segments(rest, '\\', true);
}

const char *oh_storage_path_check(const char *platform, const char *path)
{
	if (!path || path[0] == '\0')
		return "must not be empty";
	if (strlen(path) > OH_STORAGE_PATH_MAX)
		return "is longer than 400 bytes";
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		if (*c < 0x20 || *c == 0x7f)
			return "contains a control character";
	}
	if (platform && strcmp(platform, "windows") == 0)
		return check_windows(path);
	return check_linux(path);
}
