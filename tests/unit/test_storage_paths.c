/* The shared storage folders and the path rules of lib/storage_paths.c:
 * one case per rule of oh_storage_path_check on each platform (the exact
 * sentence it answers, NULL when the path is accepted), and the round trips
 * between a folder, its API name, its `path` option and its Octopus
 * server-folders field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../lib/storage_paths.h"

/* The sentences of oh_storage_path_check (storage_paths.c). */
#define EMPTY        "must not be empty"
#define TOO_LONG     "is longer than 400 bytes"
#define CONTROL      "contains a control character"
#define L_RELATIVE   "must be an absolute path (start with /) on linux"
#define L_MIX        "mixes separators: use / only on linux"
#define L_ROOT       "must not be the root folder"
#define EMPTY_SEG    "has an empty segment (two separators in a row)"
#define DOT_SEG      "has a '.' or '..' segment; give the folder itself"
#define W_MIX        "mixes separators: use \\ only on windows"
#define W_DRIVE_REL  "must be absolute: a drive letter needs a backslash (X:\\folder)"
#define W_DRIVE_ROOT "must not be the root of a drive"
#define W_UNC        "is not a complete UNC path (\\\\server\\share\\folder)"
#define W_FORM                                                                                     \
	"must be a mapped drive (X:\\folder), a local folder linked to a share (C:\\folder) or "   \
	"a UNC path (\\\\server\\share\\folder) on windows"
#define W_CHARS    "contains a character Windows does not allow in a path (<>:\"|?*)"
#define W_SEG_TAIL "has a segment ending in a space or a dot, which Windows drops"
#define W_DEVICE   "has a segment Windows reserves for a device (CON, NUL, COM1, ...)"

/* Asserts that PATH on PLATFORM is accepted (WANT NULL) or refused with
 * exactly WANT, naming the path when it is not. */
/* Not inlined: inlined into a call with WANT NULL, an optimising build's
 * -Wformat-overflow flags the %s of branches that call never takes. */
__attribute__((noinline)) static void expect(const char *platform, const char *path,
                                             const char *want)
{
	const char *got = oh_storage_path_check(platform, path);
	if (want == NULL && got != NULL)
		fail_msg("%s path '%s' should be accepted, got: %s", platform, path, got);
	if (want != NULL && got == NULL)
		fail_msg("%s path '%s' should be refused with '%s', but was accepted", platform,
		         path, want);
	if (want != NULL && strcmp(got, want) != 0)
		fail_msg("%s path '%s': expected '%s', got '%s'", platform, path, want, got);
}

/* A path of exactly LEN bytes: "/" then 'a's, with a '/' every 50 bytes
 * (never last) so it is a real nested folder. */
static void long_linux_path(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (i % 50 == 0 && i + 1 < len) ? '/' : 'a';
	buf[len] = '\0';
}

/* ---- linux --------------------------------------------------------------- */

static void linux_absolute_paths_are_accepted(void **state)
{
	(void)state;
	expect("linux", "/mnt/octopus/TaskLogs", NULL);
	expect("linux", "/mnt/octopus/TaskLogs/", NULL); /* one trailing slash is fine */
	expect("linux", "/x", NULL);
	expect("linux", "/mnt/with space/and-dash_underscore.ext", NULL);
	expect("linux", "/mnt/...", NULL);                         /* "..." is a name, not ".." */
	expect("linux", "/mnt/.hidden", NULL);                     /* a dot-file is a name */
	expect("linux", "/mnt/Oct\xc3\xb6pus/\xe2\x82\xac", NULL); /* UTF-8 */
	expect("linux", "/mnt/a:b|c?d*<e>\"", NULL); /* windows-only characters are fine */
	/* NULL platform and an unknown one get the linux rules. */
	expect(NULL, "/mnt/octopus", NULL);
	expect(NULL, "mnt/octopus", L_RELATIVE);
	expect("macos", "/mnt/octopus", NULL);
	expect("macos", "X:\\Octopus", L_RELATIVE);
}

static void linux_empty_is_refused(void **state)
{
	(void)state;
	expect("linux", "", EMPTY);
	expect("windows", "", EMPTY);
	assert_string_equal(oh_storage_path_check("linux", NULL), EMPTY);
}

static void linux_relative_is_refused(void **state)
{
	(void)state;
	expect("linux", "mnt/x", L_RELATIVE);
	expect("linux", "./x", L_RELATIVE);
	expect("linux", "../x", L_RELATIVE);
	expect("linux", "x", L_RELATIVE);
	expect("linux", "~/x", L_RELATIVE);
	expect("linux", "C:\\Octopus", L_RELATIVE); /* a windows path on linux */
}

static void linux_root_is_refused(void **state)
{
	(void)state;
	expect("linux", "/", L_ROOT);
}

static void linux_dot_segments_are_refused(void **state)
{
	(void)state;
	expect("linux", "/mnt/../etc", DOT_SEG);
	expect("linux", "/mnt/..", DOT_SEG);
	expect("linux", "/..", DOT_SEG);
	expect("linux", "/../mnt", DOT_SEG);
	expect("linux", "/mnt/./x", DOT_SEG);
	expect("linux", "/mnt/.", DOT_SEG);
	expect("linux", "/.", DOT_SEG);
	expect("linux", "/mnt/../", DOT_SEG);
}

static void linux_empty_segment_is_refused(void **state)
{
	(void)state;
	expect("linux", "/mnt//x", EMPTY_SEG);
	expect("linux", "//mnt", EMPTY_SEG);
	expect("linux", "//", EMPTY_SEG);
	expect("linux", "/mnt/x//", EMPTY_SEG); /* two trailing slashes */
}

static void linux_backslash_is_refused(void **state)
{
	(void)state;
	expect("linux", "/mnt\\x", L_MIX);
	expect("linux", "/mnt/octopus\\TaskLogs", L_MIX);
	expect("linux", "/\\", L_MIX);
	/* The separator rule comes before the root rule. */
	expect("linux", "/mnt/x\\", L_MIX);
}

static void control_characters_are_refused(void **state)
{
	(void)state;
	expect("linux", "/mnt/a\tb", CONTROL);
	expect("linux", "/mnt/a\x7f", CONTROL);
	expect("linux", "/mnt/a\nb", CONTROL);
	expect("linux", "/mnt/a\rb", CONTROL);
	expect("linux", "/mnt/\x01", CONTROL);
	expect("linux", "/mnt/\x1f", CONTROL);
	expect("linux", "\t/mnt", CONTROL); /* before the relative-path rule */
	expect("windows", "X:\\a\tb", CONTROL);
	expect("windows", "X:\\a\x7f", CONTROL);
	expect("windows", "\\\\server\\share\\\x1b", CONTROL);
	/* 0x20 (space) and 0x7e (~) are the first/last printable: accepted. */
	expect("linux", "/mnt/ ~", NULL);
}

static void length_limit_is_400_bytes(void **state)
{
	(void)state;
	assert_int_equal(OH_STORAGE_PATH_MAX, 400);
	char buf[512];
	long_linux_path(buf, 400);
	assert_int_equal(strlen(buf), 400);
	expect("linux", buf, NULL);
	long_linux_path(buf, 401);
	assert_int_equal(strlen(buf), 401);
	expect("linux", buf, TOO_LONG);
	long_linux_path(buf, 500);
	expect("linux", buf, TOO_LONG);

	/* Bytes, not characters: 200 two-byte characters fit, 201 do not. */
	size_t n = 0;
	buf[n++] = '/';
	for (int i = 0; i < 199; i++) {
		buf[n++] = '\xc3';
		buf[n++] = '\xa9'; /* é */
	}
	buf[n++] = 'x';
	buf[n] = '\0';
	assert_int_equal(strlen(buf), 400);
	expect("linux", buf, NULL);
	buf[n - 1] = '\xc3';
	buf[n++] = '\xa9';
	buf[n] = '\0';
	assert_int_equal(strlen(buf), 401);
	expect("linux", buf, TOO_LONG);

	/* The length rule comes before the others. */
	memset(buf, 'a', 401);
	buf[401] = '\0';
	expect("linux", buf, TOO_LONG);

	/* Same limit on windows: "X:\" and 397 more bytes. */
	memcpy(buf, "X:\\", 3);
	memset(buf + 3, 'a', 397);
	buf[400] = '\0';
	expect("windows", buf, NULL);
	buf[400] = 'a';
	buf[401] = '\0';
	expect("windows", buf, TOO_LONG);
}

/* ---- windows ------------------------------------------------------------- */

static void windows_drive_and_unc_paths_are_accepted(void **state)
{
	(void)state;
	expect("windows", "X:\\Octopus\\Artifacts", NULL);
	expect("windows", "C:\\Octopus", NULL);
	expect("windows", "c:\\octopus", NULL);   /* lower-case drive letter */
	expect("windows", "C:\\Octopus\\", NULL); /* one trailing backslash */
	expect("windows", "\\\\server\\share\\Artifacts", NULL);
	expect("windows", "\\\\server\\share", NULL);
	expect("windows", "\\\\server\\share\\", NULL);
	expect("windows", "\\\\fs01.corp.example\\octopus$\\TaskLogs", NULL);
	expect("windows", "D:\\Program Files\\Octopus Deploy", NULL);
	expect("windows", "C:\\.hidden\\x", NULL); /* starts with a dot: fine */
}

static void windows_drive_without_backslash_is_refused(void **state)
{
	(void)state;
	expect("windows", "X:", W_DRIVE_REL);
	expect("windows", "X:folder", W_DRIVE_REL);
	expect("windows", "X:folder\\x", W_DRIVE_REL);
}

static void windows_drive_root_is_refused(void **state)
{
	(void)state;
	expect("windows", "X:\\", W_DRIVE_ROOT);
	expect("windows", "c:\\", W_DRIVE_ROOT);
}

static void windows_incomplete_unc_is_refused(void **state)
{
	(void)state;
	expect("windows", "\\\\server", W_UNC);
	expect("windows", "\\\\server\\", W_UNC);
	expect("windows", "\\\\", W_UNC);
	expect("windows", "\\\\\\share", W_UNC);     /* no server */
	expect("windows", "\\\\server\\\\x", W_UNC); /* empty share */
}

static void windows_forward_slash_is_refused(void **state)
{
	(void)state;
	expect("windows", "X:/Octopus", W_MIX);
	expect("windows", "X:/mixed\\sep", W_MIX);
	expect("windows", "X:\\Octopus/TaskLogs", W_MIX);
	expect("windows", "//server/share/x", W_MIX);
	expect("windows", "\\\\server\\share/x", W_MIX);
	/* A linux path on windows is told the forms windows takes. */
	expect("windows", "/mnt/x", W_FORM);
}

static void windows_device_names_are_refused(void **state)
{
	(void)state;
	expect("windows", "X:\\Octopus\\CON", W_DEVICE);
	expect("windows", "X:\\nul.txt\\TaskLogs", W_DEVICE);
	expect("windows", "\\\\server\\share\\COM1", W_DEVICE);
	expect("windows", "X:\\lpt9", W_DEVICE);
	expect("windows", "X:\\CONSOLE", NULL);
	expect("windows", "X:\\COM0", NULL);
	expect("linux", "/mnt/CON", NULL);
}

static void c1_control_characters_are_refused(void **state)
{
	(void)state;
	expect("linux",
	       "/mnt/a\xc2\x85"
	       "b",
	       "contains a control character");
	expect("windows",
	       "X:\\a\xc2\x9f"
	       "b",
	       "contains a control character");
	expect("linux", "/mnt/\xc2\xa0", NULL); /* U+00A0 is not a control character */
}

static void windows_forbidden_characters_are_refused(void **state)
{
	(void)state;
	static const char *const chars[] = {"<", ">", ":", "\"", "|", "?", "*"};
	for (size_t i = 0; i < sizeof chars / sizeof chars[0]; i++) {
		char p[64];
		snprintf(p, sizeof p, "X:\\Octo%spus", chars[i]);
		expect("windows", p, W_CHARS);
		snprintf(p, sizeof p, "\\\\server\\share\\a%sb", chars[i]);
		expect("windows", p, W_CHARS);
		snprintf(p, sizeof p, "\\\\ser%sver\\share", chars[i]);
		expect("windows", p, W_CHARS);
	}
	expect("windows", "X:\\<>:\"|?*", W_CHARS);
	expect("windows", "\\\\?\\C:\\x", W_CHARS); /* extended-length prefix */
}

static void windows_dot_segments_are_refused(void **state)
{
	(void)state;
	expect("windows", "X:\\Octopus\\..\\x", DOT_SEG);
	expect("windows", "X:\\..", DOT_SEG);
	expect("windows", "X:\\Octopus\\.\\x", DOT_SEG);
	expect("windows", "\\\\server\\share\\..\\x", DOT_SEG);
	expect("windows", "\\\\server\\..", DOT_SEG);
	expect("windows", "\\\\.\\pipe\\x", DOT_SEG); /* a device path's "." server */
}

static void windows_segment_ending_in_space_or_dot_is_refused(void **state)
{
	(void)state;
	expect("windows", "X:\\Octopus \\x", W_SEG_TAIL);
	expect("windows", "X:\\Octopus.\\x", W_SEG_TAIL);
	expect("windows", "X:\\Octopus ", W_SEG_TAIL);
	expect("windows", "X:\\Octopus.", W_SEG_TAIL);
	expect("windows", "X:\\Octopus...", W_SEG_TAIL);
	expect("windows", "\\\\server\\share.\\x", W_SEG_TAIL);
	expect("windows", "\\\\server \\share", W_SEG_TAIL);
	/* On linux the same names are fine. */
	expect("linux", "/mnt/Octopus /x.", NULL);
}

static void windows_empty_segment_is_refused(void **state)
{
	(void)state;
	expect("windows", "X:\\Octopus\\\\x", EMPTY_SEG);
	expect("windows", "X:\\\\", EMPTY_SEG);
	expect("windows", "\\\\server\\share\\\\x", EMPTY_SEG);
}

static void windows_relative_is_refused(void **state)
{
	(void)state;
	expect("windows", "Octopus\\x", W_FORM);
	expect("windows", "Octopus", W_FORM);
	expect("windows", ".\\x", W_FORM);
	expect("windows", "..\\x", W_FORM);
	expect("windows", "\\Octopus", W_FORM);   /* rooted, but on no drive */
	expect("windows", "1:\\Octopus", W_FORM); /* not a drive letter */
}

/* ---- folders -------------------------------------------------------------- */

static void folders_round_trip(void **state)
{
	(void)state;
	static const struct {
		oh_folder_t f;
		const char *name, *option, *octopus;
	} want[] = {
	    {OH_FOLDER_ARTIFACTS, "Artifacts", "artifacts", "ArtifactsDirectory"},
	    {OH_FOLDER_TASKLOGS, "TaskLogs", "taskLogs", "TaskLogsDirectory"},
	    {OH_FOLDER_PACKAGES, "Packages", "nugetRepository", "PackagesDirectory"},
	    {OH_FOLDER_IMPORTS, "Imports", "imports", "ImportsDirectory"},
	    {OH_FOLDER_EVENTEXPORTS, "EventExports", "eventExports", "EventExportsDirectory"},
	};
	assert_int_equal(OH_FOLDER__COUNT, 5);
	assert_int_equal(sizeof want / sizeof want[0], OH_FOLDER__COUNT);
	for (size_t i = 0; i < OH_FOLDER__COUNT; i++) {
		assert_int_equal(want[i].f, (oh_folder_t)i);
		assert_string_equal(oh_folder_name(want[i].f), want[i].name);
		assert_string_equal(oh_folder_option(want[i].f), want[i].option);
		assert_string_equal(oh_folder_octopus_field(want[i].f), want[i].octopus);
		oh_folder_t back = OH_FOLDER__COUNT;
		assert_true(oh_folder_parse(want[i].name, &back));
		assert_int_equal(back, want[i].f);
		/* name -> folder -> option -> ... all agree */
		assert_string_equal(oh_folder_option(back), want[i].option);
		assert_string_equal(oh_folder_octopus_field(back), want[i].octopus);
	}
}

static void unknown_folders_are_refused(void **state)
{
	(void)state;
	/* Only the API names parse: not options, Octopus fields, other cases. */
	static const char *const bad[] = {
	    "",           "Logs",       "tasklogs",        "TASKLOGS",
	    "taskLogs",   "artifacts",  "nugetRepository", "PackagesDirectory",
	    "TaskLogs ",  " Artifacts", "Artifact",        "EventExport",
	    "Packages\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		oh_folder_t out = (oh_folder_t)99;
		if (oh_folder_parse(bad[i], &out))
			fail_msg("'%s' should not parse as a folder (got %d)", bad[i], (int)out);
		assert_int_equal(out, 99); /* left alone */
	}
	/* Out of range: empty strings, not a crash. */
	assert_string_equal(oh_folder_name(OH_FOLDER__COUNT), "");
	assert_string_equal(oh_folder_option(OH_FOLDER__COUNT), "");
	assert_string_equal(oh_folder_octopus_field((oh_folder_t)1000), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(linux_absolute_paths_are_accepted),
	    cmocka_unit_test(linux_empty_is_refused),
	    cmocka_unit_test(linux_relative_is_refused),
	    cmocka_unit_test(linux_root_is_refused),
	    cmocka_unit_test(linux_dot_segments_are_refused),
	    cmocka_unit_test(linux_empty_segment_is_refused),
	    cmocka_unit_test(linux_backslash_is_refused),
	    cmocka_unit_test(control_characters_are_refused),
	    cmocka_unit_test(length_limit_is_400_bytes),
	    cmocka_unit_test(windows_drive_and_unc_paths_are_accepted),
	    cmocka_unit_test(windows_drive_without_backslash_is_refused),
	    cmocka_unit_test(windows_drive_root_is_refused),
	    cmocka_unit_test(windows_incomplete_unc_is_refused),
	    cmocka_unit_test(windows_forward_slash_is_refused),
	    cmocka_unit_test(windows_forbidden_characters_are_refused),
	    cmocka_unit_test(windows_device_names_are_refused),
	    cmocka_unit_test(c1_control_characters_are_refused),
	    cmocka_unit_test(windows_dot_segments_are_refused),
	    cmocka_unit_test(windows_segment_ending_in_space_or_dot_is_refused),
	    cmocka_unit_test(windows_empty_segment_is_refused),
	    cmocka_unit_test(windows_relative_is_refused),
	    cmocka_unit_test(folders_round_trip),
	    cmocka_unit_test(unknown_folders_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
