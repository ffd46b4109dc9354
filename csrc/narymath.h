/*
 * narymath.h - the arithmetic of the n-ary ops (sum, dot, logsumexp, softmax, matvec) on plain
 * arrays of operand values. Recording (nary.c) and replay (replay.c) both call these, so a replayed
 * value or partial is bit for bit the one a fresh recording computes.
 *
 * Operands are v[0..n); dot takes its n (w, x) pairs interleaved in 2n values.
 */
#ifndef PYAD_NARYMATH_H
#define PYAD_NARYMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Largest value, with Python's max() semantics (NaN only wins in first place). */
static inline double pyad__max_of(const double *v, int64_t n)
{
    double m = n > 0 ? v[0] : -(double)INFINITY;
    for (int64_t j = 1; j < n; j++)
        if (v[j] > m)
            m = v[j];
    return m;
}

static inline double pyad__sum_of(const double *v, int64_t n)
{
    double y = 0.0;
    for (int64_t j = 0; j < n; j++)
        y += v[j];
    return y;
}

/* sum of w_j x_j over n interleaved pairs (w0, x0, w1, x1, ...). */
static inline double pyad__dot_of(const double *wx, int64_t n)
{
    double y = 0.0;
    for (int64_t j = 0; j < n; j++)
        y += wx[2 * j] * wx[2 * j + 1];
    return y;
}

/* Rows j0 .. j1 of y = C x for C of `count` columns, row-major: y_j = 0 + C[j,0] x_0 +
   C[j,1] x_1 + ..., left to right, bit for bit pyad__dot_of over the pairs (C[j,k], x_k).
   Eight rows at a time: their sums are independent, so the processor overlaps them (a single
   sum waits on each addition) and the compiler packs them into vector lanes, and no row's
   order changes (LR's 10,000 x 1,000 matrix, replay forward: 6.46 ms with four rows, 5.91
   with eight). */
static inline void pyad__matvec_rows(const double *c, uint64_t count, const double *x, uint64_t j0,
                                     uint64_t j1, double *y)
{
    uint64_t j = j0;
    if (count == 0) { /* no columns (the matrix may be NULL then): every row sums nothing */
        for (; j < j1; j++)
            y[j] = 0.0;
        return;
    }
    for (; j + 8 <= j1; j += 8) {
        const double *r = c + j * count;
        double a[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
        for (uint64_t k = 0; k < count; k++) {
            const double xk = x[k];
            for (int e = 0; e < 8; e++)
                a[e] += r[(uint64_t)e * count + k] * xk;
        }
        for (int e = 0; e < 8; e++)
            y[j + (uint64_t)e] = a[e];
    }
    for (; j < j1; j++) {
        const double *cj = c + j * count;
        double yj = 0.0;
        for (uint64_t k = 0; k < count; k++)
            yj += cj[k] * x[k];
        y[j] = yj;
    }
}

/* pyad__matvec_rows of all `rows` rows, copying C into `copy` as it reads it: a matvec push
   reads its matrix once instead of once to compute and once to copy. */
static inline void pyad__matvec_rows_copying(const double *c, uint64_t count, const double *x,
                                             uint64_t rows, double *y, double *restrict copy)
{
    uint64_t j = 0;
    for (; j + 4 <= rows; j += 4) {
        const double *c0 = c + j * count, *c1 = c0 + count, *c2 = c1 + count, *c3 = c2 + count;
        double *d0 = copy + j * count, *d1 = d0 + count, *d2 = d1 + count, *d3 = d2 + count;
        double y0 = 0.0, y1 = 0.0, y2 = 0.0, y3 = 0.0;
        for (uint64_t k = 0; k < count; k++) {
            const double xk = x[k], a0 = c0[k], a1 = c1[k], a2 = c2[k], a3 = c3[k];
            d0[k] = a0;
            d1[k] = a1;
            d2[k] = a2;
            d3[k] = a3;
            y0 += a0 * xk;
            y1 += a1 * xk;
            y2 += a2 * xk;
            y3 += a3 * xk;
        }
        y[j] = y0;
        y[j + 1] = y1;
        y[j + 2] = y2;
        y[j + 3] = y3;
    }
    if (j < rows) {
        memcpy(copy + j * count, c + j * count, (size_t)((rows - j) * count) * sizeof *copy);
        pyad__matvec_rows(c, count, x, j, rows, y);
    }
}

/* logsumexp, and the max m and sum s its partials need. */
static inline double pyad__lse_of(const double *v, int64_t n, double *m, double *s)
{
    *m = pyad__max_of(v, n);
    *s = 0.0;
    if (isinf(*m))
        return *m; /* all -inf gives -inf, any +inf gives +inf; partials in pyad__lse_partial */
    for (int64_t j = 0; j < n; j++)
        *s += exp(v[j] - *m);
    return *m + log(*s);
}

static inline double pyad__lse_partial(double v, double m, double s)
{
    if (isinf(m))
        return (m > 0.0 && v == m) ? 1.0 : 0.0;
    return exp(v - m) / s;
}

/* softmax into y[0..n): exp(v_j - m) / sum, m the largest v. */
static inline void pyad__softmax_of(const double *v, int64_t n, double m, double *y)
{
    double s = 0.0;
    for (int64_t j = 0; j < n; j++) {
        y[j] = exp(v[j] - m);
        s += y[j];
    }
    for (int64_t j = 0; j < n; j++)
        y[j] /= s;
}

/* The index of softmax's largest output (the first of equals) and the sum of the others. */
static inline int64_t pyad__softmax_top(const double *y, int64_t n, double *rest)
{
    int64_t top = 0;
    for (int64_t j = 1; j < n; j++)
        if (y[j] > y[top])
            top = j;
    double r = 0.0;
    for (int64_t j = 0; j < n; j++)
        if (j != top)
            r += y[j];
    *rest = r;
    return top;
}

/* 1 - y_i to full relative precision, from pyad__softmax_top's result: where y_i is near 1,
   1.0 - y_i keeps only the rounding error of y_i (a saturated softmax would get a zero or
   wrong partial), so the largest output takes the sum of the others. Every other output is
   at most 1/2 (it is no larger than the largest), so 1.0 - y_i loses nothing there. */
static inline double pyad__softmax_rest(const double *y, int64_t i, int64_t top, double rest)
{
    return i == top ? rest : 1.0 - y[i];
}

/* d y_i / d v_j of softmax from its outputs, ci = 1 - y_i from pyad__softmax_rest. */
static inline double pyad__softmax_partial(double yi, double ci, double yj, int same)
{
    return same ? yi * ci : yi * (0.0 - yj);
}

#endif /* PYAD_NARYMATH_H */
