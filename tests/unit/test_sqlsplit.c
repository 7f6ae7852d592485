/* The migration script splitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db/migrate.h"

static void splits_on_semicolons_outside_quotes_and_comments(void **state)
{
	(void)state;
	char **s;
	size_t n = db_split_sql("-- a comment; not a split\n"
	                        "CREATE TABLE a (x TEXT DEFAULT 'a;b');\n"
	                        "/* block; comment */ INSERT INTO a VALUES ('it''s; fine');\n"
	                        "  \n-- trailing comment only\n",
	                        &s);
	assert_int_equal(n, 2);
	assert_string_equal(s[0],
	                    "-- a comment; not a split\nCREATE TABLE a (x TEXT DEFAULT 'a;b')");
	assert_string_equal(s[1], "/* block; comment */ INSERT INTO a VALUES ('it''s; fine')");
	db_split_free(s, n);
}

static void go_lines_split_tsql_batches_only(void **state)
{
	(void)state;
	char **s;
	size_t n = db_split_sql("CREATE TABLE a (x INT);\nGO\n"
	                        "IF 1 = 1 BEGIN SELECT 1; SELECT 2; END\n  go  \r\n"
	                        "SELECT 3;\nGOTO_NOT_A_SEPARATOR\n",
	                        &s);
	assert_int_equal(n, 3);
	assert_string_equal(s[0], "CREATE TABLE a (x INT);");
	assert_string_equal(s[1], "IF 1 = 1 BEGIN SELECT 1; SELECT 2; END");
	assert_string_equal(s[2], "SELECT 3;\nGOTO_NOT_A_SEPARATOR");
	db_split_free(s, n);
}

static void empty_script_has_no_statements(void **state)
{
	(void)state;
	char **s;
	assert_int_equal(db_split_sql("  -- nothing\n/* at all */\n;\n", &s), 0);
	db_split_free(s, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(splits_on_semicolons_outside_quotes_and_comments),
	    cmocka_unit_test(go_lines_split_tsql_batches_only),
	    cmocka_unit_test(empty_script_has_no_statements),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
