/* check.h - the whole C test framework: CHECK records a failure and carries on. */
#ifndef PYAD_CHECK_H
#define PYAD_CHECK_H

#include <math.h>
#include <stdio.h>

#include "../pyad.h"

extern int pyad_test_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, __func__, #cond); \
            pyad_test_failures++;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_CLOSE(x, y, tol) CHECK(fabs((x) - (y)) <= (tol) * (1.0 + fabs(y)))

/* Helpers of the test files (static inline: each file gets its own copy). */
static inline pyad_tape *new_tape(void)
{
    pyad_tape *t = NULL;
    CHECK(pyad_tape_new(&t) == PYAD_OK);
    return t;
}

/* A push's handle, following a SEGMENT status to the record's handle as the frontend does. */
static inline int64_t got(pyad_tape *t, int64_t r)
{
    if (r == -(int64_t)PYAD_SEGMENT) {
        int64_t h = 0;
        CHECK(pyad_tape_last(t, &h) == PYAD_OK);
        return h;
    }
    CHECK(r > 0);
    return r;
}

static inline double value(pyad_tape *t, int64_t h)
{
    double v = NAN;
    CHECK(pyad_get_value(t, h, &v) == PYAD_OK);
    return v;
}

static inline double grad(pyad_tape *t, int64_t h)
{
    double g = NAN;
    CHECK(pyad_get_grad(t, h, &g) == PYAD_OK);
    return g;
}

static inline int64_t tape_len(pyad_tape *t)
{
    int64_t n = -1;
    CHECK(pyad_tape_len(t, &n) == PYAD_OK);
    return n;
}

/* Test suites in other files, run by test_main.c's main. */
void test_program(void); /* test_program.c: compile and replay */
void test_saved(void);   /* test_saved.c: saving and loading programs */
void test_alloc(void);   /* test_alloc.c: allocation failure at every allocation */
void test_bulk(void);    /* test_bulk.c: array pushes against one-record pushes */
void test_matvec(void);  /* test_matvec.c: pyad_push_matvec against pyad_push_dots */
void test_tape_threads(void); /* test_threads.c: tapes used from several threads */

#endif
