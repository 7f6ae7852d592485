/* ChatReply: posts the outcome of a task started from a Slack slash command
 * to the command's response_url once the task has ended (housekeeping
 * queues it then).  Retried with the queue's backoff. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../chat_replies.h"
#include "../http_client.h"
#include "../oh_json.h"
#include "../oh_log.h"
#include "../task_run.h"

static void run_chat_reply(oh_task_run_t *run, oh_task_outcome_t *out)
{
	const char *task_id = json_string_value(json_object_get(run->args, "TaskId"));
	if (!task_id) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "TaskId is required.");
		return;
	}
	char url[2001];
	db_status_t s = oh_chat_reply_url(run->pool, task_id, url, sizeof url);
	if (s != DB_OK) {
		out->end = s == DB_NO_ROWS ? OH_END_FAILED : OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "The reply to %s cannot be read (%s).",
		         task_id, db_status_name(s));
		return;
	}
	oh_task_t t;
	s = oh_tasks_get(run->pool, task_id, &t);
	if (s != DB_OK) {
		oh_task_clear(&t);
		out->end = s == DB_NO_ROWS ? OH_END_FAILED : OH_END_RETRY;
		snprintf(out->error, sizeof out->error, "Task %s cannot be read (%s).", task_id,
		         db_status_name(s));
		return;
	}
	/* A Text argument is news from a running task (a maintenance run's
	 * node ready for maintenance); without one, the task's outcome. */
	const char *news = json_string_value(json_object_get(run->args, "Text"));
	char text[3000];
	if (news)
		snprintf(text, sizeof text, "%s", news);
	else
		snprintf(text, sizeof text, "%s (%s) ended: %s%s%s", t.description, t.id,
		         oh_task_state_name(t.state), t.error_message[0] ? " - " : "",
		         t.error_message[0] ? t.error_message : "");
	oh_task_clear(&t);
	json_t *body = oh_json_check(json_object());
	oh_json_set_new(body, "response_type", json_string("in_channel"));
	oh_json_set_new(body, "text", json_string(text));
	char *payload = oh_json_dump(body);
	json_decref(body);
	oh_http_result_t r;
	bool answered = oh_http_post(url, "application/json", payload, strlen(payload), NULL,
	                             run->env->http_timeout_ms, run->env->outbound, &r);
	free(payload);
	if (answered && r.status >= 200 && r.status < 300) {
		oh_task_log(run, "Posted the outcome of %s (HTTP %ld)", task_id, r.status);
		out->end = OH_END_SUCCESS;
		return;
	}
	out->end = OH_END_RETRY;
	if (answered)
		snprintf(out->error, sizeof out->error, "response_url answered %ld.", r.status);
	else
		snprintf(out->error, sizeof out->error, "response_url: %s",
		         oh_http_public_error(&r));
	if (!answered)
		oh_log(OH_LOG_WARN, "chat reply not delivered", "task=%s error=%s", run->task->id,
		       oh_q(r.error));
	oh_task_log(run, "%s", out->error);
}

const oh_task_kind_t oh_task_kind_chat_reply = {OH_CHAT_REPLY_KIND, false, run_chat_reply, true};
