/* Small file-system helpers shared by lib/ and service/. */
#ifndef OH_FS_H
#define OH_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p: creates PATH and its missing parents with MODE.  True when
 * PATH exists as a folder afterwards; false with errno set. */
bool oh_mkdirs(const char *path, mode_t mode);

/* oh_mkdirs that also says what it made: CREATED (SIZE bytes) receives the
 * topmost folder this call created (removing it removes all it made), or
 * "" when PATH and its parents existed. */
bool oh_mkdirs_created(const char *path, mode_t mode, char *created, size_t size);

/* Where PATH really leads: the absolute path with every symbolic link along
 * it followed (as the kernel would, ".." after a link included) and "." and
 * empty segments dropped, like realpath(3) but for a path whose last
 * segments need not exist yet (they are kept as written).  A relative PATH
 * starts at the working folder.  Writes the result into OUT (SIZE bytes) and
 * returns true; false with errno set when a link cannot be read, links
 * loop (ELOOP), or the result does not fit (ENAMETOOLONG). */
bool oh_real_location(const char *path, char *out, size_t size);

#endif
