#include "oidc.h"

#include <cjose/cjose.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_client.h"
#include "node_state.h"
#include "oh_crypto.h"
#include "oh_log.h"

#define MAX_TOKEN    16384
#define MAX_DOC      (256 * 1024)
#define MAX_MAPPINGS 64
#define MIN_RSA_N    342 /* base64url characters of a 2048-bit modulus */

typedef struct {
	char *value;
	oh_role_t role;
} mapping_t;

struct oh_oidc {
	char *issuer, *audience, *role_claim;
	int64_t leeway_s, keys_max_age_ms, refresh_min_ms;
	long timeout_ms;
	mapping_t map[MAX_MAPPINGS];
	size_t n_map;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool fetching;        /* one thread fetches; the others wait for it */
	json_t *keys;         /* the JWKS "keys" array, or NULL before the first fetch */
	int64_t keys_at;      /* monotonic ms of the last good fetch */
	int64_t last_attempt; /* monotonic ms of the last fetch, good or not */
	bool have_endpoints;
	oh_oidc_endpoints_t ep;
	char jwks_uri[1024];
};

static const char *const status_text[] = {
    [OH_OIDC_OK] = "the token is valid",
    [OH_OIDC_MALFORMED] = "the token is not a signed JWT",
    [OH_OIDC_ALG_NOT_ALLOWED] = "the token's algorithm is not allowed (RS256 or ES256 only)",
    [OH_OIDC_UNKNOWN_KID] = "the token is signed with a key the issuer does not publish",
    [OH_OIDC_BAD_SIGNATURE] = "the token's signature is not valid",
    [OH_OIDC_WRONG_ISSUER] = "the token is from another issuer",
    [OH_OIDC_WRONG_AUDIENCE] = "the token is not meant for this API (audience)",
    [OH_OIDC_EXPIRED] = "the token has expired",
    [OH_OIDC_NOT_YET_VALID] = "the token is not valid yet",
    [OH_OIDC_NO_SUBJECT] = "the token names no subject",
    [OH_OIDC_NO_ROLE] = "the token grants no octoha role",
    [OH_OIDC_UNAVAILABLE] = "the issuer's signing keys cannot be fetched",
};

const char *oh_oidc_status_text(oh_oidc_status_t s)
{
	return (unsigned)s <= OH_OIDC_UNAVAILABLE ? status_text[s] : "?";
}

const char *oh_oidc_issuer(const oh_oidc_t *o)
{
	return o->issuer;
}

/* https anywhere; plain http only to this machine (a local test issuer). */
static bool issuer_form_ok(const char *iss)
{
	if (strncmp(iss, "https://", 8) == 0)
		return iss[8] != '\0' && !strchr(iss, '?') && !strchr(iss, '#');
	static const char *const local[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
	for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
		size_t n = strlen(local[i]);
		if (strncmp(iss, local[i], n) == 0 &&
		    (iss[n] == '\0' || iss[n] == ':' || iss[n] == '/'))
			return !strchr(iss, '?') && !strchr(iss, '#');
	}
	return false;
}

static char *trimmed_dup(const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return strndup(s, n);
}

static bool parse_map(oh_oidc_t *o, const char *map, char *err, size_t errlen)
{
	if (!map || !*map)
		map = "Reader=Reader,Operator=Operator,Admin=Admin";
	const char *p = map;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (!eq || o->n_map == MAX_MAPPINGS) {
			snprintf(err, errlen,
			         "oidc-roles: expected 'claim value=Reader|Operator|Admin' items "
			         "separated by commas (at most %d)",
			         MAX_MAPPINGS);
			return false;
		}
		char *value = trimmed_dup(p, (size_t)(eq - p));
		char *role = trimmed_dup(eq + 1, len - (size_t)(eq - p) - 1);
		oh_role_t r;
		bool ok = value && role && *value && oh_role_parse(role, &r);
		if (!ok) {
			snprintf(err, errlen,
			         "oidc-roles: '%.*s' must be 'claim value=Reader|Operator|Admin'",
			         (int)len, p);
			free(value);
			free(role);
			return false;
		}
		free(role);
		o->map[o->n_map].value = value;
		o->map[o->n_map].role = r;
		o->n_map++;
		p = end ? end + 1 : p + len;
	}
	return true;
}

oh_oidc_t *oh_oidc_new(const oh_oidc_opts_t *opts, char *err, size_t errlen)
{
	if (!opts->issuer || !issuer_form_ok(opts->issuer)) {
		snprintf(err, errlen,
		         "oidc-issuer must be an https URL (http only on 127.0.0.1, localhost or "
		         "[::1]) without query or fragment");
		return NULL;
	}
	if (!opts->audience || !*opts->audience) {
		snprintf(err, errlen, "oidc-audience is required with oidc-issuer");
		return NULL;
	}
	oh_oidc_t *o = calloc(1, sizeof *o);
	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->issuer = strdup(opts->issuer);
	o->audience = strdup(opts->audience);
	o->role_claim = strdup(opts->role_claim && *opts->role_claim ? opts->role_claim : "roles");
	o->leeway_s = opts->leeway_s;
	o->keys_max_age_ms = opts->keys_max_age_ms;
	o->refresh_min_ms = opts->refresh_min_ms;
	o->timeout_ms = opts->http_timeout_ms > 0 ? opts->http_timeout_ms : 5000;
	pthread_mutex_init(&o->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!o->issuer || !o->audience || !o->role_claim) {
		snprintf(err, errlen, "out of memory");
		oh_oidc_free(o);
		return NULL;
	}
	if (!parse_map(o, opts->role_map, err, errlen)) {
		oh_oidc_free(o);
		return NULL;
	}
	return o;
}

void oh_oidc_free(oh_oidc_t *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n_map; i++)
		free(o->map[i].value);
	json_decref(o->keys);
	free(o->issuer);
	free(o->audience);
	free(o->role_claim);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

static bool b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

bool oh_oidc_is_jwt(const char *token)
{
	size_t parts = 1, run = 0;
	for (const char *p = token; *p; p++) {
		if (*p == '.') {
			if (run == 0 && parts < 3)
				return false; /* header and payload are never empty */
			parts++;
			run = 0;
		} else if (b64url_char(*p)) {
			run++;
		} else {
			return false;
		}
		if ((size_t)(p - token) >= MAX_TOKEN)
			return false;
	}
	return parts == 3;
}

/* ---- fetching the discovery document and the key set ------------------ */

static json_t *fetch_json(const char *url, long timeout_ms, char *why, size_t whylen)
{
	char *body = NULL;
	size_t len = 0;
	oh_http_result_t r;
	if (!oh_http_get_body(url, timeout_ms, MAX_DOC, &body, &len, &r)) {
		snprintf(why, whylen, "%s", r.error);
		return NULL;
	}
	json_t *j = NULL;
	if (r.status != 200) {
		snprintf(why, whylen, "HTTP status %ld", r.status);
	} else {
		json_error_t je;
		j = json_loadb(body, len, 0, &je);
		if (!j || !json_is_object(j)) {
			snprintf(why, whylen, "not a JSON object: %s", j ? "" : je.text);
			json_decref(j);
			j = NULL;
		}
	}
	free(body);
	return j;
}

static void copy_str(char *dst, size_t size, const json_t *v)
{
	const char *s = json_string_value(v);
	snprintf(dst, size, "%s", s ? s : "");
}

/* Reads the discovery document (when not yet read) and the key set.
 * Called without the lock; installs what it got under it. */
static void fetch(oh_oidc_t *o)
{
	char why[300] = "";
	char url[1200];
	oh_oidc_endpoints_t ep = {0};
	char jwks_uri[1024] = "";
	pthread_mutex_lock(&o->mu);
	bool need_disc = !o->have_endpoints;
	if (!need_disc) {
		ep = o->ep;
		memcpy(jwks_uri, o->jwks_uri, sizeof jwks_uri);
	}
	pthread_mutex_unlock(&o->mu);
	if (need_disc) {
		size_t n = strlen(o->issuer);
		snprintf(url, sizeof url, "%.*s/.well-known/openid-configuration",
		         (int)(n > 0 && o->issuer[n - 1] == '/' ? n - 1 : n), o->issuer);
		json_t *d = fetch_json(url, o->timeout_ms, why, sizeof why);
		if (!d) {
			oh_log(OH_LOG_WARN, "OIDC discovery failed", "url=%s error=%s", oh_q(url),
			       oh_q(why));
			return;
		}
		/* The document must be the issuer's own (OpenID Connect Discovery
		 * 1.0, section 4.3). */
		const char *iss = json_string_value(json_object_get(d, "issuer"));
		if (!iss || strcmp(iss, o->issuer) != 0) {
			oh_log(OH_LOG_WARN, "OIDC discovery names another issuer", "want=%s got=%s",
			       oh_q(o->issuer), oh_q(iss ? iss : ""));
			json_decref(d);
			return;
		}
		copy_str(jwks_uri, sizeof jwks_uri, json_object_get(d, "jwks_uri"));
		copy_str(ep.authorization, sizeof ep.authorization,
		         json_object_get(d, "authorization_endpoint"));
		copy_str(ep.token, sizeof ep.token, json_object_get(d, "token_endpoint"));
		copy_str(ep.end_session, sizeof ep.end_session,
		         json_object_get(d, "end_session_endpoint"));
		json_decref(d);
		if (!issuer_form_ok(jwks_uri) && strncmp(jwks_uri, "https://", 8) != 0) {
			oh_log(OH_LOG_WARN, "OIDC discovery: jwks_uri missing or not https",
			       "uri=%s", oh_q(jwks_uri));
			return;
		}
		pthread_mutex_lock(&o->mu);
		o->ep = ep;
		memcpy(o->jwks_uri, jwks_uri, sizeof jwks_uri);
		o->have_endpoints = true;
		pthread_mutex_unlock(&o->mu);
	}
	json_t *set = fetch_json(jwks_uri, o->timeout_ms, why, sizeof why);
	json_t *keys = set ? json_object_get(set, "keys") : NULL;
	if (!json_is_array(keys)) {
		oh_log(OH_LOG_WARN, "OIDC key set cannot be read", "url=%s error=%s",
		       oh_q(jwks_uri), oh_q(set ? "no keys array" : why));
		json_decref(set);
		return;
	}
	json_incref(keys);
	json_decref(set);
	pthread_mutex_lock(&o->mu);
	json_decref(o->keys);
	o->keys = keys;
	o->keys_at = oh_mono_ms();
	pthread_mutex_unlock(&o->mu);
	oh_log(OH_LOG_INFO, "OIDC signing keys fetched", "issuer=%s keys=%zu", oh_q(o->issuer),
	       json_array_size(keys));
}

static const char *str_or_empty(const json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : "";
}

/* Finds key KID (NULL: the only key) fit for ALG in the cached set.
 * Returns a copy (owned) or NULL; *WRONG_TYPE when the id is there but
 * the key does not fit the algorithm.  Called locked. */
static json_t *find_key(const oh_oidc_t *o, const char *kid, const char *alg, bool *wrong_type)
{
	size_t i;
	json_t *k, *found = NULL;
	size_t candidates = 0;
	json_array_foreach(o->keys, i, k)
	{
		const char *use = json_string_value(json_object_get(k, "use"));
		if (use && strcmp(use, "sig") != 0)
			continue;
		const char *id = json_string_value(json_object_get(k, "kid"));
		if (kid && (!id || strcmp(id, kid) != 0))
			continue;
		candidates++;
		found = k;
	}
	if (!found || (!kid && candidates != 1))
		return NULL;
	const char *kty = json_string_value(json_object_get(found, "kty"));
	const char *kalg = json_string_value(json_object_get(found, "alg"));
	bool fits = false;
	if (strcmp(alg, "RS256") == 0)
		fits = kty && strcmp(kty, "RSA") == 0 &&
		       strlen(str_or_empty(json_object_get(found, "n"))) >= MIN_RSA_N;
	else if (strcmp(alg, "ES256") == 0)
		fits = kty && strcmp(kty, "EC") == 0 &&
		       strcmp(str_or_empty(json_object_get(found, "crv")), "P-256") == 0;
	if (fits && kalg && strcmp(kalg, alg) != 0)
		fits = false;
	if (!fits) {
		*wrong_type = true;
		return NULL;
	}
	return json_deep_copy(found);
}

/* Gets key KID for ALG, fetching the set when it is missing, older than
 * keys_max_age_ms, or lacks the id; at most one fetch per refresh_min_ms
 * and per call.  *OUT is an owned copy. */
static oh_oidc_status_t get_key(oh_oidc_t *o, const char *kid, const char *alg, json_t **out)
{
	*out = NULL;
	pthread_mutex_lock(&o->mu);
	for (int round = 0;; round++) {
		int64_t now = oh_mono_ms();
		bool wrong = false;
		json_t *k = o->keys ? find_key(o, kid, alg, &wrong) : NULL;
		bool stale = !o->keys || now - o->keys_at >= o->keys_max_age_ms;
		bool may_fetch =
		    round == 0 && !o->fetching &&
		    (o->last_attempt == 0 || now - o->last_attempt >= o->refresh_min_ms);
		if (k || wrong) {
			if (!stale || !may_fetch) {
				pthread_mutex_unlock(&o->mu);
				*out = k;
				return k ? OH_OIDC_OK : OH_OIDC_ALG_NOT_ALLOWED;
			}
			json_decref(k); /* an old set: fetch it again, then look again */
		} else if (o->fetching) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&o->cv, &o->mu, &ts);
			continue;
		} else if (!may_fetch) {
			bool have = o->keys != NULL;
			pthread_mutex_unlock(&o->mu);
			return have ? OH_OIDC_UNKNOWN_KID : OH_OIDC_UNAVAILABLE;
		}
		o->fetching = true;
		o->last_attempt = now;
		pthread_mutex_unlock(&o->mu);
		fetch(o);
		pthread_mutex_lock(&o->mu);
		o->fetching = false;
		pthread_cond_broadcast(&o->cv);
	}
}

bool oh_oidc_endpoints(oh_oidc_t *o, oh_oidc_endpoints_t *out)
{
	pthread_mutex_lock(&o->mu);
	bool have = o->have_endpoints;
	bool may = !o->fetching &&
	           (o->last_attempt == 0 || oh_mono_ms() - o->last_attempt >= o->refresh_min_ms);
	if (!have && may) {
		o->fetching = true;
		o->last_attempt = oh_mono_ms();
		pthread_mutex_unlock(&o->mu);
		fetch(o);
		pthread_mutex_lock(&o->mu);
		o->fetching = false;
		pthread_cond_broadcast(&o->cv);
		have = o->have_endpoints;
	}
	if (have)
		*out = o->ep;
	pthread_mutex_unlock(&o->mu);
	return have;
}

/* ---- verifying ------------------------------------------------------------ */

/* Decodes the base64url part [S, S+N) as a JSON object (owned) or NULL. */
static json_t *decode_part(const char *s, size_t n)
{
	uint8_t *raw = NULL;
	size_t len = 0;
	cjose_err cerr;
	if (!cjose_base64url_decode(s, n, &raw, &len, &cerr))
		return NULL;
	json_t *j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
	cjose_get_dealloc()(raw);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

static bool aud_ok(const json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	size_t i;
	const json_t *v;
	json_array_foreach(aud, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
			return true;
	}
	return false;
}

/* Reads a NumericDate claim; false when present but not a number. */
static bool numeric_date(const json_t *claims, const char *name, bool *present, int64_t *out)
{
	const json_t *v = json_object_get(claims, name);
	*present = v != NULL;
	if (!v)
		return true;
	if (json_is_integer(v))
		*out = (int64_t)json_integer_value(v);
	else if (json_is_real(v))
		*out = (int64_t)json_real_value(v);
	else
		return false;
	return true;
}

static oh_role_t map_role(const oh_oidc_t *o, const json_t *claim)
{
	oh_role_t best = OH_ROLE_NONE;
	const json_t *one[1] = {claim};
	size_t n = json_is_array(claim) ? json_array_size(claim) : 1;
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_is_array(claim) ? json_array_get(claim, i) : one[0];
		const char *s = json_string_value(v);
		if (!s)
			continue;
		for (size_t m = 0; m < o->n_map; m++)
			if (strcmp(o->map[m].value, s) == 0 && o->map[m].role > best)
				best = o->map[m].role;
	}
	return best;
}

static void fill_identity(const json_t *claims, const char *sub, oh_role_t role, int64_t exp,
                          oh_oidc_identity_t *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->subject, sizeof out->subject, "%s", sub);
	if (strlen(sub) <= sizeof out->id - 6) {
		snprintf(out->id, sizeof out->id, "oidc:%s", sub);
	} else {
		char h[65];
		oh_sha256_hex(sub, strlen(sub), h);
		snprintf(out->id, sizeof out->id, "oidc:%.45s", h);
	}
	static const char *const names[] = {"name", "preferred_username", "upn", "email"};
	const char *name = sub;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *v = json_string_value(json_object_get(claims, names[i]));
		if (v && *v) {
			name = v;
			break;
		}
	}
	snprintf(out->name, sizeof out->name, "%s", name);
	out->role = role;
	out->expires = exp;
}

oh_oidc_status_t oh_oidc_verify(oh_oidc_t *o, const char *token, int64_t now_s,
                                oh_oidc_identity_t *out)
{
	memset(out, 0, sizeof *out);
	if (!oh_oidc_is_jwt(token))
		return OH_OIDC_MALFORMED;
	const char *dot = strchr(token, '.');
	json_t *hdr = decode_part(token, (size_t)(dot - token));
	if (!hdr)
		return OH_OIDC_MALFORMED;
	const char *alg = json_string_value(json_object_get(hdr, "alg"));
	const char *kid = json_string_value(json_object_get(hdr, "kid"));
	/* The allowlist comes first, before any key is looked at: "none" and
	 * HS256 (a public key used as an HMAC secret) never reach cjose. */
	if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0)) {
		json_decref(hdr);
		return OH_OIDC_ALG_NOT_ALLOWED;
	}
	/* No extension this code does not know may be critical (RFC 7515 4.1.11). */
	if ((json_object_get(hdr, "kid") && !kid) || json_object_get(hdr, "crit")) {
		json_decref(hdr);
		return OH_OIDC_MALFORMED;
	}
	json_t *jwk_json = NULL;
	oh_oidc_status_t st = get_key(o, kid, alg, &jwk_json);
	json_decref(hdr);
	if (st != OH_OIDC_OK)
		return st;

	cjose_err cerr;
	cjose_jwk_t *jwk = cjose_jwk_import_json((cjose_header_t *)jwk_json, &cerr);
	json_decref(jwk_json);
	if (!jwk) {
		oh_log(OH_LOG_WARN, "OIDC key cannot be used", "kid=%s error=%s",
		       oh_q(kid ? kid : ""), oh_q(cerr.message ? cerr.message : "?"));
		return OH_OIDC_UNKNOWN_KID;
	}
	cjose_jws_t *jws = cjose_jws_import(token, strlen(token), &cerr);
	if (!jws) {
		cjose_jwk_release(jwk);
		return OH_OIDC_MALFORMED;
	}
	bool sig_ok = cjose_jws_verify(jws, jwk, &cerr);
	cjose_jwk_release(jwk);
	if (!sig_ok) {
		cjose_jws_release(jws);
		return OH_OIDC_BAD_SIGNATURE;
	}
	uint8_t *payload = NULL;
	size_t plen = 0;
	json_t *claims = NULL;
	if (cjose_jws_get_plaintext(jws, &payload, &plen, &cerr))
		claims = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, NULL);
	cjose_jws_release(jws); /* owns payload */
	if (!claims || !json_is_object(claims)) {
		json_decref(claims);
		return OH_OIDC_MALFORMED;
	}

	oh_oidc_status_t res = OH_OIDC_OK;
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	const char *sub = json_string_value(json_object_get(claims, "sub"));
	bool has_exp, has_nbf;
	int64_t exp = 0, nbf = 0;
	if (!iss || strcmp(iss, o->issuer) != 0)
		res = OH_OIDC_WRONG_ISSUER;
	else if (!aud_ok(json_object_get(claims, "aud"), o->audience))
		res = OH_OIDC_WRONG_AUDIENCE;
	else if (!numeric_date(claims, "exp", &has_exp, &exp) ||
	         !numeric_date(claims, "nbf", &has_nbf, &nbf))
		res = OH_OIDC_MALFORMED;
	else if (!has_exp || now_s > exp + o->leeway_s)
		res = OH_OIDC_EXPIRED; /* a token without exp never expires: refused */
	else if (has_nbf && now_s + o->leeway_s < nbf)
		res = OH_OIDC_NOT_YET_VALID;
	else if (!sub || !*sub)
		res = OH_OIDC_NO_SUBJECT;
	if (res == OH_OIDC_OK) {
		oh_role_t role = map_role(o, json_object_get(claims, o->role_claim));
		if (role == OH_ROLE_NONE)
			res = OH_OIDC_NO_ROLE;
		fill_identity(claims, sub, role, exp, out);
	}
	json_decref(claims);
	return res;
}
