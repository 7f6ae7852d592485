/* Spaces.  octoha has one space, as an Octopus server with no others:
 * Spaces-1, "Default", the default one.  Space-scoped routes accept only
 * its Id. */
#ifndef OH_SPACES_H
#define OH_SPACES_H

#include <stdbool.h>

#define OH_DEFAULT_SPACE_ID   "Spaces-1"
#define OH_DEFAULT_SPACE_NAME "Default"

/* True when ID names a space of this cluster. */
bool oh_space_exists(const char *id);

#endif
