// Test program for argument-aware recording (seccompctl/tests/arguments.rs).
//
//   argprobe work     fork a child, open and close an AF_INET stream socket
//   argprobe userns   as `work`, and also clone a child into a new user namespace
//   argprobe probe    as `work`, then try what `work` never did and print one line per
//                     attempt: "<what> ok" or "<what> <errno name>"
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *err(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	default: return strerror(e);
	}
}

// clone(flags | SIGCHLD) as a fork: the child exits at once.
static int raw_clone(unsigned long flags)
{
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return errno;
	waitpid((pid_t)pid, 0, 0);
	return 0;
}

static int work(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0)
		_exit(0);
	waitpid(pid, 0, 0);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0) {
		printf("socket(AF_INET) %s\n", err(errno));
		return 1;
	}
	close(s);
	printf("work ok\n");
	return 0;
}

static void try_socket(const char *what, int domain, int type, int proto)
{
	int s = socket(domain, type, proto);
	printf("%s %s\n", what, s < 0 ? err(errno) : "ok");
	if (s >= 0)
		close(s);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, 0, _IONBF, 0);
	const char *mode = argc > 1 ? argv[1] : "work";
	if (work())
		return 1;
	if (!strcmp(mode, "userns")) {
		int e = raw_clone(CLONE_NEWUSER);
		printf("clone(CLONE_NEWUSER) %s\n", err(e));
		return e != 0;
	}
	if (!strcmp(mode, "probe")) {
		try_socket("socket(AF_PACKET)", AF_PACKET, SOCK_RAW, 0);
		try_socket("socket(AF_NETLINK)", AF_NETLINK, SOCK_RAW, 0);
		try_socket("socket(AF_INET,SOCK_RAW)", AF_INET, SOCK_RAW, IPPROTO_ICMP);
		printf("clone(CLONE_NEWUSER) %s\n", err(raw_clone(CLONE_NEWUSER)));
		printf("clone(CLONE_NEWNET) %s\n", err(raw_clone(CLONE_NEWNET)));
		// last: where it succeeds, the probe itself is in a new user namespace from here on
		printf("unshare(CLONE_NEWUSER) %s\n",
		       unshare(CLONE_NEWUSER) ? err(errno) : "ok");
	}
	return 0;
}
