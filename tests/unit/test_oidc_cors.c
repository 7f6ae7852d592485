/* The pure parts of single sign-on and CORS: what counts as a token rather
 * than a key, which issuer and role settings are accepted, and which
 * cors-origins.  Verifying tokens needs an issuer: tests/integration/test_oidc.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "../../api/api.h"
#include "oidc.h"

static void tokens_are_told_from_keys_by_form(void **state)
{
	(void)state;
	assert_true(oh_oidc_is_jwt("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
	assert_true(oh_oidc_is_jwt("e30.e30.")); /* alg none: a token, refused later */
	assert_false(oh_oidc_is_jwt("API-7QK2M9X4TZ8R1WBN5HC3JD6FV0LPYAES"));
	assert_false(oh_oidc_is_jwt("e30.e30"));
	assert_false(oh_oidc_is_jwt("e30.e30.e30.e30"));
	assert_false(oh_oidc_is_jwt("..x"));
	assert_false(oh_oidc_is_jwt("e30..x"));
	assert_false(oh_oidc_is_jwt("e30.e30.a b"));
	assert_false(oh_oidc_is_jwt("e30.e30.a+b/c="));
	assert_false(oh_oidc_is_jwt(""));
	char big[20000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[10] = big[20] = '.';
	assert_false(oh_oidc_is_jwt(big)); /* over 16 KiB */
}

static bool accepted(const char *issuer, const char *audience, const char *roles)
{
	char err[300] = "";
	oh_oidc_opts_t o = {.issuer = issuer, .audience = audience, .role_map = roles};
	oh_oidc_t *v = oh_oidc_new(&o, err, sizeof err);
	oh_oidc_free(v);
	return v != NULL;
}

static void issuer_and_roles_are_checked(void **state)
{
	(void)state;
	assert_true(accepted("https://login.microsoftonline.com/t/v2.0", "api://x", NULL));
	assert_true(accepted("http://127.0.0.1:8080", "x", ""));
	assert_true(accepted("http://localhost/realms/r", "x", "a=Reader, b = Admin"));
	assert_false(accepted("http://login.example.com", "x", NULL)); /* plain http elsewhere */
	assert_false(accepted("http://localhost.example.com", "x", NULL));
	assert_false(accepted("https://login.example.com/?x=1", "x", NULL));
	assert_false(accepted("ftp://login.example.com", "x", NULL));
	assert_false(accepted("https://login.example.com", "", NULL));
	assert_false(accepted("https://login.example.com", "x", "admins=Root"));
	assert_false(accepted("https://login.example.com", "x", "admins"));
	assert_false(accepted("https://login.example.com", "x", "=Admin"));
}

static bool origins_ok(const char *list)
{
	char err[300];
	return api_cors_check(list, err, sizeof err);
}

static void cors_origins_are_exact_origins(void **state)
{
	(void)state;
	assert_true(origins_ok(""));
	assert_true(origins_ok("https://portal.example.com"));
	assert_true(
	    origins_ok("https://portal.example.com, http://localhost:3000,https://[::1]:8443"));
	assert_false(origins_ok("*"));
	assert_false(origins_ok("null"));
	assert_false(origins_ok("https://portal.example.com/"));
	assert_false(origins_ok("https://portal.example.com/app"));
	assert_false(origins_ok("portal.example.com"));
	assert_false(origins_ok("https://user@portal.example.com"));
	assert_false(origins_ok("https://portal.example.com:"));
	assert_false(origins_ok("https://portal.example.com:80x"));
	assert_false(origins_ok("https://a.example.com,ftp://b.example.com"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tokens_are_told_from_keys_by_form),
	    cmocka_unit_test(issuer_and_roles_are_checked),
	    cmocka_unit_test(cors_origins_are_exact_origins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
