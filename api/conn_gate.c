/* The per-client connection cap of the API listener: see conn_gate.h. */
#include "conn_gate.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/oh_error.h"
#include "../lib/oh_json.h"
#include "../lib/oh_list.h"
#include "../lib/oh_log.h"

#define GATE_MAX_PORTS 4
#define GATE_ADDR_LEN  64 /* numeric IPv6 with a scope id fits */

typedef struct {
	char addr[GATE_ADDR_LEN];
	int count;
} gate_slot_t;

static struct {
	pthread_mutex_t mu;
	bool open;
	int ports[GATE_MAX_PORTS];
	bool tls[GATE_MAX_PORTS];
	size_t n_ports;
	int max;
	char *trusted;
	gate_slot_t *slots;
	size_t n_slots;
	char refusal[512]; /* the whole 503 answer, built once */
	size_t refusal_len;
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The accept() that --wrap=accept leaves reachable. */
int __real_accept(int fd, struct sockaddr *addr, socklen_t *len);
int __wrap_accept(int fd, struct sockaddr *addr, socklen_t *len);

/* The address as civetweb writes request_info.remote_addr, so release
 * finds what admit counted. */
static bool numeric_addr(const struct sockaddr_storage *ss, char *out, size_t size)
{
	socklen_t sl = ss->ss_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
	                                         : (socklen_t)sizeof(struct sockaddr_in);
	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
		return false;
	return getnameinfo((const struct sockaddr *)ss, sl, out, (socklen_t)size, NULL, 0,
	                   NI_NUMERICHOST) == 0;
}

static int local_port(int s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(s, (struct sockaddr *)&ss, &sl) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

static gate_slot_t *find_slot(const char *addr)
{
	for (size_t i = 0; i < gate.n_slots; i++)
		if (gate.slots[i].count > 0 && strcmp(gate.slots[i].addr, addr) == 0)
			return &gate.slots[i];
	return NULL;
}

/* Counts a connection from ADDR; the caller holds gate.mu.  False when
 * ADDR is at the cap. */
static bool admit_locked(const char *addr)
{
	gate_slot_t *s = find_slot(addr);
	if (s && s->count >= gate.max)
		return false;
	if (s) {
		s->count++;
		return true;
	}
	for (size_t i = 0; i < gate.n_slots; i++) {
		if (gate.slots[i].count == 0) {
			snprintf(gate.slots[i].addr, sizeof gate.slots[i].addr, "%s", addr);
			gate.slots[i].count = 1;
			return true;
		}
	}
	/* No free slot (more addresses than civetweb can hold at once): the
	 * connection passes uncounted. */
	return true;
}

/* Whether the connection S from PEER may go on to civetweb; *TLS_PORT says
 * whether it came to a TLS port. */
static bool let_in(int s, const struct sockaddr_storage *peer, char *who, size_t who_size,
                   bool *tls_port)
{
	bool ok = true;
	pthread_mutex_lock(&gate.mu);
	if (gate.open) {
		int port = local_port(s);
		size_t k = 0;
		while (k < gate.n_ports && gate.ports[k] != port)
			k++;
		if (k < gate.n_ports && numeric_addr(peer, who, who_size) &&
		    !(gate.trusted && oh_list_has(gate.trusted, who, false))) {
			ok = admit_locked(who);
			*tls_port = gate.tls[k];
		}
	}
	pthread_mutex_unlock(&gate.mu);
	return ok;
}

int __wrap_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof peer;
	int s = __real_accept(fd, (struct sockaddr *)&peer, &peer_len);
	if (s < 0)
		return s;
	if (addr && len) {
		socklen_t n = *len < peer_len ? *len : peer_len;
		memcpy(addr, &peer, n);
		*len = peer_len;
	}
	char who[GATE_ADDR_LEN] = "";
	bool tls_port = false;
	if (let_in(s, &peer, who, sizeof who, &tls_port))
		return s;
	/* Over the cap: answer and close before any worker sees it.  The
	 * answer is built once, at open; the socket is non-blocking, and an
	 * answer that does not fit its buffer at once is simply not sent. */
	if (!tls_port)
		(void)!send(s, gate.refusal, gate.refusal_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(s, SHUT_RDWR);
	close(s);
	oh_log(OH_LOG_DEBUG, "connection refused: too many from one address", "remote=%s max=%d",
	       who, gate.max);
	errno = ECONNABORTED;
	return -1;
}

bool api_gate_open(const int *ports, const bool *tls, size_t n, int max_per_client,
                   const char *trusted, size_t slots)
{
	api_gate_close();
	if (max_per_client <= 0 || n == 0)
		return true; /* no cap: nothing to count */
	pthread_mutex_lock(&gate.mu);
	gate.n_ports = n < GATE_MAX_PORTS ? n : GATE_MAX_PORTS;
	for (size_t i = 0; i < gate.n_ports; i++) {
		gate.ports[i] = ports[i];
		gate.tls[i] = tls[i];
	}
	gate.max = max_per_client;
	gate.trusted = trusted && *trusted ? strdup(trusted) : NULL;
	gate.slots = calloc(slots ? slots : 1, sizeof *gate.slots);
	gate.n_slots = slots ? slots : 1;
	json_t *body = oh_error_body(OH_E_TOO_MANY_CONNECTIONS, NULL, NULL);
	char *text = oh_json_dump(body);
	json_decref(body);
	int w = snprintf(gate.refusal, sizeof gate.refusal,
	                 "HTTP/1.1 503 Service Unavailable\r\n"
	                 "Content-Type: application/json; charset=utf-8\r\n"
	                 "Content-Length: %zu\r\n"
	                 "Retry-After: 1\r\n"
	                 "Connection: close\r\n\r\n%s",
	                 strlen(text), text);
	free(text);
	gate.refusal_len = w > 0 && (size_t)w < sizeof gate.refusal ? (size_t)w : 0;
	bool ok = gate.slots && (gate.trusted || !(trusted && *trusted));
	gate.open = ok;
	pthread_mutex_unlock(&gate.mu);
	return ok;
}

void api_gate_release(const char *remote_addr)
{
	if (!remote_addr)
		return;
	pthread_mutex_lock(&gate.mu);
	gate_slot_t *s = gate.open ? find_slot(remote_addr) : NULL;
	if (s)
		s->count--;
	pthread_mutex_unlock(&gate.mu);
}

int api_gate_count(const char *remote_addr)
{
	pthread_mutex_lock(&gate.mu);
	gate_slot_t *s = gate.slots ? find_slot(remote_addr) : NULL;
	int n = s ? s->count : 0;
	pthread_mutex_unlock(&gate.mu);
	return n;
}

void api_gate_close(void)
{
	pthread_mutex_lock(&gate.mu);
	gate.open = false;
	free(gate.slots);
	gate.slots = NULL;
	gate.n_slots = 0;
	free(gate.trusted);
	gate.trusted = NULL;
	gate.n_ports = 0;
	pthread_mutex_unlock(&gate.mu);
}
