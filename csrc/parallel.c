/*
 * parallel.c - large products on several threads: the one place pyad starts threads.
 *
 * A matvec over a large matrix is bound by how fast one core reads memory: LR's 80 MB matrix
 * takes 5-6 ms to read on one core of the 2-core VM and 1.8-2 ms on both (a C loop over
 * halves of its rows), where the arithmetic would take under 2 ms on one. So a product of at
 * least 2 * PYAD_PART_MIN multiply-adds runs on up to one thread per PYAD_PART_MIN, cut into
 * lanes, ranges of outputs (rows forward, x's adjoints in reverse) that no other lane writes,
 * done in blocks that any free thread takes (pyad__run_parts below). Every output is computed
 * by one thread in the order one thread would compute it, so the bits never depend on the
 * thread count or on which thread took which block.
 *
 * Threads are started per call (a few tens of microseconds against the milliseconds a
 * product takes), and a call returns once every part is done: no thread touches a call's
 * data after it returns, and there is no pool to lose across fork() or to shut down. A thread
 * that fails to start, or starts late, leaves its parts to the others: a product never fails
 * or waits for want of threads.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "narymath.h"
#if PYAD_HAVE_X86_CLONES
#include <immintrin.h>
#endif

/* Multiply-adds per thread below which a product stays on the caller (0.1-0.2 ms on one
   core, several times what starting a thread costs). */
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

/* A product's work is `lanes` ranges of outputs (rows forward, x's columns in reverse), each
   done in `blocks` blocks that must run in order (the rows of a column range, top first, as
   the reverse adds them); any free thread takes the next block of any lane no thread is
   working on, its own lane first. A thread that the system runs late or slowly (the other
   core busy with another program, or with numpy's BLAS threads, which keep spinning for a
   while after each call) then holds up at most the block it is on: the others take the rest,
   its lane included. Holding a whole part instead, LR's sweep took 12 ms on two threads right
   after a BLAS call where one thread takes 6.6, and its replay 11 ms where one takes 7.5.
   Helpers are detached and share the claims through a counted block, which a late helper
   frees when it leaves: it finds no block left and never touches the call's data. The caller
   returns once no lane has a block left: a lane's count moves past a block only when the
   block is done. */
#define PYAD_MAX_LANES (4 * PYAD_MAX_THREADS)
typedef struct claims {
    pyad_part_fn fn;
    void *ctx;
    uint32_t lanes, blocks;
    _Atomic uint32_t next[PYAD_MAX_LANES]; /* a lane's blocks done */
    _Atomic int busy[PYAD_MAX_LANES];      /* a thread is doing one of the lane's blocks */
    pthread_mutex_t lock;
    uint32_t users; /* under lock: the caller and the helpers holding the block */
} claims;

/* Blocks, from lane `first` on, until no lane has one left. */
static void take_blocks(claims *c, uint32_t first)
{
    for (;;) {
        int took = 0, waiting = 0;
        for (uint32_t i = 0; i < c->lanes && !took; i++) {
            const uint32_t lane = (first + i) % c->lanes;
            int idle = 0;
            if (c->next[lane] >= c->blocks)
                continue;
            if (!atomic_compare_exchange_strong(&c->busy[lane], &idle, 1)) {
                waiting = 1; /* another thread is on this lane's block */
                continue;
            }
            const uint32_t block = c->next[lane];
            if (block < c->blocks) {
                c->fn(c->ctx, lane, c->lanes, block, c->blocks);
                c->next[lane] = block + 1;
                took = 1;
            }
            c->busy[lane] = 0;
        }
        if (!took && !waiting)
            return;
        if (!took)
            sched_yield(); /* only blocks under way are left: wait for them */
    }
}

static void leave(claims *c)
{
    pthread_mutex_lock(&c->lock);
    const int last = --c->users == 0;
    pthread_mutex_unlock(&c->lock);
    if (last) {
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
}

typedef struct helper_start {
    claims *c;
    uint32_t first;
} helper_start;

static void *run_helper(void *arg)
{
    const helper_start h = *(helper_start *)arg;
    free(arg);
    take_blocks(h.c, h.first);
    leave(h.c);
    return NULL;
}

static int start_helper(claims *c, uint32_t first, const pthread_attr_t *detached)
{
    helper_start *h = malloc(sizeof *h);
    if (h == NULL)
        return 0;
    *h = (helper_start){c, first};
    pthread_mutex_lock(&c->lock);
    c->users++;
    pthread_mutex_unlock(&c->lock);
    pthread_t thread;
    if (pthread_create(&thread, detached, run_helper, h) == 0)
        return 1;
    free(h);
    leave(c); /* it never started: its blocks are left to the others */
    return 0;
}

void pyad__run_parts(pyad_part_fn fn, void *ctx, uint64_t work, uint64_t outputs,
                     uint32_t per_thread, uint32_t blocks)
{
    const uint32_t threads = pyad__threads_for(work);
    claims *c = threads > 1 && outputs > 1 ? malloc(sizeof *c) : NULL;
    pthread_attr_t detached;
    if (c != NULL && pthread_attr_init(&detached) != 0) {
        free(c);
        c = NULL;
    }
    if (c == NULL) { /* one thread's worth, or nothing to share it with */
        fn(ctx, 0, 1, 0, 1);
        return;
    }
    uint64_t lanes = (uint64_t)threads * per_thread;
    lanes = lanes < outputs ? lanes : outputs;
    c->fn = fn;
    c->ctx = ctx;
    c->lanes = (uint32_t)(lanes < PYAD_MAX_LANES ? lanes : PYAD_MAX_LANES);
    c->blocks = blocks > 0 ? blocks : 1;
    for (uint32_t i = 0; i < PYAD_MAX_LANES; i++) {
        c->next[i] = 0;
        c->busy[i] = 0;
    }
    c->users = 1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (uint32_t i = 1; i < threads && start_helper(c, i * c->lanes / threads, &detached); i++)
        ;
    pthread_attr_destroy(&detached);
    take_blocks(c, 0);
    leave(c);
}

/* ---- The matvec's loops (csrc/narymath.h) cut into parts --------------------------------- */

/* The loops that get a clone compiled for AVX2 (csrc/narymath.h and below), chosen at each
   call on an x86-64 that has it (a build for AVX2 alone would not load everywhere). A clone does
   the same integer sums, or each double's multiplications and additions in the same order, one
   rounding each (the build contracts nothing into fused multiply-adds), so the bits are the same:
   only the width of the vectors differs. */
typedef void (*axpys_fn)(double *restrict a, const double *c, uint64_t count, const double *g,
                         uint64_t jlo, uint64_t jhi, uint64_t k0, uint64_t k1);
/* four rows' terms added into a[k0 .. k1) and their stretches fingerprinted, in one pass */
typedef void (*add_print4_fn)(double *restrict a, const double *const rows[4], const double gain[4],
                              uint64_t k0, uint64_t k1, uint64_t n, uint64_t print[4][2]);
/* rows j0 .. j1 of y = C x with each row's fingerprint into prints[2j], [2j+1] */
typedef void (*rows_printing_fn)(const double *c, uint64_t count, const double *x, uint64_t j0,
                                 uint64_t j1, double *y, uint64_t *prints);
typedef struct kernels {
    axpys_fn axpys;
    pyad_print4_fn print4;
    add_print4_fn add_print4;
    rows_printing_fn rows_printing;
} kernels;

/* The body of an add_print4_fn for lanes of doubles D and words W of L lanes: each a[k] gets
   a[k] + rows[0][k] gain[0] + ... + rows[3][k] gain[3] in that order, as pyad__matvec_axpys
   adds them, and each row's stretch is fingerprinted as pyad__print_rows4 does, from the same
   loads (LR's checked reverse on two threads: 2.35-2.4 ms in two passes, one fingerprinting
   the rows from memory and one adding them from the cache; 2.0-2.1 in one with AVX2). */
#define ADD_PRINT4(D, W, L)                                                                        \
    do {                                                                                           \
        const uint64_t end = k1 - (k1 - k0) % (L);                                                 \
        W vs[4], vr[4];                                                                            \
        memset(vs, 0, sizeof vs);                                                                  \
        memset(vr, 0, sizeof vr);                                                                  \
        for (uint64_t k = k0; k < end; k += (L)) {                                                 \
            D sum;                                                                                 \
            memcpy(&sum, a + k, sizeof sum);                                                       \
            for (int e = 0; e < 4; e++) {                                                          \
                D v;                                                                               \
                W u;                                                                               \
                memcpy(&v, rows[e] + k, sizeof v);                                                 \
                memcpy(&u, &v, sizeof u);                                                          \
                sum = sum + v * gain[e];                                                           \
                vs[e] += u ^ (u >> 32);                                                            \
                vr[e] += vs[e];                                                                    \
            }                                                                                      \
            memcpy(a + k, &sum, sizeof sum);                                                       \
        }                                                                                          \
        for (uint64_t k = end; k < k1; k++) {                                                      \
            double sum = a[k];                                                                     \
            for (int e = 0; e < 4; e++)                                                            \
                sum += rows[e][k] * gain[e];                                                       \
            a[k] = sum;                                                                            \
        }                                                                                          \
        for (int e = 0; e < 4; e++)                                                                \
            pyad__print_lanes(&vs[e], &vr[e], (L), rows[e], k0, k1, n, print[e]);                  \
    } while (0)

static void axpys_portable(double *restrict a, const double *c, uint64_t count, const double *g,
                           uint64_t jlo, uint64_t jhi, uint64_t k0, uint64_t k1)
{
    pyad__matvec_axpys(a, c, count, g, jlo, jhi, k0, k1);
}

static void add_print4_portable(double *restrict a, const double *const rows[4],
                                const double gain[4], uint64_t k0, uint64_t k1, uint64_t n,
                                uint64_t print[4][2])
{
    ADD_PRINT4(PYAD_DOUBLES, PYAD_WORDS, PYAD_LANES);
}

static void rows_printing_portable(const double *c, uint64_t count, const double *x, uint64_t j0,
                                   uint64_t j1, double *y, uint64_t *prints)
{
    pyad__matvec_rows_printing(c, count, x, j0, j1, y, prints);
}

#if PYAD_HAVE_X86_CLONES
/* pyad__matvec_rows_printing for AVX2 in one pass: eight rows at a time, four columns at a
   step, the 4 x 4 blocks of each four rows turned so that a vector holds one column of four
   rows. Each row's sum then gets its terms left to right in its own lane, as
   pyad__matvec_rows adds them, and its fingerprint's words in its own lane too, one lane per
   row: s adds each word and r adds s after each, the definition's sums step by step. The
   fingerprint's integer work hides under the product's wait for memory, where a second pass
   over the rows from the cache added it on top (LR's push on two threads, C alone: product
   1.49-1.51 ms, with the second pass 2.03-2.06, in one pass 1.53-1.54). */
__attribute__((target("avx2"))) static void rows_printing_avx2(const double *c, uint64_t count,
                                                               const double *x, uint64_t j0,
                                                               uint64_t j1, double *y,
                                                               uint64_t *prints)
{
    const uint64_t end = count - count % 4;
    uint64_t j = j0;
    for (; count > 0 && j + 8 <= j1; j += 8) {
        const double *rows = c + j * count;
        __m256d sum[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()};
        __m256i vs[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        __m256i vr[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (uint64_t k = 0; k < end; k += 4) {
            const __m256d xk[4] = {_mm256_set1_pd(x[k]), _mm256_set1_pd(x[k + 1]),
                                   _mm256_set1_pd(x[k + 2]), _mm256_set1_pd(x[k + 3])};
            for (int g = 0; g < 2; g++) {
                const double *r = rows + (uint64_t)(4 * g) * count + k;
                const __m256d r0 = _mm256_loadu_pd(r), r1 = _mm256_loadu_pd(r + count),
                              r2 = _mm256_loadu_pd(r + 2 * count),
                              r3 = _mm256_loadu_pd(r + 3 * count);
                const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1),
                              t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
                const __m256d column[4] = {
                    _mm256_permute2f128_pd(t0, t2, 0x20), _mm256_permute2f128_pd(t1, t3, 0x20),
                    _mm256_permute2f128_pd(t0, t2, 0x31), _mm256_permute2f128_pd(t1, t3, 0x31)};
                for (int q = 0; q < 4; q++) {
                    const __m256i u = _mm256_castpd_si256(column[q]);
                    sum[g] = _mm256_add_pd(sum[g], _mm256_mul_pd(column[q], xk[q]));
                    vs[g] = _mm256_add_epi64(vs[g], _mm256_xor_si256(u, _mm256_srli_epi64(u, 32)));
                    vr[g] = _mm256_add_epi64(vr[g], vs[g]);
                }
            }
        }
        double sums[8];
        uint64_t s[8], r[8];
        for (int g = 0; g < 2; g++) {
            _mm256_storeu_pd(sums + 4 * g, sum[g]);
            _mm256_storeu_si256((__m256i *)(void *)(s + 4 * g), vs[g]);
            _mm256_storeu_si256((__m256i *)(void *)(r + 4 * g), vr[g]);
        }
        for (uint64_t e = 0; e < 8; e++) { /* the last count % 4 columns, one lane still */
            const double *row = rows + e * count;
            for (uint64_t k = end; k < count; k++) {
                sums[e] += row[k] * x[k];
                s[e] += pyad__print_word(row, k);
                r[e] += s[e];
            }
            y[j + e] = sums[e];
            prints[2 * (j + e)] = s[e];
            prints[2 * (j + e) + 1] = r[e];
        }
    }
    if (j < j1)
        rows_printing_portable(c, count, x, j, j1, y, prints);
}

/* LR's reverse on two threads: 1.7 -> 1.55 ms. */
__attribute__((target("avx2"))) static void axpys_avx2(double *restrict a, const double *c,
                                                       uint64_t count, const double *g,
                                                       uint64_t jlo, uint64_t jhi, uint64_t k0,
                                                       uint64_t k1)
{
    pyad__matvec_axpys(a, c, count, g, jlo, jhi, k0, k1);
}

__attribute__((target("avx2"))) static void
add_print4_avx2(double *restrict a, const double *const rows[4], const double gain[4], uint64_t k0,
                uint64_t k1, uint64_t n, uint64_t print[4][2])
{
    ADD_PRINT4(pyad_doubles4, pyad_words4, 4);
}

#endif

static _Atomic int wide_vectors = 1;

int pyad_debug_wide_vectors(int64_t wide)
{
    if (wide != 0 && wide != 1)
        return PYAD_MISUSE;
    wide_vectors = (int)wide;
    return PYAD_OK;
}

static kernels kernels_here(void)
{
#if PYAD_HAVE_X86_CLONES
    if (wide_vectors && __builtin_cpu_supports("avx2"))
        return (kernels){axpys_avx2, pyad__print_rows4_avx2, add_print4_avx2, rows_printing_avx2};
#endif
    return (kernels){axpys_portable, pyad__print_rows4, add_print4_portable,
                     rows_printing_portable};
}

typedef struct forward_job {
    const double *c, *x;
    uint64_t count, rows;
    double *y, *copy;
    uint64_t *prints;
    rows_printing_fn rows_printing;
} forward_job;

/* Rows in four lanes per thread, one block each: a lane of rows reads whole rows, however
   few. */
static void forward_part(void *ctx, uint32_t lane, uint32_t lanes, uint32_t block, uint32_t blocks)
{
    const forward_job *f = ctx;
    uint64_t lo, hi;
    (void)block;
    (void)blocks;
    pyad__part_range(f->rows, lane, lanes, &lo, &hi);
    if (f->copy != NULL)
        pyad__matvec_rows_copying(f->c, f->count, f->x, lo, hi, f->y, f->copy);
    else if (f->prints != NULL)
        f->rows_printing(f->c, f->count, f->x, lo, hi, f->y, f->prints);
    else
        pyad__matvec_rows(f->c, f->count, f->x, lo, hi, f->y);
}

void pyad__matvec_forward(const double *c, uint64_t count, const double *x, uint64_t rows,
                          double *y, double *copy, uint64_t *prints)
{
    forward_job f = {
        c, x, count, rows, y, count > 0 ? copy : NULL, prints, kernels_here().rows_printing};
    pyad__run_parts(forward_part, &f, rows * count, rows, 4, 1);
}

/* The fingerprints of rows lo .. hi whose g[j] is not 0 (all of them when g is NULL) over
   columns k0 .. k1, four rows at once (print4, pyad__print_rows4 or a clone): take(ctx, j,
   print) for each. */
typedef void (*print_taker)(void *ctx, uint64_t j, const uint64_t print[2]);
static void print_rows(pyad_print4_fn print4, const double *c, uint64_t count, const double *g,
                       uint64_t lo, uint64_t hi, uint64_t k0, uint64_t k1, print_taker take,
                       void *ctx)
{
    const double *rows[4];
    uint64_t at[4];
    unsigned n = 0;
    for (uint64_t j = lo; j < hi; j++) {
        if (g == NULL || g[j] != 0.0) {
            rows[n] = c + j * count;
            at[n++] = j;
        }
        if (n == 0 || (n < 4 && j + 1 < hi))
            continue;
        uint64_t print[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
        for (unsigned e = n; e < 4; e++)
            rows[e] = rows[0]; /* fillers, their sums dropped */
        print4(rows, k0, k1, count, print);
        for (unsigned e = 0; e < n; e++)
            take(ctx, at[e], print[e]);
        n = 0;
    }
}

typedef struct check_job {
    const double *c, *g;
    const uint64_t *prints;
    uint64_t count, jlo, jhi;
    _Atomic uint64_t first; /* the first row found changed, UINT64_MAX if none */
    pyad_print4_fn print4;
} check_job;

static void check_row(void *ctx, uint64_t j, const uint64_t print[2])
{
    check_job *k = ctx;
    if (print[0] == k->prints[2 * j] && print[1] == k->prints[2 * j + 1])
        return;
    uint64_t seen = k->first;
    while (j < seen && !atomic_compare_exchange_weak(&k->first, &seen, j))
        ;
}

/* Rows in lanes as forward_part's; the least changed row any lane finds is the call's,
   whichever thread found it. */
static void check_part(void *ctx, uint32_t lane, uint32_t lanes, uint32_t block, uint32_t blocks)
{
    check_job *k = ctx;
    uint64_t lo, hi;
    (void)block;
    (void)blocks;
    pyad__part_range(k->jhi - k->jlo, lane, lanes, &lo, &hi);
    print_rows(k->print4, k->c, k->count, k->g, k->jlo + lo, k->jlo + hi, 0, k->count, check_row,
               k);
}

uint64_t pyad__matvec_changed(const double *c, uint64_t count, const uint64_t *prints,
                              const double *g, uint64_t jlo, uint64_t jhi)
{
    check_job k = {c, g, prints, count, jlo, jhi, UINT64_MAX, kernels_here().print4};
    if (count > 0 && jhi > jlo)
        pyad__run_parts(check_part, &k, (jhi - jlo) * count, jhi - jlo, 4, 1);
    return k.first;
}

typedef struct reverse_job {
    double *a;
    const double *c, *g;
    uint64_t count, jlo, jhi;
    /* a borrowed matrix: each row's fingerprint, {s, r} at 2 (j - jlo), added up from the
       stretches the lanes read (integer sums: the same in any order); else NULL */
    _Atomic uint64_t *acc;
    kernels kernels;
} reverse_job;

typedef struct print_sink {
    _Atomic uint64_t *acc;
    uint64_t jlo;
} print_sink;

static void add_print(void *ctx, uint64_t j, const uint64_t print[2])
{
    const print_sink *sink = ctx;
    atomic_fetch_add(&sink->acc[2 * (j - sink->jlo)], print[0]);
    atomic_fetch_add(&sink->acc[2 * (j - sink->jlo) + 1], print[1]);
}

/* Rows lo .. hi (hi first) of a borrowed matrix over columns k0 .. k1: eight rows at a time,
   the stretch of each whose adjoint is not 0 fingerprinted into acc, then added while it is
   still in the cache (the matrix is read from memory once). Cutting the rows into eights
   changes no bit: pyad__matvec_axpys adds each a[k]'s terms in row order whatever it is
   given. */
static void axpys_printing(const reverse_job *r, uint64_t lo, uint64_t hi, uint64_t k0, uint64_t k1)
{
    print_sink sink = {r->acc, r->jlo};
    for (uint64_t top = hi; top > lo;) {
        const uint64_t bottom = top - lo > 8 ? top - 8 : lo;
        print_rows(r->kernels.print4, r->c, r->count, r->g, bottom, top, k0, k1, add_print, &sink);
        r->kernels.axpys(r->a, r->c, r->count, r->g, bottom, top, k0, k1);
        top = bottom;
    }
}

/* axpys_printing in one pass over the rows: those whose adjoint is not 0 four at a time
   (add_print4), the fewer than four left by axpys_printing. */
static void checked_rows(const reverse_job *r, uint64_t lo, uint64_t hi, uint64_t k0, uint64_t k1)
{
    print_sink sink = {r->acc, r->jlo};
    const double *rows[4];
    double gain[4];
    uint64_t at[4];
    unsigned n = 0;
    for (uint64_t j = hi; j-- > lo;) {
        if (r->g[j] == 0.0)
            continue;
        rows[n] = r->c + j * r->count;
        gain[n] = r->g[j];
        at[n++] = j;
        if (n < 4)
            continue;
        uint64_t print[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
        r->kernels.add_print4(r->a, rows, gain, k0, k1, r->count, print);
        for (unsigned e = 0; e < 4; e++)
            add_print(&sink, at[e], print[e]);
        n = 0;
    }
    if (n > 0) /* rows lo .. at[0] hold the ones left (and rows of adjoint 0) */
        axpys_printing(r, lo, at[0] + 1, k0, k1);
}

/* One lane of x's columns per thread (a lane reads a stretch of every row, and shorter
   stretches read memory slower: LR's reverse on 2 threads took 1.55 ms in 2 lanes, 2.9 in
   8), its rows in blocks of REVERSE_BLOCK, top first. */
#define REVERSE_BLOCK 512u
static void reverse_part(void *ctx, uint32_t lane, uint32_t lanes, uint32_t block, uint32_t blocks)
{
    const reverse_job *r = ctx;
    uint64_t k0, k1, lo, hi;
    pyad__part_range(r->count, lane, lanes, &k0, &k1);
    pyad__part_range(r->jhi - r->jlo, block, blocks, &lo, &hi);
    if (r->acc != NULL)
        checked_rows(r, r->jhi - hi, r->jhi - lo, k0, k1);
    else
        r->kernels.axpys(r->a, r->c, r->count, r->g, r->jhi - hi, r->jhi - lo, k0, k1);
}

void pyad__matvec_reverse(double *a, const double *c, uint64_t count, const double *g, uint64_t jlo,
                          uint64_t jhi)
{
    reverse_job r = {a, c, g, count, jlo, jhi, NULL, kernels_here()};
    const uint64_t rows = jhi - jlo, blocks = (rows + REVERSE_BLOCK - 1) / REVERSE_BLOCK;
    pyad__run_parts(reverse_part, &r, rows * count, count, 1, (uint32_t)blocks);
}

uint64_t pyad__matvec_reverse_checked(double *a, const double *c, uint64_t count, const double *g,
                                      uint64_t jlo, uint64_t jhi, const uint64_t *prints,
                                      _Atomic uint64_t *acc)
{
    const uint64_t rows = jhi - jlo, blocks = (rows + REVERSE_BLOCK - 1) / REVERSE_BLOCK;
    for (uint64_t i = 0; i < 2 * rows; i++)
        acc[i] = 0;
    reverse_job r = {a, c, g, count, jlo, jhi, acc, kernels_here()};
    pyad__run_parts(reverse_part, &r, rows * count, count, 1, (uint32_t)blocks);
    for (uint64_t j = jlo; j < jhi; j++)
        if (g[j] != 0.0 &&
            (acc[2 * (j - jlo)] != prints[2 * j] || acc[2 * (j - jlo) + 1] != prints[2 * j + 1]))
            return j;
    return UINT64_MAX;
}
