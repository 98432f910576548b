/* A workload that calls mkdir(2) on an existing directory N times in a tight loop (each call
 * fails with EEXIST, or EPERM under an enforced profile) and prints the nanoseconds per call:
 * the cost of what a complain profile logs, measured by hack/bench-complain.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR N\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        (void)mkdir(argv[1], 0755);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.0f\n", ns / (double)n);
    return 0;
}
