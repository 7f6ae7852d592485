/* octoha-server: the composition root.  Parses the subcommand and its
 * options, then hands over to the node lifecycle (node.c). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/http_client.h"
#include "../lib/oh_log.h"
#include "config.h"
#include "node.h"

static void usage(FILE *out)
{
	fputs(
	    "octoha-server " OCTOHA_VERSION " - a node of an octoha high-availability cluster\n"
	    "\n"
	    "Usage:\n"
	    "  octoha-server run [options]                 serve: register, heartbeat, HTTP API\n"
	    "  octoha-server database --upgrade [options]  apply pending schema migrations\n"
	    "  octoha-server database --status [options]   print the schema version\n"
	    "  octoha-server node --drain=true|false --taskCap=N [--wait=SECONDS]\n"
	    "                     [--cancel-tasks] [options]\n"
	    "                                              drain, undrain or cap this node\n"
	    "  octoha-server admin --create-api-key --name NAME --role Reader|Operator|Admin\n"
	    "                                              print a new API key (last line)\n"
	    "  octoha-server path --artifacts DIR --taskLogs DIR --nugetRepository DIR\n"
	    "                     --imports DIR --eventExports DIR [--wait=SECONDS] [options]\n"
	    "                                              change shared storage folders (any\n"
	    "                                              subset; every online node checks them)\n"
	    "  octoha-server version                       print the version\n"
	    "  octoha-server COMMAND --help                options of a command\n"
	    "\n"
	    "With no configuration, run keeps an embedded SQLite database and the storage\n"
	    "folders (Artifacts, TaskLogs, Packages, Imports, EventExports) in ./octoha-data.\n"
	    "Set OCTOHA_DB to an ODBC connection string to share a database between nodes.\n",
	    out);
}

/* Takes one `path` option at ARG (value after '=' or in the next of the N
 * arguments in NEXT, advancing *I).  False when ARG is not one. */
static bool path_option(const char *arg, int n, char **next, svc_path_args_t *pa, int *i)
{
	static const char *const names[] = {"artifacts", "taskLogs",     "nugetRepository",
	                                    "imports",   "eventExports", "wait"};
	for (int k = 0; k < 6; k++) {
		size_t len = strlen(names[k]);
		if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, names[k], len) != 0)
			continue;
		const char *v = NULL;
		if (arg[2 + len] == '=')
			v = arg + 3 + len;
		else if (arg[2 + len] == '\0' && n > 0) {
			v = next[0];
			(*i)++;
		} else
			continue;
		if (k < 5) {
			pa->paths[k] = v;
		} else {
			char *end;
			long w = strtol(v, &end, 10);
			pa->wait_seconds = *v && *end == '\0' && w >= 1 && w <= 86400 ? w : -1;
		}
		return true;
	}
	return false;
}

/* Heap arenas a node's threads share.  glibc gives a thread that finds
 * its arena locked a new one, up to 8 per core, and each arena keeps the
 * high-water mark of the requests it served: with 64 HTTP threads RSS
 * grew by 51 MiB over 200,000 bench/scale requests on SQLite, 21 MiB with
 * 2 arenas.  MALLOC_ARENA_MAX in the environment still decides. */
#define NODE_MALLOC_ARENAS 4

static void bound_heap_arenas(void)
{
#ifdef M_ARENA_MAX
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, NODE_MALLOC_ARENAS);
#endif
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	bound_heap_arenas();
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return argc < 2 ? SVC_EXIT_USAGE : SVC_EXIT_OK;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		puts(OCTOHA_VERSION);
		return SVC_EXIT_OK;
	}
	bool is_run = strcmp(cmd, "run") == 0, is_db = strcmp(cmd, "database") == 0;
	bool is_node = strcmp(cmd, "node") == 0, is_admin = strcmp(cmd, "admin") == 0;
	bool is_path = strcmp(cmd, "path") == 0;
	if (!is_run && !is_db && !is_node && !is_admin && !is_path) {
		fprintf(stderr, "octoha-server: unknown command '%s'\n\n", cmd);
		usage(stderr);
		return SVC_EXIT_USAGE;
	}
	int sub_argc = argc - 2;
	char **sub_argv = argv + 2;
	if (wants_help(sub_argc, sub_argv)) {
		if (is_run)
			fputs(
			    "Usage: octoha-server run [options]\n\n"
			    "Registers this node in the cluster database, keeps its heartbeat and\n"
			    "serves the HTTP API until SIGTERM.\n\n",
			    stdout);
		else
			fputs("Usage: octoha-server database --upgrade|--status [options]\n\n"
			      "--upgrade applies pending migrations (safe to run from several "
			      "nodes at\n"
			      "once); --status prints the schema version.\n\n",
			      stdout);
		svc_config_usage(stdout);
		return SVC_EXIT_OK;
	}
	bool upgrade = false, status = false, create_key = false;
	svc_admin_args_t aa = {0};
	svc_node_args_t na = {.drain = -1, .task_cap = -1};
	svc_path_args_t pa = {.wait_seconds = 60};
	bool path_given = false;
	bool wait_given = false;
	char *rest[64];
	int nrest = 0;
	for (int i = 0; i < sub_argc && nrest < 64; i++) {
		const char *a = sub_argv[i];
		if (is_db && strcmp(a, "--upgrade") == 0) {
			upgrade = true;
		} else if (is_db && strcmp(a, "--status") == 0) {
			status = true;
		} else if (is_node && strncmp(a, "--drain=", 8) == 0) {
			if (strcmp(a + 8, "true") != 0 && strcmp(a + 8, "false") != 0) {
				fputs("octoha-server node: --drain takes true or false\n", stderr);
				return SVC_EXIT_USAGE;
			}
			na.drain = strcmp(a + 8, "true") == 0;
		} else if (is_node &&
		           (strncmp(a, "--taskCap=", 10) == 0 || strncmp(a, "--wait=", 7) == 0)) {
			bool cap = a[2] == 't';
			const char *v = strchr(a, '=') + 1;
			char *end;
			long n = strtol(v, &end, 10);
			if (*v == '\0' || *end != '\0' || n < 0 || n > (cap ? 1000 : 86400)) {
				fprintf(
				    stderr,
				    "octoha-server node: %.*s takes a whole number from 0 to %d\n",
				    (int)(strchr(a, '=') - a), a, cap ? 1000 : 86400);
				return SVC_EXIT_USAGE;
			}
			if (cap)
				na.task_cap = n;
			else {
				na.wait_seconds = n;
				wait_given = true;
			}
		} else if (is_node && strcmp(a, "--cancel-tasks") == 0) {
			na.cancel_tasks = true;
		} else if (is_path && path_option(a, sub_argc - i - 1, sub_argv + i + 1, &pa, &i)) {
			bool wait = strncmp(a, "--wait", 6) == 0;
			if (wait && pa.wait_seconds < 0) {
				fputs("octoha-server path: --wait takes 1 to 86400 seconds\n",
				      stderr);
				return SVC_EXIT_USAGE;
			}
			path_given = path_given || !wait;
		} else if (is_admin && strcmp(a, "--create-api-key") == 0) {
			create_key = true;
		} else if (is_admin && (strcmp(a, "--name") == 0 || strcmp(a, "--role") == 0) &&
		           i + 1 < sub_argc) {
			*(a[2] == 'n' ? &aa.name : &aa.role) = sub_argv[++i];
		} else if (is_admin &&
		           (strncmp(a, "--name=", 7) == 0 || strncmp(a, "--role=", 7) == 0)) {
			*(a[2] == 'n' ? &aa.name : &aa.role) = a + 7;
		} else {
			rest[nrest++] = sub_argv[i];
		}
	}
	if (is_node && na.drain != 1 && (wait_given || na.cancel_tasks)) {
		fputs("octoha-server node: --wait and --cancel-tasks need --drain=true\n", stderr);
		return SVC_EXIT_USAGE;
	}
	if (is_node && na.drain < 0 && na.task_cap < 0) {
		fputs("octoha-server node: give --drain=true|false and/or --taskCap=N\n", stderr);
		return SVC_EXIT_USAGE;
	}
	if (is_path && (!path_given || pa.wait_seconds < 1)) {
		fputs("octoha-server path: give at least one of --artifacts, --taskLogs, "
		      "--nugetRepository, --imports, --eventExports (and --wait=1..86400)\n",
		      stderr);
		return SVC_EXIT_USAGE;
	}
	if (is_admin && !create_key) {
		fputs("octoha-server admin: give --create-api-key --name NAME --role ROLE\n",
		      stderr);
		return SVC_EXIT_USAGE;
	}
	if (is_db && upgrade == status) {
		fputs("octoha-server database: give exactly one of --upgrade or --status\n",
		      stderr);
		return SVC_EXIT_USAGE;
	}
	svc_config_t cfg;
	char err[512];
	if (!svc_config_load(&cfg, nrest, rest, err, sizeof err) ||
	    !svc_config_finish(&cfg, err, sizeof err)) {
		fprintf(stderr, "octoha-server: %s\n", err);
		svc_config_free(&cfg);
		return SVC_EXIT_USAGE;
	}
	oh_log_level_t level = OH_LOG_INFO;
	oh_log_parse_level(cfg.log_level, &level);
	oh_log_set_level(level);
	oh_http_global_init();
	int rc = is_run     ? svc_run(&cfg)
	         : is_node  ? svc_node_command(&cfg, &na)
	         : is_admin ? svc_admin_command(&cfg, &aa)
	         : is_path  ? svc_path_command(&cfg, &pa)
	                    : svc_database(&cfg, upgrade);
	svc_config_free(&cfg);
	return rc;
}
