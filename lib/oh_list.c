/* Lists of words in configuration values: see oh_list.h. */
#include "oh_list.h"

#include <string.h>
#include <strings.h>

bool oh_list_has(const char *list, const char *item, bool nocase)
{
	size_t n = strlen(item);
	const char *p = list;
	while (p && *p) {
		p += strspn(p, ", ");
		size_t len = strcspn(p, ", ");
		if (len == n && n > 0 &&
		    (nocase ? strncasecmp(p, item, n) : strncmp(p, item, n)) == 0)
			return true;
		p += len;
	}
	return false;
}
