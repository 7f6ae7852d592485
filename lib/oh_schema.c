#include "oh_schema.h"

#include "oh_json.h"

#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Counts UTF-8 code points (jansson guarantees valid UTF-8). */
static size_t utf8_len(const char *s, size_t bytes)
{
	size_t n = 0;
	for (size_t i = 0; i < bytes; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* ---- errors ------------------------------------------------------------ */

static bool fail(oh_schema_error_t *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(oh_schema_error_t *err, const char *path, const char *fmt, ...)
{
	oh_utf8_copy(err->field, sizeof err->field, path);
	oh_utf8_sanitize(err->field);
	va_list ap;
	va_start(ap, fmt);
	char detail[200], text[sizeof err->message];
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	/* "<field> <detail>." cut to the buffer; the sanitizing below keeps a
	 * cut message UTF-8. */
	const char *parts[] = {path[0] ? err->field : "The request body", " ", detail, "."};
	size_t o = 0;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		size_t n = strlen(parts[i]);
		if (n > sizeof text - 1 - o)
			n = sizeof text - 1 - o;
		memcpy(text + o, parts[i], n);
		o += n;
	}
	text[o] = '\0';
	/* Either part may have been cut inside a character. */
	memcpy(err->message, text, sizeof text);
	oh_utf8_sanitize(err->message);
	return false;
}

/* Appends ".KEY" or "[I]" to PATH in OUT (always NUL-terminated). */
static void sub_key(char *out, size_t size, const char *path, const char *key)
{
	snprintf(out, size, "%s%s%s", path, path[0] ? "." : "", key);
}

/* ---- types and formats ------------------------------------------------- */

static bool type_matches(const char *type, const json_t *v)
{
	if (strcmp(type, "string") == 0)
		return json_is_string(v);
	if (strcmp(type, "integer") == 0)
		return json_is_integer(v);
	if (strcmp(type, "number") == 0)
		return json_is_number(v);
	if (strcmp(type, "boolean") == 0)
		return json_is_boolean(v);
	if (strcmp(type, "object") == 0)
		return json_is_object(v);
	if (strcmp(type, "array") == 0)
		return json_is_array(v);
	if (strcmp(type, "null") == 0)
		return json_is_null(v);
	return false;
}

static const char *article_type(const char *type)
{
	if (strcmp(type, "integer") == 0)
		return "an integer";
	if (strcmp(type, "array") == 0)
		return "an array";
	if (strcmp(type, "object") == 0)
		return "an object";
	if (strcmp(type, "boolean") == 0)
		return "a boolean";
	if (strcmp(type, "number") == 0)
		return "a number";
	if (strcmp(type, "null") == 0)
		return "null";
	return "a string";
}

static bool known_type(const char *t)
{
	static const char *const types[] = {"string", "integer", "number", "boolean",
	                                    "object", "array",   "null"};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(t, types[i]) == 0)
			return true;
	return false;
}

static bool digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

/* RFC 3339 full-date: YYYY-MM-DD, a day that exists. */
static bool is_date(const char *s)
{
	if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' || !digits(s + 8, 2))
		return false;
	int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
	static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m < 1 || m > 12 || d < 1 || d > days[m - 1])
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return !(m == 2 && d == 29 && !leap);
}

/* RFC 3339 date-time: full-date "T" HH:MM:SS[.frac] ("Z" / +HH:MM / -HH:MM). */
static bool is_date_time(const char *s)
{
	if (strlen(s) < 20 || !is_date(s) || (s[10] != 'T' && s[10] != 't'))
		return false;
	const char *t = s + 11;
	if (!digits(t, 2) || t[2] != ':' || !digits(t + 3, 2) || t[5] != ':' || !digits(t + 6, 2))
		return false;
	if (num(t, 2) > 23 || num(t + 3, 2) > 59 || num(t + 6, 2) > 60)
		return false;
	const char *p = t + 8;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return true;
	return (*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) &&
	       p[6] == '\0' && num(p + 1, 2) <= 23 && num(p + 4, 2) <= 59;
}

/* An absolute URI (RFC 3986): scheme ":" and then printable ASCII only. */
static bool is_uri(const char *s)
{
	const char *p = s;
	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return false;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
	       *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':' || p[1] == '\0')
		return false;
	for (p++; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    strchr("<>\"{}|\\^`", *p))
			return false;
	return true;
}

/* "binary" is the raw bytes of a file part or a download: a JSON value
 * never carries it, so it asks nothing of one. */
static const char *const formats[] = {"date-time", "date", "int32", "int64", "uri", "binary"};

/* Checks V against FORMAT; returns NULL or what V must be. */
static const char *format_problem(const char *format, const json_t *v)
{
	if (strcmp(format, "int32") == 0 && json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		return i < INT32_MIN || i > INT32_MAX ? "must fit in 32 bits" : NULL;
	}
	if (!json_is_string(v))
		return NULL; /* int64 always fits a json_int_t; formats of strings below */
	const char *s = json_string_value(v);
	if (strcmp(format, "date-time") == 0 && !is_date_time(s))
		return "must be an RFC 3339 date-time such as 2026-11-28T05:30:00.123+00:00";
	if (strcmp(format, "date") == 0 && !is_date(s))
		return "must be a date such as 2026-11-28";
	if (strcmp(format, "uri") == 0 && !is_uri(s))
		return "must be an absolute URI";
	return NULL;
}

/* ---- patterns ---------------------------------------------------------- */

static bool is_quantifier_start(char c)
{
	return c == '*' || c == '+' || c == '?' || c == '{';
}

/* Parses a {m}, {m,} or {m,n} at P; returns its length or 0. */
static size_t brace_len(const char *p)
{
	const char *q = p + 1;
	if (*q < '0' || *q > '9')
		return 0;
	while (*q >= '0' && *q <= '9')
		q++;
	if (*q == ',') {
		q++;
		while (*q >= '0' && *q <= '9')
			q++;
	}
	return *q == '}' ? (size_t)(q - p + 1) : 0;
}

/* Checks the bracket expression starting at P ('['); sets *LEN. */
static const char *bracket_check(const char *p, size_t *len)
{
	const char *q = p + 1;
	if (*q == '^')
		return "uses a negated bracket expression [^...], which matches a byte in POSIX "
		       "and a character in ECMA-262";
	if (*q == ']')
		return "starts a bracket expression with ']' (an empty class in ECMA-262)";
	bool first = true;
	while (*q != ']') {
		unsigned char c = (unsigned char)*q;
		if (c == '\0')
			return "has an unclosed bracket expression";
		if (c == '\\' || c == '[')
			return "uses '\\' or '[' inside a bracket expression (the dialects read "
			       "them "
			       "differently)";
		if (c < 0x20 || c >= 0x7f)
			return "has a non-ASCII or control character inside a bracket expression";
		if (c == '-' && !first && q[1] != ']')
			return "has a '-' inside a bracket expression that is neither first, last "
			       "nor a range";
		if (q[1] == '-' && q[2] != ']' && c != '-') {
			unsigned char hi = (unsigned char)q[2];
			if (hi == '\\' || hi == '[' || hi == ']' || hi == '-' || hi < 0x20 ||
			    hi >= 0x7f || hi < c)
				return "has a bad range inside a bracket expression";
			q += 3;
		} else {
			q++;
		}
		first = false;
	}
	*len = (size_t)(q - p + 1);
	return NULL;
}

const char *oh_schema_pattern_check(const char *pattern)
{
	int depth = 0;
	/* Whether the previous token can take a quantifier, and what it was. */
	bool atom = false;
	char prev = '\0'; /* '(' or '|' at the start of an alternative, else 'x' */
	const char *p = pattern;
	if (*p == '\0')
		return "is empty";
	prev = '(';
	while (*p) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f)
			return "has a non-ASCII or control character";
		if (c == '\\') {
			if (p[1] == '\0' || !strchr(".+*?()[]{}|^$\\/", p[1]))
				return "uses a backslash escape outside .+*?()[]{}|^$\\/ (\\d, "
				       "\\w, \\s, "
				       "\\b and back-references differ between the dialects)";
			p += 2;
			atom = true;
			prev = 'x';
			continue;
		}
		if (c == '.')
			return "uses '.', which matches a byte in POSIX and a character in "
			       "ECMA-262 "
			       "(escape it as \\. or use a bracket expression)";
		if (c == '[') {
			size_t n = 0;
			const char *why = bracket_check(p, &n);
			if (why)
				return why;
			p += n;
			atom = true;
			prev = 'x';
			continue;
		}
		if (c == '(') {
			if (p[1] == '?')
				return "uses (?...), which POSIX does not have";
			if (p[1] == ')')
				return "has an empty group";
			depth++;
			p++;
			atom = false;
			prev = '(';
			continue;
		}
		if (c == ')') {
			if (depth == 0)
				return "has an unbalanced ')'";
			if (prev == '|' || prev == '(')
				return "has an empty alternative";
			depth--;
			p++;
			atom = true;
			prev = 'x';
			continue;
		}
		if (c == '|') {
			if (prev == '|' || prev == '(')
				return "has an empty alternative";
			p++;
			atom = false;
			prev = '|';
			continue;
		}
		if (is_quantifier_start((char)c)) {
			size_t n = c == '{' ? brace_len(p) : 1;
			if (n == 0)
				return "has a '{' that is not a quantifier {m}, {m,} or {m,n}";
			if (!atom)
				return "has a quantifier with nothing to repeat (or one after "
				       "another)";
			p += n;
			atom = false;
			prev = 'x';
			continue;
		}
		if (c == ']' || c == '}')
			return "has an unescaped ']' or '}'";
		/* ^ and $ are assertions in both; they take no quantifier. */
		atom = c != '^' && c != '$';
		prev = (c == '^') ? prev : 'x';
		p++;
	}
	if (depth != 0)
		return "has an unclosed '('";
	if (prev == '|')
		return "has an empty alternative";
	return NULL;
}

bool oh_schema_pattern_matches(const char *pattern, const char *text)
{
	regex_t re;
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return false; /* an uncompilable pattern is a spec bug: refuse */
	bool ok = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

/* ---- validation -------------------------------------------------------- */

static bool validate(const json_t *schema, const json_t *v, const char *path,
                     oh_schema_error_t *err);

/* The detail of ERR's message: the part after the field's name. */
static const char *detail_of(const oh_schema_error_t *e, const char *path)
{
	const char *m = e->message;
	size_t pl = strlen(path);
	if (pl && strncmp(m, path, pl) == 0 && m[pl] == ' ')
		return m + pl + 1;
	if (!pl && strncmp(m, "The request body ", 17) == 0)
		return m + 17;
	return m;
}

/* oneOf (exactly one branch), anyOf (at least one), allOf (every one). */
static bool combine(const char *kw, const json_t *branches, const json_t *v, const char *path,
                    oh_schema_error_t *err)
{
	size_t i, passed = 0;
	const json_t *b;
	oh_schema_error_t first = {{0}, {0}}, e;
	char why[200] = "";
	size_t used = 0;
	json_array_foreach(branches, i, b)
	{
		if (validate(b, v, path, &e)) {
			passed++;
			continue;
		}
		if (strcmp(kw, "allOf") == 0) {
			*err = e;
			return false;
		}
		if (!first.message[0])
			first = e;
		/* "must be a string; or must be one of: *" */
		char d[200];
		oh_utf8_copy(d, sizeof d, detail_of(&e, path));
		size_t dl = strlen(d);
		if (dl && d[dl - 1] == '.')
			d[--dl] = '\0';
		if (used < sizeof why - 1 && !strstr(why, d))
			used += (size_t)snprintf(why + used, sizeof why - used, "%s%s",
			                         used ? "; or " : "", d);
	}
	if (strcmp(kw, "allOf") == 0)
		return true;
	if (passed == 0) {
		if (i == 1) {
			*err = first;
			return false;
		}
		/* The most specific failure (a deeper field) says more. */
		if (strcmp(first.field, path) != 0) {
			*err = first;
			return false;
		}
		why[sizeof why - 1] = '\0';
		return fail(err, path, "%s", why);
	}
	if (strcmp(kw, "oneOf") == 0 && passed > 1)
		return fail(err, path, "matches more than one of the allowed forms");
	return true;
}

static bool validate(const json_t *schema, const json_t *v, const char *path,
                     oh_schema_error_t *err)
{
	if (!json_is_object(schema))
		return true;
	const json_t *type = json_object_get(schema, "type");
	bool nullable = json_is_true(json_object_get(schema, "nullable"));
	if (json_is_null(v) && nullable)
		return true; /* OpenAPI 3.0: null is allowed whatever else the schema says */
	if (json_is_string(type)) {
		const char *t = json_string_value(type);
		if (!type_matches(t, v))
			return fail(err, path, json_is_null(v) ? "must not be null" : "must be %s",
			            article_type(t));
	} else if (json_is_array(type)) {
		size_t i;
		const json_t *t;
		bool any = false;
		json_array_foreach(type, i, t) any =
		    any || (json_is_string(t) && type_matches(json_string_value(t), v));
		if (!any)
			return fail(err, path, "is not of an allowed type");
	}

	const json_t *en = json_object_get(schema, "enum");
	if (json_is_array(en)) {
		size_t i;
		const json_t *opt;
		bool found = false;
		json_array_foreach(en, i, opt) if (json_equal(opt, v)) found = true;
		if (!found) {
			char list[160] = "";
			size_t o = 0;
			json_array_foreach(en, i, opt)
			{
				if (json_is_string(opt) && o < sizeof list - 1)
					o +=
					    (size_t)snprintf(list + o, sizeof list - o, "%s%s",
					                     i ? ", " : "", json_string_value(opt));
			}
			return fail(err, path, "must be one of: %s", list);
		}
	}
	const json_t *cn = json_object_get(schema, "const");
	if (cn && !json_equal(cn, v))
		return fail(err, path, "must be the documented constant");

	if (json_is_number(v)) {
		double d = json_number_value(v);
		const json_t *mn = json_object_get(schema, "minimum");
		const json_t *mx = json_object_get(schema, "maximum");
		if (json_is_number(mn) && d < json_number_value(mn))
			return fail(err, path, "must be at least %.0f", json_number_value(mn));
		if (json_is_number(mx) && d > json_number_value(mx))
			return fail(err, path, "must be at most %.0f", json_number_value(mx));
	}

	if (json_is_string(v)) {
		size_t len = utf8_len(json_string_value(v), json_string_length(v));
		const json_t *mn = json_object_get(schema, "minLength");
		const json_t *mx = json_object_get(schema, "maxLength");
		if (json_is_integer(mn) && (json_int_t)len < json_integer_value(mn))
			return fail(err, path, "must be at least %lld characters long",
			            (long long)json_integer_value(mn));
		if (json_is_integer(mx) && (json_int_t)len > json_integer_value(mx))
			return fail(err, path, "must be at most %lld characters long",
			            (long long)json_integer_value(mx));
		if (strlen(json_string_value(v)) != json_string_length(v))
			return fail(err, path, "must not contain NUL characters");
		const json_t *pat = json_object_get(schema, "pattern");
		if (json_is_string(pat) &&
		    !oh_schema_pattern_matches(json_string_value(pat), json_string_value(v)))
			return fail(err, path, "does not have the expected form");
	}
	const json_t *fmt = json_object_get(schema, "format");
	if (json_is_string(fmt)) {
		const char *why = format_problem(json_string_value(fmt), v);
		if (why)
			return fail(err, path, "%s", why);
	}

	if (json_is_array(v)) {
		const json_t *mn = json_object_get(schema, "minItems");
		const json_t *mx = json_object_get(schema, "maxItems");
		size_t n = json_array_size(v);
		if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
			return fail(err, path, "must have at least %lld items",
			            (long long)json_integer_value(mn));
		if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
			return fail(err, path, "must have at most %lld items",
			            (long long)json_integer_value(mx));
		const json_t *items = json_object_get(schema, "items");
		size_t i;
		const json_t *it;
		json_array_foreach(v, i, it)
		{
			char sub[sizeof err->field];
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			if (!validate(items, it, sub, err))
				return false;
		}
	}

	if (json_is_object(v)) {
		const json_t *props = json_object_get(schema, "properties");
		const json_t *req = json_object_get(schema, "required");
		size_t i;
		const json_t *name;
		json_array_foreach(req, i, name)
		{
			const char *key = json_string_value(name);
			if (key && !json_object_get(v, key)) {
				char sub[sizeof err->field];
				sub_key(sub, sizeof sub, path, key);
				return fail(err, sub, "is required");
			}
		}
		const json_t *addl = json_object_get(schema, "additionalProperties");
		const char *key;
		const json_t *val;
		json_object_foreach((json_t *)v, key, val)
		{
			char sub[sizeof err->field];
			sub_key(sub, sizeof sub, path, key);
			const json_t *ps = props ? json_object_get(props, key) : NULL;
			if (ps) {
				if (!validate(ps, val, sub, err))
					return false;
			} else if (json_is_false(addl)) {
				return fail(err, sub, "is not a known field");
			} else if (json_is_object(addl) && !validate(addl, val, sub, err)) {
				return false;
			}
		}
	}

	static const char *const combinators[] = {"allOf", "anyOf", "oneOf"};
	for (size_t k = 0; k < sizeof combinators / sizeof combinators[0]; k++) {
		const json_t *branches = json_object_get(schema, combinators[k]);
		if (json_is_array(branches) && !combine(combinators[k], branches, v, path, err))
			return false;
	}
	const json_t *not = json_object_get(schema, "not");
	if (json_is_object(not )) {
		oh_schema_error_t ignored;
		if (validate(not, v, path, &ignored))
			return fail(err, path, "has a form that is not allowed");
	}
	return true;
}

bool oh_schema_validate(const json_t *schema, const json_t *value, const char *root,
                        oh_schema_error_t *err)
{
	memset(err, 0, sizeof *err);
	return validate(schema, value, root ? root : "", err);
}

/* ---- what the validator implements -------------------------------------- */

static const char *const assertions[] = {
    "type",
    "nullable",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
};
static const char *const annotations[] = {"description", "example", "default", "title",
                                          "deprecated"};

static bool in_list(const char *k, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(k, list[i]) == 0)
			return true;
	return false;
}

#define IN(k, list) in_list((k), (list), sizeof(list) / sizeof((list)[0]))

static bool check_at(const json_t *schema, const char *where, char *out, size_t size, int depth);

static bool check_sub(const json_t *schema, const char *where, const char *step, char *out,
                      size_t size, int depth)
{
	char w[512];
	snprintf(w, sizeof w, "%s%s%s", where, where[0] ? "." : "", step);
	return check_at(schema, w, out, size, depth + 1);
}

static bool check_at(const json_t *schema, const char *where, char *out, size_t size, int depth)
{
	if (depth > 64) {
		snprintf(out, size, "%s: nests deeper than 64 schemas", where);
		return false;
	}
	if (!json_is_object(schema)) {
		snprintf(out, size, "%s: a schema must be an object", where);
		return false;
	}
	const char *k;
	const json_t *v;
	json_object_foreach((json_t *)schema, k, v)
	{
		if (strncmp(k, "x-", 2) == 0 || IN(k, annotations))
			continue;
		if (!IN(k, assertions)) {
			snprintf(out, size, "%s: unknown keyword '%s'", where, k);
			return false;
		}
		if (strcmp(k, "type") == 0) {
			bool ok = json_is_string(v) && known_type(json_string_value(v));
			if (json_is_array(v)) {
				size_t i;
				const json_t *t;
				ok = json_array_size(v) > 0;
				json_array_foreach(v, i, t) ok =
				    ok && json_is_string(t) && known_type(json_string_value(t));
			}
			if (!ok) {
				snprintf(out, size, "%s: type names no known type", where);
				return false;
			}
		} else if (strcmp(k, "format") == 0) {
			if (!json_is_string(v) || !IN(json_string_value(v), formats)) {
				snprintf(out, size, "%s: format '%s' is not implemented", where,
				         json_is_string(v) ? json_string_value(v) : "?");
				return false;
			}
		} else if (strcmp(k, "pattern") == 0) {
			const char *why =
			    json_is_string(v) ? oh_schema_pattern_check(json_string_value(v)) : "";
			regex_t re;
			if (!why &&
			    regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB) != 0)
				why = "does not compile as a POSIX extended regular expression";
			else if (!why)
				regfree(&re);
			if (why) {
				snprintf(out, size, "%s: pattern %s", where,
				         why[0] ? why : "must be a string");
				return false;
			}
		} else if (strcmp(k, "properties") == 0) {
			const char *name;
			const json_t *ps;
			if (!json_is_object(v)) {
				snprintf(out, size, "%s: properties must be an object", where);
				return false;
			}
			json_object_foreach((json_t *)v, name, ps)
			{
				char step[300];
				snprintf(step, sizeof step, "properties.%s", name);
				if (!check_sub(ps, where, step, out, size, depth))
					return false;
			}
		} else if (strcmp(k, "items") == 0 || strcmp(k, "not") == 0 ||
		           (strcmp(k, "additionalProperties") == 0 && !json_is_boolean(v))) {
			if (!check_sub(v, where, k, out, size, depth))
				return false;
		} else if (strcmp(k, "oneOf") == 0 || strcmp(k, "anyOf") == 0 ||
		           strcmp(k, "allOf") == 0) {
			size_t i;
			const json_t *b;
			if (!json_is_array(v) || json_array_size(v) == 0) {
				snprintf(out, size, "%s: %s must be a non-empty array", where, k);
				return false;
			}
			json_array_foreach(v, i, b)
			{
				char step[64];
				snprintf(step, sizeof step, "%s[%zu]", k, i);
				if (!check_sub(b, where, step, out, size, depth))
					return false;
			}
		}
	}
	return true;
}

bool oh_schema_check(const json_t *schema, char *where, size_t where_size)
{
	if (where_size)
		where[0] = '\0';
	return check_at(schema, "", where, where_size, 0);
}

size_t oh_json_depth(const json_t *v)
{
	size_t deepest = 0;
	if (json_is_object(v)) {
		const char *k;
		const json_t *x;
		json_object_foreach((json_t *)v, k, x)
		{
			size_t d = oh_json_depth(x);
			if (d > deepest)
				deepest = d;
		}
	} else if (json_is_array(v)) {
		size_t i;
		const json_t *x;
		json_array_foreach(v, i, x)
		{
			size_t d = oh_json_depth(x);
			if (d > deepest)
				deepest = d;
		}
	}
	return deepest + 1;
}
