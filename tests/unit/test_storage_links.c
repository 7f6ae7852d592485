/* Storage paths judged where they really lead (issue 10): the system
 * folders of each platform, oh_real_location following symbolic links
 * through paths whose end does not exist yet, and oh_storage_real_check /
 * oh_storage_probe refusing a link to "/" or a system folder before
 * anything is created through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/oh_fs.h"
#include "../../lib/storage.h"
#include "../../lib/storage_paths.h"

static char tmp[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof tmp, "/tmp/octoha-links.XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

/* TMP/NAME */
static const char *at(const char *name)
{
	static char buf[4][PATH_MAX];
	static int next;
	char *b = buf[next++ % 4];
	snprintf(b, PATH_MAX, "%s/%s", tmp, name);
	return b;
}

static void link_to(const char *target, const char *name)
{
	unlink(at(name));
	assert_int_equal(symlink(target, at(name)), 0);
}

static void system_folders(void **state)
{
	(void)state;
	struct {
		const char *platform, *path, *want;
	} cases[] = {
	    {"linux", "/", "is the root folder /"},
	    {"linux", "//", "is the root folder /"},
	    {"linux", "/etc", "is inside the system folder /etc"},
	    {"linux", "/etc/", "is inside the system folder /etc"},
	    {"linux", "/etc/octoha", "is inside the system folder /etc"},
	    {"linux", "/proc/self/cwd", "is inside the system folder /proc"},
	    {"linux", "/sys", "is inside the system folder /sys"},
	    {"linux", "/dev/shm/x", "is inside the system folder /dev"},
	    {"linux", "/usr/local/octopus", "is inside the system folder /usr"},
	    {"linux", "/boot", "is inside the system folder /boot"},
	    {"linux", "/bin", "is inside the system folder /bin"},
	    {"linux", "/sbin/x", "is inside the system folder /sbin"},
	    {"linux", "/lib", "is inside the system folder /lib"},
	    {"linux", "/lib64", "is inside the system folder /lib64"},
	    {"linux", "/etcetera", NULL},
	    {"linux", "/srv/usr", NULL},
	    {"linux", "/mnt/octopus", NULL},
	    {"linux", "/library", NULL},
	    {"windows", "C:\\", "is the root of a drive"},
	    {"windows", "D:", "is the root of a drive"},
	    {"windows", "C:\\Windows", "is inside the system folder \\Windows"},
	    {"windows", "c:\\windows\\Temp", "is inside the system folder \\Windows"},
	    {"windows", "E:\\WINDOWS", "is inside the system folder \\Windows"},
	    {"windows", "C:\\Windows2", NULL},
	    {"windows", "C:\\Octopus\\Windows", NULL},
	    {"windows", "\\\\server\\share\\Windows", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *got = oh_storage_system_folder(cases[i].platform, cases[i].path);
		if ((got == NULL) != (cases[i].want == NULL) ||
		    (got && strcmp(got, cases[i].want) != 0))
			fail_msg("%s %s: got %s, want %s", cases[i].platform, cases[i].path,
			         got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
	}
	/* The form check refuses system folders as written. */
	assert_string_equal(oh_storage_path_check("linux", "/etc/octoha"),
	                    "is inside the system folder /etc");
	assert_string_equal(oh_storage_path_check("windows", "C:\\Windows\\Octopus"),
	                    "is inside the system folder \\Windows");
	assert_null(oh_storage_path_check("linux", "/srv/octopus"));
}

static void real_location_follows_links(void **state)
{
	(void)state;
	char out[PATH_MAX];
	assert_int_equal(mkdir(at("real"), 0700), 0);
	assert_int_equal(mkdir(at("real/sub"), 0700), 0);
	link_to("/", "root");
	link_to("/etc", "etc");
	link_to("real", "rel");           /* relative to its folder */
	link_to("rel/sub", "chain");      /* a link to a path through a link */
	link_to("../../../../../", "up"); /* relative, up past / */
	link_to("loop2", "loop1");
	link_to("loop1", "loop2");

	assert_true(oh_real_location(at("root"), out, sizeof out));
	assert_string_equal(out, "/");
	assert_true(oh_real_location(at("root/"), out, sizeof out));
	assert_string_equal(out, "/");
	assert_true(oh_real_location(at("etc/octoha/new"), out, sizeof out));
	assert_string_equal(out, "/etc/octoha/new"); /* the end need not exist */
	assert_true(oh_real_location(at("chain/x/y"), out, sizeof out));
	char real_tmp[PATH_MAX];
	char want[PATH_MAX + 32];
	assert_non_null(realpath(tmp, real_tmp));
	snprintf(want, sizeof want, "%s/real/sub/x/y", real_tmp);
	assert_string_equal(out, want);
	assert_true(oh_real_location(at("up"), out, sizeof out));
	assert_string_equal(out, "/");
	assert_true(oh_real_location(at("real/sub/../../root"), out, sizeof out));
	assert_string_equal(out, "/");
	assert_false(oh_real_location(at("loop1/x"), out, sizeof out));
	assert_int_equal(errno, ELOOP);
	/* Relative paths start at the working folder. */
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(tmp), 0);
	assert_true(oh_real_location("root", out, sizeof out));
	assert_string_equal(out, "/");
	assert_int_equal(chdir(cwd), 0);
}

static void links_to_system_folders_are_refused(void **state)
{
	(void)state;
	char buf[400], err[600], created[PATH_MAX];
	link_to("/", "toroot");
	link_to("/proc", "toproc");
	link_to("/usr/share", "toshare");
	assert_int_equal(mkdir(at("ok"), 0700), 0);
	link_to("ok", "took");

	const char *why = oh_storage_real_check(at("toroot"), buf, sizeof buf);
	assert_non_null(why);
	assert_string_equal(why, "leads to /, which is the root folder /");
	why = oh_storage_real_check(at("toproc/self"), buf, sizeof buf);
	assert_non_null(why);
	assert_non_null(strstr(why, "inside the system folder /proc"));
	/* A folder that does not exist yet, under a link into /usr. */
	why = oh_storage_real_check(at("toshare/octoha-not-there/TaskLogs"), buf, sizeof buf);
	assert_non_null(why);
	assert_non_null(strstr(why, "inside the system folder /usr"));
	assert_null(oh_storage_real_check(at("took/TaskLogs"), buf, sizeof buf));
	assert_null(oh_storage_real_check(at("real-not-there"), buf, sizeof buf));

	/* The probe refuses before it writes or creates anything through the
	 * link. */
	assert_false(oh_storage_probe(at("toroot"), "OctopusServerNodes-t", err, sizeof err,
	                              created, sizeof created));
	assert_non_null(strstr(err, "which is the root folder /"));
	assert_string_equal(created, "");
	link_to("/etc", "toetc");
	assert_false(oh_storage_probe(at("toetc/octoha-probe-test-folder"), "OctopusServerNodes-t",
	                              err, sizeof err, created, sizeof created));
	assert_non_null(strstr(err, "inside the system folder /etc"));
	assert_string_equal(created, "");
	struct stat sb;
	assert_int_not_equal(stat("/etc/octoha-probe-test-folder", &sb), 0);
	/* And still proves a folder reached through an ordinary link. */
	assert_true(oh_storage_probe(at("took/Imports"), "OctopusServerNodes-t", err, sizeof err,
	                             created, sizeof created));
	assert_int_equal(stat(at("ok/Imports"), &sb), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(system_folders),
	    cmocka_unit_test(real_location_follows_links),
	    cmocka_unit_test(links_to_system_folders_are_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
