/* /api/authentication/oidc: what a browser needs to sign in through the
 * configured OIDC issuer (authorization code with PKCE, a public client):
 * the issuer, the client id and scopes, and the endpoints from the
 * issuer's discovery document.  Public: the sign-in page reads it before
 * it has any credential. */
#include "../lib/oh_json.h"
#include "api_handlers_gen.h"

static json_t *str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

void api_op_getOidcSettings(const api_req_t *req, api_resp_t *resp)
{
	const api_config_t *cfg = req->cfg;
	oh_oidc_endpoints_t ep = {0};
	bool configured = cfg->oidc && cfg->oidc_client_id && *cfg->oidc_client_id;
	bool enabled =
	    configured && oh_oidc_endpoints(cfg->oidc, &ep) && ep.authorization[0] && ep.token[0];
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Enabled", json_boolean(enabled));
	oh_json_set_new(o, "Issuer", str_or_null(cfg->oidc ? oh_oidc_issuer(cfg->oidc) : NULL));
	oh_json_set_new(o, "ClientId", str_or_null(configured ? cfg->oidc_client_id : NULL));
	oh_json_set_new(o, "Scopes", str_or_null(configured ? cfg->oidc_scopes : NULL));
	oh_json_set_new(o, "AuthorizationEndpoint", str_or_null(enabled ? ep.authorization : NULL));
	oh_json_set_new(o, "TokenEndpoint", str_or_null(enabled ? ep.token : NULL));
	oh_json_set_new(o, "EndSessionEndpoint", str_or_null(enabled ? ep.end_session : NULL));
	api_json(resp, 200, o);
}
