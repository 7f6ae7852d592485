/* A NuGet package's own description: the .nuspec file at the root of a
 * .nupkg (a zip), read with libzip and parsed with expat.  Only the
 * metadata the package repository shows is kept. */
#ifndef OH_NUSPEC_H
#define OH_NUSPEC_H

#include <stdbool.h>
#include <stddef.h>

/* The .nuspec is read only up to this size (it is a few KiB in practice;
 * a bigger one is refused rather than inflated). */
#define OH_NUSPEC_MAX (1024 * 1024)

typedef struct {
	char id[256];
	char version[256];
	char title[401];
	char summary[4001];
	char description[4001];
	char release_notes[4001];
} oh_nuspec_t;

typedef enum {
	OH_NUSPEC_OK = 0,
	OH_NUSPEC_NONE,    /* a zip without a .nuspec at its root */
	OH_NUSPEC_NOT_ZIP, /* not a readable zip */
	OH_NUSPEC_INVALID  /* a .nuspec that is too big, not XML, or lacks id/version */
} oh_nuspec_status_t;

/* Reads the .nuspec of the package at PATH into *OUT (zeroed first).
 * WHY (WHYLEN bytes) says what is wrong for a client when the result is
 * not OH_NUSPEC_OK. */
oh_nuspec_status_t oh_nuspec_read(const char *path, oh_nuspec_t *out, char *why, size_t whylen);

/* Parses the nuspec XML in [XML, XML+LEN) into *OUT.  False with WHY set
 * when it is not well-formed or lacks metadata/id or metadata/version. */
bool oh_nuspec_parse(const char *xml, size_t len, oh_nuspec_t *out, char *why, size_t whylen);

#endif
