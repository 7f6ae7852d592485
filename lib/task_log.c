#include "task_log.h"

#include <ctype.h>
#include <string.h>

#include "oh_json.h"

static const char ATTEMPT[] = "Attempt ";

/* "Attempt <n> of <m> on node …", as the worker writes it first. */
static bool is_attempt_start(const char *t, size_t len)
{
	size_t k = sizeof ATTEMPT - 1;
	if (len <= k || memcmp(t, ATTEMPT, k) != 0 || !isdigit((unsigned char)t[k]))
		return false;
	while (k < len && isdigit((unsigned char)t[k]))
		k++;
	return len - k > 4 && memcmp(t + k, " of ", 4) == 0;
}

void oh_task_log_lines(const char *text, size_t len, void (*fn)(void *, const oh_log_line_t *),
                       void *ctx)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		oh_log_line_t l = {.text = p, .len = (size_t)(le - p)};
		/* "2026-11-28T05:30:00.123+00:00 INFO  text" */
		const char *sp = memchr(p, ' ', (size_t)(le - p));
		if (sp && sp - p < 40) {
			char when[40];
			memcpy(when, p, (size_t)(sp - p));
			when[sp - p] = '\0';
			int64_t at;
			if (oh_parse_time(when, &at)) {
				const char *lv = sp + 1;
				size_t n = 0;
				while (lv + n < le && isupper((unsigned char)lv[n]) &&
				       n < sizeof l.level - 1)
					n++;
				if (n > 0 && (lv + n == le || lv[n] == ' ')) {
					l.at = at;
					memcpy(l.level, lv, n);
					l.level[n] = '\0';
					const char *t = lv + n;
					while (t < le && *t == ' ')
						t++;
					l.text = t;
					l.len = (size_t)(le - t);
				}
			}
		}
		l.attempt_start = l.at > 0 && is_attempt_start(l.text, l.len);
		if (le > p)
			fn(ctx, &l);
		p = nl ? nl + 1 : end;
	}
}
