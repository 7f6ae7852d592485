/* GET /api/openapi.yaml: the spec this binary was built from. */
#include "api_handlers_gen.h"
#include "router.h"

void api_op_getOpenApiSpec(const api_req_t *req, api_resp_t *resp)
{
	(void)req;
	resp->status = 200;
	resp->raw = (const char *)api_spec_yaml;
	resp->raw_len = api_spec_yaml_len;
	resp->content_type = "application/yaml; charset=utf-8";
}
