/*
 * bench.h — the clocks and memory figure every benchmark row reports: wall
 * seconds, CPU seconds (a load-independent view on a shared machine) and
 * peak RSS from getrusage ru_maxrss.
 */
#ifndef COMI_BENCH_H
#define COMI_BENCH_H

#include <sys/resource.h>
#include <time.h>

/* Seconds on clock id. */
static inline double bench_clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wall seconds on the monotonic clock. */
static inline double bench_now_s(void) {
    return bench_clock_s(CLOCK_MONOTONIC);
}

/* CPU seconds of the whole process (every thread): on a shared machine the
 * wall time depends on the other jobs, this does much less. */
static inline double bench_cpu_s(void) {
    return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* CPU seconds of the calling thread only. */
static inline double bench_thread_cpu_s(void) {
    return bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
}

/* The process's peak resident set so far, MiB (ru_maxrss is in KiB on Linux). */
static inline double bench_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

#endif /* COMI_BENCH_H */
