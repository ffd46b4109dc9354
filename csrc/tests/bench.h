/* bench.h - what the C benchmarks share: a clock, and following a push to its handle. */
#ifndef PYAD_BENCH_H
#define PYAD_BENCH_H

#include <time.h>

#include "../pyad.h"

static inline double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A push's handle, following a new segment to it as the frontend does (0 if that fails). */
static inline int64_t got(pyad_tape *t, int64_t r)
{
    if (r == -(int64_t)PYAD_SEGMENT && pyad_tape_last(t, &r) != PYAD_OK)
        return 0;
    return r;
}

#endif
