#include "auth.h"

#include <civetweb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../lib/oh_crypto.h"
#include "../lib/oh_list.h"
#include "../lib/oh_log.h"

#define CACHE_SLOTS 256

/* A key seen recently: its hash (never the key) and what it grants. */
typedef struct {
	char hash[65];
	oh_apikey_t key;
	int64_t checked_ms; /* monotonic; 0 = empty slot */
} cache_entry_t;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cache_entry_t cache[CACHE_SLOTS];

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void api_auth_cache_clear(void)
{
	pthread_mutex_lock(&cache_mu);
	memset(cache, 0, sizeof cache);
	pthread_mutex_unlock(&cache_mu);
}

static bool cache_get(const char *hash, int64_t ttl_ms, oh_apikey_t *out)
{
	bool hit = false;
	int64_t now = mono_ms();
	pthread_mutex_lock(&cache_mu);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		cache_entry_t *e = &cache[i];
		if (e->checked_ms && now - e->checked_ms < ttl_ms &&
		    oh_ct_equal(e->hash, hash, 64)) {
			*out = e->key;
			hit = true;
			break;
		}
	}
	pthread_mutex_unlock(&cache_mu);
	return hit;
}

static void cache_put(const char *hash, const oh_apikey_t *key)
{
	int64_t now = mono_ms();
	pthread_mutex_lock(&cache_mu);
	size_t victim = 0;
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].checked_ms == 0 || oh_ct_equal(cache[i].hash, hash, 64)) {
			victim = i;
			break;
		}
		if (cache[i].checked_ms < cache[victim].checked_ms)
			victim = i;
	}
	memcpy(cache[victim].hash, hash, 65);
	cache[victim].key = *key;
	cache[victim].checked_ms = now;
	pthread_mutex_unlock(&cache_mu);
}

void api_auth_actor(const api_config_t *cfg, const char *remote, const char *xff, oh_actor_t *actor)
{
	memset(actor, 0, sizeof *actor);
	snprintf(actor->remote, sizeof actor->remote, "%s", remote ? remote : "");
	if (xff && cfg->trusted_proxies && oh_list_has(cfg->trusted_proxies, actor->remote, false))
		snprintf(actor->forwarded, sizeof actor->forwarded, "%s", xff);
}

/* True when the query string carries something that looks like a key. */
static bool key_in_query(const char *q)
{
	if (!q)
		return false;
	char buf[8];
	return mg_get_var(q, strlen(q), "apikey", buf, sizeof buf) != -1 ||
	       mg_get_var(q, strlen(q), "ApiKey", buf, sizeof buf) != -1 ||
	       mg_get_var(q, strlen(q), "api_key", buf, sizeof buf) != -1 ||
	       strstr(q, "API-") != NULL;
}

/* ---- refusals do not amplify ------------------------------------------ */

/* Anyone can make a node refuse a request, so refusals must not turn into
 * a write to the shared database, and a webhook, each. Each source (the
 * caller's key when it gave a valid one, else its address) has a bucket of
 * REFUSAL_BURST recorded AccessDenied events that refills by one every
 * REFUSAL_REFILL_MS; a refusal finding it empty is counted, not recorded,
 * and the next recorded one says how many were not. None goes to webhooks;
 * webhooks hear a summary of this node's refusals at most once per
 * REFUSAL_SUMMARY_MS instead. */
#define REFUSAL_BURST      10
#define REFUSAL_REFILL_MS  6000
#define REFUSAL_SUMMARY_MS 60000
#define REFUSAL_SOURCES    256

typedef struct {
	char source[72];
	int64_t last;       /* monotonic time of the last refill; 0 = empty slot */
	int64_t tokens_ms;  /* events left, in units of 1/REFUSAL_REFILL_MS */
	int64_t suppressed; /* refusals not recorded since the last recorded one */
} refusal_source_t;

static pthread_mutex_t refusal_mu = PTHREAD_MUTEX_INITIALIZER;
static refusal_source_t refusal_sources[REFUSAL_SOURCES];
static int64_t refusal_summary_start, refusal_count, refusal_sources_seen;

/* Whether a refusal from SOURCE at NOW is recorded; *EARLIER receives how
 * many from SOURCE were not since its last recorded one.  *SUMMARY (and
 * *SUMMARY_SOURCES) receive this node's refusals of a summary period that
 * has just ended, 0 otherwise. */
static bool refusal_admit(const char *source, int64_t now, int64_t *earlier, int64_t *summary,
                          int64_t *summary_sources)
{
	const int64_t full = (int64_t)REFUSAL_BURST * REFUSAL_REFILL_MS;
	pthread_mutex_lock(&refusal_mu);
	*summary = *summary_sources = 0;
	if (!refusal_summary_start)
		refusal_summary_start = now;
	if (now - refusal_summary_start >= REFUSAL_SUMMARY_MS) {
		*summary = refusal_count;
		*summary_sources = refusal_sources_seen;
		refusal_count = refusal_sources_seen = 0;
		refusal_summary_start = now;
	}
	refusal_count++;
	/* The source's entry, else an empty one, else the least recently used. */
	refusal_source_t *e = NULL, *empty = NULL, *oldest = NULL;
	for (size_t i = 0; i < REFUSAL_SOURCES && !e; i++) {
		refusal_source_t *r = &refusal_sources[i];
		if (!r->last) {
			if (!empty)
				empty = r;
		} else if (strncmp(r->source, source, sizeof r->source - 1) == 0) {
			e = r;
		} else if (!oldest || r->last < oldest->last) {
			oldest = r;
		}
	}
	if (!e) {
		e = empty ? empty : oldest;
		snprintf(e->source, sizeof e->source, "%.71s", source);
		e->last = now;
		e->tokens_ms = full;
		e->suppressed = 0;
		refusal_sources_seen++;
	}
	e->tokens_ms += now - e->last;
	if (e->tokens_ms > full)
		e->tokens_ms = full;
	e->last = now ? now : 1;
	bool admit = e->tokens_ms >= REFUSAL_REFILL_MS;
	*earlier = 0;
	if (admit) {
		e->tokens_ms -= REFUSAL_REFILL_MS;
		*earlier = e->suppressed;
		e->suppressed = 0;
	} else {
		e->suppressed++;
	}
	pthread_mutex_unlock(&refusal_mu);
	return admit;
}

/* Answers EC (MESSAGE may be NULL for the hint) and records the refusal;
 * DETAIL (may be NULL) goes into the audit message after the code. */
static void refuse_because(api_req_t *req, api_resp_t *resp, oh_ec_t ec, const char *message,
                           const char *detail)
{
	api_error(resp, ec, message, NULL);
	if (ec == OH_E_TOKEN_INVALID)
		api_header(resp, "WWW-Authenticate",
		           "Bearer realm=\"octoha\", error=\"invalid_token\"");
	else if (resp->status == 401)
		api_header(resp, "WWW-Authenticate", "Bearer realm=\"octoha\"");
	const char *addr = req->actor.forwarded[0] ? req->actor.forwarded : req->actor.remote;
	const char *source = req->actor.key_id[0] ? req->actor.key_id : addr;
	int64_t earlier = 0, summary = 0, sources = 0;
	bool admit = refusal_admit(source, mono_ms(), &earlier, &summary, &sources);
	if (summary > 0) {
		char msg[200];
		snprintf(msg, sizeof msg,
		         "%lld requests from %lld addresses were refused by this node in the last "
		         "minute or more.",
		         (long long)summary, (long long)sources);
		oh_event_spec_t ev = {.category = "AccessDenied",
		                      .operation = "refusalSummary",
		                      .result = "Refused",
		                      .message = msg};
		if (oh_event_record(req->cfg->pool, &ev) != DB_OK)
			oh_log(OH_LOG_WARN, "refusal summary not recorded", NULL);
	}
	if (!admit)
		return;
	char msg[400];
	int n = snprintf(msg, sizeof msg, "%s %s refused: %s%s%s%s", req->method, req->path,
	                 oh_error_def(ec)->code, detail ? " (" : "", detail ? detail : "",
	                 detail ? ")" : "");
	if (earlier > 0 && n > 0 && (size_t)n < sizeof msg)
		snprintf(msg + n, sizeof msg - (size_t)n,
		         " (and %lld more from this caller since its last recorded refusal)",
		         (long long)earlier);
	oh_event_spec_t ev = {.actor = &req->actor,
	                      .category = "AccessDenied",
	                      .operation = req->operation_id,
	                      .resource_id =
	                          api_path_param(req, "id")[0] ? api_path_param(req, "id") : NULL,
	                      .result = "Refused",
	                      .status = resp->status,
	                      .message = msg,
	                      .no_webhooks = true};
	db_status_t s = oh_event_record(req->cfg->pool, &ev);
	if (s != DB_OK)
		oh_log(OH_LOG_WARN, "refusal not recorded", "rid=%s db=%s", req->rid,
		       db_status_name(s));
}

static void refuse(api_req_t *req, api_resp_t *resp, oh_ec_t ec, const char *message)
{
	refuse_because(req, resp, ec, message, NULL);
}

static bool check_role(api_req_t *req, api_resp_t *resp, oh_role_t need, oh_role_t have,
                       const char *what)
{
	req->role = have;
	if (have >= need)
		return true;
	char msg[200];
	snprintf(msg, sizeof msg, "This operation needs the %s role; the %s has %s.",
	         oh_role_name(need), what, oh_role_name(have));
	refuse(req, resp, OH_E_ROLE_NOT_ALLOWED, msg);
	return false;
}

/* A bearer JWT: checked against the configured OIDC issuer. */
static bool authenticate_token(api_req_t *req, api_resp_t *resp, oh_role_t need, const char *token)
{
	if (!req->cfg->oidc) {
		refuse_because(req, resp, OH_E_TOKEN_INVALID,
		               "This node accepts no bearer tokens: no OIDC issuer is configured.",
		               "no issuer configured");
		return false;
	}
	oh_oidc_identity_t id;
	oh_oidc_status_t st = oh_oidc_verify(req->cfg->oidc, token, (int64_t)time(NULL), &id);
	if (st == OH_OIDC_UNAVAILABLE) {
		api_header(resp, "Retry-After", "5");
		api_error(resp, OH_E_IDP_UNAVAILABLE, NULL, NULL);
		return false;
	}
	if (st == OH_OIDC_NO_ROLE) {
		/* The token is genuine: the refusal names who it was. */
		snprintf(req->actor.key_id, sizeof req->actor.key_id, "%s", id.id);
		snprintf(req->actor.key_name, sizeof req->actor.key_name, "%s", id.name);
		refuse_because(
		    req, resp, OH_E_ROLE_NOT_ALLOWED,
		    "The token grants no octoha role: none of its role claim's values is "
		    "mapped (see oidc-roles).",
		    "no role mapped");
		return false;
	}
	if (st != OH_OIDC_OK) {
		char msg[200];
		snprintf(msg, sizeof msg, "The bearer token was refused: %s.",
		         oh_oidc_status_text(st));
		refuse_because(req, resp, OH_E_TOKEN_INVALID, msg, oh_oidc_status_text(st));
		return false;
	}
	snprintf(req->actor.key_id, sizeof req->actor.key_id, "%s", id.id);
	snprintf(req->actor.key_name, sizeof req->actor.key_name, "%s", id.name);
	return check_role(req, resp, need, id.role, "token");
}

bool api_authenticate(api_req_t *req, api_resp_t *resp, oh_role_t need, const char *query)
{
	if (key_in_query(query)) {
		refuse(req, resp, OH_E_KEY_IN_QUERY, NULL);
		return false;
	}
	const char *key = api_header_in(req, "X-Octopus-ApiKey");
	const char *authz = api_header_in(req, "Authorization");
	if (!key && authz && strncasecmp(authz, "Bearer ", 7) == 0) {
		key = authz + 7;
		while (*key == ' ')
			key++;
		/* A key is API-…; a token is three base64url parts. */
		if (oh_oidc_is_jwt(key))
			return authenticate_token(req, resp, need, key);
	}
	if (!key || !*key) {
		refuse(req, resp, OH_E_KEY_MISSING, NULL);
		return false;
	}
	if (!oh_apikey_well_formed(key)) {
		refuse(req, resp, OH_E_KEY_INVALID, NULL);
		return false;
	}
	char hash[65];
	oh_sha256_hex(key, strlen(key), hash);
	oh_apikey_t k;
	if (!cache_get(hash, req->cfg->auth_cache_ms, &k)) {
		db_status_t s = oh_apikeys_authenticate(req->cfg->pool, key, &k);
		if (s == DB_NO_ROWS) {
			refuse(req, resp, OH_E_KEY_INVALID, NULL);
			return false;
		}
		if (s != DB_OK) {
			api_db_error(resp, s);
			return false;
		}
		cache_put(hash, &k);
	}
	snprintf(req->actor.key_id, sizeof req->actor.key_id, "%s", k.id);
	snprintf(req->actor.key_name, sizeof req->actor.key_name, "%s", k.name);
	return check_role(req, resp, need, k.role, "key");
}

bool api_slack_signature_ok(const char *secret, const char *ts, const char *sig, const char *body,
                            size_t len, long long now)
{
	if (!secret || !*secret || !ts || !sig)
		return false;
	char *end;
	long long t = strtoll(ts, &end, 10);
	if (*ts == '\0' || *end != '\0' || t <= 0)
		return false;
	if (t < now - 300 || t > now + 300)
		return false;
	size_t tlen = strlen(ts);
	size_t mlen = 3 + tlen + 1 + len;
	char *msg = malloc(mlen);
	if (!msg)
		return false;
	memcpy(msg, "v0:", 3);
	memcpy(msg + 3, ts, tlen);
	msg[3 + tlen] = ':';
	memcpy(msg + 4 + tlen, body, len);
	char mac[65];
	oh_hmac_sha256_hex(secret, strlen(secret), msg, mlen, mac);
	free(msg);
	char want[68];
	snprintf(want, sizeof want, "v0=%s", mac);
	return strlen(sig) == strlen(want) && oh_ct_equal(sig, want, strlen(want));
}
