/* Configuration of octoha-server: one table of options, each settable by a
 * flag (--name), an environment variable (OCTOHA_NAME) and a config file
 * line (name = value); flags win over the environment, which wins over the
 * file, which wins over the defaults. */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
	char *db; /* ODBC connection string; "" = embedded SQLite */
	char *data_dir;
	char *listen;
	char *tls_cert, *tls_key;
	char *node_name;
	char *public_url;
	char *comms_address;
	long comms_port;
	long task_cap;
	bool task_cap_set; /* given explicitly (else the stored cap is kept) */
	char *platform;
	long heartbeat_ms;
	long offline_timeout_ms;
	long draining_status;
	long max_body_bytes;
	char *db_upgrade; /* auto | never */
	char *log_level;
	long http_threads;
	long db_pool_size;
	char *config_file;
	char *task_logs_dir; /* "" = <data-dir>/TaskLogs */
	long lease_ms;
	long poll_ms;
	long housekeeping_ms;
	long shutdown_grace_ms;
	long task_retention_hours;
	char *redirect_listen;      /* "" = no HTTP listener redirecting to HTTPS */
	char *trusted_proxies;      /* addresses whose X-Forwarded-For is recorded */
	long auth_cache_ms;         /* a checked key is believed this long */
	char *secrets_key_file;     /* "" = <data-dir>/secrets.key, created if missing */
	char *bootstrap_admin_key;  /* seeds the first Admin key once per cluster */
	char *slack_signing_secret; /* "" = Slack slash commands refused */
	char *chatops_users;        /* "U123=Operator,U456=Admin" */
	char *event_exports_dir;    /* "" = <data-dir>/EventExports */
	long event_retention_hours; /* older events are archived to EventExports */
	long archive_every_ms;      /* how often the archive task is queued */
	long webhook_timeout_ms;    /* per delivery attempt */
	long storage_check_ms;      /* active storage paths are read this often */
	long storage_reverify_ms;   /* every folder is proved again this often */
	long idempotency_ttl_hours; /* an Idempotency-Key is remembered this long */
	char *outbound_allow;       /* inner addresses user-aimed calls may reach */
	long max_package_bytes;     /* largest package upload; 0 = no limit */
	long package_keep_versions; /* package retention: versions kept per id; 0 = all */
	long package_retention_ms;  /* how often package retention is queued */
	char *health_listen;     /* "" = no health listener; else host:port for ping and /metrics */
	long request_timeout_ms; /* headers (and each body read or write) must come this fast */
	long max_conns_per_client; /* connections one address may hold on the API port; 0 = any */
	char *cors_origins;        /* exact origins a page may call the API from */
	long stream_max;           /* event streams open at once on this node */
	bool stream_max_set;       /* given explicitly (else at most a quarter of the threads) */
	long stream_heartbeat_ms;  /* a comment on an idle stream this often */
	long stream_poll_ms;       /* how often streams read the cluster's changes */
	char *oidc_issuer;         /* "" = no single sign-on */
	char *oidc_audience;       /* the aud tokens must carry */
	char *oidc_role_claim;     /* the claim with role or group names */
	char *oidc_roles;          /* "claim value=Role,…" */
	long oidc_leeway_seconds;  /* clock skew allowed on exp and nbf */
	long oidc_keys_max_age_ms; /* the issuer's key set is fetched again after this */
	long oidc_refresh_min_ms;  /* an unknown key id fetches the set at most this often */
	char *oidc_client_id;      /* the status page's public client */
	char *oidc_scopes;         /* what the status page asks for */
} svc_config_t;

/* Fills CFG from defaults, the config file, the environment and ARGV (the
 * arguments after the subcommand; unknown flags are an error unless
 * ALLOW_EXTRA, in which case they are left for the caller: svc_config_extra).
 * Returns true on success; on failure writes a message naming the option to
 * ERR. */
bool svc_config_load(svc_config_t *cfg, int argc, char **argv, char *err, size_t errlen);

/* Fills in values derived from others: the embedded connection string, the
 * public URL, the host name defaults.  Returns false with ERR set when a
 * value is out of range. */
bool svc_config_finish(svc_config_t *cfg, char *err, size_t errlen);

void svc_config_free(svc_config_t *cfg);

/* Prints the options, their environment names and defaults. */
void svc_config_usage(FILE *out);

#endif
