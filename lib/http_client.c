#include "http_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

void oh_http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- the outbound policy ------------------------------------------------ */

typedef struct {
	int family;            /* AF_INET or AF_INET6 */
	unsigned char net[16]; /* network address, in network order */
	int bits;              /* prefix length */
} cidr_t;

typedef struct {
	char *name;  /* lower case */
	bool suffix; /* "*.corp": any host ending in ".corp" */
} host_rule_t;

struct oh_outbound_policy {
	cidr_t *cidrs;
	size_t n_cidrs;
	host_rule_t *hosts;
	size_t n_hosts;
};

/* Addresses a user-aimed call must not reach unless allowed: this host,
 * its networks, and what no public service lives on. */
static const char *const inner_ranges[] = {
    "0.0.0.0/8",       "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8",    "169.254.0.0/16",
    "172.16.0.0/12",   "192.0.0.0/24",   "192.0.2.0/24",  "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",   "240.0.0.0/4",    "::/128",
    "::1/128",         "fc00::/7",       "fe80::/10",     "fec0::/10",      "ff00::/8",
    "2001:db8::/32",   "64:ff9b:1::/48",
};

static bool parse_cidr(const char *text, cidr_t *out)
{
	char buf[80];
	snprintf(buf, sizeof buf, "%s", text);
	char *slash = strchr(buf, '/');
	long bits = -1;
	if (slash) {
		char *end;
		*slash = '\0';
		bits = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end)
			return false;
	}
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, buf, out->net) == 1) {
		out->family = AF_INET;
		if (bits < 0)
			bits = 32;
		if (bits > 32)
			return false;
	} else if (inet_pton(AF_INET6, buf, out->net) == 1) {
		out->family = AF_INET6;
		if (bits < 0)
			bits = 128;
		if (bits > 128)
			return false;
	} else {
		return false;
	}
	out->bits = (int)bits;
	return true;
}

static bool in_cidr(const cidr_t *c, int family, const unsigned char *addr)
{
	if (c->family != family)
		return false;
	int full = c->bits / 8, rest = c->bits % 8;
	if (memcmp(c->net, addr, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xffu << (8 - rest));
	return (c->net[full] & mask) == (addr[full] & mask);
}

static bool host_name_ok(const char *s)
{
	if (!*s || strlen(s) > 253)
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return false;
	return true;
}

oh_outbound_policy_t *oh_outbound_policy_new(const char *allow, char *err, size_t errlen)
{
	oh_outbound_policy_t *p = calloc(1, sizeof *p);
	char *copy = strdup(allow ? allow : "");
	if (!p || !copy) {
		free(p);
		free(copy);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t cap = 1;
	for (const char *c = copy; *c; c++)
		cap += *c == ',';
	p->cidrs = calloc(cap, sizeof *p->cidrs);
	p->hosts = calloc(cap, sizeof *p->hosts);
	bool ok = p->cidrs && p->hosts;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); ok && tok; tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		char *end = tok + strlen(tok);
		while (end > tok && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!*tok)
			continue;
		if (parse_cidr(tok, &p->cidrs[p->n_cidrs])) {
			p->n_cidrs++;
			continue;
		}
		bool suffix = strncmp(tok, "*.", 2) == 0;
		const char *name = suffix ? tok + 1 : tok;
		if (!host_name_ok(suffix ? name + 1 : name) || strchr(tok, '/')) {
			snprintf(
			    err, errlen,
			    "outbound-allow: '%.100s' is not a CIDR, an address, a host name or "
			    "*.suffix",
			    tok);
			ok = false;
			break;
		}
		char *lower = strdup(name);
		if (!lower) {
			ok = false;
			break;
		}
		for (char *q = lower; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		p->hosts[p->n_hosts++] = (host_rule_t){lower, suffix};
	}
	free(copy);
	if (!ok) {
		if (!err[0])
			snprintf(err, errlen, "out of memory");
		oh_outbound_policy_free(p);
		return NULL;
	}
	return p;
}

void oh_outbound_policy_free(oh_outbound_policy_t *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_hosts; i++)
		free(p->hosts[i].name);
	free(p->hosts);
	free(p->cidrs);
	free(p);
}

static bool host_allowed(const oh_outbound_policy_t *p, const char *host)
{
	if (!host)
		return false;
	size_t hl = strlen(host);
	for (size_t i = 0; i < p->n_hosts; i++) {
		const host_rule_t *r = &p->hosts[i];
		size_t rl = strlen(r->name);
		if (!r->suffix && strcasecmp(host, r->name) == 0)
			return true;
		if (r->suffix && hl > rl && strcasecmp(host + hl - rl, r->name) == 0)
			return true;
	}
	return false;
}

bool oh_outbound_allowed(const oh_outbound_policy_t *p, const char *host, const struct sockaddr *sa,
                         size_t len)
{
	if (!p)
		return true; /* the cluster's own calls (node probes) */
	if (host_allowed(p, host))
		return true;
	int family;
	unsigned char addr[16];
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		family = AF_INET6;
		memcpy(addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		/* An IPv4 address written as IPv6 (::ffff:a.b.c.d, 64:ff9b::a.b.c.d)
		 * is judged as the IPv4 address it reaches. */
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0,
		                                        0, 0,    0,    0,    0, 0};
		if (memcmp(addr, mapped, 12) == 0 || memcmp(addr, nat64, 12) == 0) {
			family = AF_INET;
			memmove(addr, addr + 12, 4);
		}
	} else {
		return false; /* not an address family an HTTP call uses */
	}
	for (size_t i = 0; i < p->n_cidrs; i++)
		if (in_cidr(&p->cidrs[i], family, addr))
			return true;
	for (size_t i = 0; i < sizeof inner_ranges / sizeof inner_ranges[0]; i++) {
		cidr_t c;
		if (parse_cidr(inner_ranges[i], &c) && in_cidr(&c, family, addr))
			return false;
	}
	return true;
}

const char *oh_http_public_error(const oh_http_result_t *out)
{
	return out->refused ? "refused by policy" : "unreachable";
}

void oh_url_origin(const char *url, char *out, size_t size)
{
	out[0] = '\0';
	CURLU *u = curl_url();
	if (!u)
		return;
	char *scheme = NULL, *host = NULL, *port = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port)
			snprintf(out, size, "%s://%s:%s", scheme, host, port);
		else
			snprintf(out, size, "%s://%s", scheme, host);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

typedef struct {
	const oh_outbound_policy_t *policy;
	char host[256];
	bool refused;
} guard_t;

/* libcurl's socket opener: every connection a call makes (each address a
 * name resolves to, each retry) is judged here, on the address itself. */
static curl_socket_t open_guarded(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	guard_t *g = arg;
	(void)purpose;
	if (!oh_outbound_allowed(g->policy, g->host, &a->addr, a->addrlen)) {
		g->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

static void guard_init(guard_t *g, const oh_outbound_policy_t *policy, const char *url)
{
	memset(g, 0, sizeof *g);
	g->policy = policy;
	CURLU *u = curl_url();
	char *host = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		snprintf(g->host, sizeof g->host, "%s", host);
	curl_free(host);
	curl_url_cleanup(u);
}

typedef struct {
	oh_http_body_t *body; /* NULL: drop */
	size_t max;
	bool stop; /* end the transfer at MAX rather than drop the rest */
} sink_t;

/* libcurl's write callback: keeps up to MAX bytes, drops the rest. */
static size_t sink(char *ptr, size_t size, size_t n, void *ctx)
{
	sink_t *k = ctx;
	size_t len = size * n;
	if (!k->body || k->max == 0)
		return len;
	oh_http_body_t *b = k->body;
	size_t room = b->len < k->max ? k->max - b->len : 0;
	size_t take = len < room ? len : room;
	if (take < len) {
		b->truncated = true;
		if (k->stop)
			return 0; /* ends the transfer: the caller wants all or nothing */
	}
	if (take > 0) {
		char *nd = realloc(b->data, b->len + take + 1);
		if (!nd)
			return 0; /* libcurl ends the transfer with a write error */
		b->data = nd;
		memcpy(b->data + b->len, ptr, take);
		b->len += take;
		b->data[b->len] = '\0';
	}
	return len;
}

typedef struct {
	const char *want;
	oh_pin_t pin;
	char seen[41];
} pin_ctx_t;

/* Replaces OpenSSL's chain verification: the leaf certificate's SHA-1
 * must be the pinned thumbprint.  Failing here ends the handshake, so a
 * mismatch is found before any byte of the request is sent. */
static int pin_verify(X509_STORE_CTX *store, void *arg)
{
	pin_ctx_t *p = arg;
	X509 *cert = X509_STORE_CTX_get0_cert(store);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	if (!cert || !X509_digest(cert, EVP_sha1(), md, &len) || len != 20) {
		X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	for (unsigned i = 0; i < len; i++)
		snprintf(p->seen + 2 * i, 3, "%02X", md[i]);
	p->pin = strcasecmp(p->seen, p->want) == 0 ? OH_PIN_MATCH : OH_PIN_MISMATCH;
	if (p->pin != OH_PIN_MATCH) {
		X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	X509_STORE_CTX_set_error(store, X509_V_OK);
	return 1;
}

static CURLcode pin_ctx(CURL *h, void *ssl_ctx, void *arg)
{
	(void)h;
	SSL_CTX_set_cert_verify_callback(ssl_ctx, pin_verify, arg);
	return CURLE_OK;
}

bool oh_http_request(const oh_http_req_t *rq, oh_http_result_t *out, oh_http_body_t *body)
{
	memset(out, 0, sizeof *out);
	if (body)
		memset(body, 0, sizeof *body);
	guard_t g;
	guard_init(&g, rq->policy, rq->url);
	pin_ctx_t p = {.want = rq->pin, .pin = OH_PIN_UNSEEN};
	sink_t k = {body, rq->max_response, rq->stop_over_max};
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(out->error, sizeof out->error, "libcurl could not start a transfer");
		return false;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_guarded);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &g);
	/* Straight to the address judged above: a proxy would connect for us. */
	if (rq->policy || rq->pin)
		curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_URL, rq->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, rq->pin ? "https" : "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, rq->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "octoha/" OCTOHA_VERSION);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	if (rq->pin) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L); /* the pin names the server */
		curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
		curl_easy_setopt(h, CURLOPT_CAINFO, NULL); /* the pin, not a CA, decides */
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
		/* Without this callback (a libcurl not built on OpenSSL) there is
		 * no pinning: refuse rather than fall back to CA checks. */
		if (curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, pin_ctx) != CURLE_OK ||
		    curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, &p) != CURLE_OK) {
			curl_easy_cleanup(h);
			snprintf(
			    out->error, sizeof out->error,
			    "this libcurl cannot pin certificates (it is not built on OpenSSL)");
			return false;
		}
	} else {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, rq->insecure ? 0L : 2L);
		if (rq->insecure)
			curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		else if (rq->ca_file && *rq->ca_file)
			curl_easy_setopt(h, CURLOPT_CAINFO, rq->ca_file);
	}
	struct curl_slist *hl = NULL;
	char ct[200];
	if (rq->body) {
		snprintf(ct, sizeof ct, "Content-Type: %s",
		         rq->content_type ? rq->content_type : "application/json");
		hl = curl_slist_append(hl, ct);
		hl = curl_slist_append(hl, "Expect:");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	}
	for (size_t i = 0; rq->headers && rq->headers[i]; i++)
		hl = curl_slist_append(hl, rq->headers[i]);
	if (hl)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	const char *method = rq->method ? rq->method : "GET";
	if (strcmp(method, "GET") == 0 && !rq->body)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") == 0 && !rq->body) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	} else if (strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

	CURLcode rc = curl_easy_perform(h);
	double secs = 0;
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &secs);
	out->duration_ms = (long)(secs * 1000.0);
	out->refused = rc != CURLE_OK && g.refused;
	out->pin = p.pin;
	snprintf(out->seen, sizeof out->seen, "%s", p.seen);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	else if (out->refused)
		snprintf(out->error, sizeof out->error,
		         "refused by policy: %.100s resolves to an address outbound-allow does not "
		         "allow",
		         g.host);
	else if (p.pin == OH_PIN_MISMATCH)
		snprintf(out->error, sizeof out->error,
		         "the server's certificate has thumbprint %s, not the pinned one", p.seen);
	else
		snprintf(out->error, sizeof out->error, "%s",
		         errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK && body) {
		bool cut = body->truncated; /* stop_over_max ended the transfer */
		free(body->data);
		memset(body, 0, sizeof *body);
		body->truncated = cut;
	}
	return rc == CURLE_OK;
}

bool oh_http_post(const char *url, const char *content_type, const char *body, size_t len,
                  const char *const *headers, long timeout_ms, const oh_outbound_policy_t *policy,
                  oh_http_result_t *out)
{
	oh_http_req_t rq = {.method = "POST",
	                    .url = url,
	                    .headers = headers,
	                    .body = body ? body : "",
	                    .body_len = body ? len : 0,
	                    .content_type = content_type,
	                    .timeout_ms = timeout_ms,
	                    .policy = policy};
	return oh_http_request(&rq, out, NULL);
}

bool oh_http_get(const char *url, long timeout_ms, const oh_outbound_policy_t *policy,
                 oh_http_result_t *out)
{
	oh_http_req_t rq = {
	    .method = "GET", .url = url, .timeout_ms = timeout_ms, .policy = policy};
	return oh_http_request(&rq, out, NULL);
}

bool oh_http_get_pinned(const char *url, const char *thumbprint, long timeout_ms,
                        const oh_outbound_policy_t *policy, oh_http_result_t *out, oh_pin_t *pin,
                        char seen[41])
{
	oh_http_req_t rq = {.method = "GET",
	                    .url = url,
	                    .timeout_ms = timeout_ms,
	                    .policy = policy,
	                    .pin = thumbprint};
	bool ok = oh_http_request(&rq, out, NULL);
	*pin = out->pin;
	snprintf(seen, 41, "%s", out->seen);
	return ok;
}

bool oh_http_get_body(const char *url, long timeout_ms, size_t max_bytes, char **body, size_t *len,
                      oh_http_result_t *out)
{
	*body = NULL;
	*len = 0;
	/* The operator's own address: no policy. */
	oh_http_req_t rq = {.method = "GET",
	                    .url = url,
	                    .timeout_ms = timeout_ms,
	                    .max_response = max_bytes,
	                    .stop_over_max = true};
	oh_http_body_t b;
	bool ok = oh_http_request(&rq, out, &b);
	if (b.truncated) {
		snprintf(out->error, sizeof out->error, "the answer is larger than %zu bytes",
		         max_bytes);
		ok = false;
	}
	if (!ok) {
		free(b.data);
		return false;
	}
	*body = b.data ? b.data : strdup("");
	*len = b.len;
	return *body != NULL;
}
