/* libFuzzer target: the streaming multipart parser.  The first input byte
 * picks a chunk size and the rest is a body for boundary "B0und"; the
 * parse must not crash, must see the same parts and bytes however the body
 * is split (all at once, and in chunks), and no part's data may contain
 * the delimiter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"

#define DELIM "\r\n--B0und"

typedef struct {
	char *log;
	size_t n, cap;
	char *cur; /* the current part's data, for the delimiter check */
	size_t cur_n, cur_cap;
} seen_t;

static void require(int ok)
{
	if (!ok)
		abort();
}

static void put(char **buf, size_t *n, size_t *cap, const char *p, size_t len)
{
	if (*n + len + 1 > *cap) {
		*cap = (*n + len + 1) * 2;
		*buf = realloc(*buf, *cap);
		require(*buf != NULL);
	}
	memcpy(*buf + *n, p, len);
	*n += len;
	(*buf)[*n] = '\0';
}

static int on_begin(void *ctx, const oh_part_t *part)
{
	seen_t *s = ctx;
	require(strlen(part->name) < sizeof part->name);
	require(strlen(part->filename) < sizeof part->filename);
	require(!strchr(part->filename, '/') && !strchr(part->filename, '\\'));
	put(&s->log, &s->n, &s->cap, "<", 1);
	put(&s->log, &s->n, &s->cap, part->name, strlen(part->name));
	put(&s->log, &s->n, &s->cap, "|", 1);
	put(&s->log, &s->n, &s->cap, part->filename, strlen(part->filename));
	put(&s->log, &s->n, &s->cap, ">", 1);
	s->cur_n = 0;
	return 0;
}

static int on_data(void *ctx, const char *d, size_t len)
{
	seen_t *s = ctx;
	require(len > 0);
	put(&s->log, &s->n, &s->cap, d, len);
	put(&s->cur, &s->cur_n, &s->cur_cap, d, len);
	return 0;
}

static int on_end(void *ctx)
{
	seen_t *s = ctx;
	if (s->cur_n >= sizeof DELIM - 1)
		require(memmem(s->cur, s->cur_n, DELIM, sizeof DELIM - 1) == NULL);
	put(&s->log, &s->n, &s->cap, "{}", 2);
	return 0;
}

static oh_mp_status_t run(const uint8_t *data, size_t size, size_t chunk, seen_t *s)
{
	static const oh_multipart_cb_t cb = {on_begin, on_data, on_end};
	memset(s, 0, sizeof *s);
	oh_multipart_t *mp = oh_multipart_new("B0und", &cb, s);
	require(mp != NULL);
	oh_mp_status_t st = OH_MP_OK;
	for (size_t i = 0; i < size && (st == OH_MP_OK || st == OH_MP_DONE); i += chunk)
		st = oh_multipart_feed(mp, (const char *)data + i,
		                       size - i < chunk ? size - i : chunk);
	if (st == OH_MP_OK || st == OH_MP_DONE)
		st = oh_multipart_finish(mp);
	oh_multipart_free(mp);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (size_t)data[0] % 17 + 1;
	data++;
	size--;
	seen_t whole, parts;
	oh_mp_status_t a = run(data, size, size ? size : 1, &whole);
	oh_mp_status_t b = run(data, size, chunk, &parts);
	require(a == b);
	require(whole.n == parts.n);
	require(whole.n == 0 || memcmp(whole.log, parts.log, whole.n) == 0);
	free(whole.log);
	free(whole.cur);
	free(parts.log);
	free(parts.cur);
	return 0;
}
