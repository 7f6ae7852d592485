#include "oh_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	/* 15 significant digits: 33.3 prints as 33.3, not 33.299999999999997. */
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	if (!s) {
		fputs("fatal: out of memory serialising JSON\n", stderr);
		abort();
	}
	return s;
}

bool oh_parse_time(const char *text, int64_t *epoch_ms)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
	if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return false;
	const char *p = text + n;
	int64_t ms = 0, offset_min = 0;
	if (*p == 'T' || *p == ' ') {
		int m = 0;
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &m) != 3 || m != 8)
			return false;
		p += 1 + m;
		if (*p == '.') {
			int digits = 0, scale = 100;
			for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
				ms += (*p - '0') * scale;
				scale /= 10;
			}
			if (digits == 0)
				return false;
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om, k = 0;
			if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 ||
			    om > 59)
				return false;
			offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
			p += 1 + k;
		} else {
			return false;
		}
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mo - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = sec};
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != d)
		return false;
	*epoch_ms = ((int64_t)t - offset_min * 60) * 1000 + ms;
	return true;
}

/* Length of the UTF-8 sequence at S (at most LEFT bytes), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

bool oh_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

char *oh_utf8_copy(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);
	if (len < size) {
		memcpy(dst, src, len + 1);
		return dst;
	}
	/* Room for the text and "..." */
	size_t keep = size > 4 ? size - 4 : 0;
	/* Back off to the start of a character. */
	while (keep > 0 && ((unsigned char)src[keep] & 0xC0) == 0x80)
		keep--;
	memcpy(dst, src, keep);
	if (size > 4)
		memcpy(dst + keep, "...", 4);
	else
		dst[keep] = '\0';
	return dst;
}

void oh_utf8_sanitize(char *s)
{
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq((const unsigned char *)s + i, len - i);
		if (n == 0) {
			s[i++] = '?';
			continue;
		}
		i += n;
	}
}

json_t *oh_json_string_safe(const char *text)
{
	if (oh_utf8_valid(text, strlen(text)))
		return oh_json_check(json_string(text));
	char *copy = strdup(text);
	if (!copy)
		abort();
	oh_utf8_sanitize(copy);
	json_t *j = oh_json_check(json_string(copy));
	free(copy);
	return j;
}
