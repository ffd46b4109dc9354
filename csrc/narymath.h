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
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* Loops that also get a clone compiled for AVX2, chosen at run time (parallel.c): x86-64
   with GCC or Clang, whose target attribute and __builtin_cpu_supports they need. */
#if defined(__x86_64__) && defined(__GNUC__)
#define PYAD_HAVE_X86_CLONES 1
#else
#define PYAD_HAVE_X86_CLONES 0
#endif

/* Vectors of 2 and 4 words or doubles, for the loops written once and compiled at two
   widths (the fingerprint's, and parallel.c's checked reverse): GCC's and Clang's vector
   extensions, whose operators act lane by lane and compile to the widest instructions the
   function's target allows. A compiler without them gets plain numbers, one lane. Loaded and
   stored with memcpy (unaligned). */
#if defined(__GNUC__)
typedef uint64_t pyad_words2 __attribute__((vector_size(16)));
typedef uint64_t pyad_words4 __attribute__((vector_size(32)));
typedef double pyad_doubles2 __attribute__((vector_size(16)));
typedef double pyad_doubles4 __attribute__((vector_size(32)));
#define PYAD_WORDS pyad_words2
#define PYAD_DOUBLES pyad_doubles2
#define PYAD_LANES 2
#else
#define PYAD_WORDS uint64_t
#define PYAD_DOUBLES double
#define PYAD_LANES 1
#endif

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

/* memcpy for a copy nothing reads soon: streaming stores (SSE2) write it to memory without
   first reading the destination into the cache and without evicting what the cache holds.
   Copying LR's 80 MB matrix took half the time (a 10,000 x 1,000 matvec computed while
   copying: 13.4 -> 7.0 ms on one core). */
static inline void pyad__stream_copy(double *restrict dst, const double *restrict src, uint64_t n)
{
#if defined(__SSE2__)
    uint64_t k = 0;
    if (((uintptr_t)dst & 15u) != 0 && n > 0) { /* doubles are 8-aligned: one puts it right */
        dst[0] = src[0];
        k = 1;
    }
    for (; k + 2 <= n; k += 2)
        _mm_stream_pd(dst + k, _mm_loadu_pd(src + k));
    if (k < n)
        dst[k] = src[k];
    _mm_sfence(); /* streaming stores are weakly ordered: done before anyone reads them */
#else
    memcpy(dst, src, (size_t)n * sizeof *dst);
#endif
}

/* pyad__matvec_rows of rows j0 .. j1, copying those rows of C into the same rows of `copy`:
   eight rows at a time, computed and then copied while they are still in the cache, so a
   matvec push reads its matrix from memory once. */
static inline void pyad__matvec_rows_copying(const double *c, uint64_t count, const double *x,
                                             uint64_t j0, uint64_t j1, double *y,
                                             double *restrict copy)
{
    for (uint64_t j = j0; j < j1; j += 8) {
        const uint64_t end = j + 8 < j1 ? j + 8 : j1;
        pyad__matvec_rows(c, count, x, j, end, y);
        pyad__stream_copy(copy + j * count, c + j * count, (end - j) * count);
    }
}

/* The fingerprint of a row of n elements of a borrowed matrix (nary.c): over the bits u_k of
   its elements, folded as f_k = u_k ^ (u_k >> 32) so that every bit, the sign and exponent
   too, moves low bits (changes that are all multiples of a large power of two, such as
   doubling every element, could otherwise add up to 0 modulo 2^64), the two sums
       print[0] = sum f_k,   print[1] = sum (n - k) f_k   (modulo 2^64).
   print[0] sees any change of one element, print[1] elements moved to other places; what
   both miss takes changes of several elements in one row that cancel in both sums. Integer
   sums are exact, so a row may be fingerprinted in stretches, in any order, on any thread,
   and the sums come out the same (pyad__print_rows4). */
static inline uint64_t pyad__print_word(const double *row, uint64_t k)
{
    uint64_t u;
    memcpy(&u, row + k, sizeof u);
    return u ^ (u >> 32);
}

/* The end of a stretch k0 .. k1 of a row of n elements fingerprinted in `lanes` lanes of
   `steps` steps each (the rest, under `lanes` elements, left over): lane l summed the words
   of elements k = k0 + lanes t + l into s[l], and r[l] added s[l] after each step, which
   weighs element k by the steps left, steps - t. Its weight in print[1] is n - k =
   (n - k1) + (rest - l) + lanes (steps - t). Adds the stretch's share to print. */
static inline void pyad__print_lanes(const void *s, const void *r, unsigned lanes,
                                     const double *row, uint64_t k0, uint64_t k1, uint64_t n,
                                     uint64_t print[2])
{
    const uint64_t rest = (k1 - k0) % lanes;
    uint64_t p0 = 0, p1 = 0;
    for (unsigned l = 0; l < lanes; l++) { /* s and r: the lanes' words, any alignment */
        uint64_t sl, rl;
        memcpy(&sl, (const char *)s + l * sizeof sl, sizeof sl);
        memcpy(&rl, (const char *)r + l * sizeof rl, sizeof rl);
        p0 += sl;
        p1 += lanes * rl + (rest - l) * sl; /* modulo 2^64, as every sum here */
    }
    for (uint64_t k = k1 - rest; k < k1; k++) {
        const uint64_t f = pyad__print_word(row, k);
        p0 += f;
        p1 += (k1 - k) * f;
    }
    print[0] += p0;
    print[1] += p1 + (n - k1) * p0;
}

/* Adds to print[i] the share of elements k0 .. k1 of rows[i] in the fingerprint of a row of
   n elements. The four rows in one loop: four streams from memory at once, where one row's
   stretch after another's reads memory slower. The loop's body for lanes of words W of L
   lanes, each lane summing every L-th element (pyad__print_lanes finishes). */
typedef void (*pyad_print4_fn)(const double *const rows[4], uint64_t k0, uint64_t k1, uint64_t n,
                               uint64_t print[4][2]);
#define PYAD_PRINT_ROWS4(W, L)                                                                     \
    do {                                                                                           \
        const uint64_t end = k1 - (k1 - k0) % (L);                                                 \
        W vs[4], vr[4];                                                                            \
        memset(vs, 0, sizeof vs);                                                                  \
        memset(vr, 0, sizeof vr);                                                                  \
        for (uint64_t k = k0; k < end; k += (L))                                                   \
            for (int i = 0; i < 4; i++) {                                                          \
                W u;                                                                               \
                memcpy(&u, rows[i] + k, sizeof u);                                                 \
                vs[i] += u ^ (u >> 32);                                                            \
                vr[i] += vs[i];                                                                    \
            }                                                                                      \
        for (int i = 0; i < 4; i++)                                                                \
            pyad__print_lanes(&vs[i], &vr[i], (L), rows[i], k0, k1, n, print[i]);                  \
    } while (0)

static inline void pyad__print_rows4(const double *const rows[4], uint64_t k0, uint64_t k1,
                                     uint64_t n, uint64_t print[4][2])
{
    PYAD_PRINT_ROWS4(PYAD_WORDS, PYAD_LANES);
}

#if PYAD_HAVE_X86_CLONES
/* pyad__print_rows4 in four lanes, for processors that have AVX2: the same sums in half the
   instructions (the checks before a compile or an operand read, and the sweep's last rows of
   a block; fingerprinting LR's push from the cache after the product with it: 2.4 -> 2.1 ms
   on two threads, before the push got a loop of its own). An AVX-512 clone in eight lanes
   made LR's push and sweep slower (2.32 -> 2.44 ms and 2.47 -> 2.66): the processor runs
   slower while it uses them. */
__attribute__((target("avx2"), unused)) static void
pyad__print_rows4_avx2(const double *const rows[4], uint64_t k0, uint64_t k1, uint64_t n,
                       uint64_t print[4][2])
{
    PYAD_PRINT_ROWS4(pyad_words4, 4);
}

#endif

/* The fingerprint of a whole row (one row in four lanes' clothing: not on a hot path). */
static inline void pyad__row_print(const double *row, uint64_t n, uint64_t print[2])
{
    const double *const rows[4] = {row, row, row, row};
    uint64_t p[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    pyad__print_rows4(rows, 0, n, n, p);
    print[0] = p[0][0];
    print[1] = p[0][1];
}

/* pyad__matvec_rows of rows j0 .. j1, with each row's fingerprint into prints[2j], [2j+1]:
   eight rows at a time, each fingerprinted while it is still in the cache (parallel.c has
   the AVX2 loop that does both in one pass). */
static inline void pyad__matvec_rows_printing(const double *c, uint64_t count, const double *x,
                                              uint64_t j0, uint64_t j1, double *y, uint64_t *prints)
{
    for (uint64_t j = j0; j < j1; j += 8) {
        const uint64_t end = j + 8 < j1 ? j + 8 : j1;
        pyad__matvec_rows(c, count, x, j, end, y);
        uint64_t i = j;
        for (; i + 4 <= end; i += 4) {
            const double *rows[4] = {c + i * count, c + (i + 1) * count, c + (i + 2) * count,
                                     c + (i + 3) * count};
            uint64_t print[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
            pyad__print_rows4(rows, 0, count, count, print);
            memcpy(prints + 2 * i, print, sizeof print);
        }
        for (; i < end; i++)
            pyad__row_print(c + i * count, count, prints + 2 * i);
    }
}

/* The reverse of rows jlo .. jhi of y = C x over x's columns k0 .. k1: a[k] += C[j,k] g[j]
   for j from jhi - 1 down to jlo, rows whose g[j] is 0 skipped, each a[k] getting its terms
   in that order (the order the tape's sweep of the rows one by one gives). Eight rows at a
   time, so each a[k] is loaded and stored once for the eight; the loops over k vectorise (no
   a[k] depends on another). LR's reverse, 10,000 x 1,000 on two threads: 2.0 ms with four
   rows at a time, 1.7 with eight (1.55 compiled for AVX2, parallel.c). */
static inline void pyad__matvec_axpys(double *restrict a, const double *c, uint64_t count,
                                      const double *g, uint64_t jlo, uint64_t jhi, uint64_t k0,
                                      uint64_t k1)
{
    const double *restrict row[8];
    double gain[8];
    unsigned npick = 0;
    for (uint64_t j = jhi; j-- > jlo;) {
        if (g[j] != 0.0) {
            row[npick] = c + j * count;
            gain[npick++] = g[j];
        }
        if (npick < 8 && (j > jlo || npick == 0))
            continue;
        if (npick == 8) {
            for (uint64_t k = k0; k < k1; k++) {
                double s = a[k];
                for (unsigned e = 0; e < 8; e++)
                    s += row[e][k] * gain[e];
                a[k] = s;
            }
        } else {
            for (unsigned e = 0; e < npick; e++)
                for (uint64_t k = k0; k < k1; k++)
                    a[k] += row[e][k] * gain[e];
        }
        npick = 0;
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
