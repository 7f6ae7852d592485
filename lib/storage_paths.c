/* Shared folder names and path rules: see storage_paths.h. */
#include "storage_paths.h"

#include <string.h>
#include <strings.h>

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

/* True when the segment of LEN bytes at SEG is a device name Windows
 * reserves (CON, PRN, AUX, NUL, COM1-9, LPT1-9), with or without an
 * extension. */
static bool is_device(const char *seg, size_t len)
{
	static const char *const names[] = {"CON", "PRN", "AUX", "NUL"};
	size_t base = 0;
	while (base < len && seg[base] != '.')
		base++;
	char up[5] = "";
	if (base < 3 || base > 4)
		return false;
	for (size_t i = 0; i < base; i++)
		up[i] = (char)(seg[i] >= 'a' && seg[i] <= 'z' ? seg[i] - 32 : seg[i]);
	up[base] = '\0';
	for (size_t i = 0; i < 4 && base == 3; i++) {
		if (strcmp(up, names[i]) == 0)
			return true;
	}
	return base == 4 && (strncmp(up, "COM", 3) == 0 || strncmp(up, "LPT", 3) == 0) &&
	       up[3] >= '1' && up[3] <= '9';
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
		if (windows && is_device(seg, len))
			return "has a segment Windows reserves for a device (CON, NUL, COM1, ...)";
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
	bool drive = is_alpha(p[0]) && p[1] == ':';
	bool unc = (p[0] == '\\' || p[0] == '/') && (p[1] == '\\' || p[1] == '/');
	if (!drive && !unc)
		return "must be a mapped drive (X:\\folder), a local folder linked to a share "
		       "(C:\\folder) or a UNC path (\\\\server\\share\\folder) on windows";
	if (strchr(p, '/'))
		return "mixes separators: use \\ only on windows";
	const char *rest;
	if (is_alpha(p[0]) && p[1] == ':') {
		if (p[2] != '\\')
			return "must be absolute: a drive letter needs a backslash (X:\\folder)";
		if (p[3] == '\0')
			return "must not be the root of a drive";
		rest = p + 3;
	} else {
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
	}
	for (const char *c = rest; *c; c++) {
		if (strchr("<>:\"|?*", *c))
			return "contains a character Windows does not allow in a path (<>:\"|?*)";
	}
	return check_segments(rest, '\\', true);
}

static const struct {
	const char *folder, *sentence;
} linux_system[] = {
    {"/proc", "is inside the system folder /proc"},
    {"/sys", "is inside the system folder /sys"},
    {"/dev", "is inside the system folder /dev"},
    {"/etc", "is inside the system folder /etc"},
    {"/usr", "is inside the system folder /usr"},
    {"/boot", "is inside the system folder /boot"},
    {"/bin", "is inside the system folder /bin"},
    {"/sbin", "is inside the system folder /sbin"},
    {"/lib", "is inside the system folder /lib"},
    {"/lib32", "is inside the system folder /lib32"},
    {"/lib64", "is inside the system folder /lib64"},
    {"/libx32", "is inside the system folder /libx32"},
};

const char *oh_storage_system_folder(const char *platform, const char *path)
{
	if (!path)
		return NULL;
	if (platform && strcmp(platform, "windows") == 0) {
		if (!is_alpha(path[0]) || path[1] != ':')
			return NULL; /* UNC paths name another machine's share */
		const char *p = path + 2;
		while (*p == '\\')
			p++;
		if (*p == '\0')
			return "is the root of a drive";
		if (strncasecmp(p, "Windows", 7) == 0 && (p[7] == '\0' || p[7] == '\\'))
			return "is inside the system folder \\Windows";
		return NULL;
	}
	const char *p = path;
	while (*p == '/')
		p++;
	if (*p == '\0')
		return "is the root folder /";
	for (size_t i = 0; i < sizeof linux_system / sizeof linux_system[0]; i++) {
		size_t n = strlen(linux_system[i].folder);
		/* "/etc", "/etc/", "/etc/x" and "//etc" alike; not "/etcetera". */
		if (strncmp(p - 1, linux_system[i].folder, n) == 0 &&
		    (p[n - 1] == '\0' || p[n - 1] == '/'))
			return linux_system[i].sentence;
	}
	return NULL;
}

const char *oh_storage_path_check(const char *platform, const char *path)
{
	if (!path || path[0] == '\0')
		return "must not be empty";
	if (strlen(path) > OH_STORAGE_PATH_MAX)
		return "is longer than 400 bytes";
	for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
		/* C0, DEL, and C1 (U+0080-U+009F: 0xC2 0x80-0x9F in UTF-8). */
		if (*c < 0x20 || *c == 0x7f || (c[0] == 0xc2 && c[1] >= 0x80 && c[1] <= 0x9f))
			return "contains a control character";
	}
	bool windows = platform && strcmp(platform, "windows") == 0;
	const char *why = windows ? check_windows(path) : check_linux(path);
	if (!why)
		why = oh_storage_system_folder(windows ? "windows" : "linux", path);
	return why;
}
