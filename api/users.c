/* /api/users/me: who the caller is, as its key or token says, and what its
 * role lets it do (the status page offers only the controls a role can
 * use). */
#include <string.h>

#include "../lib/oh_json.h"
#include "api_handlers_gen.h"

void api_op_getCurrentUser(const api_req_t *req, api_resp_t *resp)
{
	bool token = strncmp(req->actor.key_id, "oidc:", 5) == 0;
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(req->actor.key_id));
	oh_json_set_new(o, "Username", json_string(req->actor.key_name));
	oh_json_set_new(o, "DisplayName", json_string(req->actor.key_name));
	oh_json_set_new(o, "Role", json_string(oh_role_name(req->role)));
	oh_json_set_new(o, "AuthenticatedBy", json_string(token ? "Token" : "ApiKey"));
	json_t *links = oh_json_check(json_object());
	oh_json_set_new(links, "Self", json_string("/api/users/me"));
	oh_json_set_new(o, "Links", links);
	api_json(resp, 200, o);
}
