/*
 * bench_sweep.c - the C side alone: recording and reverse-sweep cost per record on W1- and
 * W2-shaped tapes, with the tape in cache (swept right after recording) and out of it (64 MiB
 * of other memory touched first, as a Python program's objects do); and an array push
 * (pyad_push_map of mul over 10^6 elements) against as many one-record pushes. Minimum of 15
 * repeats. Run by `make -C csrc bench`; not a test, prints figures only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../pyad.h"
#include "bench.h"

enum { N = 20000, REPEATS = 15 };

static int64_t leaves[N];
static char elsewhere[64 << 20];

/* sum of log(x[i]) + x[i]*x[i+1] - sin(x[i+1]) */
static int64_t w1(pyad_tape *t)
{
    int64_t acc = got(t, pyad_push_leaf(t, 0.0));
    for (int i = 0; i + 1 < N; i++) {
        const int64_t a = got(t, pyad_log(leaves[i]));
        const int64_t b = got(t, pyad_mul(leaves[i], leaves[i + 1]));
        const int64_t c = got(t, pyad_sin(leaves[i + 1]));
        acc = got(t, pyad_add(acc, got(t, pyad_sub(got(t, pyad_add(a, b)), c))));
    }
    return acc;
}

/* sum of 100*(x[i+1] - x[i]*x[i])**2 + (1 - x[i])**2, squares as t*t */
static int64_t w2(pyad_tape *t)
{
    int64_t acc = got(t, pyad_push_leaf(t, 0.0));
    for (int i = 0; i + 1 < N; i++) {
        const int64_t d = got(t, pyad_sub(leaves[i + 1], got(t, pyad_mul(leaves[i], leaves[i]))));
        const int64_t u = got(t, pyad_sub_cv(1.0, leaves[i]));
        const int64_t s = got(t, pyad_mul_cv(100.0, got(t, pyad_mul(d, d))));
        acc = got(t, pyad_add(acc, got(t, pyad_add(s, got(t, pyad_mul(u, u))))));
    }
    return acc;
}

static void run(const char *name, int64_t (*loss)(pyad_tape *))
{
    double record = 1e9, warm = 1e9, cold = 1e9;
    int64_t len = 0;
    for (int cache_cold = 0; cache_cold < 2; cache_cold++) {
        for (int rep = 0; rep < REPEATS; rep++) {
            pyad_tape *t = NULL;
            if (pyad_tape_new(&t) != PYAD_OK)
                return;
            for (int i = 0; i < N; i++)
                leaves[i] = got(t, pyad_push_leaf(t, 1.0 + 0.5 * ((i * 7919) % 1000) / 1000.0));
            const double t0 = now();
            const int64_t out = loss(t);
            const double t1 = now();
            pyad_tape_len(t, &len);
            if (cache_cold)
                for (size_t q = 0; q < sizeof elsewhere; q += 64)
                    elsewhere[q]++;
            const double t2 = now();
            pyad_backward(t, out, 1.0);
            const double t3 = now();
            record = t1 - t0 < record ? t1 - t0 : record;
            if (cache_cold)
                cold = t3 - t2 < cold ? t3 - t2 : cold;
            else
                warm = t3 - t2 < warm ? t3 - t2 : warm;
            pyad_tape_free(t);
        }
    }
    printf("%s: %lld records; record %.1f ns/record; sweep %.2f ns/record in cache, %.2f out of "
           "cache\n",
           name, (long long)len, record / (double)len * 1e9, warm / (double)len * 1e9,
           cold / (double)len * 1e9);
}

/* x * y over m elements: one pyad_push_map against m calls of pyad_mul, each on a tape holding
   the 2m leaves already (grown to its size by a first push, then reset: growth is not timed).
   At 10^4 elements the tape stays in cache; at 10^6 both are bound by memory bandwidth. */
enum { M = 1000000 };
static int64_t xs[M], ys[M], out[M];
static double vs[M];

static void arrays(int m)
{
    double bulk = 1e9, one = 1e9;
    for (int i = 0; i < m; i++)
        vs[i] = 1.0 + 0.5 * ((i % 1000) * 7919 % 1000) / 1000.0;
    pyad_tape *t = NULL;
    if (pyad_tape_new(&t) != PYAD_OK)
        return;
    for (int rep = 0; rep <= REPEATS * (M / m); rep++) {
        for (int k = 0; k < 2; k++) {
            pyad_tape_reset(t);
            pyad_push_leaves(t, m, vs, xs);
            pyad_push_leaves(t, m, vs, ys);
            const double t0 = now();
            if (k == 0) {
                pyad_push_map(t, PYAD_OP_MUL, m, xs, NULL, ys, NULL, out, NULL);
            } else {
                for (int i = 0; i < m; i++)
                    out[i] = got(t, pyad_mul(xs[i], ys[i]));
            }
            const double dt = now() - t0;
            if (rep > 0 && k == 0)
                bulk = dt < bulk ? dt : bulk;
            else if (rep > 0)
                one = dt < one ? dt : one;
        }
    }
    pyad_tape_free(t);
    printf("arrays: x * y over %d elements: pyad_push_map %.2f ns/element, pyad_mul per "
           "element %.2f ns/element\n",
           m, bulk / m * 1e9, one / m * 1e9);
}

int main(void)
{
    run("W1", w1);
    run("W2", w2);
    arrays(10000);
    arrays(M);
    return 0;
}
