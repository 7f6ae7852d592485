/* The HTTP face of octoha: starts and stops the civetweb server that serves
 * the operations of openapi.yaml.  The service layer fills api_config_t; the
 * handlers reach the cluster only through lib/. */
#ifndef API_H
#define API_H

#include <stddef.h>
#include <stdint.h>

#include "../lib/db/db.h"
#include "../lib/node_state.h"
#include "../lib/oidc.h"
#include "../lib/storage.h"

typedef struct api_streams api_streams_t;

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
	int64_t max_package_bytes;        /* largest package upload; 0 = no limit */
	const char *health_listen;        /* "host:port" serving only ping and /metrics, or "" */
	int request_timeout_ms;           /* request headers must arrive within this */
	int max_conns_per_client;         /* per address on the API port; 0 = no cap */
	/* Portals: CORS, event streams, single sign-on, the status page. */
	const char *cors_origins;    /* comma-separated exact origins; "" = no CORS */
	int stream_max;              /* event streams open at once on this node */
	int64_t stream_heartbeat_ms; /* a comment on an idle stream this often */
	int64_t stream_poll_ms;      /* how often streams read the cluster's changes */
	oh_oidc_t *oidc;             /* borrowed; NULL = bearer tokens are refused */
	const char *oidc_client_id;  /* the status page's public client; "" = keys only */
	const char *oidc_scopes;     /* what the status page asks the issuer for */
	api_streams_t *streams;      /* set by api_server_start */
	/* What calls aimed by users (managed clusters) may reach. */
	const struct oh_outbound_policy *outbound;
} api_config_t;

typedef struct api_server api_server_t;

/* Starts serving.  Returns the server, or NULL with the reason in ERR. */
api_server_t *api_server_start(const api_config_t *cfg, char *err, size_t errlen);

/* Checks the cors-origins list: comma-separated origins, each
 * scheme://host[:port] with http or https and nothing after.  Returns false
 * with the offending item named in ERR (api/cors.c). */
bool api_cors_check(const char *origins, char *err, size_t errlen);

/* Stops accepting connections, waits for in-flight requests to finish and
 * frees the server.  NULL is ignored. */
void api_server_stop(api_server_t *srv);

/* Waits until no request is being handled, or until DEADLINE_MONO
 * (oh_mono_ms time): called once the node says it is stopping, so requests
 * that were waiting (waitSeconds) get their answer before the server's
 * connections close. */
void api_server_quiesce(api_server_t *srv, int64_t deadline_mono);

#endif
