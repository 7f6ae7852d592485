/* libFuzzer target: the storage path rules on both platforms.  Beyond "no
 * crash", it checks the promises oh_storage_path_check makes about what it
 * accepts, and aborts when one is broken. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage_paths.h"

static void require(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[1024];
	if (size >= sizeof path)
		size = sizeof path - 1;
	memcpy(path, data, size);
	path[size] = '\0';
	size_t len = strlen(path);
	bool ctrl = false;
	for (size_t i = 0; i < len; i++)
		ctrl = ctrl || (unsigned char)path[i] < 0x20 || path[i] == 0x7f;
	if (!oh_storage_path_check("linux", path)) {
		require(path[0] == '/' && len > 1 && len <= OH_STORAGE_PATH_MAX && !ctrl);
		require(!strchr(path, '\\') && !strstr(path, "//") && !strstr(path, "/../") &&
		        !strstr(path, "/./"));
		require(!(len >= 3 && strcmp(path + len - 3, "/..") == 0));
	}
	if (!oh_storage_path_check("windows", path)) {
		require(len <= OH_STORAGE_PATH_MAX && !ctrl && !strchr(path, '/'));
		require(!strstr(path, "\\..\\") && !strstr(path, "\\.\\"));
		bool drive = len >= 4 && path[1] == ':' && path[2] == '\\';
		bool unc = len >= 5 && path[0] == '\\' && path[1] == '\\';
		require(drive || unc);
	}
	return 0;
}
