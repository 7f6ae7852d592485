/* api/http_rules.c: the request path decoded segment by segment, and the
 * RFC 9112 framing rules, one case per rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "http_rules.h"

static void path_segments_are_decoded_one_by_one(void **state)
{
	(void)state;
	api_path_t p;
	assert_int_equal(api_path_decode("/", &p), API_PATH_OK);
	assert_int_equal(p.n, 0);
	assert_int_equal(api_path_decode("/api/tasks/ServerTasks-1%2Fraw", &p), API_PATH_OK);
	assert_int_equal(p.n, 3);
	assert_string_equal(p.seg[0], "api");
	assert_string_equal(p.seg[2], "ServerTasks-1/raw"); /* %2F stays inside */
	assert_int_equal(api_path_decode("/api/tasks/a%00b/raw", &p), API_PATH_OK);
	assert_int_equal(p.n, 4);
	assert_int_equal(p.len[2], 3); /* the NUL counts */
	assert_int_equal(strlen(p.seg[2]), 1);
	assert_string_equal(p.seg[3], "raw");
	assert_int_equal(api_path_decode("/api/tasks/", &p), API_PATH_OK);
	assert_int_equal(p.n, 3);
	assert_int_equal(p.len[2], 0); /* a trailing slash is an empty segment */
	assert_int_equal(api_path_decode("/a%c3%A9", &p), API_PATH_OK);
	assert_string_equal(p.seg[0], "a\xc3\xa9");
}

static void bad_paths_are_refused(void **state)
{
	(void)state;
	api_path_t p;
	assert_int_equal(api_path_decode("/api/%G1", &p), API_PATH_BAD_ESCAPE);
	assert_int_equal(api_path_decode("/api/%1", &p), API_PATH_BAD_ESCAPE);
	assert_int_equal(api_path_decode("/api/%", &p), API_PATH_BAD_ESCAPE);
	assert_int_equal(api_path_decode("api", &p), API_PATH_RELATIVE);
	assert_int_equal(api_path_decode("/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", &p),
	                 API_PATH_TOO_DEEP);
	static char longpath[API_MAX_URI + 3];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	assert_int_equal(api_path_decode(longpath, &p), API_PATH_TOO_LONG);
}

static api_framing_t frame(const char *version, const char *n1, const char *v1, const char *n2,
                           const char *v2, const char *n3, const char *v3)
{
	api_header_t h[3] = {{n1, v1}, {n2, v2}, {n3, v3}};
	const char *why = NULL;
	return api_framing_check(h, 3, version, 1024, &why);
}

static void framing_rules(void **state)
{
	(void)state;
	/* Fine. */
	assert_int_equal(frame("1.1", "Host", "x", "Content-Length", "10", NULL, NULL),
	                 API_FRAMING_OK);
	assert_int_equal(frame("1.1", "host", "x", "transfer-encoding", "Chunked", NULL, NULL),
	                 API_FRAMING_OK);
	assert_int_equal(frame("1.0", "Content-Length", "0", NULL, NULL, NULL, NULL),
	                 API_FRAMING_OK);
	assert_int_equal(frame("1.1", "Host", "x", "Content-Length", "1024", NULL, NULL),
	                 API_FRAMING_OK);
	assert_int_equal(frame("1.1", "Host", "x", "Content-Length", "0001024", NULL, NULL),
	                 API_FRAMING_OK);
	/* Two ways to frame one message. */
	assert_int_equal(
	    frame("1.1", "Host", "x", "Content-Length", "4", "Transfer-Encoding", "chunked"),
	    API_FRAMING_BAD);
	assert_int_equal(frame("1.1", "Host", "x", "Transfer-Encoding", "chunked",
	                       "Transfer-Encoding", "chunked"),
	                 API_FRAMING_BAD);
	assert_int_equal(frame("1.1", "Host", "x", "Content-Length", "4", "Content-Length", "4"),
	                 API_FRAMING_BAD);
	assert_int_equal(frame("1.1", "Host", "x", "Transfer-Encoding", "identity", NULL, NULL),
	                 API_FRAMING_BAD);
	assert_int_equal(
	    frame("1.1", "Host", "x", "Transfer-Encoding", "gzip, chunked", NULL, NULL),
	    API_FRAMING_BAD);
	assert_int_equal(frame("1.0", "Transfer-Encoding", "chunked", NULL, NULL, NULL, NULL),
	                 API_FRAMING_BAD);
	/* Content-Length is 1*DIGIT. */
	const char *bad[] = {"", "-1", "+1", "1e3", "0x10", "12abc", "1 2", "4, 4", " 4"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(frame("1.1", "Host", "x", "Content-Length", bad[i], NULL, NULL),
		                 API_FRAMING_BAD);
	/* Host, in HTTP/1.1 only and exactly once. */
	assert_int_equal(frame("1.1", "Accept", "*/*", NULL, NULL, NULL, NULL), API_FRAMING_BAD);
	assert_int_equal(frame("1.1", "Host", "a", "Host", "b", NULL, NULL), API_FRAMING_BAD);
	/* Above the limit, however long the number. */
	const char *big[] = {"1025", "99999999999999999999", "18446744073709551616",
	                     "9223372036854775808", "000000000000000000000000001025"};
	for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
		assert_int_equal(frame("1.1", "Host", "x", "Content-Length", big[i], NULL, NULL),
		                 API_FRAMING_TOO_LARGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(path_segments_are_decoded_one_by_one),
	    cmocka_unit_test(bad_paths_are_refused),
	    cmocka_unit_test(framing_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
