#include "task_run.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "oh_json.h"

extern const oh_task_kind_t oh_task_kind_diagnostic;
extern const oh_task_kind_t oh_task_kind_drain;
extern const oh_task_kind_t oh_task_kind_undrain;
extern const oh_task_kind_t oh_task_kind_set_task_cap;
extern const oh_task_kind_t oh_task_kind_archive_events;
extern const oh_task_kind_t oh_task_kind_webhook;
extern const oh_task_kind_t oh_task_kind_chat_reply;
extern const oh_task_kind_t oh_task_kind_verify_storage;
extern const oh_task_kind_t oh_task_kind_set_storage_paths;
extern const oh_task_kind_t oh_task_kind_register_tentacle;
extern const oh_task_kind_t oh_task_kind_refresh_tentacle_servers;
extern const oh_task_kind_t oh_task_kind_tentacle_health;
extern const oh_task_kind_t oh_task_kind_cluster_probe;
extern const oh_task_kind_t oh_task_kind_package_retention;
extern const oh_task_kind_t oh_task_kind_discover_cluster;
extern const oh_task_kind_t oh_task_kind_managed_drain;
extern const oh_task_kind_t oh_task_kind_managed_undrain;
extern const oh_task_kind_t oh_task_kind_managed_task_cap;
extern const oh_task_kind_t oh_task_kind_check_managed_tentacles;
extern const oh_task_kind_t oh_task_kind_maintenance_run;

static const oh_task_kind_t *const kinds[] = {
    &oh_task_kind_diagnostic,
    &oh_task_kind_drain,
    &oh_task_kind_undrain,
    &oh_task_kind_set_task_cap,
    &oh_task_kind_archive_events,
    &oh_task_kind_webhook,
    &oh_task_kind_chat_reply,
    &oh_task_kind_verify_storage,
    &oh_task_kind_set_storage_paths,
    &oh_task_kind_register_tentacle,
    &oh_task_kind_refresh_tentacle_servers,
    &oh_task_kind_tentacle_health,
    &oh_task_kind_cluster_probe,
    &oh_task_kind_package_retention,
    &oh_task_kind_discover_cluster,
    &oh_task_kind_managed_drain,
    &oh_task_kind_managed_undrain,
    &oh_task_kind_managed_task_cap,
    &oh_task_kind_check_managed_tentacles,
    &oh_task_kind_maintenance_run,
};

const oh_task_kind_t *oh_task_kind_find(const char *name)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return kinds[i];
	return NULL;
}

bool oh_task_should_stop(const oh_task_run_t *run)
{
	return atomic_load(run->cancel) || atomic_load(run->lost) ||
	       (run->shutdown && atomic_load(run->shutdown));
}

bool oh_task_sleep(const oh_task_run_t *run, int64_t ms)
{
	while (ms > 0) {
		if (oh_task_should_stop(run))
			return false;
		int64_t step = ms < 20 ? ms : 20;
		struct timespec ts = {0, (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return !oh_task_should_stop(run);
}

void oh_task_log_fd(int fd, const char *level, const char *text)
{
	if (fd < 0)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char when[40];
	oh_format_time((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, when, sizeof when);
	char line[1200];
	int n = snprintf(line, sizeof line, "%s %-5s %s\n", when, level, text);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
	if (len == sizeof line - 1)
		line[len - 1] = '\n';
	/* O_APPEND keeps whole lines; fdatasync makes each one survive a crash. */
	if (write(fd, line, len) == (ssize_t)len)
		fdatasync(fd);
}

void oh_task_log(const oh_task_run_t *run, const char *fmt, ...)
{
	char text[1000];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	oh_task_log_fd(run->log_fd, "INFO", text);
}

void oh_task_progress(const oh_task_run_t *run, int percent, const char *fmt, ...)
{
	char text[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (atomic_load(run->lost))
		return;
	if (oh_tasks_progress(run->pool, run->task->id, run->owner, run->task->attempt, percent,
	                      text) == DB_NO_ROWS)
		atomic_store(run->lost, true);
}

/* Task ids are generated here ("ServerTasks-" and hex), but the path is
 * built only from ids that look like that, never from raw input. */
static bool safe_id(const char *id)
{
	if (strncmp(id, OH_TASK_ID_PREFIX, strlen(OH_TASK_ID_PREFIX)) != 0)
		return false;
	for (const char *p = id + strlen(OH_TASK_ID_PREFIX); *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return strlen(id) > strlen(OH_TASK_ID_PREFIX);
}

int oh_task_log_open(const char *dir, const char *id)
{
	if (!safe_id(id))
		return -1;
	char path[4200];
	snprintf(path, sizeof path, "%s/%s.log", dir, id);
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

char *oh_task_log_read(const char *const *dirs, size_t n, const char *id, size_t *len, bool *found)
{
	*len = 0;
	*found = false;
	if (!safe_id(id))
		return strdup("");
	int fd = -1;
	for (size_t i = 0; i < n && fd < 0; i++) {
		char path[4200];
		snprintf(path, sizeof path, "%s/%s.log", dirs[i], id);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		/* An error in the current folder is one; a folder used before a
		 * change may be gone for good and is passed over. */
		if (fd < 0 && errno != ENOENT && i == 0)
			return NULL;
	}
	if (fd < 0)
		return strdup("");
	*found = true;
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) == 0 && st.st_size < 64 * 1024 * 1024) {
		buf = malloc((size_t)st.st_size + 1);
		if (buf) {
			ssize_t got = 0, r;
			while (got < st.st_size &&
			       (r = read(fd, buf + got, (size_t)(st.st_size - got))) > 0)
				got += r;
			buf[got] = '\0';
			*len = (size_t)got;
		}
	}
	close(fd);
	return buf;
}

void oh_task_log_remove(const char *dir, const char *id)
{
	if (!safe_id(id))
		return;
	char path[4200];
	snprintf(path, sizeof path, "%s/%s.log", dir, id);
	unlink(path);
}
