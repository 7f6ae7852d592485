/* Idempotency-Key for every operation that declares it: the key is bound
 * to the caller, the operation and the request (path and body), checked
 * before the handler runs and recorded by lib/ in the transaction of the
 * change.  Every such operation answers with a task, so a replay answers
 * with the first request's task as it is now. */
#include <stdio.h>
#include <string.h>

#include "http.h"

bool api_idem_begin(api_req_t *req, const char *key, oh_idem_t *idem, api_resp_t *resp)
{
	char caller[201];
	if (req->actor.key_id[0])
		snprintf(caller, sizeof caller, "key:%.190s", req->actor.key_id);
	else
		snprintf(caller, sizeof caller, "name:%.190s", req->actor.key_name);
	oh_idem_init(idem, caller, key, req->operation_id, req->path, req->body, req->raw_body,
	             req->raw_body_len, req->cfg->idempotency_ttl_ms);
	oh_idem_verdict_t v = OH_IDEM_NEW;
	char task_id[101] = "";
	db_status_t s = oh_idem_check(req->cfg->pool, idem, &v, task_id, sizeof task_id);
	if (s != DB_OK) {
		api_db_error(resp, s);
		return true;
	}
	if (v == OH_IDEM_MISMATCH) {
		api_error(resp, OH_E_IDEM_REUSED, NULL, "Idempotency-Key");
		return true;
	}
	if (v == OH_IDEM_REPLAY) {
		oh_task_t t;
		s = oh_tasks_get(req->cfg->pool, task_id, &t);
		if (s == DB_OK) {
			api_header(resp, "Idempotent-Replayed", "true");
			api_task_accepted(req, resp, &t);
			oh_task_clear(&t);
			return true;
		}
		if (s != DB_NO_ROWS) {
			api_db_error(resp, s);
			return true;
		}
		/* Its task is gone (retention): the key starts afresh. */
	}
	req->idem = idem;
	return false;
}

void api_idem_end(const api_req_t *req, api_resp_t *resp)
{
	if (req->idem && req->idem->in_flight)
		api_error(resp, OH_E_IDEM_IN_FLIGHT, NULL, "Idempotency-Key");
}
