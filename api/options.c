/* OPTIONS: see options.h. */
#include "options.h"

void api_options(const api_req_t *req, const char *allow, api_resp_t *resp)
{
	(void)req;
	api_header(resp, "Allow", allow);
	resp->status = 204;
}
