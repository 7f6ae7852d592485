#include "multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
	S_PREAMBLE = 0, /* before the first delimiter: discarded */
	S_DELIM_NEXT,   /* just after a delimiter: "--", padding or CRLF */
	S_DASH,         /* saw one '-' of the close delimiter */
	S_PAD,          /* transport padding (spaces, tabs) before CRLF */
	S_LF,           /* saw CR, want LF */
	S_HEADERS,      /* a part's header block */
	S_BODY,         /* a part's data */
	S_EPILOGUE,     /* after the close delimiter: ignored */
	S_FAILED
} state_t;

struct oh_multipart {
	oh_multipart_cb_t cb;
	void *ctx;
	state_t state;
	oh_mp_status_t error;
	char delim[OH_MULTIPART_BOUNDARY_MAX + 5]; /* "\r\n--" boundary */
	size_t dlen;
	char tail[OH_MULTIPART_BOUNDARY_MAX + 5]; /* a held-back prefix of delim */
	size_t tail_len;
	char hdr[OH_MULTIPART_HEADERS_MAX + 1];
	size_t hdr_len;
};

/* RFC 2046 bchars. */
static bool bchar(char c)
{
	return isalnum((unsigned char)c) || strchr("'()+_,-./:=? ", c) != NULL;
}

bool oh_multipart_boundary(const char *ct, char *out, size_t outlen)
{
	if (!ct)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	static const char want[] = "multipart/form-data";
	if (strncasecmp(ct, want, sizeof want - 1) != 0)
		return false;
	const char *p = ct + sizeof want - 1;
	if (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t')
		return false;
	while (*p) {
		while (*p == ';' || *p == ' ' || *p == '\t')
			p++;
		const char *name = p;
		while (*p && *p != '=' && *p != ';')
			p++;
		size_t nlen = (size_t)(p - name);
		while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
			nlen--;
		if (*p != '=') {
			continue;
		}
		p++;
		char val[OH_MULTIPART_BOUNDARY_MAX + 2];
		size_t vlen = 0;
		bool too_long = false;
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				if (vlen < sizeof val - 1)
					val[vlen++] = *p;
				else
					too_long = true;
				p++;
			}
			if (*p != '"')
				return false;
			p++;
		} else {
			while (*p && *p != ';' && *p != ' ' && *p != '\t') {
				if (vlen < sizeof val - 1)
					val[vlen++] = *p;
				else
					too_long = true;
				p++;
			}
		}
		val[vlen] = '\0';
		if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0) {
			if (too_long || vlen == 0 || vlen > OH_MULTIPART_BOUNDARY_MAX ||
			    val[vlen - 1] == ' ' || vlen + 1 > outlen)
				return false;
			for (size_t i = 0; i < vlen; i++)
				if (!bchar(val[i]))
					return false;
			memcpy(out, val, vlen + 1);
			return true;
		}
	}
	return false;
}

oh_multipart_t *oh_multipart_new(const char *boundary, const oh_multipart_cb_t *cb, void *ctx)
{
	size_t blen = strlen(boundary);
	if (blen == 0 || blen > OH_MULTIPART_BOUNDARY_MAX)
		return NULL;
	oh_multipart_t *mp = calloc(1, sizeof *mp);
	if (!mp)
		return NULL;
	mp->cb = *cb;
	mp->ctx = ctx;
	mp->dlen = (size_t)snprintf(mp->delim, sizeof mp->delim, "\r\n--%s", boundary);
	/* The body's first line may be the first delimiter itself, without
	 * the CRLF that precedes every other one: start as if it had one. */
	memcpy(mp->tail, "\r\n", 2);
	mp->tail_len = 2;
	mp->state = S_PREAMBLE;
	return mp;
}

void oh_multipart_free(oh_multipart_t *mp)
{
	free(mp);
}

static oh_mp_status_t fail(oh_multipart_t *mp, oh_mp_status_t why)
{
	mp->state = S_FAILED;
	mp->error = why;
	return why;
}

/* Hands DATA to the part (discarded in the preamble).  False when the
 * callback asked to stop. */
static bool emit(oh_multipart_t *mp, const char *data, size_t len)
{
	if (len == 0 || mp->state != S_BODY || !mp->cb.part_data)
		return true;
	return mp->cb.part_data(mp->ctx, data, len) == 0;
}

/* Looks for the delimiter in the held-back tail followed by BUF, passing on
 * the bytes that cannot belong to one.  Returns how many bytes of BUF it
 * used; *FOUND says whether a delimiter ended there.  *STOP is set when a
 * callback asked to stop. */
static size_t scan(oh_multipart_t *mp, const char *buf, size_t len, bool *found, bool *stop)
{
	const size_t d = mp->dlen;
	*found = false;
	*stop = false;
	size_t t = mp->tail_len;
	if (t > 0) {
		for (size_t i = 0; i < t; i++) {
			if (memcmp(mp->tail + i, mp->delim, t - i) != 0)
				continue;
			size_t need = d - (t - i);
			size_t have = len < need ? len : need;
			if (memcmp(buf, mp->delim + (t - i), have) != 0)
				continue;
			if (!emit(mp, mp->tail, i)) {
				*stop = true;
				return 0;
			}
			if (have == need) {
				mp->tail_len = 0;
				*found = true;
				return need;
			}
			memmove(mp->tail, mp->tail + i, t - i);
			memcpy(mp->tail + (t - i), buf, have);
			mp->tail_len = t - i + have;
			return len;
		}
		mp->tail_len = 0;
		if (!emit(mp, mp->tail, t)) {
			*stop = true;
			return 0;
		}
	}
	const char *hit = memmem(buf, len, mp->delim, d);
	if (hit) {
		size_t at = (size_t)(hit - buf);
		if (!emit(mp, buf, at)) {
			*stop = true;
			return 0;
		}
		*found = true;
		return at + d;
	}
	/* The earliest place from which the rest of BUF could begin a
	 * delimiter is held back. */
	size_t j = len >= d ? len - d + 1 : 0;
	for (; j < len; j++)
		if (buf[j] == '\r' && memcmp(buf + j, mp->delim, len - j) == 0)
			break;
	if (!emit(mp, buf, j)) {
		*stop = true;
		return 0;
	}
	memcpy(mp->tail, buf + j, len - j);
	mp->tail_len = len - j;
	return len;
}

/* Copies a parameter value (quoted-string or token) from *P into OUT. */
static void param_value(const char **pp, char *out, size_t outlen)
{
	const char *p = *pp;
	size_t n = 0;
	if (*p == '"') {
		p++;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			if (n + 1 < outlen)
				out[n++] = *p;
			p++;
		}
		if (*p == '"')
			p++;
	} else {
		while (*p && *p != ';' && *p != ' ' && *p != '\t') {
			if (n + 1 < outlen)
				out[n++] = *p;
			p++;
		}
	}
	out[n] = '\0';
	*pp = p;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes an RFC 5987 ext-value (charset'lang'percent-encoded) in place;
 * false when it is not UTF-8 or malformed. */
static bool decode_ext(char *v)
{
	char *q1 = strchr(v, '\'');
	char *q2 = q1 ? strchr(q1 + 1, '\'') : NULL;
	if (!q1 || !q2 || (size_t)(q1 - v) != 5 || strncasecmp(v, "UTF-8", 5) != 0)
		return false;
	char *in = q2 + 1, *out = v;
	while (*in) {
		if (*in == '%') {
			int h = hexval(in[1]), l = h >= 0 ? hexval(in[2]) : -1;
			if (l < 0)
				return false;
			*out++ = (char)(h * 16 + l);
			in += 3;
		} else {
			*out++ = *in++;
		}
	}
	*out = '\0';
	return true;
}

/* Keeps the last segment of a path a client may have sent as a name. */
static void basename_in_place(char *s)
{
	char *a = strrchr(s, '/'), *b = strrchr(s, '\\');
	char *cut = a > b ? a : b;
	if (cut)
		memmove(s, cut + 1, strlen(cut + 1) + 1);
}

static void parse_disposition(const char *v, oh_part_t *part)
{
	char ext[sizeof part->filename] = "";
	bool has_ext = false;
	const char *p = strchr(v, ';');
	while (p && *p) {
		while (*p == ';' || *p == ' ' || *p == '\t')
			p++;
		const char *name = p;
		while (*p && *p != '=' && *p != ';')
			p++;
		size_t nlen = (size_t)(p - name);
		while (nlen > 0 && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
			nlen--;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		char val[sizeof part->filename];
		param_value(&p, val, sizeof val);
		if (nlen == 4 && strncasecmp(name, "name", 4) == 0) {
			snprintf(part->name, sizeof part->name, "%s", val);
		} else if (nlen == 8 && strncasecmp(name, "filename", 8) == 0) {
			snprintf(part->filename, sizeof part->filename, "%s", val);
			part->has_filename = true;
		} else if (nlen == 9 && strncasecmp(name, "filename*", 9) == 0) {
			if (decode_ext(val)) {
				snprintf(ext, sizeof ext, "%s", val);
				has_ext = true;
			}
		}
	}
	if (has_ext) {
		memcpy(part->filename, ext, sizeof ext);
		part->has_filename = true;
	}
	if (part->has_filename)
		basename_in_place(part->filename);
}

/* Parses the header block in mp->hdr (CRLF lines, the last one empty). */
static bool parse_headers(oh_multipart_t *mp, oh_part_t *part)
{
	memset(part, 0, sizeof *part);
	mp->hdr[mp->hdr_len] = '\0';
	if (memchr(mp->hdr, '\0', mp->hdr_len))
		return false;
	char *save = NULL;
	for (char *line = strtok_r(mp->hdr, "\r\n", &save); line;
	     line = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(line, ':');
		if (!colon || colon == line)
			return false;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strcasecmp(line, "Content-Disposition") == 0) {
			if (strncasecmp(v, "form-data", 9) != 0)
				return false;
			parse_disposition(v, part);
		} else if (strcasecmp(line, "Content-Type") == 0) {
			snprintf(part->content_type, sizeof part->content_type, "%s", v);
		}
	}
	return true;
}

oh_mp_status_t oh_multipart_feed(oh_multipart_t *mp, const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len) {
		switch (mp->state) {
		case S_FAILED: return mp->error;
		case S_EPILOGUE: return OH_MP_DONE;
		case S_PREAMBLE:
		case S_BODY: {
			bool found, stop;
			size_t used = scan(mp, buf + i, len - i, &found, &stop);
			if (stop)
				return fail(mp, OH_MP_STOPPED);
			i += used;
			if (found) {
				if (mp->state == S_BODY && mp->cb.part_end &&
				    mp->cb.part_end(mp->ctx) != 0)
					return fail(mp, OH_MP_STOPPED);
				mp->state = S_DELIM_NEXT;
			}
			break;
		}
		case S_DELIM_NEXT:
		case S_DASH:
		case S_PAD:
		case S_LF: {
			char c = buf[i++];
			if (mp->state == S_DASH) {
				if (c != '-')
					return fail(mp, OH_MP_BAD_HEADERS);
				mp->state = S_EPILOGUE;
				return OH_MP_DONE;
			}
			if (mp->state == S_LF) {
				if (c != '\n')
					return fail(mp, OH_MP_BAD_HEADERS);
				mp->state = S_HEADERS;
				mp->hdr_len = 0;
			} else if (c == '-' && mp->state == S_DELIM_NEXT) {
				mp->state = S_DASH;
			} else if (c == ' ' || c == '\t') {
				mp->state = S_PAD;
			} else if (c == '\r') {
				mp->state = S_LF;
			} else {
				return fail(mp, OH_MP_BAD_HEADERS);
			}
			break;
		}
		case S_HEADERS: {
			char c = buf[i++];
			if (mp->hdr_len >= OH_MULTIPART_HEADERS_MAX)
				return fail(mp, OH_MP_BAD_HEADERS);
			mp->hdr[mp->hdr_len++] = c;
			size_t n = mp->hdr_len;
			bool end = (n == 2 && memcmp(mp->hdr, "\r\n", 2) == 0) ||
			           (n >= 4 && memcmp(mp->hdr + n - 4, "\r\n\r\n", 4) == 0);
			if (!end)
				break;
			oh_part_t part;
			if (!parse_headers(mp, &part))
				return fail(mp, OH_MP_BAD_HEADERS);
			mp->state = S_BODY;
			mp->tail_len = 0;
			if (mp->cb.part_begin && mp->cb.part_begin(mp->ctx, &part) != 0)
				return fail(mp, OH_MP_STOPPED);
			break;
		}
		}
	}
	if (mp->state == S_FAILED)
		return mp->error;
	return mp->state == S_EPILOGUE ? OH_MP_DONE : OH_MP_OK;
}

oh_mp_status_t oh_multipart_finish(oh_multipart_t *mp)
{
	if (mp->state == S_FAILED)
		return mp->error;
	return mp->state == S_EPILOGUE ? OH_MP_DONE : OH_MP_TRUNCATED;
}
