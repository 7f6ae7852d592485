/* Configuration precedence and validation: defaults < file < environment <
 * flags, and one negative test per rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../service/config.h"

static char file[64];

static int clean_env(void **state)
{
	(void)state;
	unsetenv("OCTOHA_CONFIG");
	unsetenv("OCTOHA_TASK_CAP");
	unsetenv("OCTOHA_LISTEN");
	unsetenv("OCTOHA_DB");
	unsetenv("OCTOHA_NODE_NAME");
	unsetenv("OCTOHA_DRAINING_STATUS");
	if (file[0])
		unlink(file);
	return 0;
}

static void write_file(const char *text)
{
	snprintf(file, sizeof file, "/tmp/octoha-config-%d.conf", (int)getpid());
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static bool load(int argc, char **argv, svc_config_t *cfg, char *err)
{
	return svc_config_load(cfg, argc, argv, err, 256) && svc_config_finish(cfg, err, 256);
}

static void defaults_give_embedded_sqlite(void **state)
{
	(void)state;
	svc_config_t cfg;
	char err[256];
	char *argv[] = {"--node-name", "n1"};
	assert_true(load(2, argv, &cfg, err));
	assert_non_null(strstr(cfg.db, "Driver=SQLite3;Database=./octoha-data/octoha.db"));
	assert_string_equal(cfg.listen, "127.0.0.1:8080");
	assert_int_equal(cfg.task_cap, 5);
	assert_false(cfg.task_cap_set);
	assert_int_equal(cfg.comms_port, 10943);
	assert_int_equal(cfg.draining_status, 418);
	assert_non_null(strstr(cfg.public_url, ":8080"));
	svc_config_free(&cfg);
}

static void flags_beat_environment_beat_file(void **state)
{
	(void)state;
	write_file("# comment\ntask-cap = 3\nlisten = 127.0.0.1:9001\nnode-name = fromfile\n");
	setenv("OCTOHA_CONFIG", file, 1);
	setenv("OCTOHA_TASK_CAP", "4", 1);
	svc_config_t cfg;
	char err[256];
	char *argv[] = {"--task-cap=9"};
	assert_true(load(1, argv, &cfg, err));
	assert_int_equal(cfg.task_cap, 9);
	assert_true(cfg.task_cap_set);
	assert_string_equal(cfg.listen, "127.0.0.1:9001");
	assert_string_equal(cfg.node_name, "fromfile");
	svc_config_free(&cfg);
	assert_true(load(0, NULL, &cfg, err));
	assert_int_equal(cfg.task_cap, 4);
	svc_config_free(&cfg);
}

static void bad_values_name_the_option(void **state)
{
	(void)state;
	struct {
		char *flag, *value, *words;
	} cases[] = {
	    {"--task-cap", "-1", "task-cap"},
	    {"--task-cap", "abc", "task-cap"},
	    {"--comms-port", "70000", "comms-port"},
	    {"--draining-status", "500", "draining-status"},
	    {"--platform", "macos", "platform"},
	    {"--listen", "nohost", "listen"},
	    {"--node-name", "bad name", "node-name"},
	    {"--db-upgrade", "sometimes", "db-upgrade"},
	    {"--log-level", "loud", "log-level"},
	    {"--tls-cert", "/x.pem", "tls-key"},
	    {"--bogus", "1", "--bogus"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		svc_config_t cfg;
		char err[256] = "";
		char *argv[] = {cases[i].flag, cases[i].value, "--node-name", "n1"};
		bool name_given = strcmp(cases[i].flag, "--node-name") == 0;
		assert_false(load(name_given ? 2 : 4, argv, &cfg, err));
		if (!strstr(err, cases[i].words))
			fail_msg("%s %s: '%s' does not mention %s", cases[i].flag, cases[i].value,
			         err, cases[i].words);
		svc_config_free(&cfg);
	}
}

static void bad_file_line_is_reported(void **state)
{
	(void)state;
	write_file("task-cap = 2\nno equals sign here\n");
	setenv("OCTOHA_CONFIG", file, 1);
	svc_config_t cfg;
	char err[256] = "";
	assert_false(load(0, NULL, &cfg, err));
	assert_non_null(strstr(err, "line 2"));
	svc_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(defaults_give_embedded_sqlite, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(flags_beat_environment_beat_file, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(bad_values_name_the_option, clean_env, clean_env),
	    cmocka_unit_test_setup_teardown(bad_file_line_is_reported, clean_env, clean_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
