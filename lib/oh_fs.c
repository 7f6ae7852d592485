#include "oh_fs.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

bool oh_mkdirs(const char *path, mode_t mode)
{
	return oh_mkdirs_created(path, mode, NULL, 0);
}

bool oh_mkdirs_created(const char *path, mode_t mode, char *created, size_t size)
{
	char buf[4096];
	if (created && size)
		created[0] = '\0';
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return false;
	}
	bool made = false;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == 0) {
			if (!made && created && size)
				snprintf(created, size, "%s", buf);
			made = true;
		} else if (errno != EEXIST) {
			return false;
		}
		*p = '/';
	}
	if (mkdir(buf, mode) == 0) {
		if (!made && created && size)
			snprintf(created, size, "%s", buf);
		return true;
	}
	if (errno != EEXIST)
		return false;
	struct stat sb;
	if (stat(buf, &sb) != 0)
		return false;
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		return false;
	}
	return true;
}
