/*
 * bench_matvec.c - the large product of the LR workload in C alone: y = C x for a borrowed
 * 10,000 x 1,000 matrix (80 MB) and the dot of y with a constant vector, timed as its push
 * (the product and the rows' fingerprints), its sweep (the reverse and the fingerprints
 * checked), and a program's replay of both (forward, then forward + reverse). Each on the
 * default threads, with the loops' AVX2 clones allowed and not (pyad_debug_wide_vectors),
 * the two alternated in every round, each timing after an untimed call of the same (see
 * round_of). Minimum of ROUNDS timings. Run by `make -C csrc bench`;
 * not a test, prints figures only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../pyad.h"
#include "bench.h"

enum { ROWS = 10000, COLS = 1000, ROUNDS = 15 };

typedef struct timings {
    double push, sweep, forward, both;
} timings;

static void keep_least(double *best, double t)
{
    if (*best == 0.0 || t < *best)
        *best = t;
}

/* The inputs x and the loss: the dot of C x with r. */
static int64_t record(pyad_tape *t, const double *c, const double *r, const double *xv, int64_t *x,
                      int64_t *y)
{
    if (pyad_tape_reset(t) != PYAD_OK || pyad_push_leaves(t, COLS, xv, x) < 0 ||
        pyad_push_matvec_borrowed(t, ROWS, COLS, c, x, 1, y) < 0)
        return 0;
    return got(t, pyad_push_dot(t, ROWS, NULL, r, y, NULL));
}

/* Records and sweeps on t, then replays p one way and the other, each timed after a call of
   the same that is not, so that each finds its matrix (the caller's, or the program's copy)
   in the cache as it would in an optimiser's loop: the tape, the program and the matrix stay
   from one round to the next. */
static int round_of(pyad_tape *t, const pyad_program *p, const double *c, const double *r,
                    const double *xv, double *grad, double *work, int64_t nwork, timings *best)
{
    int64_t x[COLS], *y = malloc(ROWS * sizeof *y), loss = 0;
    double value = 0.0;
    const double seed = 1.0;
    int ok = y != NULL;
    for (int timed = 0; ok && timed <= 1; timed++) {
        double t0 = now();
        loss = record(t, c, r, xv, x, y);
        if (timed)
            keep_least(&best->push, now() - t0);
        t0 = now();
        ok = loss > 0 && pyad_backward(t, loss, 1.0) == PYAD_OK;
        if (timed)
            keep_least(&best->sweep, now() - t0);
    }
    for (int timed = 0; ok && timed <= 1; timed++) {
        double t0 = now();
        ok = pyad_program_run(p, 1, xv, 0, NULL, &value, NULL, NULL, work, nwork) == PYAD_OK;
        if (timed)
            keep_least(&best->forward, now() - t0);
        t0 = now();
        ok = ok && pyad_program_run(p, 1, xv, 1, &seed, &value, grad, NULL, work, nwork) == PYAD_OK;
        if (timed)
            keep_least(&best->both, now() - t0);
    }
    free(y);
    return ok;
}

int main(void)
{
    double *c = malloc((size_t)ROWS * COLS * sizeof *c), *r = malloc(ROWS * sizeof *r);
    if (c == NULL || r == NULL)
        return 1;
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
        c[i] = (double)((i * 7919) % 1000) / 1000.0 - 0.5;
    for (int j = 0; j < ROWS; j++)
        r[j] = j % 10 == 7 ? 0.0 : (double)(j % 7 + 1) * 1e-3; /* some rows' adjoints are 0 */
    timings best[2] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    int64_t threads = 0, x[COLS], *y = malloc(ROWS * sizeof *y), loss = 0, nwork = 0;
    double xv[COLS], grad[COLS], *work = NULL;
    pyad_tape *t = NULL;
    pyad_program *p = NULL;
    for (int k = 0; k < COLS; k++)
        xv[k] = (double)(k % 17) / 17.0 - 0.5;
    int ok = y != NULL && pyad_tape_new(&t) == PYAD_OK && (loss = record(t, c, r, xv, x, y)) > 0 &&
             pyad_program_new(t, COLS, x, 1, &loss, NULL, 0, NULL, NULL, NULL, &p) == PYAD_OK &&
             (nwork = pyad_program_work(p, 1, 0)) > 0 &&
             (work = malloc((size_t)nwork * sizeof *work)) != NULL;
    pyad_num_threads(-1, &threads);
    for (int i = 0; ok && i < ROUNDS; i++)
        for (int wide = 1; ok && wide >= 0; wide--)
            ok = pyad_debug_wide_vectors(wide) == PYAD_OK &&
                 round_of(t, p, c, r, xv, grad, work, nwork, &best[wide]);
    if (!ok) {
        fprintf(stderr, "bench_matvec: a call failed\n");
        return 1;
    }
    pyad_debug_wide_vectors(1);
    printf("matvec %d x %d (borrowed), then a dot; %lld threads; ms, min of %d\n", ROWS, COLS,
           (long long)threads, ROUNDS);
    printf("%-22s %8s %8s %14s %16s\n", "loops", "push", "sweep", "replay fwd", "replay fwd+rev");
    for (int wide = 1; wide >= 0; wide--)
        printf("%-22s %8.2f %8.2f %14.2f %16.2f\n", wide ? "widest the CPU has" : "the build's own",
               best[wide].push * 1e3, best[wide].sweep * 1e3, best[wide].forward * 1e3,
               best[wide].both * 1e3);
    free(work);
    pyad_program_free(p);
    pyad_tape_free(t);
    free(y);
    free(c);
    free(r);
    return 0;
}
