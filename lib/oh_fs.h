/* Small file-system helpers shared by lib/ and service/. */
#ifndef OH_FS_H
#define OH_FS_H

#include <stdbool.h>
#include <sys/types.h>

/* mkdir -p: creates PATH and its missing parents with MODE.  True when
 * PATH exists as a folder afterwards; false with errno set. */
bool oh_mkdirs(const char *path, mode_t mode);

/* oh_mkdirs that also says what it made: CREATED (SIZE bytes) receives the
 * topmost folder this call created (removing it removes all it made), or
 * "" when PATH and its parents existed. */
bool oh_mkdirs_created(const char *path, mode_t mode, char *created, size_t size);

#endif
