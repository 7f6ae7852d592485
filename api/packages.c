/* /api/{spaceId}/packages: the built-in package repository (lib/packages.c)
 * over HTTP: streamed uploads of any size, listing, download with ranges,
 * deletion. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/multipart.h"
#include "../lib/oh_json.h"
#include "../lib/oh_log.h"
#include "../lib/packages.h"
#include "../lib/spaces.h"
#include "api_handlers_gen.h"

#define PACKAGES_BASE "/api/" OH_DEFAULT_SPACE_ID "/packages"
/* Multipart framing around the file: part headers and boundaries. */
#define MULTIPART_OVERHEAD (64 * 1024)

static json_t *text_or_empty(const char *s)
{
	return json_string(s ? s : "");
}

static json_t *package_json(const oh_package_t *p, bool notes)
{
	json_t *o = oh_json_check(json_object());
	oh_json_set_new(o, "Id", json_string(p->id));
	oh_json_set_new(o, "PackageId", json_string(p->package_id));
	oh_json_set_new(o, "Version", json_string(p->version));
	oh_json_set_new(o, "FeedId", json_string("feeds-builtin"));
	oh_json_set_new(o, "FileExtension", json_string(p->ext));
	oh_json_set_new(o, "Published", oh_json_time(p->published));
	oh_json_set_new(o, "PackageSizeBytes", json_integer(p->size));
	oh_json_set_new(o, "Hash", json_string(p->sha1));
	oh_json_set_new(o, "Sha256", json_string(p->sha256));
	oh_json_set_new(o, "Title", text_or_empty(p->title[0] ? p->title : p->package_id));
	oh_json_set_new(o, "Summary", text_or_empty(p->summary));
	oh_json_set_new(o, "Description", text_or_empty(p->description));
	oh_json_set_new(o, "ReleaseNotes", text_or_empty(notes ? p->release_notes : ""));
	oh_json_set_new(o, "PublishedBy",
	                p->published_by[0] ? json_string(p->published_by) : json_null());
	oh_json_set_new(o, "SpaceId", json_string(p->space_id));
	json_t *links = oh_json_check(json_object());
	char self[320], raw[330];
	snprintf(self, sizeof self, PACKAGES_BASE "/%s", p->id);
	snprintf(raw, sizeof raw, PACKAGES_BASE "/%s/raw", p->id);
	oh_json_set_new(links, "Self", json_string(self));
	oh_json_set_new(links, "Raw", json_string(raw));
	oh_json_set_new(o, "Links", links);
	return o;
}

void api_op_pushPackage(const api_req_t *req, api_resp_t *resp)
{
	if (!api_space_check(req, resp)) {
		api_header(resp, "Connection", "close");
		return;
	}
	char boundary[OH_MULTIPART_BOUNDARY_MAX + 1];
	if (!oh_multipart_boundary(req->content_type, boundary, sizeof boundary)) {
		api_header(resp, "Connection", "close");
		api_error(resp, OH_E_UNSUPPORTED_MEDIA_TYPE,
		          "Packages are uploaded as multipart/form-data (with a boundary), the "
		          "package in a file part.",
		          NULL);
		return;
	}
	int64_t max = req->cfg->max_package_bytes;
	const char *cl = api_header_in(req, "Content-Length");
	if (max > 0 && cl && strtoll(cl, NULL, 10) > max + MULTIPART_OVERHEAD) {
		api_header(resp, "Connection", "close");
		char msg[200];
		snprintf(msg, sizeof msg,
		         "Packages larger than %" PRId64 " bytes are not accepted.", max);
		api_error(resp, OH_E_PAYLOAD_TOO_LARGE, msg, NULL);
		return;
	}
	oh_overwrite_t mode = OH_OVERWRITE_FAIL;
	const char *om = json_string_value(json_object_get(req->query, "overwriteMode"));
	if (om)
		oh_overwrite_parse(om, &mode); /* the spec's enum checked it */
	else if (json_is_true(json_object_get(req->query, "replace")))
		mode = OH_OVERWRITE_REPLACE;
	char who[200];
	api_requester(req, who, sizeof who);
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "PackagePushed", "A package was pushed.", &details);
	oh_push_t p = {.pool = req->cfg->pool,
	               .storage = req->cfg->storage,
	               .space_id = OH_DEFAULT_SPACE_ID,
	               .mode = mode,
	               .max_bytes = max,
	               .published_by = who,
	               .audit = &ev};
	oh_push_result_t *r = malloc(sizeof *r);
	if (!r) {
		json_decref(details);
		api_error(resp, OH_E_INTERNAL, NULL, NULL);
		return;
	}
	oh_package_push(&p, req->body_in, req->content_type, r);
	json_decref(details);
	char loc[320];
	switch (r->outcome) {
	case OH_PUSH_CREATED:
		snprintf(loc, sizeof loc, PACKAGES_BASE "/%s", r->package.id);
		api_header(resp, "Location", loc);
		api_json(resp, 201, package_json(&r->package, true));
		break;
	case OH_PUSH_REPLACED:
	case OH_PUSH_IGNORED: api_json(resp, 200, package_json(&r->package, true)); break;
	case OH_PUSH_EXISTS: {
		char msg[400];
		snprintf(msg, sizeof msg, "%s %s already exists (overwriteMode=FailIfExists).",
		         r->package.package_id, r->package.version);
		api_error(resp, OH_E_PACKAGE_EXISTS, msg, "fileToUpload");
		break;
	}
	case OH_PUSH_INVALID:
		api_header(resp, "Connection", "close");
		api_error(resp, OH_E_INVALID_PACKAGE, r->message, r->field);
		break;
	case OH_PUSH_TOO_LARGE:
		api_header(resp, "Connection", "close");
		api_error(resp, OH_E_PAYLOAD_TOO_LARGE, r->message, NULL);
		break;
	case OH_PUSH_NO_SPACE:
		api_header(resp, "Connection", "close");
		oh_log(OH_LOG_WARN, "package upload refused: the Packages folder is full", "rid=%s",
		       req->rid);
		api_error(resp, OH_E_INSUFFICIENT_STORAGE, NULL, NULL);
		break;
	case OH_PUSH_CUT:
		api_header(resp, "Connection", "close");
		api_error(resp, OH_E_BAD_REQUEST, r->message, NULL);
		break;
	case OH_PUSH_STORAGE:
		oh_log(OH_LOG_ERROR, "package upload failed", "rid=%s error=%s", req->rid,
		       oh_q(r->message));
		api_header(resp, "Connection", "close");
		api_error(resp, OH_E_STORAGE_UNAVAILABLE, NULL, NULL);
		break;
	case OH_PUSH_DB: api_db_error(resp, r->db); break;
	}
	free(r);
}

void api_op_listPackages(const api_req_t *req, api_resp_t *resp)
{
	if (!api_space_check(req, resp))
		return;
	api_paging_t pg;
	if (!api_paging(req, resp, &pg))
		return;
	packages_filter_t f = {
	    .space_id = OH_DEFAULT_SPACE_ID,
	    .filter = json_string_value(json_object_get(req->query, "filter")),
	    .package_id = json_string_value(json_object_get(req->query, "nuGetPackageId")),
	    .latest = json_is_true(json_object_get(req->query, "latest")),
	    .after = pg.after,
	    .skip = pg.skip,
	    .take = pg.take,
	};
	bool notes = json_is_true(json_object_get(req->query, "includeNotes"));
	oh_package_list_t l;
	db_status_t s = oh_packages_list(req->cfg->pool, &f, &l);
	if (s == DB_NO_ROWS) {
		api_paging_unknown_after(resp, "package");
		return;
	}
	if (s != DB_OK) {
		api_db_error(resp, s);
		return;
	}
	json_t *items = oh_json_check(json_array());
	for (size_t i = 0; i < l.n; i++)
		oh_json_check_rc(json_array_append_new(items, package_json(&l.v[i], notes)));
	json_t *o = api_page("Package", PACKAGES_BASE, items, l.total, f.skip, f.take);
	api_page_next(req, o, PACKAGES_BASE, l.n, &pg, l.n ? l.v[l.n - 1].id : NULL);
	api_json(resp, 200, o);
	oh_package_list_free(&l);
}

/* Reads the path's package into *P; false when it answered instead. */
static bool load(const api_req_t *req, api_resp_t *resp, oh_package_t *p)
{
	if (!api_space_check(req, resp))
		return false;
	db_status_t s = oh_package_get(req->cfg->pool, api_path_param(req, "id"), p);
	if (s == DB_OK && strcmp(p->space_id, OH_DEFAULT_SPACE_ID) == 0)
		return true;
	if (s == DB_OK || s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no package with this Id.", "id");
	else
		api_db_error(resp, s);
	return false;
}

void api_op_getPackage(const api_req_t *req, api_resp_t *resp)
{
	oh_package_t *p = malloc(sizeof *p);
	if (!p) {
		api_error(resp, OH_E_INTERNAL, NULL, NULL);
		return;
	}
	if (load(req, resp, p))
		api_json(resp, 200, package_json(p, true));
	free(p);
}

void api_op_deletePackage(const api_req_t *req, api_resp_t *resp)
{
	oh_package_t *p = malloc(sizeof *p);
	if (!p) {
		api_error(resp, OH_E_INTERNAL, NULL, NULL);
		return;
	}
	if (!api_space_check(req, resp)) {
		free(p);
		return;
	}
	oh_event_spec_t ev;
	json_t *details;
	api_audit(req, &ev, "PackageDeleted", "A package was deleted.", &details);
	db_status_t s =
	    oh_package_delete(req->cfg->pool, req->cfg->storage, api_path_param(req, "id"), &ev, p);
	json_decref(details);
	if (s == DB_NO_ROWS)
		api_error(resp, OH_E_NOT_FOUND, "There is no package with this Id.", "id");
	else if (s != DB_OK)
		api_db_error(resp, s);
	else
		api_json(resp, 200, package_json(p, true));
	free(p);
}

/* Parses a single "bytes=" range against SIZE into [*FROM, *TO].  Returns
 * 1 for a range, 0 to send the whole file (absent, or a form not
 * understood, as RFC 9110 lets a server do), -1 when unsatisfiable. */
static int parse_range(const char *h, int64_t size, int64_t *from, int64_t *to)
{
	if (!h || strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 0;
	const char *p = h + 6;
	char *end;
	if (*p == '-') {
		long long n = strtoll(p + 1, &end, 10);
		if (end == p + 1 || *end)
			return 0;
		if (n <= 0 || size == 0)
			return -1;
		*from = n >= size ? 0 : size - n;
		*to = size - 1;
		return 1;
	}
	long long a = strtoll(p, &end, 10);
	if (end == p || *end != '-' || a < 0)
		return 0;
	p = end + 1;
	long long b = size - 1;
	if (*p) {
		b = strtoll(p, &end, 10);
		if (*end || b < a)
			return 0;
	}
	if (a >= size)
		return -1;
	*from = a;
	*to = b >= size ? size - 1 : b;
	return 1;
}

void api_op_downloadPackage(const api_req_t *req, api_resp_t *resp)
{
	oh_package_t *p = malloc(sizeof *p);
	if (!p) {
		api_error(resp, OH_E_INTERNAL, NULL, NULL);
		return;
	}
	if (!load(req, resp, p)) {
		free(p);
		return;
	}
	char etag[48];
	snprintf(etag, sizeof etag, "\"%s\"", p->sha1);
	const char *inm = api_header_in(req, "If-None-Match");
	if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0)) {
		api_header(resp, "ETag", etag);
		resp->status = 304;
		free(p);
		return;
	}
	int fd = oh_package_open(req->cfg->storage, p);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		oh_log(OH_LOG_WARN, "package file missing", "id=%s file=%s error=%s", oh_q(p->id),
		       oh_q(p->file_name), strerror(e));
		api_error(resp, OH_E_NOT_FOUND,
		          "The package's file is not in the Packages folder of this node: it was "
		          "stored in a folder this node does not share.",
		          "id");
		free(p);
		return;
	}
	int64_t size = (int64_t)st.st_size, from = 0, to = size - 1;
	/* If-Range with another ETag asks for the whole (changed) file. */
	const char *if_range = api_header_in(req, "If-Range");
	int ranged = (!if_range || strcmp(if_range, etag) == 0)
	                 ? parse_range(api_header_in(req, "Range"), size, &from, &to)
	                 : 0;
	if (ranged < 0) {
		close(fd);
		char cr[64];
		snprintf(cr, sizeof cr, "bytes */%" PRId64, size);
		api_header(resp, "Content-Range", cr);
		api_error(resp, OH_E_RANGE_NOT_SATISFIABLE, NULL, "Range");
		free(p);
		return;
	}
	char disp[400];
	snprintf(disp, sizeof disp, "attachment; filename=\"%s.%s%s\"", p->package_id, p->version,
	         p->ext);
	api_header(resp, "ETag", etag);
	api_header(resp, "Accept-Ranges", "bytes");
	api_header(resp, "Content-Disposition", disp);
	if (ranged > 0) {
		char cr[96];
		snprintf(cr, sizeof cr, "bytes %" PRId64 "-%" PRId64 "/%" PRId64, from, to, size);
		api_header(resp, "Content-Range", cr);
	}
	resp->status = ranged > 0 ? 206 : 200;
	resp->content_type = "application/octet-stream";
	resp->has_file = true;
	resp->file_fd = fd;
	resp->file_off = from;
	resp->file_len = size == 0 ? 0 : to - from + 1;
	free(p);
}
