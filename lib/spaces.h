/* Spaces and the cluster's identity.  octoha has one space, as an Octopus server with no others:
 * Spaces-1, "Default", the default one.  Space-scoped routes accept only
 * its Id. */
#ifndef OH_SPACES_H
#define OH_SPACES_H

#include <stdbool.h>
#include <stddef.h>

#include "db/db.h"

#define OH_DEFAULT_SPACE_ID   "Spaces-1"
#define OH_DEFAULT_SPACE_NAME "Default"

/* True when ID names a space of this cluster. */
bool oh_space_exists(const char *id);

/* Reads the cluster's InstallationId (made once, when its database was
 * created) into OUT (OUTLEN bytes).  DB_OK, or a failure. */
db_status_t oh_installation_id(db_pool_t *pool, char *out, size_t outlen);

#endif
