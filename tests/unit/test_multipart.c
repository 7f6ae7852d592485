/* The streaming multipart/form-data parser and the package name rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "multipart.h"
#include "nuspec.h"
#include "package_names.h"

/* What the callbacks saw, as text: "[name|filename|has]data..." per part. */
typedef struct {
	char log[8192];
	size_t n;
	int stop_after_bytes; /* 0 = never stop */
	int bytes;
} seen_t;

static void add(seen_t *s, const char *p, size_t len)
{
	if (s->n + len < sizeof s->log) {
		memcpy(s->log + s->n, p, len);
		s->n += len;
		s->log[s->n] = '\0';
	}
}

static int on_begin(void *ctx, const oh_part_t *part)
{
	char buf[700];
	snprintf(buf, sizeof buf, "[%s|%s|%d|%s]", part->name, part->filename, part->has_filename,
	         part->content_type);
	add(ctx, buf, strlen(buf));
	return 0;
}

static int on_data(void *ctx, const char *d, size_t len)
{
	seen_t *s = ctx;
	add(s, d, len);
	s->bytes += (int)len;
	return s->stop_after_bytes && s->bytes >= s->stop_after_bytes;
}

static int on_end(void *ctx)
{
	add(ctx, "{end}", 5);
	return 0;
}

static const oh_multipart_cb_t cb = {on_begin, on_data, on_end};

/* Feeds BODY in chunks of CHUNK bytes; returns the finish status. */
static oh_mp_status_t parse(const char *boundary, const char *body, size_t len, size_t chunk,
                            seen_t *s)
{
	memset(s, 0, sizeof *s);
	oh_multipart_t *mp = oh_multipart_new(boundary, &cb, s);
	assert_non_null(mp);
	oh_mp_status_t st = OH_MP_OK;
	for (size_t i = 0; i < len && (st == OH_MP_OK || st == OH_MP_DONE); i += chunk)
		st = oh_multipart_feed(mp, body + i, len - i < chunk ? len - i : chunk);
	if (st == OH_MP_OK || st == OH_MP_DONE)
		st = oh_multipart_finish(mp);
	oh_multipart_free(mp);
	return st;
}

static const char BODY[] = "preamble to ignore\r\n"
                           "--XyZ\r\n"
                           "Content-Disposition: form-data; name=\"note\"\r\n"
                           "\r\n"
                           "hello\r\n"
                           "--XyZ   \r\n"
                           "Content-Disposition: form-data; name=\"fileToUpload\"; "
                           "filename=\"C:\\\\tmp\\\\Acme.1.0.0.zip\"\r\n"
                           "Content-Type: application/zip\r\n"
                           "\r\n"
                           "a\r\n--XyW is not the end\r\n--Xy\r\nb\r\n"
                           "--XyZ--\r\n"
                           "epilogue";

static void parses_parts_whatever_the_chunking(void **state)
{
	(void)state;
	const char *want = "[note||0|]hello{end}"
	                   "[fileToUpload|Acme.1.0.0.zip|1|application/zip]"
	                   "a\r\n--XyW is not the end\r\n--Xy\r\nb{end}";
	for (size_t chunk = 1; chunk <= sizeof BODY; chunk++) {
		seen_t s;
		assert_int_equal(parse("XyZ", BODY, sizeof BODY - 1, chunk, &s), OH_MP_DONE);
		if (strcmp(s.log, want) != 0)
			fail_msg("chunk %zu: got %s", chunk, s.log);
	}
}

static void body_may_start_with_the_delimiter_and_parts_may_be_empty(void **state)
{
	(void)state;
	const char body[] = "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n--b--";
	seen_t s;
	assert_int_equal(parse("b", body, sizeof body - 1, 3, &s), OH_MP_DONE);
	assert_string_equal(s.log, "[x||0|]{end}");
}

static void a_body_without_its_close_delimiter_is_truncated(void **state)
{
	(void)state;
	seen_t s;
	size_t cut = strstr(BODY, "--XyZ--") - BODY;
	assert_int_equal(parse("XyZ", BODY, cut, 7, &s), OH_MP_TRUNCATED);
	assert_int_equal(parse("XyZ", "", 0, 1, &s), OH_MP_TRUNCATED);
}

static void malformed_headers_are_refused(void **state)
{
	(void)state;
	seen_t s;
	const char nocolon[] = "--b\r\nnot a header\r\n\r\nx\r\n--b--";
	assert_int_equal(parse("b", nocolon, sizeof nocolon - 1, 4, &s), OH_MP_BAD_HEADERS);
	const char junk[] = "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--bX\r\n";
	assert_int_equal(parse("b", junk, sizeof junk - 1, 4, &s), OH_MP_BAD_HEADERS);
	/* Header blocks are bounded. */
	char *big = malloc(OH_MULTIPART_HEADERS_MAX + 100);
	assert_non_null(big);
	strcpy(big, "--b\r\nX: ");
	memset(big + 8, 'a', OH_MULTIPART_HEADERS_MAX);
	assert_int_equal(parse("b", big, OH_MULTIPART_HEADERS_MAX + 8, 512, &s), OH_MP_BAD_HEADERS);
	free(big);
}

static void a_callback_can_stop_the_parse(void **state)
{
	(void)state;
	seen_t s;
	memset(&s, 0, sizeof s);
	s.stop_after_bytes = 2;
	oh_multipart_t *mp = oh_multipart_new("XyZ", &cb, &s);
	assert_int_equal(oh_multipart_feed(mp, BODY, sizeof BODY - 1), OH_MP_STOPPED);
	assert_int_equal(oh_multipart_feed(mp, "more", 4), OH_MP_STOPPED);
	oh_multipart_free(mp);
}

static void filename_star_is_decoded(void **state)
{
	(void)state;
	const char body[] = "--b\r\nContent-Disposition: form-data; name=f; filename=\"x.zip\"; "
	                    "filename*=UTF-8''caf%C3%A9.1.0.zip\r\n\r\nz\r\n--b--\r\n";
	seen_t s;
	assert_int_equal(parse("b", body, sizeof body - 1, 5, &s), OH_MP_DONE);
	assert_string_equal(s.log, "[f|caf\xc3\xa9.1.0.zip|1|]z{end}");
}

static void boundaries_are_read_from_content_type(void **state)
{
	(void)state;
	char b[OH_MULTIPART_BOUNDARY_MAX + 1];
	assert_true(oh_multipart_boundary("multipart/form-data; boundary=abc", b, sizeof b));
	assert_string_equal(b, "abc");
	assert_true(oh_multipart_boundary("Multipart/Form-Data;charset=x; boundary=\"a b:c\"", b,
	                                  sizeof b));
	assert_string_equal(b, "a b:c");
	assert_false(oh_multipart_boundary("application/json; boundary=abc", b, sizeof b));
	assert_false(oh_multipart_boundary("multipart/form-data", b, sizeof b));
	assert_false(oh_multipart_boundary("multipart/form-data; boundary=", b, sizeof b));
	assert_false(oh_multipart_boundary("multipart/form-data; boundary=a\x01", b, sizeof b));
	char long71[128] = "multipart/form-data; boundary=";
	memset(long71 + strlen(long71), 'x', 71);
	assert_false(oh_multipart_boundary(long71, b, sizeof b));
	assert_false(oh_multipart_boundary(NULL, b, sizeof b));
}

static void package_file_names_parse_as_octopus_reads_them(void **state)
{
	(void)state;
	struct {
		const char *name, *id, *version, *ext;
	} ok[] = {
	    {"Acme.Web.1.2.3.zip", "Acme.Web", "1.2.3", ".zip"},
	    {"Acme.Web.1.2.3-beta.1.nupkg", "Acme.Web", "1.2.3-beta.1", ".nupkg"},
	    {"acme.2024.1.0.0.tar.gz", "acme", "2024.1.0.0", ".tar.gz"},
	    {"My_App-x.10.0+build.5.TGZ", "My_App-x", "10.0+build.5", ".tgz"},
	    {"a.1.tar.bz2", "a", "1", ".tar.bz2"},
	    {"svc.3.1.0.jar", "svc", "3.1.0", ".jar"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		oh_package_name_t n;
		char why[300];
		if (!oh_package_name_parse(ok[i].name, &n, why, sizeof why))
			fail_msg("%s: %s", ok[i].name, why);
		assert_string_equal(n.id, ok[i].id);
		assert_string_equal(n.version, ok[i].version);
		assert_string_equal(n.ext, ok[i].ext);
	}
	const char *bad[] = {"Acme.zip",          "Acme.1.2.3.exe", ".1.0.zip",
	                     "Acme..Web.1.0.zip", "Ac me.1.0.zip",  "Acme.1.0-.zip",
	                     "Acme.1.0-a..b.zip", "../x.1.0.zip",   ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		oh_package_name_t n;
		char why[300] = "";
		if (oh_package_name_parse(bad[i], &n, why, sizeof why))
			fail_msg("%s parsed as %s %s", bad[i], n.id, n.version);
		assert_true(why[0] != '\0');
	}
}

static int cmp_versions(const char *a, const char *b)
{
	char ka[OH_VERSION_KEY_MAX + 1], kb[OH_VERSION_KEY_MAX + 1];
	assert_true(oh_version_sort_key(a, ka, sizeof ka));
	assert_true(oh_version_sort_key(b, kb, sizeof kb));
	for (const char *p = ka; *p; p++)
		assert_true(*p >= '0' && *p <= '9');
	int c = strcmp(ka, kb);
	return c < 0 ? -1 : c > 0;
}

static void versions_sort_by_semver_precedence(void **state)
{
	(void)state;
	/* Ascending, SemVer 2.0's own example chain and NuGet's rules. */
	const char *chain[] = {"0.9",        "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
	                       "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
	                       "1.0.0",      "1.0.1",        "1.2",           "1.10",
	                       "2.0.0.1",    "10.0"};
	for (size_t i = 0; i + 1 < sizeof chain / sizeof chain[0]; i++)
		if (cmp_versions(chain[i], chain[i + 1]) != -1)
			fail_msg("%s should sort before %s", chain[i], chain[i + 1]);
	assert_int_equal(cmp_versions("1.0", "1.0.0"), 0);
	assert_int_equal(cmp_versions("1.0.0+a", "1.0.0+b"), 0);
	assert_int_equal(cmp_versions("1.0.0-Beta", "1.0.0-beta"), 0);
	assert_int_equal(cmp_versions("1.0.0-a", "1.0.0-a-b"), -1);
	assert_int_equal(cmp_versions("1.0.0-a.1", "1.0.0-a-b"), -1);
	char k[OH_VERSION_KEY_MAX + 1];
	assert_false(oh_version_sort_key("x", k, sizeof k));
}

static void nuspec_metadata_is_read(void **state)
{
	(void)state;
	const char xml[] =
	    "<?xml version=\"1.0\"?>\n"
	    "<package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">"
	    "<metadata><id> Acme.Lib </id><version>2.0.0-rc.1</version><title>Acme &amp; "
	    "co</title><description>d</description><releaseNotes>n</releaseNotes></metadata>"
	    "<files><file src=\"x\"/></files></package>";
	oh_nuspec_t n;
	char why[300];
	assert_true(oh_nuspec_parse(xml, sizeof xml - 1, &n, why, sizeof why));
	assert_string_equal(n.id, "Acme.Lib");
	assert_string_equal(n.version, "2.0.0-rc.1");
	assert_string_equal(n.title, "Acme & co");
	assert_string_equal(n.release_notes, "n");
	assert_false(oh_nuspec_parse("<package><metadata><id>x</id></metadata></package>", 48, &n,
	                             why, sizeof why));
	assert_false(oh_nuspec_parse("<package><metadata>", 19, &n, why, sizeof why));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_parts_whatever_the_chunking),
	    cmocka_unit_test(body_may_start_with_the_delimiter_and_parts_may_be_empty),
	    cmocka_unit_test(a_body_without_its_close_delimiter_is_truncated),
	    cmocka_unit_test(malformed_headers_are_refused),
	    cmocka_unit_test(a_callback_can_stop_the_parse),
	    cmocka_unit_test(filename_star_is_decoded),
	    cmocka_unit_test(boundaries_are_read_from_content_type),
	    cmocka_unit_test(package_file_names_parse_as_octopus_reads_them),
	    cmocka_unit_test(versions_sort_by_semver_precedence),
	    cmocka_unit_test(nuspec_metadata_is_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
