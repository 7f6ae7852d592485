/* octoha-bench-upload-baseline: bare civetweb that writes a request body
 * straight to a file, for comparison with octoha's package upload.
 *
 * The same civetweb library (.deps/civetweb), the same options as
 * api/server.c, the same TLS set-up when a certificate is given, and the
 * same read size (256 KiB mg_read calls).  Each POST's body goes to
 * DIR/upload-<n> (created, written, fsynced, closed) and is answered 201
 * with the byte count.  What it leaves out is what bench/upload measures:
 * octoha's dispatcher, the multipart parser, SHA-1 and SHA-256, the rename
 * and the database row.
 *
 *   octoha-bench-upload-baseline LISTEN DIR [CERT KEY]
 *
 * LISTEN is "host:port"; with CERT and KEY (PEM) it serves HTTPS.  Stops
 * on SIGTERM or SIGINT. */
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

struct upload_baseline {
	const char *dir, *cert, *key;
	_Atomic unsigned long seq;
};

static int handle(struct mg_connection *conn, void *cbdata)
{
	struct upload_baseline *b = cbdata;
	char path[4200];
	snprintf(path, sizeof path, "%s/upload-%lu", b->dir, atomic_fetch_add(&b->seq, 1));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	char *buf = malloc(CHUNK);
	long long total = 0;
	bool ok = fd >= 0 && buf;
	for (int n; ok && (n = mg_read(conn, buf, CHUNK)) > 0; total += n) {
		for (int off = 0; ok && off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			ok = w > 0;
			off += w > 0 ? (int)w : 0;
		}
	}
	ok = ok && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	free(buf);
	char body[64], head[256];
	int bn = snprintf(body, sizeof body, "{\"Bytes\":%lld}", total);
	int hn = snprintf(head, sizeof head,
	                  "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                  "Content-Length: %d\r\n\r\n",
	                  ok ? 201 : 500, ok ? "Created" : "Internal Server Error", bn);
	mg_write(conn, head, (size_t)hn);
	mg_write(conn, body, (size_t)bn);
	return ok ? 201 : 500;
}

static int allow_all(struct mg_connection *conn, void *cbdata)
{
	(void)conn;
	(void)cbdata;
	return 1;
}

/* As api/server.c: TLS 1.2+, ECDHE AEAD ciphers. */
static int on_init_ssl(void *ssl_ctx, void *user_data)
{
	struct upload_baseline *b = user_data;
	SSL_CTX *ctx = ssl_ctx;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1") !=
	        1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, b->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, b->key, SSL_FILETYPE_PEM) != 1)
		return -1;
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 5) {
		fprintf(stderr, "usage: %s LISTEN DIR [CERT KEY]\n", argv[0]);
		return 2;
	}
	static struct upload_baseline b;
	b.dir = argv[2];
	bool tls = argc == 5;
	if (tls) {
		b.cert = argv[3];
		b.key = argv[4];
	}
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	char ports[300];
	snprintf(ports, sizeof ports, "%s%s", argv[1], tls ? "s" : "");
	const char *options[] = {"listening_ports",
	                         ports,
	                         "num_threads",
	                         "64",
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
	if (tls)
		cb.init_ssl = on_init_ssl;
	char err[256] = "";
	struct mg_init_data init = {
	    .callbacks = &cb, .user_data = &b, .configuration_options = options};
	struct mg_error_data ed = {.text = err, .text_buffer_size = sizeof err};
	mg_init_library(tls ? MG_FEATURES_TLS : 0);
	struct mg_context *ctx = mg_start2(&init, &ed);
	if (!ctx) {
		fprintf(stderr, "upload-baseline: cannot start civetweb on %s: %s\n", ports, err);
		mg_exit_library();
		return 1;
	}
	mg_set_request_handler(ctx, "/", handle, &b);
	mg_set_auth_handler(ctx, "/", allow_all, NULL);
	fprintf(stderr, "upload-baseline: ready listen=%s\n", ports);
	int sig = 0;
	sigwait(&sigs, &sig);
	mg_stop(ctx);
	mg_exit_library();
	return 0;
}
