#include "oh_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

json_t *oh_json_check(json_t *j)
{
	if (!j) {
		fputs("fatal: out of memory building JSON\n", stderr);
		abort();
	}
	return j;
}

void oh_json_check_rc(int rc)
{
	if (rc != 0) {
		fputs("fatal: out of memory building JSON\n", stderr);
		abort();
	}
}

void oh_json_set_new(json_t *obj, const char *key, json_t *value)
{
	oh_json_check_rc(json_object_set_new(obj, key, oh_json_check(value)));
}

void oh_format_time(int64_t epoch_ms, char *buf, size_t size)
{
	time_t secs = (time_t)(epoch_ms / 1000);
	int ms = (int)(epoch_ms % 1000);
	if (ms < 0) {
		ms += 1000;
		secs -= 1;
	}
	struct tm tm;
	if (!gmtime_r(&secs, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
		snprintf(buf, size, "1970-01-01T00:00:00.000+00:00");
		return;
	}
	/* Years are 4 digits here, so the result is always 29 characters. */
	int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00", tm.tm_year + 1900,
	                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	if (n < 0 || (size_t)n >= size)
		buf[0] = '\0';
}

json_t *oh_json_time(int64_t epoch_ms)
{
	char buf[64];
	oh_format_time(epoch_ms, buf, sizeof buf);
	return oh_json_check(json_string(buf));
}

char *oh_json_dump(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s) {
		fputs("fatal: out of memory serialising JSON\n", stderr);
		abort();
	}
	return s;
}
