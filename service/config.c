#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../api/api.h"
#include "../lib/apikeys.h"
#include "../lib/http_client.h"
#include "../lib/nodes.h"
#include "../lib/storage_paths.h"

typedef enum { OPT_STR, OPT_LONG } opt_type_t;

typedef struct {
	const char *name; /* flag without "--"; env is OCTOHA_ + upper-cased, '-' -> '_' */
	opt_type_t type;
	size_t offset;
	const char *def;
	long min, max;
	const char *help;
} opt_t;

#define S(field) OPT_STR, offsetof(svc_config_t, field)
#define L(field) OPT_LONG, offsetof(svc_config_t, field)

static const opt_t opts[] = {
    {"config", S(config_file), "", 0, 0, "config file of 'name = value' lines"},
    {"db", S(db), "", 0, 0,
     "ODBC connection string; empty = embedded SQLite in the data directory"},
    {"data-dir", S(data_dir), "./octoha-data", 0, 0,
     "data directory: embedded database and storage folders"},
    {"listen", S(listen), "127.0.0.1:8080", 0, 0, "HTTP(S) listen address host:port"},
    {"tls-cert", S(tls_cert), "", 0, 0, "PEM certificate chain; with --tls-key serves HTTPS"},
    {"tls-key", S(tls_key), "", 0, 0, "PEM private key"},
    {"node-name", S(node_name), "", 0, 0, "node name, unique in the cluster (default: host name)"},
    {"public-url", S(public_url), "", 0, 0, "URL other nodes and clients reach this node at"},
    {"comms-address", S(comms_address), "", 0, 0,
     "address polling Tentacles reach this node at (default: host name)"},
    {"comms-port", L(comms_port), "10943", 1, 65535, "polling communications port"},
    {"task-cap", L(task_cap), "5", 0, 1000, "MaxConcurrentTasks of this node"},
    {"platform", S(platform), "linux", 0, 0, "linux or windows; one platform per cluster"},
    {"heartbeat-ms", L(heartbeat_ms), "500", 50, 60000,
     "heartbeat interval (also how fast a drain set through another node shows)"},
    {"offline-timeout-ms", L(offline_timeout_ms), "10000", 200, 3600000,
     "a node whose LastSeen is older is offline"},
    {"draining-status", L(draining_status), "418", 418, 503,
     "ping status while draining: 418 or 503"},
    {"max-body-bytes", L(max_body_bytes), "1048576", 1024, 1073741824,
     "largest request body accepted"},
    {"db-upgrade", S(db_upgrade), "auto", 0, 0,
     "auto: apply migrations at start; never: refuse to start on an old schema"},
    {"log-level", S(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"http-threads", L(http_threads), "64", 2, 1024, "HTTP worker threads"},
    {"db-pool-size", L(db_pool_size), "8", 1, 256, "database connections at most"},
    {"task-logs-dir", S(task_logs_dir), "", 0, 0,
     "TaskLogs folder shared by all nodes (default: <data-dir>/TaskLogs)"},
    {"lease-ms", L(lease_ms), "5000", 500, 3600000,
     "task lease: a dead node's tasks run elsewhere after this; on PostgreSQL also how long a "
     "transaction may sit idle"},
    {"poll-ms", L(poll_ms), "50", 5, 60000, "queue poll interval of an idle node"},
    {"housekeeping-ms", L(housekeeping_ms), "1000", 100, 3600000,
     "period of cluster housekeeping (lease expiry), run by one node per period"},
    {"task-retention-hours", L(task_retention_hours), "720", 0, 876000,
     "ended tasks and their logs are deleted after this (0 = keep)"},
    {"shutdown-grace-ms", L(shutdown_grace_ms), "5000", 0, 3600000,
     "on SIGTERM, how long running tasks may finish before they are requeued"},
    {"redirect-listen", S(redirect_listen), "", 0, 0,
     "with TLS: host:port of a plain HTTP listener that redirects to HTTPS"},
    {"trusted-proxies", S(trusted_proxies), "", 0, 0,
     "comma-separated load balancer addresses whose X-Forwarded-For is recorded"},
    {"auth-cache-ms", L(auth_cache_ms), "1000", 0, 60000,
     "how long a checked API key is believed (revocation takes this long)"},
    {"secrets-key-file", S(secrets_key_file), "", 0, 0,
     "64 hex characters sealing webhook secrets; the same file on every node "
     "(default <data-dir>/secrets.key, created if missing)"},
    {"bootstrap-admin-key", S(bootstrap_admin_key), "", 0, 0,
     "an API key (API-...) stored as the first Admin key, once per cluster"},
    {"slack-signing-secret", S(slack_signing_secret), "", 0, 0,
     "Slack app signing secret; without it Slack slash commands are refused"},
    {"chatops-users", S(chatops_users), "", 0, 0,
     "chat user ids mapped to roles: U123=Operator,U456=Admin"},
    {"event-exports-dir", S(event_exports_dir), "", 0, 0,
     "archived audit logs (default <data-dir>/EventExports)"},
    {"event-retention-hours", L(event_retention_hours), "2160", 0, 876000,
     "audit events older than this are archived to EventExports"},
    {"archive-every-ms", L(archive_every_ms), "3600000", 100, 86400000,
     "how often the cluster queues the audit archive task"},
    {"webhook-timeout-ms", L(webhook_timeout_ms), "10000", 100, 600000,
     "time limit of one webhook or chat reply delivery"},
    {"storage-check-ms", L(storage_check_ms), "2000", 100, 3600000,
     "how often the node reads the cluster's storage paths (and retries a failed folder)"},
    {"storage-reverify-ms", L(storage_reverify_ms), "300000", 1000, 86400000,
     "how often the node proves again that it can use every storage folder"},
    {"idempotency-ttl-hours", L(idempotency_ttl_hours), "24", 1, 8760,
     "how long an Idempotency-Key is remembered"},
    {"outbound-allow", S(outbound_allow), "", 0, 0,
     "CIDRs, addresses and host names (*.suffix) that webhooks, chat replies and Tentacle "
     "health checks may reach although they are loopback, link-local or private"},
    {"max-package-bytes", L(max_package_bytes), "0", 0, LONG_MAX,
     "largest package upload accepted, in bytes (0 = no limit)"},
    {"package-retention-versions", L(package_keep_versions), "0", 0, 1000000,
     "versions of each package id the built-in repository keeps (0 = all)"},
    {"package-retention-every-ms", L(package_retention_ms), "3600000", 100, 86400000,
     "how often the cluster queues package retention (and sweeps dead uploads)"},
    {"health-listen", S(health_listen), "", 0, 0,
     "host:port of a second listener with threads of its own that serves only the ping and "
     "/metrics, so busy or idle API clients cannot delay them (empty = none)"},
    {"request-timeout-ms", L(request_timeout_ms), "5000", 500, 600000,
     "a request's headers must arrive within this, and each read or write of a body may stall "
     "no longer"},
    {"max-connections-per-client", L(max_conns_per_client), "32", 0, 100000,
     "connections one client address may hold open on the API port (trusted proxies are not "
     "counted; 0 = no cap)"},
    {"cors-origins", S(cors_origins), "", 0, 0,
     "comma-separated exact origins (https://portal.example.com) whose pages may call the API; "
     "none by default"},
    {"stream-max", L(stream_max), "16", 0, 512,
     "event streams open at once on this node (each holds an HTTP thread; at most half of "
     "http-threads; by default 16, or a quarter of http-threads when that is fewer)"},
    {"stream-heartbeat-ms", L(stream_heartbeat_ms), "15000", 100, 600000,
     "a comment on an idle event stream this often"},
    {"stream-poll-ms", L(stream_poll_ms), "200", 20, 10000,
     "how often event streams read the cluster's changes from the database"},
    {"oidc-issuer", S(oidc_issuer), "", 0, 0,
     "OIDC issuer whose access tokens are accepted as Authorization: Bearer (https; none by "
     "default)"},
    {"oidc-audience", S(oidc_audience), "", 0, 0, "the aud a token must carry"},
    {"oidc-role-claim", S(oidc_role_claim), "roles", 0, 0,
     "the token claim holding role or group names (roles, groups, …)"},
    {"oidc-roles", S(oidc_roles), "", 0, 0,
     "claim values mapped to roles: octoha-admins=Admin,ops=Operator (default: Reader, "
     "Operator and Admin map to themselves)"},
    {"oidc-leeway-seconds", L(oidc_leeway_seconds), "60", 0, 600,
     "clock skew allowed on a token's exp and nbf"},
    {"oidc-keys-max-age-ms", L(oidc_keys_max_age_ms), "3600000", 1000, 86400000,
     "the issuer's signing keys are fetched again after this"},
    {"oidc-refresh-min-ms", L(oidc_refresh_min_ms), "10000", 0, 3600000,
     "a token naming an unknown key fetches the issuer's keys at most this often"},
    {"oidc-client-id", S(oidc_client_id), "", 0, 0,
     "client id of the status page (a public client, authorization code with PKCE); "
     "\"\" = sign-in with API keys only"},
    {"oidc-scopes", S(oidc_scopes), "openid profile", 0, 0,
     "scopes the status page asks the issuer for (add the API's scope for Entra ID)"},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

static void env_name(const opt_t *o, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "OCTOHA_");
	for (const char *p = o->name; *p && n + 1 < size; p++)
		buf[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	buf[n] = '\0';
}

static const opt_t *find(const char *name, size_t len)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

static bool set(svc_config_t *cfg, const opt_t *o, const char *value, const char *source, char *err,
                size_t errlen)
{
	char *base = (char *)cfg;
	if (o->type == OPT_STR) {
		char **slot = (char **)(base + o->offset);
		char *copy = strdup(value);
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		free(*slot);
		*slot = copy;
		return true;
	}
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (*value == '\0' || *end != '\0' || errno == ERANGE || v < o->min || v > o->max) {
		snprintf(err, errlen, "%s: %s must be a whole number from %ld to %ld, not '%s'",
		         source, o->name, o->min, o->max, value);
		return false;
	}
	*(long *)(base + o->offset) = v;
	if (strcmp(o->name, "task-cap") == 0)
		cfg->task_cap_set = true;
	if (strcmp(o->name, "stream-max") == 0)
		cfg->stream_max_set = true;
	return true;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static bool load_file(svc_config_t *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
		return false;
	}
	char line[4096];
	int lineno = 0;
	bool ok = true;
	while (ok && fgets(line, sizeof line, f)) {
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		char where[64];
		snprintf(where, sizeof where, "config line %d", lineno);
		if (!eq) {
			snprintf(err, errlen, "%s: %s: expected 'name = value'", path, where);
			ok = false;
			break;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		const opt_t *o = find(key, strlen(key));
		if (!o || strcmp(o->name, "config") == 0) {
			snprintf(err, errlen, "%s: %s: unknown option '%s'", path, where, key);
			ok = false;
			break;
		}
		ok = set(cfg, o, value, where, err, errlen);
	}
	fclose(f);
	return ok;
}

bool svc_config_load(svc_config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof *cfg);
	for (size_t i = 0; i < N_OPTS; i++)
		if (!set(cfg, &opts[i], opts[i].def, "default", err, errlen))
			return false;
	cfg->task_cap_set = false;
	cfg->stream_max_set = false;

	/* The config file named by flag or environment comes first. */
	const char *file = getenv("OCTOHA_CONFIG");
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			file = argv[i + 1];
	}
	if (file && *file && !load_file(cfg, file, err, errlen))
		return false;

	for (size_t i = 0; i < N_OPTS; i++) {
		char name[64];
		env_name(&opts[i], name, sizeof name);
		const char *v = getenv(name);
		if (v && !set(cfg, &opts[i], v, name, err, errlen))
			return false;
	}
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return false;
		}
		const char *eq = strchr(a + 2, '=');
		size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		const opt_t *o = find(a + 2, len);
		if (!o) {
			snprintf(err, errlen, "unknown option '%.*s' (see --help)", (int)len + 2,
			         a);
			return false;
		}
		const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!value) {
			snprintf(err, errlen, "option --%s needs a value", o->name);
			return false;
		}
		char where[80];
		snprintf(where, sizeof where, "--%s", o->name);
		if (!set(cfg, o, value, where, err, errlen))
			return false;
	}
	return true;
}

/* Sets *FIELD to DIR/NAME when it is empty.  False on OOM. */
static bool default_under(char **field, const char *dir, const char *name)
{
	if ((*field)[0] != '\0')
		return true;
	size_t n = strlen(dir) + strlen(name) + 2;
	char *d = malloc(n);
	if (!d)
		return false;
	snprintf(d, n, "%s/%s", dir, name);
	free(*field);
	*field = d;
	return true;
}

bool svc_config_finish(svc_config_t *cfg, char *err, size_t errlen)
{
	char host[256] = "localhost";
	gethostname(host, sizeof host - 1);
	host[sizeof host - 1] = '\0';
	if (cfg->draining_status != 418 && cfg->draining_status != 503) {
		snprintf(err, errlen, "draining-status must be 418 or 503, not %ld",
		         cfg->draining_status);
		return false;
	}
	if (strcmp(cfg->platform, "linux") != 0 && strcmp(cfg->platform, "windows") != 0) {
		snprintf(err, errlen, "platform must be linux or windows, not '%s'", cfg->platform);
		return false;
	}
	if (strcmp(cfg->db_upgrade, "auto") != 0 && strcmp(cfg->db_upgrade, "never") != 0) {
		snprintf(err, errlen, "db-upgrade must be auto or never, not '%s'",
		         cfg->db_upgrade);
		return false;
	}
	if (strcmp(cfg->log_level, "debug") != 0 && strcmp(cfg->log_level, "info") != 0 &&
	    strcmp(cfg->log_level, "warn") != 0 && strcmp(cfg->log_level, "error") != 0) {
		snprintf(err, errlen, "log-level must be debug, info, warn or error, not '%s'",
		         cfg->log_level);
		return false;
	}
	if (cfg->heartbeat_ms * 2 > cfg->offline_timeout_ms) {
		snprintf(err, errlen,
		         "offline-timeout-ms (%ld) must be at least twice heartbeat-ms (%ld)",
		         cfg->offline_timeout_ms, cfg->heartbeat_ms);
		return false;
	}
	/* Leases are renewed every lease/4; an idle node that polls less often
	 * than twice a lease would leave claimed work waiting that long. */
	if (cfg->poll_ms * 2 >= cfg->lease_ms) {
		snprintf(err, errlen, "poll-ms (%ld) must be less than half of lease-ms (%ld)",
		         cfg->poll_ms, cfg->lease_ms);
		return false;
	}
	oh_outbound_policy_t *policy = oh_outbound_policy_new(cfg->outbound_allow, err, errlen);
	if (!policy)
		return false;
	oh_outbound_policy_free(policy);
	if (!cfg->stream_max_set && cfg->stream_max > cfg->http_threads / 4)
		cfg->stream_max = cfg->http_threads / 4;
	if (cfg->stream_max > cfg->http_threads / 2) {
		snprintf(err, errlen,
		         "stream-max (%ld) must be at most half of http-threads (%ld): each stream "
		         "holds an HTTP thread, and the API and the ping need the rest",
		         cfg->stream_max, cfg->http_threads);
		return false;
	}
	if (!api_cors_check(cfg->cors_origins, err, errlen))
		return false;
	if (cfg->oidc_issuer[0] && !cfg->oidc_audience[0]) {
		snprintf(err, errlen, "oidc-audience is required with oidc-issuer");
		return false;
	}
	if (cfg->oidc_issuer[0]) { /* the issuer's form and the role map; nothing is fetched */
		oh_oidc_opts_t oo = {.issuer = cfg->oidc_issuer,
		                     .audience = cfg->oidc_audience,
		                     .role_map = cfg->oidc_roles};
		oh_oidc_t *probe = oh_oidc_new(&oo, err, errlen);
		if (!probe)
			return false;
		oh_oidc_free(probe);
	}
	if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
		snprintf(err, errlen, "tls-cert and tls-key must be given together");
		return false;
	}
	const char *colon = strrchr(cfg->listen, ':');
	if (!colon || colon == cfg->listen || atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535) {
		snprintf(err, errlen, "listen must be host:port, not '%s'", cfg->listen);
		return false;
	}
	if (cfg->health_listen[0]) {
		const char *hc = strrchr(cfg->health_listen, ':');
		if (!hc || hc == cfg->health_listen || atoi(hc + 1) <= 0 || atoi(hc + 1) > 65535) {
			snprintf(err, errlen, "health-listen must be host:port, not '%s'",
			         cfg->health_listen);
			return false;
		}
		if (atoi(hc + 1) == atoi(colon + 1)) {
			snprintf(err, errlen,
			         "health-listen must use another port than listen (%s)",
			         cfg->listen);
			return false;
		}
	}
	if (cfg->node_name[0] == '\0') {
		free(cfg->node_name);
		cfg->node_name = strdup(host);
	}
	if (!cfg->node_name || !oh_node_name_valid(cfg->node_name)) {
		snprintf(err, errlen,
		         "node-name '%s' must be 1-64 letters, digits, '.', '_' or '-', "
		         "starting with a letter or digit",
		         cfg->node_name ? cfg->node_name : "");
		return false;
	}
	if (cfg->comms_address[0] == '\0') {
		free(cfg->comms_address);
		cfg->comms_address = strdup(host);
	}
	if (cfg->public_url[0] == '\0') {
		char url[600];
		snprintf(url, sizeof url, "%s://%s:%s", cfg->tls_cert[0] ? "https" : "http", host,
		         colon + 1);
		free(cfg->public_url);
		cfg->public_url = strdup(url);
	}
	if (cfg->task_logs_dir[0] == '\0') {
		size_t n = strlen(cfg->data_dir) + 16;
		char *d = malloc(n);
		if (!d) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		snprintf(d, n, "%s/TaskLogs", cfg->data_dir);
		free(cfg->task_logs_dir);
		cfg->task_logs_dir = d;
	}
	if (!default_under(&cfg->event_exports_dir, cfg->data_dir, "EventExports") ||
	    !default_under(&cfg->secrets_key_file, cfg->data_dir, "secrets.key")) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	/* The storage folders (data-dir/Artifacts, …) are paths of 400 bytes
	 * at most, as the cluster's are: refuse rather than cut one short. */
	if (strlen(cfg->data_dir) > OH_STORAGE_PATH_MAX - 13 ||
	    strlen(cfg->task_logs_dir) > OH_STORAGE_PATH_MAX ||
	    strlen(cfg->event_exports_dir) > OH_STORAGE_PATH_MAX) {
		snprintf(
		    err, errlen,
		    "data-dir must be at most %d bytes, task-logs-dir and event-exports-dir at "
		    "most %d",
		    OH_STORAGE_PATH_MAX - 13, OH_STORAGE_PATH_MAX);
		return false;
	}
	if (cfg->bootstrap_admin_key[0] && !oh_apikey_well_formed(cfg->bootstrap_admin_key)) {
		snprintf(err, errlen,
		         "bootstrap-admin-key: not an API key (API- and at least 26 of A-Z0-9)");
		return false;
	}
	if (cfg->db[0] == '\0') {
		size_t n = strlen(cfg->data_dir) + 128;
		char *cs = malloc(n);
		if (!cs) {
			snprintf(err, errlen, "out of memory");
			return false;
		}
		/* WAL: readers never block the writer; NORMAL sync is durable
		 * at every checkpoint and safe against corruption in WAL mode. */
		snprintf(cs, n,
		         "Driver=SQLite3;Database=%s/octoha.db;JournalMode=WAL;SyncPragma=NORMAL",
		         cfg->data_dir);
		free(cfg->db);
		cfg->db = cs;
	}
	if (!cfg->comms_address || !cfg->public_url) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	return true;
}

void svc_config_free(svc_config_t *cfg)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].type == OPT_STR) {
			char **slot = (char **)((char *)cfg + opts[i].offset);
			free(*slot);
			*slot = NULL;
		}
}

void svc_config_usage(FILE *out)
{
	fputs("Options (flag, environment variable, default):\n", out);
	for (size_t i = 0; i < N_OPTS; i++) {
		char env[64];
		env_name(&opts[i], env, sizeof env);
		fprintf(out, "  --%-20s %-26s %s\n", opts[i].name, env, opts[i].help);
		if (opts[i].def[0])
			fprintf(out, "  %-49s default: %s\n", "", opts[i].def);
	}
	fputs("Flags win over environment variables, which win over the config file.\n", out);
}
