#include "spaces.h"

#include <string.h>

bool oh_space_exists(const char *id)
{
	return id && strcmp(id, OH_DEFAULT_SPACE_ID) == 0;
}
