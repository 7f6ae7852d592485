/* Outbound HTTP over libcurl: webhook deliveries, chat replies, node probes,
 * Tentacle health checks and the calls to managed Octopus clusters.  Only
 * http and https, no redirects followed, certificates verified (against the
 * system's CAs or a given CA file, or pinned by thumbprint), a hard time
 * limit per call; the answer's body is dropped unless the caller keeps it. */
#ifndef OH_HTTP_CLIENT_H
#define OH_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
	OH_PIN_UNSEEN = 0, /* no certificate came back (no TLS connection) */
	OH_PIN_MATCH,      /* the server's certificate has the expected thumbprint */
	OH_PIN_MISMATCH    /* it has another: SEEN holds it */
} oh_pin_t;

typedef struct {
	long status;      /* HTTP status, 0 when there was no answer */
	long duration_ms; /* time the call took */
	bool refused;     /* the outbound policy refused the address */
	char error[256];  /* why there was no answer, "" otherwise (for the node's log) */
	oh_pin_t pin;     /* with a pinned thumbprint: what the handshake saw */
	char seen[41];    /* the thumbprint presented, when pinned */
} oh_http_result_t;

/* What a call may reach.  Calls a user can aim (webhooks, chat replies,
 * Tentacle health checks, managed clusters) must not become a way to probe
 * the node's own network: they are refused loopback, link-local, private,
 * shared and reserved addresses, judged on the address each connection is
 * actually made to (after DNS, so a name that resolves to an inner address,
 * even only on the second lookup, is refused too), unless the policy allows
 * them by CIDR or by host name. */
typedef struct oh_outbound_policy oh_outbound_policy_t;

/* Parses ALLOW, a comma-separated list of CIDRs ("10.1.0.0/16",
 * "fd00::/8"), addresses, host names ("hooks.corp") and host name suffixes
 * ("*.corp").  Returns a new policy, or NULL with ERR (size ERRLEN) naming
 * the entry that is not one of those. */
oh_outbound_policy_t *oh_outbound_policy_new(const char *allow, char *err, size_t errlen);
void oh_outbound_policy_free(oh_outbound_policy_t *p);

/* True when POLICY lets a call reach ADDR (a struct sockaddr of LEN bytes)
 * for host name HOST.  For the tests and the connect callback. */
struct sockaddr;
bool oh_outbound_allowed(const oh_outbound_policy_t *policy, const char *host,
                         const struct sockaddr *addr, size_t len);

/* What a Reader may see of a call's failure: "refused by policy" or
 * "unreachable" (the transport's own message, which tells a closed port
 * from a silent one, stays in OUT->error for the node's log). */
const char *oh_http_public_error(const oh_http_result_t *out);

/* The origin of URL ("https://hooks.example.com:8443"): what logs and
 * Reader-visible records show of an outbound address, since a webhook's
 * path and query are often its credential.  "" when URL does not parse. */
void oh_url_origin(const char *url, char *out, size_t size);

/* Initialises libcurl once per process (call before threads start). */
void oh_http_global_init(void);

/* POSTs LEN bytes of BODY to URL with CONTENT_TYPE and the extra header
 * lines HEADERS (NULL-terminated "Name: value" strings, may be NULL),
 * waiting at most TIMEOUT_MS, reaching only what POLICY allows (NULL: the
 * cluster's own nodes, anything).  Returns true when an HTTP answer came
 * back (any status), false with OUT->error set otherwise. */
bool oh_http_post(const char *url, const char *content_type, const char *body, size_t len,
                  const char *const *headers, long timeout_ms, const oh_outbound_policy_t *policy,
                  oh_http_result_t *out);

/* GETs URL (http or https, certificates verified) within TIMEOUT_MS, as
 * POLICY allows.  Returns as oh_http_post. */
bool oh_http_get(const char *url, long timeout_ms, const oh_outbound_policy_t *policy,
                 oh_http_result_t *out);

/* GETs URL as oh_http_get without an outbound policy (for addresses the
 * operator configured, such as the OIDC issuer) and keeps the answer's body: *BODY (malloc'd,
 * NUL-terminated, owned by the caller) and *LEN.  A body over MAX_BYTES
 * ends the call (false, OUT->error says so).  Returns true with the body
 * for any HTTP status; false, *BODY NULL, otherwise. */
bool oh_http_get_body(const char *url, long timeout_ms, size_t max_bytes, char **body, size_t *len,
                      oh_http_result_t *out);

/* GETs the https URL, trusting exactly the server certificate whose SHA-1
 * thumbprint is THUMBPRINT (40 hex digits, any case) in place of the CA
 * chain and host name checks, as Octopus trusts a Tentacle.  A mismatch
 * stops the handshake before any request is sent.  *PIN says what was seen,
 * SEEN (41 bytes) the thumbprint presented.  Returns as oh_http_post. */
bool oh_http_get_pinned(const char *url, const char *thumbprint, long timeout_ms,
                        const oh_outbound_policy_t *policy, oh_http_result_t *out, oh_pin_t *pin,
                        char seen[41]);

/* One call, as general as the callers need it. */
typedef struct {
	const char *method;         /* "GET", "PUT", "POST" */
	const char *url;            /* http or https */
	const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
	const char *body;           /* NULL: no body */
	size_t body_len;
	const char *content_type; /* of the body */
	long timeout_ms;          /* the whole call, connect included */
	/* What the call may reach (NULL: anything, for the cluster's own nodes). */
	const oh_outbound_policy_t *policy;
	/* TLS.  By default the server's chain is checked against the system's
	 * CAs and its name against the URL.  CA_FILE: against this PEM bundle
	 * instead.  PIN (40 hex digits, SHA-1): trust exactly the certificate
	 * with this thumbprint in place of chain and name checks; the call is
	 * then https only, and a mismatch ends the handshake before any byte of
	 * the request is sent. */
	const char *ca_file;
	const char *pin;
	bool insecure;       /* no certificate check at all (a cluster set VerifyTls false) */
	size_t max_response; /* bytes of the answer's body kept; 0 drops it */
	bool stop_over_max;  /* a longer body ends the call (false) rather than being cut */
} oh_http_req_t;

/* The body of an answer (malloc'd, NUL-terminated; free DATA). */
typedef struct {
	char *data;
	size_t len;
	bool truncated; /* longer than max_response: the rest was dropped (or, with
	                 * stop_over_max, the call failed and DATA is NULL) */
} oh_http_body_t;

/* Makes the call RQ.  Returns true when an HTTP answer came back (any
 * status: OUT->status), with its body in *BODY (may be NULL: dropped) when
 * RQ->max_response allows; false with OUT->error (and OUT->refused,
 * OUT->pin) set otherwise.  *BODY is always initialised; free BODY->data. */
bool oh_http_request(const oh_http_req_t *rq, oh_http_result_t *out, oh_http_body_t *body);

#endif
