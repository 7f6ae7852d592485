/* LD_PRELOAD shim for the tests: every fdatasync takes 40 ms longer, as on
 * a slow or busy share.  test_faults_pg.py runs a node with it to show that
 * file I/O cannot delay lease renewal. */
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	struct timespec ts = {0, 40 * 1000000L};
	nanosleep(&ts, NULL);
	return real ? real(fd) : -1;
}
