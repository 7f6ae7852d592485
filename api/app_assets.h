/* The status page's files, embedded at build time by tools/embed_app.py
 * from api/app/ (no CDN, no build tool chain: the files are served as
 * they are written). */
#ifndef API_APP_ASSETS_H
#define API_APP_ASSETS_H

#include <stddef.h>

typedef struct {
	const char *name;         /* "index.html", "app.js", … */
	const char *content_type; /* with charset for text */
	const unsigned char *data;
	size_t len;
} api_asset_t;

extern const api_asset_t api_app_assets[];
extern const size_t api_app_asset_count;

#endif
