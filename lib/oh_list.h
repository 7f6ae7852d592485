/* Comma- or space-separated lists of words in configuration values
 * ("10.0.0.1, 10.0.0.2", "https://a.example,https://b.example"). */
#ifndef OH_LIST_H
#define OH_LIST_H

#include <stdbool.h>

/* True when ITEM (not empty) is one of LIST's words, compared exactly, or
 * without regard to ASCII case when NOCASE.  LIST may be NULL. */
bool oh_list_has(const char *list, const char *item, bool nocase);

#endif
