#include "oh_fs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Appends segment SEG (LEN bytes) to the absolute path OUT (SIZE bytes). */
static bool push_segment(char *out, size_t size, const char *seg, size_t len)
{
	size_t o = strlen(out);
	size_t need = o + (o > 1 ? 1 : 0) + len + 1;
	if (need > size) {
		errno = ENAMETOOLONG;
		return false;
	}
	if (o > 1)
		out[o++] = '/';
	memcpy(out + o, seg, len);
	out[o + len] = '\0';
	return true;
}

/* Drops the last segment of the absolute path OUT ("/" stays "/"). */
static void pop_segment(char *out)
{
	char *slash = strrchr(out, '/');
	if (slash == out)
		out[1] = '\0';
	else if (slash)
		*slash = '\0';
}

bool oh_real_location(const char *path, char *out, size_t size)
{
	/* TODO holds what is still to walk: PATH, with each link's target put
	 * in front of the rest of it as links are met. */
	size_t cap = 2 * PATH_MAX;
	char *todo = malloc(cap), *link = malloc(PATH_MAX);
	bool ok = false;
	int links = 0;
	if (!todo || !link || size < 2) {
		errno = ENOMEM;
		goto out;
	}
	if (path[0] == '/') {
		snprintf(out, size, "/");
	} else if (!getcwd(out, size)) {
		goto out;
	}
	if (strlen(path) >= cap) {
		errno = ENAMETOOLONG;
		goto out;
	}
	snprintf(todo, cap, "%s", path);
	bool missing = false; /* once a segment does not exist, the rest is kept */
	char *p = todo;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *next = end ? end : p + len;
		if (len == 1 && p[0] == '.') {
			p = next;
			continue;
		}
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			pop_segment(out);
			p = next;
			continue;
		}
		if (!push_segment(out, size, p, len))
			goto out;
		p = next;
		if (missing)
			continue;
		struct stat sb;
		if (lstat(out, &sb) != 0) {
			if (errno != ENOENT)
				goto out;
			missing = true;
			continue;
		}
		if (!S_ISLNK(sb.st_mode))
			continue;
		if (++links > 40) {
			errno = ELOOP;
			goto out;
		}
		ssize_t n = readlink(out, link, PATH_MAX - 1);
		if (n < 0)
			goto out;
		link[n] = '\0';
		pop_segment(out); /* the link's target replaces it */
		if (link[0] == '/')
			snprintf(out, size, "/");
		/* todo becomes LINK "/" REST. */
		size_t rest = strlen(p);
		if ((size_t)n + 1 + rest + 1 > cap) {
			errno = ENAMETOOLONG;
			goto out;
		}
		memmove(todo + n + 1, p, rest + 1);
		memcpy(todo, link, (size_t)n);
		todo[n] = '/';
		p = todo;
	}
	ok = true;
out:
	free(todo);
	free(link);
	return ok;
}
