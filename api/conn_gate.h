/* The connection gate of the API listener: at most N connections at once
 * from one client address, so a few idle or slow clients cannot hold every
 * worker thread (each open connection holds one for as long as it lasts).
 *
 * civetweb 1.15 has no hook at accept time: its init_connection callback
 * runs on a worker thread after the connection already holds it, and its
 * return value is ignored.  So the gate sits on accept() itself: the build
 * links with `-Wl,--wrap=accept`, which sends civetweb's accept() calls to
 * __wrap_accept here (civetweb's source is not changed).  A connection over
 * the cap gets "503 TooManyConnections" (plain HTTP; a TLS port just closes)
 * and is closed at once, before a worker sees it; civetweb takes the failed
 * accept as nothing to do.  Connections to other ports (the health
 * listener), and from addresses listed as trusted proxies (a load balancer
 * carries many clients), are not counted. */
#ifndef API_CONN_GATE_H
#define API_CONN_GATE_H

#include <stdbool.h>
#include <stddef.h>

/* Starts counting connections accepted on the local PORTS (N of them;
 * TLS[i] says port i speaks TLS): at most MAX_PER_CLIENT (0 = no cap) from
 * one address, except the addresses in TRUSTED (comma-separated, as
 * trusted-proxies; copied).  SLOTS bounds how many addresses are tracked at
 * once (the most connections civetweb holds: workers plus its queue).
 * Returns false on OOM.  One gate per process. */
bool api_gate_open(const int *ports, const bool *tls, size_t n, int max_per_client,
                   const char *trusted, size_t slots);

/* A connection from REMOTE_ADDR (civetweb's numeric form) to a gated port
 * closed: frees its place.  An address that was not counted is ignored. */
void api_gate_release(const char *remote_addr);

/* Stops gating and frees the gate's state; connections pass again. */
void api_gate_close(void);

/* How many connections from REMOTE_ADDR the gate counts now (for tests and
 * logs). */
int api_gate_count(const char *remote_addr);

#endif
