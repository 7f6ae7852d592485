/* The state the ping answers from: a heartbeat's read of the node's row
 * that is older than a drain applied on this node meanwhile must not turn
 * the ping back to 200 (issue 15.11: 418 -> 200 -> 418 for one beat). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "node_state.h"

static void stale_read_keeps_a_newer_local_drain(void **state)
{
	(void)state;
	oh_node_state_t *st = oh_node_state_new();
	assert_non_null(st);
	oh_node_snapshot_t row = {.max_tasks = 5, .maintenance = false, .db_ok = true};
	/* The heartbeat reads the row (not draining)... */
	uint64_t before = oh_node_state_changes(st);
	/* ...a drain reaches this node and applies at once... */
	oh_node_state_set_maintenance(st, true);
	/* ...then the heartbeat publishes its older read. */
	oh_node_state_publish_read(st, &row, before);
	oh_node_snapshot_t now;
	oh_node_state_read(st, &now);
	assert_true(now.maintenance);
	assert_int_equal(now.max_tasks, 5); /* the rest of the read is taken */
	/* A read made after the drain is believed, whatever it says. */
	before = oh_node_state_changes(st);
	oh_node_state_publish_read(st, &row, before);
	oh_node_state_read(st, &now);
	assert_false(now.maintenance);
	/* Shutting down is never undone by a publish. */
	oh_node_state_set_shutting_down(st);
	oh_node_state_publish_read(st, &row, oh_node_state_changes(st));
	oh_node_state_read(st, &now);
	assert_true(now.shutting_down);
	oh_node_state_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(stale_read_keeps_a_newer_local_drain)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
