// Kernel test helper: does what runc 1.2+ does for a user-namespaced container before the
// container's program starts. In a new mount namespace it first re-executes itself as
// /proc/self/exe (a runtime helper), which makes one syscall no program here makes
// (getcpu), and only then execs the program: argv[1] and the rest.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: selfexec PROGRAM [ARG...]\n");
		return 2;
	}
	if (strcmp(argv[0], "runtime-helper") != 0) {
		if (unshare(CLONE_NEWNS) != 0) {
			perror("unshare");
			return 1;
		}
		argv[0] = "runtime-helper";
		execv("/proc/self/exe", argv);
		perror("exec /proc/self/exe");
		return 1;
	}
	unsigned cpu, node;
	syscall(SYS_getcpu, &cpu, &node, NULL);
	execv(argv[1], argv + 1);
	perror("exec");
	return 1;
}
