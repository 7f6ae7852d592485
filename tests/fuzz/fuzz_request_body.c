/* libFuzzer target: request body parsing as the dispatcher does it (jansson
 * with duplicate keys refused, the depth cap, then validation against the
 * operation's schema from openapi.yaml).  The first byte picks the route. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "oh_schema.h"
#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		char err[256];
		if (!api_router_init(err, sizeof err))
			abort();
		ready = true;
	}
	if (size < 1)
		return 0;
	size_t route = data[0] % api_route_count;
	const json_t *meta = api_route_meta(route);
	const json_t *schema = json_object_get(
	    json_object_get(json_object_get(json_object_get(meta, "requestBody"), "content"),
	                    "application/json"),
	    "schema");
	json_error_t je;
	json_t *body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &je);
	if (!body)
		return 0;
	oh_schema_error_t err;
	if (oh_json_depth(body) <= 32 && schema)
		(void)oh_schema_validate(schema, body, "", &err);
	json_decref(body);
	return 0;
}
