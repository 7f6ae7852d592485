/* GET /metrics: this node's counters and the cluster's figures in the
 * Prometheus text exposition format.  A scrape answers 200 even when the
 * database cannot be read: octoha_db_up 0 says so, and the in-process
 * counters are still worth having. */
#include "api_handlers_gen.h"

void api_op_getMetrics(const api_req_t *req, api_resp_t *resp)
{
	size_t len = 0;
	resp->raw_owned =
	    oh_metrics_scrape(req->metrics, req->cfg->pool, req->cfg->offline_timeout_ms, &len);
	resp->raw_len = len;
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
