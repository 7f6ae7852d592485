/* The JSON Schema subset validator: one negative test per rule, the
 * combinations (oneOf, anyOf, allOf, not) and formats, and two checks of
 * openapi.yaml itself: every schema in it uses only keywords the validator
 * implements, and every pattern means the same to the server's regex engine
 * as to ECMA-262 (node's RegExp) on the examples of tests/pattern_examples.json.
 * The spec is read through python3's yaml module and the patterns are run by
 * node: both are on every machine scripts/setup.sh test prepares. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oh_json.h"
#include "oh_schema.h"

static json_t *J(const char *text)
{
	json_error_t e;
	/* JSON_ALLOW_NUL lets the validator's own NUL check be exercised; the
	 * server's parser refuses \u0000 before validation. */
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!j)
		fail_msg("bad test JSON %s: %s", text, e.text);
	return j;
}

/* Validates TEXT against SCHEMA; returns the failing field or NULL. */
static const char *check(const char *schema, const char *text, oh_schema_error_t *err)
{
	json_t *s = J(schema), *v = J(text);
	bool ok = oh_schema_validate(s, v, "", err);
	json_decref(s);
	json_decref(v);
	return ok ? NULL : err->field;
}

static const char *OBJ =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"Name\"],\"properties\":{"
    "\"Name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":4},"
    "\"Cap\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":10},"
    "\"Mode\":{\"type\":\"string\",\"enum\":[\"A\",\"B\"]},"
    "\"Id\":{\"type\":\"string\",\"pattern\":\"^N-[0-9]+$\"},"
    "\"Note\":{\"type\":\"string\",\"nullable\":true},"
    "\"Tags\":{\"type\":\"array\",\"maxItems\":2,\"items\":{\"type\":\"string\"}},"
    "\"On\":{\"type\":\"boolean\"}}}";

static void valid_object_passes(void **state)
{
	(void)state;
	oh_schema_error_t err;
	assert_null(check(OBJ,
	                  "{\"Name\":\"ab\",\"Cap\":3,\"Mode\":\"A\",\"Id\":\"N-12\",\"Note\":null,"
	                  "\"Tags\":[\"x\"],\"On\":true}",
	                  &err));
}

static void each_rule_names_its_field(void **state)
{
	(void)state;
	struct {
		const char *body, *field, *words;
	} cases[] = {
	    {"{}", "Name", "is required"},
	    {"{\"Name\":\"\"}", "Name", "at least 1"},
	    {"{\"Name\":\"abcde\"}", "Name", "at most 4"},
	    {"{\"Name\":3}", "Name", "must be a string"},
	    {"{\"Name\":\"a\",\"Cap\":-1}", "Cap", "at least 0"},
	    {"{\"Name\":\"a\",\"Cap\":11}", "Cap", "at most 10"},
	    {"{\"Name\":\"a\",\"Cap\":1.5}", "Cap", "an integer"},
	    {"{\"Name\":\"a\",\"Mode\":\"C\"}", "Mode", "one of: A, B"},
	    {"{\"Name\":\"a\",\"Id\":\"X-1\"}", "Id", "expected form"},
	    {"{\"Name\":\"a\",\"Tags\":[\"a\",\"b\",\"c\"]}", "Tags", "at most 2 items"},
	    {"{\"Name\":\"a\",\"Tags\":[1]}", "Tags[0]", "must be a string"},
	    {"{\"Name\":\"a\",\"Tags\":[null]}", "Tags[0]", "must not be null"},
	    {"{\"Name\":\"a\",\"On\":\"yes\"}", "On", "a boolean"},
	    {"{\"Name\":\"a\",\"Extra\":1}", "Extra", "not a known field"},
	    {"{\"Name\":null}", "Name", "must not be null"},
	    {"[]", "", "must be an object"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		oh_schema_error_t err;
		const char *field = check(OBJ, cases[i].body, &err);
		if (!field)
			fail_msg("%s was accepted", cases[i].body);
		assert_string_equal(field, cases[i].field);
		if (!strstr(err.message, cases[i].words))
			fail_msg("%s: message '%s' lacks '%s'", cases[i].body, err.message,
			         cases[i].words);
	}
}

/* EventTypes of SubscriptionCreate: items are a oneOf of two enums. */
static const char *EVENT_TYPES =
    "{\"type\":\"object\",\"properties\":{\"EventTypes\":{\"type\":\"array\",\"minItems\":1,"
    "\"items\":{\"oneOf\":[{\"type\":\"string\",\"enum\":[\"TaskQueued\",\"NodeDrained\"]},"
    "{\"type\":\"string\",\"enum\":[\"*\"]}]}}}}";

static void one_of_checks_every_item(void **state)
{
	(void)state;
	oh_schema_error_t err;
	assert_null(check(EVENT_TYPES, "{\"EventTypes\":[\"TaskQueued\",\"*\"]}", &err));
	const char *bad[] = {
	    "[1]", "[null]", "[{}]", "[true]", "[[]]", "[\"NoSuchEvent\"]", "[\"TaskQueued\",2]"};
	const char *fields[] = {"EventTypes[0]", "EventTypes[0]", "EventTypes[0]", "EventTypes[0]",
	                        "EventTypes[0]", "EventTypes[0]", "EventTypes[1]"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char body[64];
		snprintf(body, sizeof body, "{\"EventTypes\":%s}", bad[i]);
		const char *field = check(EVENT_TYPES, body, &err);
		if (!field)
			fail_msg("%s was accepted", body);
		assert_string_equal(field, fields[i]);
	}
	assert_string_equal(check(EVENT_TYPES, "{\"EventTypes\":[]}", &err), "EventTypes");
	assert_string_equal(check(EVENT_TYPES, "{\"EventTypes\":null}", &err), "EventTypes");
	assert_string_equal(check(EVENT_TYPES, "{\"EventTypes\":{}}", &err), "EventTypes");
	/* Two branches that both match are refused by oneOf, not by anyOf. */
	const char *two =
	    "{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"string\",\"maxLength\":3}]}";
	assert_string_equal(check(two, "\"ab\"", &err), "");
	assert_non_null(strstr(err.message, "more than one"));
	assert_null(check(two, "\"abcd\"", &err));
	const char *any =
	    "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"string\",\"maxLength\":3}]}";
	assert_null(check(any, "\"ab\"", &err));
	assert_string_equal(check(any, "5", &err), "");
}

static void all_of_and_not(void **state)
{
	(void)state;
	oh_schema_error_t err;
	const char *all = "{\"allOf\":[{\"type\":\"string\",\"minLength\":2},{\"type\":\"string\","
	                  "\"maxLength\":3}]}";
	assert_null(check(all, "\"abc\"", &err));
	assert_string_equal(check(all, "\"a\"", &err), "");
	assert_non_null(strstr(err.message, "at least 2"));
	assert_string_equal(check(all, "\"abcd\"", &err), "");
	assert_non_null(strstr(err.message, "at most 3"));
	const char *not = "{\"type\":\"string\",\"not\":{\"enum\":[\"root\"]}}";
	assert_null(check(not, "\"alice\"", &err));
	assert_string_equal(check(not, "\"root\"", &err), "");
	/* Nested objects inside array items, and type lists. */
	const char *nested =
	    "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"A\"],"
	    "\"properties\":{\"A\":{\"type\":[\"integer\",\"null\"]}}}}";
	assert_null(check(nested, "[{\"A\":1},{\"A\":null}]", &err));
	assert_string_equal(check(nested, "[{\"A\":1},{}]", &err), "[1].A");
	assert_string_equal(check(nested, "[{\"A\":\"x\"}]", &err), "[0].A");
}

static void formats_are_checked(void **state)
{
	(void)state;
	oh_schema_error_t err;
	const char *dt = "{\"type\":\"string\",\"format\":\"date-time\"}";
	const char *good[] = {"\"2026-11-28T05:30:00.123+00:00\"", "\"2026-11-28T05:30:00Z\"",
	                      "\"2024-02-29T23:59:60-05:30\"", "\"2026-11-28t05:30:00z\""};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (check(dt, good[i], &err))
			fail_msg("%s refused: %s", good[i], err.message);
	const char *bad[] = {"\"yesterday\"",
	                     "\"2026-11-28\"",
	                     "\"2026-13-01T00:00:00Z\"",
	                     "\"2026-02-30T00:00:00Z\"",
	                     "\"2023-02-29T00:00:00Z\"",
	                     "\"2026-11-28T24:00:00Z\"",
	                     "\"2026-11-28T05:30:00\"",
	                     "\"2026-11-28T05:30:00.Z\"",
	                     "\"2026-11-28T05:30:00+0100\"",
	                     "\"2026-11-28T05:30:00Z trailing\""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!check(dt, bad[i], &err))
			fail_msg("%s accepted as a date-time", bad[i]);
	const char *date = "{\"type\":\"string\",\"format\":\"date\"}";
	assert_null(check(date, "\"2026-11-28\"", &err));
	assert_non_null(check(date, "\"2026-11-31\"", &err));
	const char *i32 = "{\"type\":\"integer\",\"format\":\"int32\"}";
	assert_null(check(i32, "2147483647", &err));
	assert_non_null(check(i32, "2147483648", &err));
	assert_non_null(check(i32, "-2147483649", &err));
	const char *uri = "{\"type\":\"string\",\"format\":\"uri\"}";
	assert_null(check(uri, "\"http://node1:8080\"", &err));
	assert_non_null(check(uri, "\"node1:\"", &err));
	assert_non_null(check(uri, "\"/relative\"", &err));
	assert_non_null(check(uri, "\"http://a b\"", &err));
}

static void length_counts_characters_not_bytes(void **state)
{
	(void)state;
	oh_schema_error_t err;
	/* Four two-byte characters fit a maxLength of 4. */
	assert_null(check(OBJ, "{\"Name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}", &err));
}

static void embedded_nul_is_refused(void **state)
{
	(void)state;
	oh_schema_error_t err;
	assert_string_equal(check(OBJ, "{\"Name\":\"a\\u0000b\"}", &err), "Name");
}

/* A field name longer than the error's buffers, made of two-byte
 * characters, is cut at a character boundary: the error stays valid UTF-8
 * (a cut inside a character once made the error body NULL and the node
 * abort). */
static void long_names_stay_utf8(void **state)
{
	(void)state;
	for (size_t n = 60; n < 140; n++) {
		char body[600] = "{\"";
		size_t o = 2;
		for (size_t i = 0; i < n; i++) {
			memcpy(body + o, "\xc3\xa9", 2);
			o += 2;
		}
		memcpy(body + o, "\":1,\"Name\":\"a\"}", 16);
		oh_schema_error_t err;
		const char *field = check(OBJ, body, &err);
		assert_non_null(field);
		assert_true(oh_utf8_valid(err.field, strlen(err.field)));
		assert_true(oh_utf8_valid(err.message, strlen(err.message)));
		json_t *f = json_string(err.field), *m = json_string(err.message);
		assert_non_null(f);
		assert_non_null(m);
		json_decref(f);
		json_decref(m);
	}
}

static void depth_is_measured(void **state)
{
	(void)state;
	json_t *v = J("{\"a\":[{\"b\":[1]}]}");
	assert_int_equal(oh_json_depth(v), 5);
	json_decref(v);
}

static void unimplemented_keywords_are_found(void **state)
{
	(void)state;
	char where[300];
	struct {
		const char *schema, *words;
	} cases[] = {
	    {"{\"type\":\"array\",\"contains\":{\"type\":\"string\"}}",
	     "unknown keyword 'contains'"},
	    {"{\"type\":\"object\",\"properties\":{\"A\":{\"type\":\"string\",\"format\":\"email\"}"
	     "}}",
	     "properties.A: format 'email'"},
	    {"{\"type\":\"array\",\"items\":{\"oneOf\":[{\"type\":\"string\"},"
	     "{\"discriminator\":{}}]}}",
	     "items.oneOf[1]: unknown keyword 'discriminator'"},
	    {"{\"type\":\"strin\"}", "type names no known type"},
	    {"{\"type\":\"string\",\"pattern\":\"^[][A-Z]+$\"}", "pattern starts a bracket"},
	    {"{\"type\":\"string\",\"pattern\":\"^\\\\d+$\"}", "pattern uses a backslash"},
	    {"{\"not\":{\"$ref\":\"#/x\"}}", "not: unknown keyword '$ref'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *s = J(cases[i].schema);
		bool ok = oh_schema_check(s, where, sizeof where);
		json_decref(s);
		if (ok)
			fail_msg("%s passed the keyword check", cases[i].schema);
		if (!strstr(where, cases[i].words))
			fail_msg("%s: '%s' lacks '%s'", cases[i].schema, where, cases[i].words);
	}
	json_t *s = J("{\"type\":\"string\",\"description\":\"d\",\"example\":\"x\",\"x-y\":1,"
	              "\"nullable\":true,\"maxLength\":3,\"pattern\":\"^(a|b)[0-9]{1,3}$\"}");
	assert_true(oh_schema_check(s, where, sizeof where));
	json_decref(s);
}

static void pattern_dialect_rules(void **state)
{
	(void)state;
	const char *ok[] = {"^a$",
	                    "^(x|y)+$",
	                    "^[A-Za-z0-9._-]{0,63}$",
	                    "^\\[[0-9a-f:]+\\]$",
	                    "^https?://[!-~]+$",
	                    "a{2,}",
	                    "^[-a]$"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (oh_schema_pattern_check(ok[i]))
			fail_msg("%s refused: %s", ok[i], oh_schema_pattern_check(ok[i]));
	const char *bad[] = {"^[][A-Za-z]+$", "^[^a]$", "^a.b$",       "^\\d$", "(?:a)",    "a**",
	                     "^[a-z-0]$",     "a{x}",   "(a",          "a)",    "(|a)",     "a|",
	                     "\xc3\xa9",      "[a\\]]", "[[:alpha:]]", "*a",    "a{1,2}{3}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (!oh_schema_pattern_check(bad[i]))
			fail_msg("%s accepted as portable", bad[i]);
}

/* ---- openapi.yaml ------------------------------------------------------ */

static char *source_path(const char *rel)
{
	const char *src = getenv("OCTOHA_SOURCE_DIR");
	char *p = malloc(4096);
	assert_non_null(p);
	snprintf(p, 4096, "%s/%s", src && *src ? src : ".", rel);
	return p;
}

/* Runs CMD and parses its standard output as JSON. */
static json_t *run_json(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	if (!f)
		fail_msg("cannot run %s", cmd);
	json_error_t e;
	json_t *j = json_loadf(f, JSON_DECODE_ANY, &e);
	int rc = pclose(f);
	if (!j || rc != 0)
		fail_msg("%s: exit %d, output not JSON (%s)", cmd, rc, e.text);
	return j;
}

static json_t *spec;

static json_t *load_spec(void)
{
	if (spec)
		return spec;
	char *path = source_path("openapi.yaml");
	char cmd[8192];
	snprintf(cmd, sizeof cmd,
	         "python3 -c 'import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1],"
	         "encoding=\"utf-8\")), sys.stdout)' '%s'",
	         path);
	free(path);
	spec = run_json(cmd);
	return spec;
}

/* A deep copy of NODE with every local $ref replaced by its target. */
static json_t *resolve(const json_t *node, const json_t *root, int depth)
{
	if (depth > 64)
		fail_msg("$refs nest deeper than 64");
	if (json_is_object(node)) {
		const char *ref = json_string_value(json_object_get(node, "$ref"));
		if (ref) {
			if (strncmp(ref, "#/", 2) != 0)
				fail_msg("non-local $ref %s", ref);
			const json_t *t = root;
			char buf[512];
			snprintf(buf, sizeof buf, "%s", ref + 2);
			for (char *save = NULL, *part = strtok_r(buf, "/", &save); part;
			     part = strtok_r(NULL, "/", &save))
				t = json_object_get(t, part);
			if (!t)
				fail_msg("dangling $ref %s", ref);
			return resolve(t, root, depth + 1);
		}
		json_t *o = oh_json_check(json_object());
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)node, k, v)
		    oh_json_set_new(o, k, resolve(v, root, depth + 1));
		return o;
	}
	if (json_is_array(node)) {
		json_t *a = oh_json_check(json_array());
		size_t i;
		const json_t *v;
		json_array_foreach(node, i, v)
		    oh_json_check_rc(json_array_append_new(a, resolve(v, root, depth + 1)));
		return a;
	}
	return json_deep_copy(node);
}

typedef struct {
	int schemas;
	int problems;
	json_t *patterns; /* pattern -> array of the spec's examples that must match */
} walk_t;

/* Records the patterns of a (resolved) schema and the examples beside them. */
static void collect_patterns(const json_t *s, walk_t *w)
{
	if (!json_is_object(s))
		return;
	const char *pat = json_string_value(json_object_get(s, "pattern"));
	if (pat) {
		json_t *ex = json_object_get(w->patterns, pat);
		if (!ex) {
			ex = oh_json_check(json_array());
			oh_json_set_new(w->patterns, pat, ex);
		}
		const json_t *e = json_object_get(s, "example");
		if (json_is_string(e))
			oh_json_check_rc(json_array_append(ex, (json_t *)e));
	}
	const char *k;
	const json_t *v;
	json_object_foreach(json_object_get(s, "properties"), k, v) collect_patterns(v, w);
	collect_patterns(json_object_get(s, "items"), w);
	collect_patterns(json_object_get(s, "not"), w);
	collect_patterns(json_object_get(s, "additionalProperties"), w);
	static const char *const comb[] = {"oneOf", "anyOf", "allOf"};
	for (size_t c = 0; c < 3; c++) {
		size_t i;
		json_array_foreach(json_object_get(s, comb[c]), i, v) collect_patterns(v, w);
	}
}

static void schema_at(const json_t *schema, const char *where, walk_t *w)
{
	if (!schema)
		return;
	char why[400];
	w->schemas++;
	if (!oh_schema_check(schema, why, sizeof why)) {
		print_error("openapi.yaml %s: %s\n", where, why);
		w->problems++;
	}
	collect_patterns(schema, w);
}

static void content_at(const json_t *content, const char *where, walk_t *w)
{
	const char *media;
	const json_t *c;
	json_object_foreach((json_t *)content, media, c)
	{
		char sub[400];
		snprintf(sub, sizeof sub, "%s %s", where, media);
		schema_at(json_object_get(c, "schema"), sub, w);
	}
}

static void headers_at(const json_t *headers, const char *where, walk_t *w)
{
	const char *name;
	const json_t *h;
	json_object_foreach((json_t *)headers, name, h)
	{
		char sub[400];
		snprintf(sub, sizeof sub, "%s header %s", where, name);
		schema_at(json_object_get(h, "schema"), sub, w);
	}
}

static void params_at(const json_t *params, const char *where, walk_t *w)
{
	size_t i;
	const json_t *p;
	json_array_foreach(params, i, p)
	{
		char sub[400];
		snprintf(sub, sizeof sub, "%s parameter %s", where,
		         json_string_value(json_object_get(p, "name")));
		schema_at(json_object_get(p, "schema"), sub, w);
	}
}

/* Walks every schema of the (resolved) spec: parameters, request bodies,
 * responses and their headers, and every component. */
static void walk_spec(const json_t *s, walk_t *w)
{
	const char *path, *method, *name, *status;
	const json_t *item, *op, *x;
	json_object_foreach(json_object_get(s, "paths"), path, item)
	{
		params_at(json_object_get(item, "parameters"), path, w);
		json_object_foreach((json_t *)item, method, op)
		{
			if (!json_is_object(op) || strcmp(method, "parameters") == 0)
				continue;
			char where[300];
			snprintf(where, sizeof where, "%s %s", method, path);
			params_at(json_object_get(op, "parameters"), where, w);
			content_at(json_object_get(json_object_get(op, "requestBody"), "content"),
			           where, w);
			json_object_foreach(json_object_get(op, "responses"), status, x)
			{
				char sub[320];
				snprintf(sub, sizeof sub, "%s %s", where, status);
				content_at(json_object_get(x, "content"), sub, w);
				headers_at(json_object_get(x, "headers"), sub, w);
			}
		}
	}
	const json_t *comp = json_object_get(s, "components");
	json_object_foreach(json_object_get(comp, "schemas"), name, x)
	{
		char where[300];
		snprintf(where, sizeof where, "components.schemas.%s", name);
		schema_at(x, where, w);
	}
	json_object_foreach(json_object_get(comp, "parameters"), name, x)
	{
		char where[300];
		snprintf(where, sizeof where, "components.parameters.%s", name);
		schema_at(json_object_get(x, "schema"), where, w);
	}
	json_object_foreach(json_object_get(comp, "responses"), name, x)
	{
		char where[300];
		snprintf(where, sizeof where, "components.responses.%s", name);
		content_at(json_object_get(x, "content"), where, w);
		headers_at(json_object_get(x, "headers"), where, w);
	}
}

static void spec_uses_only_implemented_keywords(void **state)
{
	(void)state;
	json_t *resolved = resolve(load_spec(), load_spec(), 0);
	walk_t w = {0, 0, oh_json_check(json_object())};
	walk_spec(resolved, &w);
	print_message("openapi.yaml: %d schemas walked, %zu patterns\n", w.schemas,
	              json_object_size(w.patterns));
	assert_true(w.schemas > 100); /* the walk did reach the spec */
	assert_int_equal(w.problems, 0);
	json_decref(w.patterns);
	json_decref(resolved);
}

/* node's verdicts for CASES ([{pattern, text}]): [{"plain":b,"u":b}] where a
 * pattern that does not compile gives a string. */
static json_t *node_verdicts(const json_t *cases)
{
	char dir[] = "/tmp/octoha-patterns.XXXXXX";
	if (!mkdtemp(dir))
		fail_msg("mkdtemp failed");
	char data[256], script[256], cmd[1024];
	snprintf(data, sizeof data, "%s/cases.json", dir);
	snprintf(script, sizeof script, "%s/run.js", dir);
	assert_int_equal(json_dump_file(cases, data, 0), 0);
	FILE *f = fopen(script, "w");
	assert_non_null(f);
	fputs("const fs = require('fs');\n"
	      "const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));\n"
	      "const out = cases.map(c => {\n"
	      "  const r = {};\n"
	      "  for (const [name, flags] of [['plain', ''], ['u', 'u']]) {\n"
	      "    try { r[name] = new RegExp(c.pattern, flags).test(c.text); }\n"
	      "    catch (e) { r[name] = 'SyntaxError: ' + e.message; }\n"
	      "  }\n"
	      "  return r;\n"
	      "});\n"
	      "process.stdout.write(JSON.stringify(out));\n",
	      f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "node '%s' '%s'", script, data);
	json_t *out = run_json(cmd);
	unlink(data);
	unlink(script);
	rmdir(dir);
	return out;
}

static void spec_patterns_mean_the_same_in_both_dialects(void **state)
{
	(void)state;
	if (system("node --version >/dev/null 2>&1") != 0)
		fail_msg("node is needed to compare the patterns with ECMA-262 "
		         "(scripts/setup.sh test installs nodejs)");
	json_t *resolved = resolve(load_spec(), load_spec(), 0);
	walk_t w = {0, 0, oh_json_check(json_object())};
	walk_spec(resolved, &w);
	char *path = source_path("tests/pattern_examples.json");
	json_error_t je;
	json_t *examples = json_load_file(path, 0, &je);
	if (!examples)
		fail_msg("%s: %s", path, je.text);
	free(path);

	json_t *cases = oh_json_check(json_array());
	int problems = 0;
	const char *pat;
	json_t *spec_examples;
	json_object_foreach(w.patterns, pat, spec_examples)
	{
		const char *why = oh_schema_pattern_check(pat);
		if (why) {
			print_error("pattern %s %s\n", pat, why);
			problems++;
		}
		const json_t *ex = json_object_get(examples, pat);
		if (!ex || json_array_size(json_object_get(ex, "match")) == 0 ||
		    json_array_size(json_object_get(ex, "refuse")) == 0) {
			print_error("pattern %s has no examples to match and refuse in "
			            "tests/pattern_examples.json\n",
			            pat);
			problems++;
			continue;
		}
		static const char *const kinds[] = {"match", "refuse"};
		for (int k = 0; k < 2; k++) {
			size_t i;
			const json_t *t;
			json_array_foreach(json_object_get(ex, kinds[k]), i, t)
			{
				json_t *c = oh_json_check(json_object());
				oh_json_set_new(c, "pattern", json_string(pat));
				oh_json_set_new(c, "text", json_incref((json_t *)t));
				oh_json_set_new(c, "expect", json_boolean(k == 0));
				oh_json_check_rc(json_array_append_new(cases, c));
			}
		}
		size_t i;
		const json_t *t;
		json_array_foreach(spec_examples, i, t)
		{
			json_t *c = oh_json_check(json_object());
			oh_json_set_new(c, "pattern", json_string(pat));
			oh_json_set_new(c, "text", json_incref((json_t *)t));
			oh_json_set_new(c, "expect", json_true());
			oh_json_check_rc(json_array_append_new(cases, c));
		}
	}
	/* An entry for a pattern the spec no longer has is stale. */
	const char *k;
	const json_t *v;
	json_object_foreach(examples, k, v)
	{
		if (k[0] != '_' && !json_object_get(w.patterns, k)) {
			print_error(
			    "tests/pattern_examples.json has %s, which openapi.yaml does not "
			    "use\n",
			    k);
			problems++;
		}
	}
	json_t *verdicts = node_verdicts(cases);
	assert_int_equal(json_array_size(verdicts), json_array_size(cases));
	size_t i;
	const json_t *c;
	json_array_foreach(cases, i, c)
	{
		const char *p = json_string_value(json_object_get(c, "pattern"));
		const char *text = json_string_value(json_object_get(c, "text"));
		bool expect = json_is_true(json_object_get(c, "expect"));
		bool server = oh_schema_pattern_matches(p, text);
		const json_t *vd = json_array_get(verdicts, i);
		const json_t *plain = json_object_get(vd, "plain"), *u = json_object_get(vd, "u");
		if (!json_is_boolean(plain) || !json_is_boolean(u)) {
			print_error("pattern %s does not compile in ECMA-262: %s / %s\n", p,
			            json_string_value(plain), json_string_value(u));
			problems++;
			continue;
		}
		if (server != expect || json_is_true(plain) != expect ||
		    json_is_true(u) != expect) {
			print_error("pattern %s on \"%s\": expected %s; server %s, ECMA-262 %s, "
			            "with u %s\n",
			            p, text, expect ? "match" : "no match",
			            server ? "match" : "no match",
			            json_is_true(plain) ? "match" : "no match",
			            json_is_true(u) ? "match" : "no match");
			problems++;
		}
	}
	print_message("%zu patterns, %zu examples compared with node's RegExp\n",
	              json_object_size(w.patterns), json_array_size(cases));
	assert_true(json_object_size(w.patterns) >= 10);
	assert_int_equal(problems, 0);
	json_decref(verdicts);
	json_decref(cases);
	json_decref(examples);
	json_decref(w.patterns);
	json_decref(resolved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_object_passes),
	    cmocka_unit_test(each_rule_names_its_field),
	    cmocka_unit_test(one_of_checks_every_item),
	    cmocka_unit_test(all_of_and_not),
	    cmocka_unit_test(formats_are_checked),
	    cmocka_unit_test(length_counts_characters_not_bytes),
	    cmocka_unit_test(embedded_nul_is_refused),
	    cmocka_unit_test(long_names_stay_utf8),
	    cmocka_unit_test(depth_is_measured),
	    cmocka_unit_test(unimplemented_keywords_are_found),
	    cmocka_unit_test(pattern_dialect_rules),
	    cmocka_unit_test(spec_uses_only_implemented_keywords),
	    cmocka_unit_test(spec_patterns_mean_the_same_in_both_dialects),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(spec);
	return rc;
}
