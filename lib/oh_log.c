#include "oh_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static _Atomic int min_level = OH_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void oh_log_set_level(oh_log_level_t level)
{
	atomic_store(&min_level, (int)level);
}

bool oh_log_parse_level(const char *s, oh_log_level_t *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (oh_log_level_t)i;
			return true;
		}
	}
	return false;
}

bool oh_log_enabled(oh_log_level_t level)
{
	return (int)level >= atomic_load(&min_level);
}

const char *oh_q(const char *s)
{
	static _Thread_local char ring[8][512];
	static _Thread_local unsigned next;
	bool plain = s[0] != '\0';
	for (const char *p = s; *p && plain; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			plain = false;
	}
	if (plain)
		return s;
	char *buf = ring[next++ % 8];
	size_t o = 0;
	const size_t cap = sizeof ring[0];
	buf[o++] = '"';
	for (const char *p = s; *p && o + 6 < cap; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < ' ' || c == 0x7f) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void oh_log(oh_log_level_t level, const char *msg, const char *fmt, ...)
{
	if (!oh_log_enabled(level))
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n =
	    snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=%s",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             ts.tv_nsec / 1000000L, level_names[level], oh_q(msg));
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
	if (fmt && *fmt && len + 2 < sizeof line) {
		line[len++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
		va_end(ap);
		if (m > 0)
			len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
	}
	if (len + 1 >= sizeof line)
		len = sizeof line - 2;
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}
