/* octoha-bench-baseline: bare civetweb, for comparison with octoha's ping.
 *
 * The same civetweb library (.deps/civetweb), the same options as
 * api/server.c (keep-alive, tcp_nodelay, timeouts, request size, thread
 * count) and the same way of writing a response: status line, headers
 * (Content-Type, Content-Length, Cache-Control, X-Request-Id with a counter)
 * and a 178-byte JSON body shaped like octoha's ping body, formatted with
 * snprintf and sent with one mg_write.  What it leaves out is exactly what
 * bench/ping measures: octoha's dispatcher (routing, parameter and body
 * checks, the handler reading node state, the log-level check, JSON
 * bookkeeping).
 *
 *   octoha-bench-baseline LISTEN [THREADS]
 *
 * LISTEN is a civetweb listening_ports value (127.0.0.1:8081); THREADS
 * defaults to 64, octoha's default.  Stops on SIGTERM or SIGINT. */
#include <civetweb.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef OCTOHA_VERSION
#define OCTOHA_VERSION "0.0.0"
#endif

/* Same shape and, for node name "bench", the same length as octoha's ping
 * body (the timestamp is fixed here; octoha formats the live one). */
static const char body_fmt[] =
    "{\"Id\":\"OctopusServerNodes-%s\",\"Name\":\"%s\",\"IsInMaintenanceMode\":false,"
    "\"IsOffline\":false,\"LastSeen\":\"2026-11-28T05:30:00.123+00:00\","
    "\"MaxConcurrentTasks\":5,\"Version\":\"" OCTOHA_VERSION "\"}";

struct baseline {
	char body[512];
	size_t body_len;
	_Atomic uint64_t seq;
};

static int handle(struct mg_connection *conn, void *cbdata)
{
	struct baseline *b = cbdata;
	char rid[48];
	snprintf(rid, sizeof rid, "%s-%llx", "baseline",
	         (unsigned long long)atomic_fetch_add(&b->seq, 1));
	const char *reason = mg_get_response_code_text(NULL, 200);
	char buf[4096];
	int hn = snprintf(buf, sizeof buf,
	                  "HTTP/1.1 %d %s\r\n"
	                  "Content-Type: %s\r\n"
	                  "Content-Length: %zu\r\n"
	                  "Cache-Control: no-store\r\n"
	                  "X-Request-Id: %s\r\n"
	                  "%s\r\n",
	                  200, reason ? reason : "", "application/json; charset=utf-8", b->body_len,
	                  rid, "");
	if (hn < 0 || (size_t)hn + b->body_len > sizeof buf)
		return 500;
	memcpy(buf + hn, b->body, b->body_len);
	mg_write(conn, buf, (size_t)hn + b->body_len);
	return 200;
}

static int allow_all(struct mg_connection *conn, void *cbdata)
{
	(void)conn;
	(void)cbdata;
	return 1;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	fprintf(stderr, "baseline: civetweb: %s\n", message);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || strcmp(argv[1], "--help") == 0) {
		fprintf(stderr, "usage: %s LISTEN [THREADS]\n", argv[0]);
		return 2;
	}
	int nthreads = 64;
	if (argc == 3) {
		char *end;
		long v = strtol(argv[2], &end, 10);
		if (*argv[2] == '\0' || *end != '\0' || v < 1 || v > 4096) {
			fprintf(stderr, "baseline: THREADS must be 1..4096\n");
			return 2;
		}
		nthreads = (int)v;
	}

	static struct baseline b;
	int n = snprintf(b.body, sizeof b.body, body_fmt, "bench", "bench");
	if (n <= 0 || (size_t)n >= sizeof b.body)
		return 1;
	b.body_len = (size_t)n;

	/* Block the stop signals before civetweb starts its threads, so that
	 * they inherit the mask and sigwait below gets them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	char threads[16];
	snprintf(threads, sizeof threads, "%d", nthreads);
	/* The options of api/server.c, in the same order. */
	const char *options[] = {"listening_ports",
	                         argv[1],
	                         "num_threads",
	                         threads,
	                         "enable_keep_alive",
	                         "yes",
	                         "keep_alive_timeout_ms",
	                         "30000",
	                         "request_timeout_ms",
	                         "30000",
	                         "tcp_nodelay",
	                         "1",
	                         "max_request_size",
	                         "16384",
	                         "enable_auth_domain_check",
	                         "no",
	                         NULL};
	struct mg_callbacks cb = {0};
	cb.log_message = on_log_message;
	char err[256] = "";
	struct mg_init_data init = {
	    .callbacks = &cb, .user_data = &b, .configuration_options = options};
	struct mg_error_data ed = {.text = err, .text_buffer_size = sizeof err};
	mg_init_library(0);
	struct mg_context *ctx = mg_start2(&init, &ed);
	if (!ctx) {
		fprintf(stderr, "baseline: cannot start civetweb on %s: %s\n", argv[1], err);
		mg_exit_library();
		return 1;
	}
	mg_set_request_handler(ctx, "/", handle, &b);
	mg_set_auth_handler(ctx, "/", allow_all, NULL);
	fprintf(stderr, "baseline: ready listen=%s threads=%d body_bytes=%zu\n", argv[1], nthreads,
	        b.body_len);

	int sig = 0;
	sigwait(&sigs, &sig);
	fprintf(stderr, "baseline: stopping signal=%d\n", sig);
	mg_stop(ctx);
	mg_exit_library();
	return 0;
}
