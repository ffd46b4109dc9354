/* check.h - the whole C test framework: CHECK records a failure and carries on. */
#ifndef PYAD_CHECK_H
#define PYAD_CHECK_H

#include <stdio.h>

extern int pyad_test_failures;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, __func__,    \
                    #cond);                                                                   \
            pyad_test_failures++;                                                             \
        }                                                                                     \
    } while (0)

#define CHECK_CLOSE(x, y, tol) CHECK(fabs((x) - (y)) <= (tol) * (1.0 + fabs(y)))

/* Test suites in other files, run by test_main.c's main. */
void test_program(void); /* test_program.c: compile and replay */

#endif
