/* For tools/check_tsql.py: reads "SELECT … ORDER BY …" statements, one per
 * line, and prints each as SQL Server runs it paged (db_page_sql), so the
 * T-SQL check parses the very text the dialect table makes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/dialect.h"

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		line[strcspn(line, "\n")] = '\0';
		char *paged = db_page_sql(DB_DIALECT_SQLSERVER, line);
		if (!paged) {
			fprintf(stderr, "tsql_page: cannot page: %s\n", line);
			rc = 1;
			puts("");
			continue;
		}
		puts(paged);
		free(paged);
	}
	free(line);
	return rc;
}
