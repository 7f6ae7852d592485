/* `octoha-server admin --create-api-key --name NAME --role ROLE`: makes an
 * API key from a node's shell, working on the database directly (the
 * first key of a cluster, or a key after every Admin key was lost).  The
 * key is printed alone on the last line of stdout, for scripts. */
#include <stdio.h>
#include <string.h>

#include "../lib/apikeys.h"
#include "../lib/oh_log.h"
#include "node.h"

int svc_admin_command(const svc_config_t *cfg, const svc_admin_args_t *a)
{
	oh_role_t role;
	if (!a->name || !*a->name || strlen(a->name) > 100) {
		fputs("admin: --name is required (1 to 100 characters)\n", stderr);
		return SVC_EXIT_USAGE;
	}
	if (!a->role || !oh_role_parse(a->role, &role)) {
		fputs("admin: --role must be Reader, Operator or Admin\n", stderr);
		return SVC_EXIT_USAGE;
	}
	db_pool_t *pool = svc_command_pool(cfg);
	if (!pool)
		return SVC_EXIT_FAILURE;
	char who[200];
	snprintf(who, sizeof who, "octoha-server admin on %.64s", cfg->node_name);
	oh_actor_t actor = {0};
	snprintf(actor.key_name, sizeof actor.key_name, "%s", who);
	oh_event_spec_t ev = {.actor = &actor,
	                      .category = "ApiKeyCreated",
	                      .operation = "admin --create-api-key",
	                      .result = "Success",
	                      .message = "An API key was created from a node's shell."};
	oh_apikey_t k;
	char key[OH_APIKEY_LEN + 1];
	db_status_t s = oh_apikeys_create(pool, a->name, role, who, &ev, &k, key);
	db_pool_free(pool);
	if (s != DB_OK) {
		fprintf(stderr,
		        "admin: cannot create the key: %s (is the schema up to date? run "
		        "database --upgrade)\n",
		        db_status_name(s));
		return SVC_EXIT_FAILURE;
	}
	printf("Created %s key %s (%s). It is shown only now:\n%s\n", oh_role_name(role), k.id,
	       k.name, key);
	memset(key, 0, sizeof key);
	return SVC_EXIT_OK;
}
