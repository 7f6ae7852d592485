#include "nuspec.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>

typedef struct {
	oh_nuspec_t *out;
	int depth;
	bool in_metadata;
	char *field; /* the metadata child being read, or NULL */
	size_t field_size, field_len;
} parse_t;

/* The element's local name (after any namespace prefix expat kept). */
static const char *local_name(const char *name)
{
	const char *sep = strrchr(name, '|');
	return sep ? sep + 1 : name;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	(void)atts;
	parse_t *p = ud;
	p->depth++;
	const char *n = local_name(name);
	if (p->depth == 2 && strcmp(n, "metadata") == 0) {
		p->in_metadata = true;
		return;
	}
	if (!p->in_metadata || p->depth != 3)
		return;
	struct {
		const char *name;
		char *buf;
		size_t size;
	} fields[] = {
	    {"id", p->out->id, sizeof p->out->id},
	    {"version", p->out->version, sizeof p->out->version},
	    {"title", p->out->title, sizeof p->out->title},
	    {"summary", p->out->summary, sizeof p->out->summary},
	    {"description", p->out->description, sizeof p->out->description},
	    {"releaseNotes", p->out->release_notes, sizeof p->out->release_notes},
	};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		if (strcmp(n, fields[i].name) == 0) {
			p->field = fields[i].buf;
			p->field_size = fields[i].size;
			p->field_len = 0;
			p->field[0] = '\0';
		}
	}
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	parse_t *p = ud;
	if (p->depth == 2 && strcmp(local_name(name), "metadata") == 0)
		p->in_metadata = false;
	if (p->depth == 3)
		p->field = NULL;
	p->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	parse_t *p = ud;
	if (!p->field || len <= 0)
		return;
	size_t room = p->field_size - 1 - p->field_len;
	size_t n = (size_t)len < room ? (size_t)len : room;
	memcpy(p->field + p->field_len, s, n);
	p->field_len += n;
	p->field[p->field_len] = '\0';
}

/* Trims white space around S in place. */
static void trim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 &&
	       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	size_t k = strspn(s, " \t\r\n");
	if (k)
		memmove(s, s + k, n - k + 1);
}

bool oh_nuspec_parse(const char *xml, size_t len, oh_nuspec_t *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof *out);
	/* Namespaces are split off with '|' so <metadata> matches whatever
	 * nuspec schema version the package declares. */
	XML_Parser x = XML_ParserCreateNS(NULL, '|');
	if (!x) {
		snprintf(why, whylen, "out of memory");
		return false;
	}
	parse_t p = {.out = out};
	XML_SetUserData(x, &p);
	XML_SetElementHandler(x, on_start, on_end);
	XML_SetCharacterDataHandler(x, on_text);
	bool ok = XML_Parse(x, xml, (int)len, XML_TRUE) == XML_STATUS_OK;
	if (!ok)
		snprintf(why, whylen,
		         "The package's .nuspec is not well-formed XML: %s (line %lu).",
		         XML_ErrorString(XML_GetErrorCode(x)),
		         (unsigned long)XML_GetCurrentLineNumber(x));
	XML_ParserFree(x);
	if (!ok)
		return false;
	trim(out->id);
	trim(out->version);
	if (!out->id[0] || !out->version[0]) {
		snprintf(why, whylen, "The package's .nuspec has no metadata id or version.");
		return false;
	}
	return true;
}

oh_nuspec_status_t oh_nuspec_read(const char *path, oh_nuspec_t *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof *out);
	int zerr = 0;
	zip_t *z = zip_open(path, ZIP_RDONLY, &zerr);
	if (!z) {
		zip_error_t e;
		zip_error_init_with_code(&e, zerr);
		snprintf(why, whylen, "The .nupkg is not a readable zip file: %s.",
		         zip_error_strerror(&e));
		zip_error_fini(&e);
		return OH_NUSPEC_NOT_ZIP;
	}
	oh_nuspec_status_t st = OH_NUSPEC_NONE;
	zip_int64_t n = zip_get_num_entries(z, 0);
	for (zip_int64_t i = 0; i < n; i++) {
		const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
		size_t len = name ? strlen(name) : 0;
		/* At the root only: a .nuspec inside a content folder is content. */
		if (len <= 7 || strchr(name, '/') || strcasecmp(name + len - 7, ".nuspec") != 0)
			continue;
		zip_stat_t zs;
		if (zip_stat_index(z, (zip_uint64_t)i, 0, &zs) != 0 ||
		    !(zs.valid & ZIP_STAT_SIZE) || zs.size > OH_NUSPEC_MAX) {
			snprintf(why, whylen, "The package's .nuspec is larger than %d bytes.",
			         OH_NUSPEC_MAX);
			st = OH_NUSPEC_INVALID;
			break;
		}
		zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)i, 0);
		char *buf = malloc((size_t)zs.size + 1);
		zip_int64_t got = (f && buf) ? zip_fread(f, buf, zs.size) : -1;
		if (f)
			zip_fclose(f);
		if (got < 0 || (zip_uint64_t)got != zs.size) {
			snprintf(why, whylen, "The package's .nuspec cannot be read from the zip.");
			st = OH_NUSPEC_INVALID;
		} else {
			st = oh_nuspec_parse(buf, (size_t)got, out, why, whylen)
			         ? OH_NUSPEC_OK
			         : OH_NUSPEC_INVALID;
		}
		free(buf);
		break;
	}
	zip_discard(z);
	return st;
}
