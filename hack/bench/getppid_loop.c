// Tight getppid() loop: prints nanoseconds per call. Used by hack/bench-recorder.sh.
//   getppid_loop N               N calls of getppid()
//   getppid_loop N personality   N calls of personality(0xffffffff) (a query), one of the
//                                syscalls whose argument class the recorder captures
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 5000000;
	int tracked = argc > 2 && !strcmp(argv[2], "personality");
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (tracked)
		for (long i = 0; i < n; i++)
			syscall(SYS_personality, 0xffffffffUL);
	else
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("%.1f\n", ns / n);
	return 0;
}
