/* A client of a real Octopus Server HA cluster's REST API, on libcurl.  It
 * uses only what Octopus documents: each node's ping (called on the node
 * directly), the node list, its summary, GET then PUT of one node resource
 * (the whole resource, one field changed), a node's running tasks and their
 * cancellation, and a space's machines.  It reads only the fields of
 * Octopus's published resource definitions (@octopusdeploy/message-contracts):
 * unknown fields are ignored, missing optional ones tolerated.
 *
 * Every call has a time limit, is retried with backoff on a 5xx answer or a
 * connection failure, and is written to the caller's log as method, path,
 * status and milliseconds: the origin of the cluster, never the API key,
 * never a query string. */
#ifndef OH_OCTOPUS_CLIENT_H
#define OH_OCTOPUS_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "http_client.h"

typedef struct {
	const char *base_url; /* the load balancer's URL ("https://octopus.corp") */
	const char *api_key;  /* sent as X-Octopus-ApiKey; never logged */
	const char *ca_file;  /* TLS: trust this CA bundle, or NULL */
	const char *pin;      /* TLS: trust exactly this SHA-1 thumbprint, or NULL */
	bool insecure;        /* TLS: check nothing (the cluster's VerifyTls is off) */
	const oh_outbound_policy_t *policy;
	long timeout_ms; /* per attempt */
	int attempts;    /* tries per call (at least 1) */
	long backoff_ms; /* before the second try; doubles after */
	/* Where each call is written (a task's log, the node's log); may be
	 * NULL.  LINE is one finished sentence. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	/* Stops retrying early when it returns true (a task asked to stop). */
	bool (*stop)(void *ctx);
	void *stop_ctx;
} oh_octo_t;

typedef enum {
	OH_OCTO_OK = 0,
	OH_OCTO_UNREACHABLE, /* no HTTP answer (after the retries) */
	OH_OCTO_REFUSED,     /* the outbound policy or the pinned thumbprint refused it */
	OH_OCTO_AUTH,        /* 401 or 403: the API key was refused */
	OH_OCTO_NOT_FOUND,   /* 404 */
	OH_OCTO_HTTP,        /* another non-2xx answer (after the retries for 5xx) */
	OH_OCTO_BAD_ANSWER   /* 2xx, but not the JSON the contract describes */
} oh_octo_status_t;

/* One sentence a Reader may see for a failed call ("the API key was
 * refused (401)", "unreachable", …), written into BUF. */
const char *oh_octo_describe(oh_octo_status_t s, long http_status, char *buf, size_t size);

/* A node, from the node list and the summary (OctopusServerNodeResource,
 * OctopusServerNodeSummaryResource). */
typedef struct {
	char id[101];
	char name[101];
	int max_tasks;
	bool maintenance;
	bool offline;    /* summary only; false when unknown */
	int running;     /* summary's RunningTaskCount; -1 when unknown */
	bool in_summary; /* the summary listed it */
} oh_octo_node_t;

typedef struct {
	oh_octo_node_t *v;
	size_t n;
} oh_octo_nodes_t;
void oh_octo_nodes_free(oh_octo_nodes_t *l);

/* GET {node_url}/api/octopusservernodes/ping on the node itself (no key,
 * as a load balancer asks; one try, time limit TIMEOUT_MS).  Returns the
 * HTTP status, or 0 when the node did not answer (*WHY says why, when
 * given, size WHY_SIZE). */
long oh_octo_ping(const oh_octo_t *o, const char *node_url, long timeout_ms, char *why,
                  size_t why_size);

/* GET /api/octopusservernodes (every page) merged with GET
 * /api/octopusservernodes/summary.  *OUT is freed by the caller. */
oh_octo_status_t oh_octo_list_nodes(const oh_octo_t *o, oh_octo_nodes_t *out, long *http_status);

/* GET /api/octopusservernodes/{id}: the whole resource (*OUT, owned), as
 * the cluster sent it, to be PUT back with one field changed. */
oh_octo_status_t oh_octo_get_node(const oh_octo_t *o, const char *id, json_t **out,
                                  long *http_status);

/* PUT /api/octopusservernodes/{id} with RESOURCE (borrowed): the whole
 * resource read by oh_octo_get_node with the fields to change set. */
oh_octo_status_t oh_octo_put_node(const oh_octo_t *o, const char *id, const json_t *resource,
                                  long *http_status);

/* The Ids of the tasks executing (or cancelling) on node NODE_ID (name
 * NODE_NAME): GET /api/tasks?node=…&states=Executing,Cancelling, kept
 * only when the task's ServerNode names this node.  Fills IDS (capacity
 * CAP, 64 bytes each) and *N. */
oh_octo_status_t oh_octo_running_tasks(const oh_octo_t *o, const char *node_id,
                                       const char *node_name, char (*ids)[64], size_t cap,
                                       size_t *n, long *http_status);

/* POST /api/tasks/{id}/cancel. */
oh_octo_status_t oh_octo_cancel_task(const oh_octo_t *o, const char *task_id, long *http_status);

/* A machine of a space (MachineResource): what Tentacle registration is
 * checked against. */
typedef struct {
	char id[101];
	char name[201];
	char thumbprint[41]; /* Endpoint.Thumbprint, upper case; "" when none */
	char uri[401];       /* Endpoint.Uri ("poll://…/" for a polling Tentacle) */
	char style[41];      /* Endpoint.CommunicationStyle */
	char health[41];     /* HealthStatus */
	bool disabled;
} oh_octo_machine_t;

typedef struct {
	oh_octo_machine_t *v;
	size_t n;
} oh_octo_machines_t;
void oh_octo_machines_free(oh_octo_machines_t *l);

/* GET /api/{space_id}/machines, every page. */
oh_octo_status_t oh_octo_machines(const oh_octo_t *o, const char *space_id, oh_octo_machines_t *out,
                                  long *http_status);

#endif
