/*
 * fuzz.h - what both libFuzzer harnesses (fuzz_api.c, fuzz_load.c) use: the entry point's
 * prototype, the trap that reports a broken contract, and the checks of statuses and bits.
 */
#ifndef PYAD_FUZZ_H
#define PYAD_FUZZ_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pyad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A trap, not abort(): libFuzzer reports it with the input that caused it. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* A status of status.def, with a name and a message. */
static inline int known(int st)
{
    return st >= 0 && st < pyad_status_count() && pyad_status_name(st) != NULL &&
           pyad_strstatus(st) != NULL;
}

/* The same double, bit for bit (any NaN equals any NaN). */
static inline int same_bits(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

#endif /* PYAD_FUZZ_H */
