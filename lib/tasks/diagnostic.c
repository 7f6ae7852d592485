/* Diagnostic: a task that waits and writes log lines, for operators to
 * check the queue end to end and for tests and benchmarks.  Arguments:
 * WaitMs (0-3600000), LogLines (0-1000), FailAttempts (the first N attempts
 * fail with a retryable error), Fail (fail for good), Quiet (write no log
 * at all: a true no-op, for throughput benchmarks). */
#include <stdio.h>

#include "../oh_json.h"
#include "../task_run.h"

static void run(oh_task_run_t *r, oh_task_outcome_t *out)
{
	json_int_t wait = json_integer_value(json_object_get(r->args, "WaitMs"));
	json_int_t lines = json_integer_value(json_object_get(r->args, "LogLines"));
	json_int_t fail_attempts = json_integer_value(json_object_get(r->args, "FailAttempts"));
	bool fail = json_is_true(json_object_get(r->args, "Fail"));
	oh_task_log(r, "Diagnostic task: waiting %lld ms, writing %lld lines", (long long)wait,
	            (long long)lines);
	json_int_t steps = lines > 0 ? lines : 1;
	for (json_int_t i = 0; i < steps; i++) {
		if (!oh_task_sleep(r, wait / steps)) {
			out->end = OH_END_CANCELED;
			snprintf(out->error, sizeof out->error, "Stopped after %lld of %lld steps.",
			         (long long)i, (long long)steps);
			return;
		}
		if (lines > 0) {
			oh_task_log(r, "Diagnostic line %lld of %lld", (long long)i + 1,
			            (long long)lines);
			if (wait >= 200)
				oh_task_progress(r, (int)((i + 1) * 100 / steps),
				                 "%lld of %lld lines", (long long)i + 1,
				                 (long long)lines);
		}
	}
	if (r->task->attempt <= fail_attempts) {
		out->end = OH_END_RETRY;
		snprintf(out->error, sizeof out->error,
		         "Diagnostic failure on attempt %d (retryable).", r->task->attempt);
		return;
	}
	if (fail) {
		out->end = OH_END_FAILED;
		snprintf(out->error, sizeof out->error, "Diagnostic failure, as asked.");
		return;
	}
	out->end = OH_END_SUCCESS;
	if (json_is_true(json_object_get(r->args, "Quiet")))
		return; /* a pure no-op leaves nothing behind */
	out->result = oh_json_check(json_object());
	oh_json_set_new(out->result, "Node", json_string(r->node_id));
	oh_json_set_new(out->result, "Attempt", json_integer(r->task->attempt));
}

const oh_task_kind_t oh_task_kind_diagnostic = {"Diagnostic", false, run, false};
