/* WebhookDelivery: POSTs one event to one subscription's URL.  The body is
 * {"text": one line for Slack and Teams, "Event": the event}, signed with
 * X-Octoha-Signature: v1=HMAC-SHA-256(secret, "TIMESTAMP.BODY") and
 * X-Octoha-Timestamp.  Anything but a 2xx answer is retried with the
 * queue's backoff; every attempt is recorded for GET …/deliveries.  The
 * call has a hard time limit, and deliveries are ordinary queued tasks, so
 * a slow receiver holds one task slot at most for that long. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../events.h"
#include "../http_client.h"
#include "../oh_crypto.h"
#include "../oh_json.h"
#include "../oh_log.h"
#include "../subscriptions.h"
#include "../task_run.h"

typedef struct {
	const char *sub_id, *event_id;
	oh_subscription_t *sub;
	oh_event_t *ev;
	bool have_sub, have_ev;
} load_ctx_t;

static db_status_t load_txn(db_conn_t *c, void *vctx)
{
	load_ctx_t *x = vctx;
	oh_event_clear(x->ev);
	db_status_t s = oh_subscriptions_get_tx(c, x->sub_id, x->sub);
	x->have_sub = s == DB_OK;
	if (s != DB_OK && s != DB_NO_ROWS)
		return s;
	s = oh_event_get_tx(c, x->event_id, x->ev);
	x->have_ev = s == DB_OK;
	return s == DB_NO_ROWS ? DB_OK : s;
}

static void run_webhook(oh_task_run_t *run, oh_task_outcome_t *out)
{
	const char *sub_id = json_string_value(json_object_get(run->args, "SubscriptionId"));
	const char *event_id = json_string_value(json_object_get(run->args, "EventId"));
	if (!sub_id || !event_id) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "SubscriptionId and EventId are required.");
		return;
	}
	oh_subscription_t sub;
	oh_event_t ev;
	memset(&ev, 0, sizeof ev);
	load_ctx_t x = {sub_id, event_id, &sub, &ev, false, false};
	db_status_t s = db_txn(run->pool, DB_TXN_READ, load_txn, &x);
	if (s != DB_OK) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The database is unavailable (%s).",
		         db_status_name(s));
		oh_event_clear(&ev);
		return;
	}
	if (!x.have_sub) {
		oh_task_log(run, "Subscription %s was deleted; nothing to deliver.", sub_id);
		out->end = OH_END_SUCCESS;
		oh_event_clear(&ev);
		return;
	}
	if (!x.have_ev) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "Event %s no longer exists.", event_id);
		return;
	}
	char *secret = oh_unseal(run->env->secrets_key, sub.sealed);
	if (!secret) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error,
		         "The subscription's secret cannot be opened: this node's secrets key "
		         "differs from the one it was sealed with.");
		oh_event_clear(&ev);
		return;
	}
	char text[1400];
	snprintf(text, sizeof text, "[octoha] %s: %s (%s)", ev.category, ev.message,
	         ev.username[0] ? ev.username : "system");
	json_t *body = oh_json_check(json_object());
	oh_json_set_new(body, "text", json_string(text));
	oh_json_set_new(body, "Event", oh_event_json(&ev));
	char *payload = oh_json_dump(body);
	json_decref(body);
	oh_event_clear(&ev);

	char ts[32];
	snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
	size_t plen = strlen(payload), tlen = strlen(ts);
	char *signed_text = malloc(tlen + 1 + plen);
	if (!signed_text)
		abort();
	memcpy(signed_text, ts, tlen);
	signed_text[tlen] = '.';
	memcpy(signed_text + tlen + 1, payload, plen);
	char mac[65];
	oh_hmac_sha256_hex(secret, strlen(secret), signed_text, tlen + 1 + plen, mac);
	OPENSSL_clear_free(secret, strlen(secret));
	free(signed_text);
	char h_ts[64], h_sig[96], h_event[96], h_delivery[96];
	snprintf(h_ts, sizeof h_ts, "X-Octoha-Timestamp: %s", ts);
	snprintf(h_sig, sizeof h_sig, "X-Octoha-Signature: v1=%s", mac);
	snprintf(h_event, sizeof h_event, "X-Octoha-Event: %s", event_id);
	snprintf(h_delivery, sizeof h_delivery, "X-Octoha-Delivery: %s", run->task->id);
	const char *headers[] = {h_ts, h_sig, h_event, h_delivery, NULL};

	oh_http_result_t r;
	bool answered = oh_http_post(sub.url, "application/json", payload, plen, headers,
	                             run->env->http_timeout_ms, run->env->outbound, &r);
	free(payload);
	bool ok = answered && r.status >= 200 && r.status < 300;

	oh_delivery_t d;
	memset(&d, 0, sizeof d);
	char rnd[21];
	oh_random_hex(rnd, 10);
	snprintf(d.id, sizeof d.id, "Deliveries-%s", rnd);
	snprintf(d.event_id, sizeof d.event_id, "%s", event_id);
	snprintf(d.task_id, sizeof d.task_id, "%.50s", run->task->id);
	d.attempt = run->task->attempt;
	d.status_code = answered ? (int)r.status : 0;
	d.succeeded = ok;
	d.duration_ms = (int)r.duration_ms;
	if (!answered) {
		snprintf(d.error, sizeof d.error, "%s", oh_http_public_error(&r));
		oh_log(OH_LOG_WARN, "webhook not delivered", "subscription=%s task=%s error=%s",
		       sub.id, run->task->id, oh_q(r.error));
	} else if (!ok)
		snprintf(d.error, sizeof d.error, "The receiver answered %ld.", r.status);
	s = oh_deliveries_record(run->pool, sub.id, &d);
	if (s != DB_OK)
		oh_task_log(run, "The delivery could not be recorded (%s).", db_status_name(s));
	/* Only the receiver's origin: a webhook's path and query are often its
	 * credential (Slack, Teams), and Readers read task logs. */
	char origin[300];
	oh_url_origin(sub.url, origin, sizeof origin);
	oh_task_log(run, "POST %s: %s%s (%ld ms, attempt %d)", origin,
	            answered ? "HTTP " : "no answer: ", answered ? "" : oh_http_public_error(&r),
	            r.duration_ms, d.attempt);
	if (answered)
		oh_task_log(run, "HTTP status %ld", r.status);
	if (ok) {
		out->end = OH_END_SUCCESS;
		return;
	}
	out->end = OH_END_RETRY;
	snprintf(out->error, sizeof out->error, "%.500s", d.error);
}

const oh_task_kind_t oh_task_kind_webhook = {OH_WEBHOOK_KIND, false, run_webhook, true};
