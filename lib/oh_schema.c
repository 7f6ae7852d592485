#include "oh_schema.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool fail(oh_schema_error_t *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(oh_schema_error_t *err, const char *path, const char *fmt, ...)
{
	snprintf(err->field, sizeof err->field, "%s", path);
	va_list ap;
	va_start(ap, fmt);
	char detail[200];
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if (path[0])
		snprintf(err->message, sizeof err->message, "%s %s.", path, detail);
	else
		snprintf(err->message, sizeof err->message, "The request body %s.", detail);
	return false;
}

/* Counts UTF-8 code points (jansson guarantees valid UTF-8). */
static size_t utf8_len(const char *s, size_t bytes)
{
	size_t n = 0;
	for (size_t i = 0; i < bytes; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

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
	return true;
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
	return "a string";
}

static bool pattern_matches(const char *pattern, const char *s)
{
	regex_t re;
	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return false; /* an uncompilable pattern is a spec bug: refuse */
	bool ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static bool validate(const json_t *schema, const json_t *v, const char *path,
                     oh_schema_error_t *err)
{
	if (!json_is_object(schema))
		return true;
	const json_t *type = json_object_get(schema, "type");
	if (json_is_null(v)) {
		if (json_is_true(json_object_get(schema, "nullable")) || !type)
			return true;
		return fail(err, path, "must not be null");
	}
	if (json_is_string(type) && !type_matches(json_string_value(type), v))
		return fail(err, path, "must be %s", article_type(json_string_value(type)));

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
		    !pattern_matches(json_string_value(pat), json_string_value(v)))
			return fail(err, path, "does not have the expected form");
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
			char sub[128];
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
				char sub[128];
				snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
				return fail(err, sub, "is required");
			}
		}
		const json_t *addl = json_object_get(schema, "additionalProperties");
		const char *key;
		const json_t *val;
		json_object_foreach((json_t *)v, key, val)
		{
			char sub[128];
			snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
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
	return true;
}

bool oh_schema_validate(const json_t *schema, const json_t *value, const char *root,
                        oh_schema_error_t *err)
{
	memset(err, 0, sizeof *err);
	return validate(schema, value, root ? root : "", err);
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
