/* The counts of tasks per state that /metrics reports, kept without
 * counting the whole task table: a pass, run by one node per period, adds
 * the tasks that ended since the last one (see lib/db/task_counts_store.h). */
#ifndef OH_TASK_COUNTS_H
#define OH_TASK_COUNTS_H

#include <stdbool.h>

#include "db/db.h"

/* How far behind the database clock the counted range stays, so that a
 * task whose end is committed a little after it was stamped is counted. */
#define OH_TASK_COUNTS_LAG_MS 60000

/* Takes this period's slot (PERIOD_MS) and, when won, counts the tasks that
 * ended up to OH_TASK_COUNTS_LAG_MS ago.  *RAN (may be NULL) says whether it
 * did.  DB_OK or a failure. */
db_status_t oh_task_counts_pass(db_pool_t *pool, int64_t period_ms, bool *ran);

#endif
