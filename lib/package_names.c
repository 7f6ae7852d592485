#include "package_names.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const oh_package_extensions[] = {
    ".nupkg", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.bz", ".tbz",
    ".tar",   ".jar", ".war",    ".ear", ".rar",     NULL,
};

bool oh_package_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > OH_PACKAGE_ID_MAX || strstr(id, ".."))
		return false;
	if (!(isalnum((unsigned char)id[0]) || id[0] == '_'))
		return false;
	for (const char *p = id; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_'))
			return false;
	return true;
}

/* True when [S, S+N) is a non-empty run of [0-9A-Za-z-]. */
static bool ident_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

/* Checks dot-separated identifiers in [S, S+N). */
static bool idents_ok(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!ident_ok(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

bool oh_package_version_valid(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > OH_PACKAGE_VERSION_MAX)
		return false;
	const char *p = v;
	int parts = 0;
	for (;;) {
		size_t digits = 0;
		while (isdigit((unsigned char)p[digits]))
			digits++;
		if (digits == 0 || digits > 10)
			return false;
		parts++;
		p += digits;
		if (*p != '.')
			break;
		if (parts == 4)
			return false;
		p++;
	}
	const char *plus = strchr(p, '+');
	size_t pre_end = plus ? (size_t)(plus - p) : strlen(p);
	if (pre_end > 0) {
		if (p[0] != '-' || !idents_ok(p + 1, pre_end - 1))
			return false;
	}
	if (plus && !idents_ok(plus + 1, strlen(plus + 1)))
		return false;
	return true;
}

static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n > k && strncasecmp(s + n - k, suffix, k) == 0;
}

bool oh_package_name_parse(const char *name, oh_package_name_t *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof *out);
	size_t n = strlen(name);
	const char *ext = NULL;
	for (size_t i = 0; oh_package_extensions[i]; i++) {
		if (ends_with_ci(name, n, oh_package_extensions[i])) {
			ext = oh_package_extensions[i];
			break;
		}
	}
	if (!ext) {
		snprintf(why, whylen,
		         "The file name must end in a package extension (.zip, .nupkg, .tar.gz, "
		         ".tgz, .tar.bz2, .tar.bz, .tbz, .tar, .jar, .war, .ear or .rar).");
		return false;
	}
	size_t stem = n - strlen(ext);
	if (stem > OH_PACKAGE_ID_MAX + 1 + OH_PACKAGE_VERSION_MAX) {
		snprintf(why, whylen, "The file name is too long for a package id and version.");
		return false;
	}
	char buf[OH_PACKAGE_ID_MAX + OH_PACKAGE_VERSION_MAX + 2];
	memcpy(buf, name, stem);
	buf[stem] = '\0';
	/* The shortest id after which the rest is a version. */
	for (size_t i = 1; i + 1 < stem; i++) {
		if (buf[i] != '.' || !isdigit((unsigned char)buf[i + 1]))
			continue;
		if (i > OH_PACKAGE_ID_MAX || !oh_package_version_valid(buf + i + 1))
			continue;
		buf[i] = '\0';
		bool id_ok = oh_package_id_valid(buf);
		if (id_ok) {
			/* Both fit: the id is at most OH_PACKAGE_ID_MAX (checked) and
			 * the version at most OH_PACKAGE_VERSION_MAX (validated). */
			memcpy(out->id, buf, i + 1);
			memcpy(out->version, buf + i + 1, strlen(buf + i + 1) + 1);
			for (size_t k = 0; k < OH_PACKAGE_EXT_MAX && ext[k]; k++)
				out->ext[k] = ext[k];
			return true;
		}
		buf[i] = '.';
	}
	snprintf(why, whylen,
	         "The file name must be <PackageId>.<Version><extension>, e.g. "
	         "Acme.Web.1.2.3.zip: a package id of letters, digits, '.', '-' and '_', "
	         "then a SemVer version.");
	return false;
}

/* Appends the formatted text to KEY at *AT; false when it does not fit. */
static bool put(char *key, size_t keylen, size_t *at, const char *text)
{
	size_t n = strlen(text);
	if (*at + n >= keylen)
		return false;
	memcpy(key + *at, text, n + 1);
	*at += n;
	return true;
}

bool oh_version_sort_key(const char *version, char *key, size_t keylen)
{
	if (!oh_package_version_valid(version) || keylen < 2)
		return false;
	size_t at = 0;
	key[0] = '\0';
	const char *p = version;
	char tmp[16];
	int parts = 0;
	while (parts < 4) {
		unsigned long long v = 0;
		if (isdigit((unsigned char)*p)) {
			v = strtoull(p, (char **)&p, 10);
			if (*p == '.')
				p++;
		}
		snprintf(tmp, sizeof tmp, "%010llu", v);
		if (!put(key, keylen, &at, tmp))
			return false;
		parts++;
	}
	/* P now points at "-pre…", "+build…" or the end. */
	if (*p != '-')
		return put(key, keylen, &at, "9");
	if (!put(key, keylen, &at, "1"))
		return false;
	p++;
	size_t len = strcspn(p, "+");
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '.')
			continue;
		const char *id = p + start;
		size_t n = i - start;
		bool numeric = n <= 10;
		for (size_t k = 0; numeric && k < n; k++)
			numeric = isdigit((unsigned char)id[k]) != 0;
		if (numeric) {
			snprintf(tmp, sizeof tmp, "1%010llu", strtoull(id, NULL, 10));
			if (!put(key, keylen, &at, tmp))
				return false;
		} else {
			if (!put(key, keylen, &at, "2"))
				return false;
			for (size_t k = 0; k < n; k++) {
				snprintf(tmp, sizeof tmp, "%03d", tolower((unsigned char)id[k]));
				if (!put(key, keylen, &at, tmp))
					return false;
			}
			/* Ends the identifier below any character's code, so "a"
			 * sorts before "a-b" whatever follows "a". */
			if (!put(key, keylen, &at, "000"))
				return false;
		}
		start = i + 1;
	}
	return true;
}

void oh_package_key(const char *id, char *out, size_t outlen)
{
	size_t i = 0;
	for (; id[i] && i + 1 < outlen; i++)
		out[i] = (char)tolower((unsigned char)id[i]);
	if (outlen)
		out[i] = '\0';
}
