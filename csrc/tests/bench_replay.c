/*
 * bench_replay.c - the C side of pyad.compile alone: forward replay and forward + reverse per
 * instruction on W1, W2 and W5 programs, one point and blocks of 64 points, and hvp against
 * a gradient. Minimum of REPEATS timings, no Python in the loop. Run by `make -C csrc bench`;
 * not a test, prints figures only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../pyad.h"
#include "bench.h"

enum { N = 20000, W5_OPS = 10000, W5_IN = 100, REPEATS = 25, K = 64 };

static int64_t w1(pyad_tape *t, const int64_t *x)
{
    int64_t acc = 0;
    for (int i = 0; i + 1 < N; i++) {
        const int64_t a = got(t, pyad_log(x[i]));
        const int64_t b = got(t, pyad_mul(x[i], x[i + 1]));
        const int64_t c = got(t, pyad_sin(x[i + 1]));
        const int64_t term = got(t, pyad_sub(got(t, pyad_add(a, b)), c));
        acc = acc == 0 ? got(t, pyad_add_cv(0.0, term)) : got(t, pyad_add(acc, term));
    }
    return acc;
}

static int64_t w2(pyad_tape *t, const int64_t *x)
{
    int64_t acc = 0;
    for (int i = 0; i + 1 < N; i++) {
        const int64_t d = got(t, pyad_sub(x[i + 1], got(t, pyad_mul(x[i], x[i]))));
        const int64_t u = got(t, pyad_sub_cv(1.0, x[i]));
        const int64_t term = got(t, pyad_add(got(t, pyad_mul_cv(100.0, got(t, pyad_mul(d, d)))),
                                             got(t, pyad_mul(u, u))));
        acc = acc == 0 ? got(t, pyad_add_cv(0.0, term)) : got(t, pyad_add(acc, term));
    }
    return acc;
}

static int64_t w5(pyad_tape *t, const int64_t *x)
{
    static int64_t nodes[W5_IN + 2 * W5_OPS];
    int n = 0;
    for (; n < W5_IN; n++)
        nodes[n] = x[n];
    for (int k = 0; k < W5_OPS; k++) {
        switch (k % 4) {
        case 0:
            nodes[n] = got(t, pyad_softplus(nodes[n - 10]));
            n++;
            break;
        case 1: {
            const int64_t hs[4] = {nodes[n - 30], nodes[n - 25], nodes[n - 20], nodes[n - 15]};
            nodes[n] = got(t, pyad_push_nary(t, PYAD_OP_SUM, 4, hs, NULL));
            n++;
            break;
        }
        case 2:
            nodes[n] = got(t, pyad_mul(nodes[n - 20], nodes[n - 10]));
            n++;
            break;
        default: {
            const int64_t hs[4] = {nodes[n - 4], nodes[n - 3], nodes[n - 2], nodes[n - 1]};
            int64_t out[4];
            int st = pyad_push_softmax(t, 4, hs, NULL, out);
            if (st != PYAD_OK && st != PYAD_SEGMENT)
                return 0;
            for (int j = 0; j < 4; j++)
                nodes[n++] = out[j];
            break;
        }
        }
    }
    return nodes[n - 1];
}

static double best(double *times)
{
    double m = times[0];
    for (int r = 1; r < REPEATS; r++)
        m = times[r] < m ? times[r] : m;
    return m;
}

static void run(const char *name, int nin, int64_t (*loss)(pyad_tape *, const int64_t *),
                double (*input)(int))
{
    pyad_tape *t = NULL;
    pyad_program *p = NULL;
    int64_t *x = malloc((size_t)nin * sizeof *x), info[8];
    double *xv = malloc((size_t)nin * K * sizeof *xv);
    if (x == NULL || xv == NULL || pyad_tape_new(&t) != PYAD_OK)
        return;
    for (int i = 0; i < nin; i++)
        x[i] = got(t, pyad_push_leaf(t, xv[i] = input(i)));
    for (int k = 1; k < K; k++)
        for (int i = 0; i < nin; i++)
            xv[k * nin + i] = xv[i];
    const int64_t y = loss(t, x);
    if (pyad_program_new(t, nin, x, 1, &y, NULL, 0, NULL, NULL, NULL, &p) != PYAD_OK ||
        pyad_program_info(p, info) != PYAD_OK) {
        printf("%s: %s\n", name, pyad_tape_errmsg(t));
        return;
    }
    const double ops = (double)info[2];
    const int64_t block = 8;
    const int64_t nw1 = pyad_program_work(p, 1, 0), nwk = pyad_program_work(p, block, 0);
    const int64_t nwh = pyad_program_work(p, 1, 1);
    double *work = malloc((size_t)(nwk > nwh ? nwk : nwh) * sizeof *work);
    double *grads = malloc((size_t)nin * K * sizeof *grads), *values = malloc(K * sizeof *values);
    double *hv = malloc((size_t)nin * sizeof *hv), seed = 1.0, value;
    double fwd[REPEATS], both[REPEATS], many[REPEATS], hvp[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        pyad_program_run(p, 1, xv, 0, NULL, values, NULL, NULL, work, nw1);
        double t1 = now();
        pyad_program_run(p, 1, xv, 1, &seed, values, grads, NULL, work, nw1);
        double t2 = now();
        pyad_program_run(p, K, xv, 1, &seed, values, grads, NULL, work, nwk);
        double t3 = now();
        pyad_program_hvp(p, xv, 1, xv, &value, grads, hv, NULL, work, nwh);
        double t4 = now();
        fwd[r] = t1 - t0;
        both[r] = t2 - t1;
        many[r] = (t3 - t2) / K;
        hvp[r] = t4 - t3;
    }
    printf("%-3s %7.0f instr  forward %5.2f  fwd+rev %5.2f  per point of %d in blocks of %lld "
           "%5.2f (%.2fx)  hvp %.2fx grad  ns/instr\n",
           name, ops, best(fwd) / ops * 1e9, best(both) / ops * 1e9, K, (long long)block,
           best(many) / ops * 1e9, best(many) / best(both), best(hvp) / best(both));
    free(work);
    free(grads);
    free(values);
    free(hv);
    free(xv);
    free(x);
    pyad_program_free(p);
    pyad_tape_free(t);
}

static double readme_x(int i)
{
    return 1.0 + 0.5 * ((i * 7919) % 1000) / 1000.0;
}
static double w5_x(int i)
{
    return (double)i;
}

int main(void)
{
    run("W1", N, w1, readme_x);
    run("W2", N, w2, readme_x);
    run("W5", W5_IN, w5, w5_x);
    return 0;
}
