#include "managed_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void to_task_log(void *ctx, const char *line)
{
	oh_task_log(ctx, "%s", line);
}

static bool task_stops(void *ctx)
{
	return oh_task_should_stop(ctx);
}

bool oh_mc_session_open(oh_task_run_t *r, const char *node_arg, oh_mc_session_t *s,
                        oh_task_outcome_t *out)
{
	memset(s, 0, sizeof *s);
	const char *id = json_string_value(json_object_get(r->args, "ClusterId"));
	s->m = malloc(sizeof *s->m);
	if (!s->m || !id) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "The task names no managed cluster.");
		return false;
	}
	db_status_t st = oh_mc_get(r->pool, id, s->m);
	if (st != DB_OK) {
		out->end = st == DB_NO_ROWS ? OH_END_FAILED : OH_END_RETRY;
		snprintf(out->error, sizeof out->error,
		         st == DB_NO_ROWS ? "Managed cluster %s no longer exists."
		                          : "Managed cluster %s cannot be read right now.",
		         id);
		return false;
	}
	if (!oh_mc_client(s->m, r->env->secrets_key, r->env->outbound, &s->o, &s->key)) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error,
		         "The API key of %s cannot be opened: this node's secrets key differs from "
		         "the one it was sealed with.",
		         s->m->name);
		return false;
	}
	s->o.log = to_task_log;
	s->o.log_ctx = r;
	s->o.stop = task_stops;
	s->o.stop_ctx = r;
	if (node_arg) {
		const char *name = json_string_value(json_object_get(r->args, node_arg));
		s->node = name ? oh_mc_node_find(s->m, name) : NULL;
		if (!s->node) {
			out->end = OH_END_FAILED;
			snprintf(out->error, sizeof out->error, "%s has no node %s configured.",
			         s->m->name, name ? name : "(none)");
			return false;
		}
	}
	return true;
}

void oh_mc_session_close(oh_mc_session_t *s)
{
	oh_mc_key_free(s->key);
	free(s->m);
	memset(s, 0, sizeof *s);
}

void oh_mc_fail(oh_task_outcome_t *out, oh_octo_status_t st, long http, const char *what)
{
	char why[200];
	oh_octo_describe(st, http, why, sizeof why);
	out->end = st == OH_OCTO_UNREACHABLE ? OH_END_RETRY : OH_END_FAILED;
	snprintf(out->error, sizeof out->error, "%s: %s.", what, why);
}

bool oh_mc_find_remote(oh_task_run_t *r, oh_mc_session_t *s, const oh_mc_node_t *n,
                       oh_octo_node_t *node, oh_octo_nodes_t *all, oh_task_outcome_t *out)
{
	long http = 0;
	oh_octo_nodes_t l;
	oh_octo_status_t st = oh_octo_list_nodes(&s->o, &l, &http);
	if (st != OH_OCTO_OK) {
		oh_mc_fail(out, st, http, "Reading the cluster's nodes");
		return false;
	}
	const oh_octo_node_t *found = oh_mc_match(&l, n);
	if (!found) {
		oh_task_log(r, "%s is not in the node list of %s", n->name, s->m->name);
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error,
		         "%s does not list a node %s: check its name, or run DiscoverCluster.",
		         s->m->name, n->name);
		oh_octo_nodes_free(&l);
		return false;
	}
	*node = *found;
	if (all)
		*all = l;
	else
		oh_octo_nodes_free(&l);
	return true;
}

bool oh_mc_put_field(oh_mc_session_t *s, const char *octopus_id, const char *field, json_t *value,
                     oh_task_outcome_t *out)
{
	json_t *res = NULL;
	long http = 0;
	oh_octo_status_t st = oh_octo_get_node(&s->o, octopus_id, &res, &http);
	if (st != OH_OCTO_OK) {
		json_decref(value);
		oh_mc_fail(out, st, http, "Reading the node resource");
		return false;
	}
	/* The whole resource goes back, with only FIELD changed. */
	json_object_set_new(res, field, value);
	st = oh_octo_put_node(&s->o, octopus_id, res, &http);
	json_decref(res);
	if (st != OH_OCTO_OK) {
		oh_mc_fail(out, st, http, "Updating the node resource");
		return false;
	}
	return true;
}

bool oh_mc_last_taking_work(const oh_octo_nodes_t *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++) {
		const oh_octo_node_t *n = &l->v[i];
		if (strcmp(n->id, id) != 0 && !n->offline && !n->maintenance && n->max_tasks > 0)
			return false;
	}
	return true;
}
