/* /app/: the built-in status page, served from the files embedded at build
 * time.  Every answer under /app/ carries the page's security headers: a
 * Content-Security-Policy that allows only this origin's own files (no
 * inline script or style) and, when the page signs in through an OIDC
 * issuer, that issuer's token endpoint for the code exchange; no framing;
 * no Referer. */
#include <stdio.h>
#include <string.h>

#include "api_handlers_gen.h"
#include "app_assets.h"

/* The origin (scheme://host[:port]) of URL into BUF; "" when URL has none. */
static void origin_of(const char *url, char *buf, size_t size)
{
	buf[0] = '\0';
	const char *p = strstr(url, "://");
	if (!p || (strncmp(url, "https", 5) != 0 && strncmp(url, "http", 4) != 0))
		return;
	const char *end = strchr(p + 3, '/');
	size_t n = end ? (size_t)(end - url) : strlen(url);
	for (size_t i = 0; i < n; i++) /* nothing that could end the directive */
		if (url[i] == ' ' || url[i] == ';' || url[i] == ',' || url[i] == '\'')
			return;
	snprintf(buf, size, "%.*s", (int)n, url);
}

static void security_headers(const api_req_t *req, api_resp_t *resp)
{
	char connect[300] = "";
	oh_oidc_endpoints_t ep;
	if (req->cfg->oidc && req->cfg->oidc_client_id && *req->cfg->oidc_client_id &&
	    oh_oidc_endpoints(req->cfg->oidc, &ep))
		origin_of(ep.token, connect, sizeof connect);
	char csp[600];
	snprintf(csp, sizeof csp,
	         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
	         "connect-src 'self'%s%s; base-uri 'none'; form-action 'self'; "
	         "frame-ancestors 'none'; object-src 'none'",
	         connect[0] ? " " : "", connect);
	api_header(resp, "Content-Security-Policy", csp);
	api_header(resp, "X-Frame-Options", "DENY");
	api_header(resp, "Referrer-Policy", "no-referrer");
	api_header(resp, "X-Content-Type-Options", "nosniff");
}

static void serve(const api_req_t *req, api_resp_t *resp, const char *name)
{
	security_headers(req, resp);
	for (size_t i = 0; i < api_app_asset_count; i++) {
		const api_asset_t *a = &api_app_assets[i];
		if (strcmp(a->name, name) == 0) {
			resp->status = 200;
			resp->raw = (const char *)a->data;
			resp->raw_len = a->len;
			resp->content_type = a->content_type;
			return;
		}
	}
	api_error(resp, OH_E_NOT_FOUND, "The status page has no such file.", "asset");
}

void api_op_getAppRedirect(const api_req_t *req, api_resp_t *resp)
{
	security_headers(req, resp);
	api_header(resp, "Location", "/app/");
	resp->status = 308;
	resp->raw = "";
	resp->raw_len = 0;
	resp->content_type = "text/plain; charset=utf-8";
}

void api_op_getAppPage(const api_req_t *req, api_resp_t *resp)
{
	serve(req, resp, "index.html");
}

void api_op_getAppAsset(const api_req_t *req, api_resp_t *resp)
{
	serve(req, resp, api_path_param(req, "asset"));
}
