/* Single sign-on: access tokens (JWTs) from one configured OpenID Connect
 * issuer (Entra ID, Keycloak, …) checked the way a resource server must.
 * The issuer's keys come from the JWKS its discovery document names,
 * fetched with libcurl, kept for a while and fetched again when a token
 * names a key id the set does not hold (key rollover).  Signatures are
 * checked by cjose; this module decides which key and algorithm may be
 * used (RS256 and ES256 only: never "none", never an HMAC keyed with a
 * public key) and checks iss, aud, exp and nbf.  The token's roles (or
 * groups) claim maps to an octoha role. */
#ifndef OH_OIDC_H
#define OH_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apikeys.h"

typedef struct {
	const char *issuer;      /* exact iss; https, or http on a loopback address */
	const char *audience;    /* the aud a token must carry */
	const char *role_claim;  /* the claim holding role or group names ("roles") */
	const char *role_map;    /* "claim value=Role,…"; NULL or "" = Reader, Operator and
	                            Admin map to themselves */
	int64_t leeway_s;        /* clock skew allowed on exp and nbf */
	int64_t keys_max_age_ms; /* the key set is fetched again after this */
	int64_t refresh_min_ms;  /* an unknown key id fetches it at most this often */
	long http_timeout_ms;    /* per fetch */
} oh_oidc_opts_t;

typedef enum {
	OH_OIDC_OK = 0,
	OH_OIDC_MALFORMED,       /* not a signed JWT with a JSON header and claims */
	OH_OIDC_ALG_NOT_ALLOWED, /* alg is not RS256 or ES256, or does not fit the key */
	OH_OIDC_UNKNOWN_KID,     /* no key of the issuer has that id, even after a fetch */
	OH_OIDC_BAD_SIGNATURE,
	OH_OIDC_WRONG_ISSUER,
	OH_OIDC_WRONG_AUDIENCE,
	OH_OIDC_EXPIRED,
	OH_OIDC_NOT_YET_VALID,
	OH_OIDC_NO_SUBJECT, /* valid, but without sub */
	OH_OIDC_NO_ROLE,    /* valid, but no claim value maps to a role */
	OH_OIDC_UNAVAILABLE /* the issuer's keys cannot be fetched */
} oh_oidc_status_t;

/* A short phrase for STATUS ("the token has expired"), for error bodies. */
const char *oh_oidc_status_text(oh_oidc_status_t status);

/* Who a verified token speaks for. */
typedef struct {
	char id[51];    /* "oidc:" and the subject (or its hash when long): the audit's UserId */
	char name[201]; /* name, preferred_username, upn, email or sub */
	char subject[256];
	oh_role_t role;  /* the highest role its claim values map to */
	int64_t expires; /* exp, Unix seconds */
} oh_oidc_identity_t;

/* Where the issuer's endpoints are, from its discovery document. */
typedef struct {
	char authorization[1024];
	char token[1024];
	char end_session[1024]; /* "" when the issuer has none */
} oh_oidc_endpoints_t;

typedef struct oh_oidc oh_oidc_t;

/* Checks OPTS (issuer form, role map) and creates the verifier; nothing is
 * fetched yet.  Returns NULL with the reason in ERR. */
oh_oidc_t *oh_oidc_new(const oh_oidc_opts_t *opts, char *err, size_t errlen);
void oh_oidc_free(oh_oidc_t *o);

/* True when TOKEN has the form of a compact JWS (three base64url parts):
 * how a bearer token is told apart from an API key. */
bool oh_oidc_is_jwt(const char *token);

/* Verifies TOKEN at NOW_S (Unix seconds).  OH_OIDC_OK fills *OUT; any
 * other status says why it was refused (OH_OIDC_UNAVAILABLE: the issuer
 * could not be asked, not the token's fault).  May fetch the issuer's keys
 * (blocking, at most http_timeout_ms per fetch; concurrent callers wait for
 * one fetch).  Thread-safe. */
oh_oidc_status_t oh_oidc_verify(oh_oidc_t *o, const char *token, int64_t now_s,
                                oh_oidc_identity_t *out);

/* The issuer's endpoints (fetching the discovery document when it was not
 * read yet).  False when it cannot be read. */
bool oh_oidc_endpoints(oh_oidc_t *o, oh_oidc_endpoints_t *out);

/* The configured issuer (borrowed). */
const char *oh_oidc_issuer(const oh_oidc_t *o);

#endif
