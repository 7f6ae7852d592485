/* Package identities as Octopus's built-in repository reads them: a file
 * named <PackageId>.<Version><ext>, the version a SemVer / NuGet version
 * (1 to 4 numeric parts, an optional pre-release and build metadata), and
 * the order of versions.  Pure functions, no I/O. */
#ifndef OH_PACKAGE_NAMES_H
#define OH_PACKAGE_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define OH_PACKAGE_ID_MAX      100
#define OH_PACKAGE_VERSION_MAX 100
#define OH_PACKAGE_EXT_MAX     16
/* Room for a version's sort key (see oh_version_sort_key). */
#define OH_VERSION_KEY_MAX 1000

/* What a file name says. */
typedef struct {
	char id[OH_PACKAGE_ID_MAX + 1];
	char version[OH_PACKAGE_VERSION_MAX + 1];
	char ext[OH_PACKAGE_EXT_MAX + 1]; /* ".zip", ".tar.gz", … as given, lower-cased */
} oh_package_name_t;

/* The extensions the repository accepts, longest first within a family
 * (".tar.gz" before ".gz" never arises: only these are known).  NULL ends
 * the list. */
extern const char *const oh_package_extensions[];

/* True when ID is a valid package id: 1 to OH_PACKAGE_ID_MAX letters,
 * digits, '.', '-' or '_', starting with a letter, digit or '_', with no
 * ".." (the id names a folder). */
bool oh_package_id_valid(const char *id);

/* True when VERSION is a SemVer / NuGet version: 1 to 4 dot-separated
 * numeric parts, then optionally "-" and dot-separated pre-release
 * identifiers of [0-9A-Za-z-], then optionally "+" and build metadata of
 * the same; at most OH_PACKAGE_VERSION_MAX characters. */
bool oh_package_version_valid(const char *version);

/* Parses the file name NAME (no folder) as <PackageId>.<Version><ext>, the
 * id the shortest prefix after which a valid version runs up to a known
 * extension (so "Acme.Web.1.2.3-beta.1.zip" is Acme.Web 1.2.3-beta.1).
 * Returns true and fills OUT, or false with a sentence for the client in
 * WHY (WHYLEN bytes) saying what is wrong. */
bool oh_package_name_parse(const char *name, oh_package_name_t *out, char *why, size_t whylen);

/* Writes into KEY (at least OH_VERSION_KEY_MAX + 1 bytes) a string of
 * digits whose byte order (and so any collation's order) is the version's
 * precedence: numeric parts compared as numbers (missing parts are 0, so
 * 1.0 equals 1.0.0), a release after its pre-releases, pre-release
 * identifiers compared numerically when numeric, else case-insensitively,
 * numeric before alphanumeric, fewer identifiers first; build metadata
 * ignored.  Returns false when VERSION is not valid. */
bool oh_version_sort_key(const char *version, char *key, size_t keylen);

/* ASCII lower-case copy of ID into OUT (OUTLEN bytes, truncating). */
void oh_package_key(const char *id, char *out, size_t outlen);

#endif
