/* libFuzzer target: raw bytes on a connection to the real HTTP server, so
 * they go through civetweb's request parser, the dispatcher's framing and
 * path rules, the router, authentication and, for reads, parameter
 * validation and the handlers (api_server_start, in this process, on an
 * embedded SQLite database in a temporary folder).
 *
 * A Reader key is created at start; the text "API-FUZZREADER" in an input
 * is replaced by it, so seeds can reach what a Reader may do (every GET),
 * and nothing an input does can wait long (a Reader queues no task).  After
 * each input the client closes its side and reads the answers; an answer
 * of 500 is a bug of the server and stops the fuzzer, as does any
 * AddressSanitizer or UndefinedBehaviorSanitizer report in its threads. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "api.h"
#include "apikeys.h"
#include "db/migrate.h"
#include "node_state.h"
#include "oh_log.h"
#include "storage.h"

#define PLACEHOLDER "API-FUZZREADER"

static int port;
static char reader_key[OH_APIKEY_LEN + 1];
static char dir[] = "/tmp/octoha-fuzz-http.XXXXXX";
static api_server_t *server; /* runs until the process exits */

static void remove_dir(void)
{
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz_http_request: could not remove %s\n", dir);
}

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) != 0)
		abort();
	close(s);
	return ntohs(a.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	oh_log_set_level(OH_LOG_ERROR);
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	static char connstr[256], listen[32];
	snprintf(connstr, sizeof connstr, "Driver=SQLite3;Database=%s/octoha.db;JournalMode=WAL",
	         dir);
	db_pool_opts_t o = {.connstr = connstr,
	                    .size = 4,
	                    .login_timeout_s = 5,
	                    .acquire_timeout_ms = 5000,
	                    .max_retries = 3};
	db_pool_t *pool = db_pool_new(&o);
	db_migrate_result_t res;
	if (!pool || db_migrate(pool, &res) != DB_OK) {
		fprintf(stderr, "fuzz_http_request: no database in %s\n", dir);
		abort();
	}
	oh_apikey_t k;
	if (oh_apikeys_create(pool, "fuzz", OH_ROLE_READER, "fuzz", NULL, &k, reader_key) != DB_OK)
		abort();
	static char folders[OH_FOLDER__COUNT][300];
	const char *defaults[OH_FOLDER__COUNT];
	for (int f = 0; f < OH_FOLDER__COUNT; f++) {
		snprintf(folders[f], sizeof folders[f], "%s/%s", dir,
		         oh_folder_name((oh_folder_t)f));
		defaults[f] = folders[f];
	}
	oh_node_state_t *state = oh_node_state_new();
	oh_node_snapshot_t snap = {.id = "OctopusServerNodes-fuzz",
	                           .name = "fuzz",
	                           .version = "fuzz",
	                           .max_tasks = 5,
	                           .registered = true,
	                           .db_ok = true,
	                           .last_ok_mono = oh_mono_ms()};
	oh_node_state_publish(state, &snap);
	static unsigned char secrets[32];
	port = free_port();
	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	api_config_t cfg = {.pool = pool,
	                    .state = state,
	                    .offline_timeout_ms = 10000,
	                    .draining_status = 418,
	                    .max_body = 65536,
	                    .listen = listen,
	                    .threads = 8,
	                    .instance_tag = "fuzz",
	                    .self_node_id = "OctopusServerNodes-fuzz",
	                    .storage = oh_storage_new(defaults),
	                    .trusted_proxies = "",
	                    .auth_cache_ms = 1000,
	                    .secrets_key = secrets,
	                    .slack_signing_secret = "",
	                    .chatops_users = "",
	                    .request_timeout_ms = 2000,
	                    .max_conns_per_client = 32};
	char err[512];
	if (state && cfg.storage)
		server = api_server_start(&cfg, err, sizeof err);
	if (!server) {
		fprintf(stderr, "fuzz_http_request: cannot start the server: %s\n", err);
		abort();
	}
	return 0;
}

/* DATA with every PLACEHOLDER replaced by the Reader key (malloc'd). */
static char *with_key(const uint8_t *data, size_t size, size_t *out_len)
{
	size_t pl = strlen(PLACEHOLDER), kl = strlen(reader_key);
	char *out = malloc(size * (kl / pl + 1) + 1);
	if (!out)
		abort();
	size_t o = 0;
	for (size_t i = 0; i < size;) {
		if (i + pl <= size && memcmp(data + i, PLACEHOLDER, pl) == 0) {
			memcpy(out + o, reader_key, kl);
			o += kl;
			i += pl;
		} else {
			out[o++] = (char)data[i++];
		}
	}
	*out_len = o;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	char *req = with_key(data, size, &len);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 3};
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
		abort(); /* the server stopped accepting */
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	for (size_t o = 0; o < len;) {
		ssize_t w = send(s, req + o, len - o, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the server answered and closed early: fine */
		o += (size_t)w;
	}
	free(req);
	shutdown(s, SHUT_WR);
	char buf[65536];
	size_t got = 0;
	for (;;) {
		ssize_t r = recv(s, buf + got, sizeof buf - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof buf - 1) {
			got = 0; /* only the start of each answer is looked at */
		}
	}
	buf[got] = '\0';
	close(s);
	/* Every answer that starts a line with a status line must not be 500. */
	for (const char *p = buf; (p = strstr(p, "HTTP/1.1 500 ")); p++) {
		if (p == buf || p[-1] == '\n') {
			fprintf(stderr, "fuzz_http_request: the server answered 500:\n%s\n", buf);
			abort();
		}
	}
	return 0;
}
