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
	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

json_t *oh_json_time(int64_t epoch_ms)
{
	char buf[40];
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
