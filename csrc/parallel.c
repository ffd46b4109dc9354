/*
 * parallel.c - large products on several threads: the one place pyad starts threads.
 *
 * A matvec over a large matrix is bound by how fast one core reads memory: LR's 80 MB matrix
 * takes 5-6 ms to read on one core of the 2-core VM and 1.8-2 ms on both (a C loop over
 * halves of its rows), where the arithmetic would take under 2 ms on one. So a product of at
 * least 2 * PYAD_PART_MIN multiply-adds runs on up to one thread per PYAD_PART_MIN, cut into
 * a few parts per thread, each part a range of outputs (rows forward, x's adjoints in
 * reverse) that no other part writes, taken by whichever thread is free. Every output is
 * computed by one thread in the order one thread would compute it, so the bits never depend
 * on the thread count or on which thread took which part.
 *
 * Threads are started per call (a few tens of microseconds against the milliseconds a
 * product takes), and a call returns once every part is done: no thread touches a call's
 * data after it returns, and there is no pool to lose across fork() or to shut down. A thread
 * that fails to start, or starts late, leaves its parts to the others: a product never fails
 * or waits for want of threads.
 */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "narymath.h"

/* Multiply-adds below which one part is the whole (half a millisecond on one core, ten
   times what starting and joining a thread costs). */
#define PYAD_PART_MIN ((uint64_t)1 << 18)
/* More threads than this do not read memory faster on the machines pyad is measured on. */
#define PYAD_MAX_THREADS 8

/* The most threads a product may use: 0 until first asked (then PYAD_NUM_THREADS or the
   processors online, within 1 .. PYAD_MAX_THREADS). */
static _Atomic int threads_wanted;
static _Atomic uint64_t part_min = PYAD_PART_MIN;

static int clamp_threads(int64_t n)
{
    return n < 1 ? 1 : n > PYAD_MAX_THREADS ? PYAD_MAX_THREADS : (int)n;
}

static int default_threads(void)
{
    const char *env = getenv("PYAD_NUM_THREADS");
    if (env != NULL && *env != '\0') {
        char *end = NULL;
        const long n = strtol(env, &end, 10);
        if (*end == '\0' && n > 0)
            return clamp_threads(n);
    }
    return clamp_threads(sysconf(_SC_NPROCESSORS_ONLN));
}

int pyad_num_threads(int64_t n, int64_t *out)
{
    if (out == NULL || n < -1)
        return PYAD_MISUSE;
    if (n >= 0)
        threads_wanted = n == 0 ? default_threads() : clamp_threads(n);
    else if (threads_wanted == 0)
        threads_wanted = default_threads();
    *out = threads_wanted;
    return PYAD_OK;
}

int pyad_debug_part_min(int64_t work)
{
    if (work < 0)
        return PYAD_MISUSE;
    part_min = work > 0 ? (uint64_t)work : PYAD_PART_MIN;
    return PYAD_OK;
}

uint32_t pyad__threads_for(uint64_t work)
{
    if (work < 2 * part_min)
        return 1;
    int64_t threads = 1;
    pyad_num_threads(-1, &threads);
    const uint64_t most = work / part_min;
    return (uint32_t)(most < (uint64_t)threads ? most : (uint64_t)threads);
}

/* A product's parts, taken one by one by whichever thread is free, and a call that waits
   only for parts under way. A thread the system gives no time (the other core busy with
   another program, or with numpy's BLAS threads, which spin for a while after each call)
   would otherwise hold the call up until it first ran: LR's sweep on two threads took 12 ms
   right after a BLAS call that way, and 6.6 on one thread. So helpers are detached, the
   caller takes every part no helper has taken and waits only for those a helper has, and
   the claims are shared through a counted block a late helper frees when it leaves (it
   finds no part left and never touches the call's data). */
typedef struct claims {
    pyad_part_fn fn;
    void *ctx;
    uint32_t parts;
    _Atomic uint32_t next;
    pthread_mutex_t lock;
    pthread_cond_t all_done;
    uint32_t done, users; /* under lock: parts finished, and the caller and helpers holding c */
} claims;

static void take_parts(claims *c)
{
    for (uint32_t p; (p = c->next++) < c->parts;) {
        c->fn(c->ctx, p, c->parts);
        pthread_mutex_lock(&c->lock);
        if (++c->done == c->parts)
            pthread_cond_broadcast(&c->all_done);
        pthread_mutex_unlock(&c->lock);
    }
}

static void leave(claims *c)
{
    pthread_mutex_lock(&c->lock);
    const int last = --c->users == 0;
    pthread_mutex_unlock(&c->lock);
    if (last) {
        pthread_cond_destroy(&c->all_done);
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
}

static void *run_claims(void *arg)
{
    take_parts(arg);
    leave(arg);
    return NULL;
}

static int start_helper(claims *c, const pthread_attr_t *detached)
{
    pthread_t thread;
    pthread_mutex_lock(&c->lock);
    c->users++;
    pthread_mutex_unlock(&c->lock);
    if (pthread_create(&thread, detached, run_claims, c) == 0)
        return 1;
    leave(c); /* it never started: its parts are left to the others */
    return 0;
}

void pyad__run_parts(pyad_part_fn fn, void *ctx, uint64_t work, uint64_t outputs,
                     uint32_t per_thread)
{
    const uint32_t threads = pyad__threads_for(work);
    claims *c = threads > 1 && outputs > 1 ? malloc(sizeof *c) : NULL;
    pthread_attr_t detached;
    if (c != NULL && pthread_attr_init(&detached) != 0) {
        free(c);
        c = NULL;
    }
    if (c == NULL) { /* one thread's worth, or nothing to share it with */
        fn(ctx, 0, 1);
        return;
    }
    const uint64_t most = (uint64_t)threads * per_thread;
    c->fn = fn;
    c->ctx = ctx;
    c->parts = (uint32_t)(outputs < most ? outputs : most);
    c->next = 0;
    c->done = 0;
    c->users = 1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->all_done, NULL);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (uint32_t i = 1; i < threads && start_helper(c, &detached); i++)
        ;
    pthread_attr_destroy(&detached);
    take_parts(c);
    pthread_mutex_lock(&c->lock);
    while (c->done < c->parts)
        pthread_cond_wait(&c->all_done, &c->lock);
    pthread_mutex_unlock(&c->lock);
    leave(c);
}

/* ---- The matvec's loops (csrc/narymath.h) cut into parts --------------------------------- */

typedef struct forward_job {
    const double *c, *x;
    uint64_t count, rows;
    double *y, *copy;
} forward_job;

/* Rows in four parts per thread: one part of rows reads whole rows, however small. */
static void forward_part(void *ctx, uint32_t part, uint32_t parts)
{
    const forward_job *f = ctx;
    uint64_t lo, hi;
    pyad__part_range(f->rows, part, parts, &lo, &hi);
    if (f->copy != NULL)
        pyad__matvec_rows_copying(f->c, f->count, f->x, lo, hi, f->y, f->copy);
    else
        pyad__matvec_rows(f->c, f->count, f->x, lo, hi, f->y);
}

void pyad__matvec_forward(const double *c, uint64_t count, const double *x, uint64_t rows,
                          double *y, double *copy)
{
    forward_job f = {c, x, count, rows, y, count > 0 ? copy : NULL};
    pyad__run_parts(forward_part, &f, rows * count, rows, 4);
}

typedef struct reverse_job {
    double *a;
    const double *c, *g;
    uint64_t count, jlo, jhi;
} reverse_job;

static void reverse_part(void *ctx, uint32_t part, uint32_t parts)
{
    const reverse_job *r = ctx;
    uint64_t lo, hi;
    pyad__part_range(r->count, part, parts, &lo, &hi);
    pyad__matvec_axpys(r->a, r->c, r->count, r->g, r->jlo, r->jhi, lo, hi);
}

void pyad__matvec_reverse(double *a, const double *c, uint64_t count, const double *g, uint64_t jlo,
                          uint64_t jhi)
{
    reverse_job r = {a, c, g, count, jlo, jhi};
    /* one part per thread: a part of x's columns reads a stretch of every row, and shorter
       stretches read memory slower (LR's reverse, 2 threads: 1.5 ms in 2 parts, 2.9 in 8) */
    pyad__run_parts(reverse_part, &r, (jhi - jlo) * count, count, 1);
}
