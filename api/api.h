/* The HTTP face of octoha: starts and stops the civetweb server that serves
 * the operations of openapi.yaml.  The service layer fills api_config_t; the
 * handlers reach the cluster only through lib/. */
#ifndef API_H
#define API_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/db/db.h"
#include "../lib/node_state.h"
#include "../lib/storage.h"

typedef struct {
	db_pool_t *pool;        /* borrowed */
	oh_node_state_t *state; /* borrowed: this node, for ping */
	int64_t offline_timeout_ms;
	int draining_status;  /* 418 or 503 */
	size_t max_body;      /* bytes */
	const char *listen;   /* "host:port" */
	const char *tls_cert; /* PEM files; both set = HTTPS */
	const char *tls_key;
	int threads;
	const char *instance_tag; /* short prefix for request ids */
	const char *self_node_id; /* this node's Id */
	oh_storage_t *storage;    /* this node's storage folders (task logs, …) */
	/* Called when a request queued a task, so this node claims it at once
	 * rather than at its next poll.  May be NULL. */
	void (*on_task_queued)(void *ctx);
	void *notify_ctx;
	const char *redirect_listen;      /* "host:port" answering 301 to HTTPS, or "" */
	const char *trusted_proxies;      /* addresses whose X-Forwarded-For is believed */
	int64_t auth_cache_ms;            /* how long a checked key is believed */
	const unsigned char *secrets_key; /* 32 bytes: seals webhook secrets */
	const char *slack_signing_secret; /* "" = Slack requests refused */
	const char *chatops_users;        /* "U123=Operator,U456=Admin" */
	int64_t idempotency_ttl_ms;       /* how long an Idempotency-Key is remembered */
	/* What calls aimed by users (managed clusters) may reach. */
	const struct oh_outbound_policy *outbound;
} api_config_t;

typedef struct api_server api_server_t;

/* Starts serving.  Returns the server, or NULL with the reason in ERR. */
api_server_t *api_server_start(const api_config_t *cfg, char *err, size_t errlen);

/* Stops accepting connections, waits for in-flight requests to finish and
 * frees the server.  NULL is ignored. */
void api_server_stop(api_server_t *srv);

/* Waits until no request is being handled, or until DEADLINE_MONO
 * (oh_mono_ms time): called once the node says it is stopping, so requests
 * that were waiting (waitSeconds) get their answer before the server's
 * connections close. */
void api_server_quiesce(api_server_t *srv, int64_t deadline_mono);

#endif
