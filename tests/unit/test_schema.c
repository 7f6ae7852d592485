/* The JSON Schema subset validator: one negative test per rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "oh_schema.h"

static json_t *J(const char *text)
{
	json_error_t e;
	/* JSON_ALLOW_NUL lets the validator's own NUL check be exercised; the
	 * server's parser refuses \u0000 before validation. */
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	assert_non_null(j);
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
	    {"{\"Name\":\"a\",\"On\":\"yes\"}", "On", "a boolean"},
	    {"{\"Name\":\"a\",\"Extra\":1}", "Extra", "not a known field"},
	    {"{\"Name\":null}", "Name", "must not be null"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		oh_schema_error_t err;
		const char *field = check(OBJ, cases[i].body, &err);
		assert_non_null(field);
		assert_string_equal(field, cases[i].field);
		assert_non_null(strstr(err.message, cases[i].words));
	}
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

static void depth_is_measured(void **state)
{
	(void)state;
	json_t *v = J("{\"a\":[{\"b\":[1]}]}");
	assert_int_equal(oh_json_depth(v), 5);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_object_passes),
	    cmocka_unit_test(each_rule_names_its_field),
	    cmocka_unit_test(length_counts_characters_not_bytes),
	    cmocka_unit_test(embedded_nul_is_refused),
	    cmocka_unit_test(depth_is_measured),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
