/*
 * test_matvec.c - pyad_push_matvec and pyad_push_matvec_borrowed against pyad_push_dots of the
 * same operands on another tape: the same values, operands and partials, statistics and,
 * after a sweep, grads, bit for bit, with x's slots consecutive or not (repeats too) and
 * groups over several segments; the tape holds the matrix once (or, borrowed, its rows'
 * fingerprints); a failed push records nothing; compile, replay at one point and at blocks of
 * points, hvp, and save/load give what the dots' program gives, bit for bit. A borrowed matrix
 * changed in place fails a sweep, a compile and pyad_get_operands that need the changed rows,
 * and leaves the tape as it was; its token comes back once its records are gone.
 */
#include <stdlib.h>
#include <string.h>

#include "../narymath.h"
#include "../program.h"
#include "check.h"

static uint64_t rng = 0x853c49e6748fea9bULL;

static double uniform(double lo, double hi)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(rng >> 11) * 0x1p-53;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int64_t nbytes(pyad_tape *t)
{
    int64_t n = -1;
    CHECK(pyad_tape_nbytes(t, &n) == PYAD_OK);
    return n;
}

static uint32_t slot(int64_t h)
{
    return (uint32_t)h & PYAD_SLOT_MASK;
}

/* One tape's recording of a scene: `fill` filler leaves, count leaves x, the product y = C x
   (by matvec or by dots over x's operand list), and out = sum_j w_j y_j^2. */
typedef struct recording {
    pyad_tape *t;
    int64_t *x, *y, out;
} recording;

typedef struct scene {
    int64_t nout, count, fill;
    int consecutive; /* x's list is the leaves in order, else a shuffle with repeats */
    double *c, *w, *xv;
    int64_t *pick;   /* operand k is leaf pick[k] */
} scene;

enum mode { MATVEC, DOTS, BORROWED };
#define TOKEN 77

static recording record(const scene *sc, enum mode mode)
{
    recording r = {new_tape(), malloc((size_t)sc->count * sizeof(int64_t)),
                   malloc((size_t)sc->nout * sizeof(int64_t)), 0};
    double *filler = calloc((size_t)sc->fill + 1, sizeof *filler);
    int64_t *hf = malloc(((size_t)sc->fill + 1) * sizeof *hf);
    int st = pyad_push_leaves(r.t, sc->fill, filler, hf);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    st = pyad_push_leaves(r.t, sc->count, sc->xv, r.x);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    const size_t n = (size_t)sc->count;
    int64_t *hx = malloc((n ? n : 1) * sizeof *hx);
    for (size_t k = 0; k < n; k++)
        hx[k] = r.x[sc->pick[k]];
    if (mode == DOTS) {
        int64_t *tiled = malloc(((size_t)sc->nout * n + 1) * sizeof *tiled);
        for (int64_t j = 0; j < sc->nout; j++)
            memcpy(tiled + (size_t)j * n, hx, n * sizeof *hx);
        st = pyad_push_dots(r.t, sc->nout, sc->count, NULL, sc->c, tiled, NULL, r.y);
        free(tiled);
    } else if (mode == BORROWED) {
        st = pyad_push_matvec_borrowed(r.t, sc->nout, sc->count, sc->c, hx, TOKEN, r.y);
    } else {
        st = pyad_push_matvec(r.t, sc->nout, sc->count, sc->c, hx, r.y);
    }
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    int64_t *sq = malloc((size_t)sc->nout * sizeof *sq);
    st = pyad_push_map(r.t, PYAD_OP_MUL, sc->nout, r.y, NULL, r.y, NULL, sq, NULL);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    r.out = got(r.t, pyad_push_dot(r.t, sc->nout, NULL, sc->w, sq, NULL));
    free(sq);
    free(hx);
    free(hf);
    free(filler);
    return r;
}

static void drop(recording *r)
{
    pyad_tape_free(r->t);
    free(r->x);
    free(r->y);
}

static scene make_scene(int64_t nout, int64_t count, int64_t fill, int consecutive)
{
    scene sc = {nout, count, fill, consecutive, NULL, NULL, NULL, NULL};
    const size_t n = (size_t)count, m = (size_t)nout;
    sc.c = malloc((m * n + 1) * sizeof *sc.c);
    sc.w = malloc(m * sizeof *sc.w);
    sc.xv = malloc((n + 1) * sizeof *sc.xv);
    sc.pick = malloc((n + 1) * sizeof *sc.pick);
    for (size_t e = 0; e < m * n; e++)
        sc.c[e] = e % 17 == 3 ? 0.0 : uniform(-2.0, 2.0);
    for (size_t j = 0; j < m; j++) /* some rows with a zero adjoint, which the sweeps skip */
        sc.w[j] = j % 5 == 2 || j % 11 == 0 ? 0.0 : uniform(-1.0, 1.0);
    for (size_t k = 0; k < n; k++) {
        sc.xv[k] = uniform(-3.0, 3.0);
        sc.pick[k] = consecutive ? (int64_t)k : (int64_t)((k * 7 + 3) % (n > 2 ? n - 1 : n));
    }
    return sc;
}

static void free_scene(scene *sc)
{
    free(sc->c);
    free(sc->w);
    free(sc->xv);
    free(sc->pick);
}

/* The records, operands and grads of the two recordings agree bit for bit. */
static void compare_tapes(const scene *sc, recording *a, recording *b)
{
    for (int64_t j = 0; j < sc->nout; j++) {
        CHECK(slot(a->y[j]) == slot(b->y[j]));
        CHECK(same_bits(value(a->t, a->y[j]), value(b->t, b->y[j])));
        const int64_t cap = sc->count + 1;
        int64_t *ha = malloc((size_t)cap * 2 * sizeof *ha), *hb = ha + cap, na = -1, nb = -1;
        double *pa = malloc((size_t)cap * 2 * sizeof *pa), *pb = pa + cap;
        CHECK(pyad_get_operands(a->t, a->y[j], cap, ha, pa, &na) == PYAD_OK);
        CHECK(pyad_get_operands(b->t, b->y[j], cap, hb, pb, &nb) == PYAD_OK);
        CHECK(na == nb && na == sc->count);
        for (int64_t k = 0; k < na && k < nb; k++)
            CHECK(slot(ha[k]) == slot(hb[k]) && same_bits(pa[k], pb[k]));
        int op = -1;
        CHECK(pyad_get_op(a->t, a->y[j], &op) == PYAD_OK && op == PYAD_OP_MATVEC);
        free(ha);
        free(pa);
    }
    int64_t ca[PYAD_OP_COUNT], cb[PYAD_OP_COUNT], da = -1, db = -2;
    CHECK(pyad_tape_stats(a->t, ca, &da) == PYAD_OK && pyad_tape_stats(b->t, cb, &db) == PYAD_OK);
    CHECK(da == db && ca[PYAD_OP_MATVEC] == sc->nout && cb[PYAD_OP_DOT] == sc->nout + 1);
    CHECK(same_bits(value(a->t, a->out), value(b->t, b->out)));
    CHECK(pyad_backward(a->t, a->out, 1.0) == PYAD_OK);
    CHECK(pyad_backward(b->t, b->out, 1.0) == PYAD_OK);
    for (int64_t k = 0; k < sc->count; k++)
        CHECK(same_bits(grad(a->t, a->x[k]), grad(b->t, b->x[k])));
    for (int64_t j = 0; j < sc->nout; j++)
        CHECK(same_bits(grad(a->t, a->y[j]), grad(b->t, b->y[j])));
}

static uint64_t mat_held(const pyad_tape *t)
{
    uint64_t held = 0;
    for (uint32_t c = 0; c < t->cap_chunks; c++)
        held += t->chunks[c].mat_cap;
    return held;
}

/* The matrix is held once: the mat arrays hold its block, nothing more; a borrowed one, its
   address and two numbers a row. */
static void check_storage(const scene *sc, const recording *a, enum mode mode)
{
    CHECK(mat_held(a->t) == (mode == BORROWED ? 3 + 2 * (uint64_t)sc->nout
                                              : 2 + (uint64_t)sc->nout * (uint64_t)sc->count));
}

static pyad_program *compile(const scene *sc, const recording *r)
{
    pyad_program *p = NULL;
    CHECK(pyad_program_new(r->t, sc->count, r->x, 1, &r->out, NULL, 0, NULL, NULL, NULL, &p) ==
          PYAD_OK);
    return p;
}

static double *work_for(const pyad_program *p, int64_t points, int64_t dirs, int64_t *n)
{
    *n = pyad_program_work(p, points, dirs);
    CHECK(*n > 0);
    return malloc((size_t)*n * sizeof(double));
}

/* values and grads at k points, and hvp at the first in two directions */
static void replay(const pyad_program *p, int64_t nin, int64_t k, const double *x, double *vals,
                   double *grads, double *hv)
{
    int64_t nw;
    double *work = work_for(p, k, 0, &nw), seed = 1.0;
    CHECK(pyad_program_run(p, k, x, 1, &seed, vals, grads, NULL, work, nw) == PYAD_OK);
    free(work);
    work = work_for(p, 1, 2, &nw);
    double *v = malloc(2 * ((size_t)nin + 1) * sizeof *v), value0,
           *g = malloc(((size_t)nin + 1) * sizeof *g);
    for (int64_t i = 0; i < 2 * nin; i++)
        v[i] = (double)((i * 37) % 11) / 11.0 - 0.5; /* the same directions for every program */
    CHECK(pyad_program_hvp(p, x, 2, v, &value0, g, hv, NULL, work, nw) == PYAD_OK);
    CHECK(same_bits(value0, vals[0]));
    for (int64_t i = 0; i < nin; i++)
        CHECK(same_bits(g[i], grads[i]));
    free(v);
    free(g);
    free(work);
}

/* The programs compiled from both tapes, their replays at K points (in one block, and one
   at a time), hvp, against each other and against fresh recordings; then the matvec one saved
   and loaded back. */
static void compare_programs(const scene *sc, const recording *a, const recording *b)
{
    enum { K = 3 };
    const int64_t n = sc->count;
    pyad_program *pa = compile(sc, a), *pb = compile(sc, b);
    double *x = malloc(((size_t)n * K + 1) * sizeof *x);
    for (int64_t e = 0; e < n * K; e++)
        x[e] = e < n ? sc->xv[e] : uniform(-3.0, 3.0);
    const size_t ng = (size_t)n * K + 1;
    double va[K], vb[K], v1[K], *ga = malloc(ng * sizeof *ga), *gb = malloc(ng * sizeof *gb),
                                *g1 = malloc(ng * sizeof *g1);
    double *ha = malloc(2 * ng * sizeof *ha), *hb = malloc(2 * ng * sizeof *hb);
    replay(pa, n, K, x, va, ga, ha);
    replay(pb, n, K, x, vb, gb, hb);
    for (int q = 0; q < K; q++) {
        int64_t nw;
        double *work = work_for(pa, 1, 0, &nw), seed = 1.0;
        CHECK(pyad_program_run(pa, 1, x + q * n, 1, &seed, v1 + q, g1 + q * n, NULL, work, nw) ==
              PYAD_OK);
        free(work);
    }
    for (int q = 0; q < K; q++)
        CHECK(same_bits(va[q], vb[q]) && same_bits(va[q], v1[q]));
    for (int64_t e = 0; e < n * K; e++)
        CHECK(same_bits(ga[e], gb[e]) && same_bits(ga[e], g1[e]));
    for (int64_t e = 0; e < 2 * n; e++)
        CHECK(same_bits(ha[e], hb[e]));
    /* a fresh recording at the second point */
    scene s2 = *sc;
    s2.xv = x + n;
    recording f = record(&s2, MATVEC);
    CHECK(same_bits(value(f.t, f.out), va[1]));
    CHECK(pyad_backward(f.t, f.out, 1.0) == PYAD_OK);
    for (int64_t k = 0; k < n; k++)
        CHECK(same_bits(grad(f.t, f.x[k]), ga[n + k]));
    drop(&f);
    /* saved and loaded: the same replay, and the same bytes saved again */
    int64_t len = 0, len2 = 0;
    CHECK(pyad_program_save(pa, NULL, 0, &len) == PYAD_OK);
    uint8_t *buf = malloc((size_t)len), *buf2 = NULL;
    CHECK(pyad_program_save(pa, buf, len, &len) == PYAD_OK);
    pyad_program *pl = NULL;
    char msg[200];
    CHECK(pyad_program_load(buf, len, &pl, msg, sizeof msg) == PYAD_OK);
    if (pl != NULL) {
        CHECK(pyad_program_save(pl, NULL, 0, &len2) == PYAD_OK && len2 == len);
        buf2 = malloc((size_t)len2);
        CHECK(pyad_program_save(pl, buf2, len2, &len2) == PYAD_OK);
        CHECK(memcmp(buf, buf2, (size_t)len) == 0);
        replay(pl, n, K, x, vb, gb, hb);
        for (int q = 0; q < K; q++)
            CHECK(same_bits(va[q], vb[q]));
        for (int64_t e = 0; e < n * K; e++)
            CHECK(same_bits(ga[e], gb[e]));
        for (int64_t e = 0; e < 2 * n; e++)
            CHECK(same_bits(ha[e], hb[e]));
        /* the matrix once in the program too, and once in the file */
        CHECK(pl->nmat == (uint64_t)sc->nout * (uint64_t)sc->count && pa->nmat == pl->nmat);
        CHECK((uint64_t)len < 8 * pl->nmat + 64 * (uint64_t)(sc->nout + sc->count) + 2000);
    }
    pyad_program_free(pl);
    free(buf);
    free(buf2);
    free(x);
    free(ga);
    free(gb);
    free(g1);
    free(ha);
    free(hb);
    pyad_program_free(pa);
    pyad_program_free(pb);
}

static void against_dots(int64_t nout, int64_t count, int64_t fill, int consecutive)
{
    scene sc = make_scene(nout, count, fill, consecutive);
    const enum mode modes[2] = {MATVEC, BORROWED};
    for (int m = 0; m < 2; m++) {
        const enum mode mode = modes[m];
        recording a = record(&sc, mode), b = record(&sc, DOTS);
        check_storage(&sc, &a, mode);
        compare_tapes(&sc, &a, &b);
        compare_programs(&sc, &a, &b);
        drop(&a);
        drop(&b);
    }
    free_scene(&sc);
}

/* Refused calls record nothing: the tape's length and bytes are as they were. */
static void test_refused(void)
{
    pyad_tape *t = new_tape(), *u = new_tape();
    double xs[3] = {1.0, 2.0, 3.0}, c[6] = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0};
    int64_t x[3], ux[3], out[2];
    CHECK(pyad_push_leaves(t, 3, xs, x) == PYAD_OK && pyad_push_leaves(u, 3, xs, ux) == PYAD_OK);
    const int64_t len = tape_len(t), bytes = nbytes(t);
    int64_t bad[3] = {x[0], 0, x[2]}, foreign[3] = {x[0], ux[1], x[2]};
    CHECK(pyad_push_matvec(t, 2, 3, c, bad, out) == PYAD_MISUSE);
    CHECK(pyad_push_matvec(t, 2, 3, c, foreign, out) == PYAD_STALE);
    CHECK(pyad_push_matvec(t, 2, 3, NULL, x, out) == PYAD_MISUSE);
    CHECK(pyad_push_matvec(t, 2, 3, c, x, NULL) == PYAD_MISUSE);
    CHECK(pyad_push_matvec(t, -1, 3, c, x, out) == PYAD_MISUSE);
    CHECK(pyad_push_matvec(t, 2, -1, c, x, out) == PYAD_MISUSE);
    CHECK(pyad_push_matvec(NULL, 2, 3, c, x, out) == PYAD_MISUSE);
    CHECK(pyad_push_matvec(t, 0, 3, NULL, NULL, NULL) == PYAD_OK);
    CHECK(pyad_tape_set_debug(t, 1) == PYAD_OK);
    c[4] = INFINITY;
    CHECK(pyad_push_matvec(t, 2, 3, c, x, out) == PYAD_NONFINITE);
    CHECK(strstr(pyad_tape_errmsg(t), "at output 1") != NULL);
    c[4] = 5.0;
    CHECK(pyad_tape_set_debug(t, 0) == PYAD_OK);
    CHECK(pyad_tape_set_max_bytes(t, bytes + 8) == PYAD_OK);
    static double big[64 * 1024];
    int64_t many[64];
    CHECK(pyad_push_matvec(t, 1024, 64, big, (int64_t[64]){0}, many) == PYAD_MISUSE);
    int64_t xr[64];
    for (int k = 0; k < 64; k++)
        xr[k] = x[k % 3];
    int64_t *outs = malloc(1024 * sizeof *outs);
    CHECK(pyad_push_matvec(t, 1024, 64, big, xr, outs) == PYAD_FULL);
    CHECK(tape_len(t) == len && nbytes(t) == bytes);
    CHECK(pyad_tape_set_max_bytes(t, 0) == PYAD_OK);
    /* and then it works; zero columns give zeros */
    CHECK(pyad_push_matvec(t, 2, 3, c, x, out) == PYAD_OK);
    CHECK(value(t, out[0]) == 14.0 && value(t, out[1]) == 32.0);
    CHECK(pyad_push_matvec(t, 2, 0, NULL, NULL, out) == PYAD_OK);
    CHECK(value(t, out[0]) == 0.0 && value(t, out[1]) == 0.0);
    CHECK(pyad_backward(t, out[1], 1.0) == PYAD_OK);
    free(outs);
    pyad_tape_free(t);
    pyad_tape_free(u);
}

/* A segment's worth of filler leaves, which opens a segment (pinned, as the frontend would
   hold it): its chunk. */
static uint32_t filler_segment(pyad_tape *t)
{
    static double zeros[PYAD_CHUNK];
    int64_t h[PYAD_CHUNK];
    CHECK(pyad_push_leaves(t, PYAD_CHUNK, zeros, h) == PYAD_SEGMENT);
    return slot(h[PYAD_CHUNK - 1]) >> PYAD_CHUNK_BITS;
}

static void unpin_chunk(pyad_tape *t, uint32_t c)
{
    const int st = pyad_tape_unpin(t, pyad__handle(t, c << PYAD_CHUNK_BITS));
    if (st != PYAD_OK)
        fprintf(stderr, "unpin %u: %d %s\n", c, st, pyad_tape_errmsg(t));
    CHECK(st == PYAD_OK);
}

/* A group over six segments, its first output in a segment of its own: once every segment
   but the one of output 2500 is unpinned and collected, that output keeps the first one's
   segment, and the matrix, alive (the others are gone); once it goes too, the matrix is
   freed. */
static void test_collected(void)
{
    pyad_tape *t = new_tape();
    enum { ROWS = 6000, COLS = 5, KEPT = 2500 };
    double xs[PYAD_CHUNK] = {1, 2, 3, 4, 5}, *c = malloc(ROWS * COLS * sizeof *c);
    for (int e = 0; e < ROWS * COLS; e++)
        c[e] = (double)(e % 7) - 3.0;
    int64_t x[PYAD_CHUNK], *y = malloc(ROWS * sizeof *y);
    CHECK(pyad_push_leaves(t, PYAD_CHUNK, xs, x) == PYAD_OK); /* fills segment 0 */
    CHECK(pyad_push_matvec(t, ROWS, COLS, c, x, y) == PYAD_SEGMENT);
    const uint32_t head = slot(y[0]) >> PYAD_CHUNK_BITS,
                   last = slot(y[ROWS - 1]) >> PYAD_CHUNK_BITS;
    const uint32_t kept = slot(y[KEPT]) >> PYAD_CHUNK_BITS;
    CHECK((slot(y[0]) & PYAD_CHUNK_MASK) == 0 && last == head + 5);
    uint32_t fill[8];
    for (int k = 0; k < 8; k++)
        fill[k] = filler_segment(t);
    for (uint32_t ch = head; ch <= last; ch++)
        if (ch != kept)
            unpin_chunk(t, ch);
    for (int k = 0; k < 7; k++)
        unpin_chunk(t, fill[k]);
    CHECK(t->chunks[head].state == PYAD_CHUNK_USED);
    CHECK(t->chunks[head + 1].state == PYAD_CHUNK_FREE);
    CHECK(mat_held(t) == 2 + ROWS * COLS);
    double expect = 0.0;
    for (int k = 0; k < COLS; k++)
        expect += c[KEPT * COLS + k] * xs[k];
    CHECK(value(t, y[KEPT]) == expect);
    double v = 0.0;
    CHECK(pyad_get_value(t, y[1500], &v) == PYAD_STALE);
    CHECK(pyad_backward(t, y[KEPT], 2.0) == PYAD_OK);
    for (int k = 0; k < COLS; k++)
        CHECK(grad(t, x[k]) == c[KEPT * COLS + k] * 2.0);
    int64_t hs[COLS + 1], n = -1;
    double ps[COLS + 1];
    CHECK(pyad_get_operands(t, y[KEPT], COLS + 1, hs, ps, &n) == PYAD_OK && n == COLS);
    /* the kept output goes too: the matrix with its segment */
    unpin_chunk(t, kept);
    for (int k = 0; k < 8; k++)
        (void)filler_segment(t);
    for (uint32_t ch = 0; ch < t->cap_chunks; ch++)
        if (t->chunks[ch].state == PYAD_CHUNK_USED && ch != t->cur && ch != 0 &&
            t->chunks[ch].pins > 0)
            unpin_chunk(t, ch);
    CHECK(t->chunks[head].state == PYAD_CHUNK_FREE || t->cur == head);
    CHECK(mat_held(t) == 0);
    free(c);
    free(y);
    pyad_tape_free(t);
}

/* The fingerprint by its definition (narymath.h), one element at a time. */
static void print_by_definition(const double *row, uint64_t n, uint64_t print[2])
{
    print[0] = print[1] = 0;
    for (uint64_t k = 0; k < n; k++) {
        print[0] += pyad__print_word(row, k);
        print[1] += (n - k) * pyad__print_word(row, k);
    }
}

static int same_print(const double *a, const double *b, uint64_t n)
{
    uint64_t pa[2], pb[2];
    pyad__row_print(a, n, pa);
    pyad__row_print(b, n, pb);
    return pa[0] == pb[0] && pa[1] == pb[1];
}

/* The AVX2 clone of pyad__print_rows4 where the processor has one, else the same. */
static void print_rows4_wide(const double *const rows[4], uint64_t k0, uint64_t k1, uint64_t n,
                             uint64_t print[4][2])
{
#if PYAD_HAVE_X86_CLONES
    if (__builtin_cpu_supports("avx2")) {
        pyad__print_rows4_avx2(rows, k0, k1, n, print);
        return;
    }
#endif
    pyad__print_rows4(rows, k0, k1, n, print);
}

/* Fingerprints: the definition, in stretches cut anywhere and taken in any order (by the
   AVX2 clone too), and changes
   that a plain sum of the bits would miss. */
static void test_prints(void)
{
    enum { N = 8192 };
    double *row = malloc(N * sizeof *row), *other = malloc(N * sizeof *other);
    for (int k = 0; k < N; k++)
        row[k] = uniform(0.5, 1.0);
    const uint64_t lengths[] = {0, 1, 2, 3, 4, 5, 7, 8, 13, 64, 1001, N};
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        const uint64_t n = lengths[i];
        uint64_t want[2], got_[2];
        print_by_definition(row, n, want);
        pyad__row_print(row, n, got_);
        CHECK(got_[0] == want[0] && got_[1] == want[1]);
        for (uint64_t cut = 0; cut <= n; cut++) { /* two stretches, the second first */
            const double *const rows[4] = {row + n % 2, row, row, row};
            uint64_t p[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
            pyad__print_rows4(rows, cut, n, n, p);
            pyad__print_rows4(rows, 0, cut, n, p);
            CHECK(p[1][0] == want[0] && p[3][1] == want[1]);
            uint64_t p2[4][2] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
            print_rows4_wide(rows, cut, n, n, p2);
            print_rows4_wide(rows, 0, cut, n, p2);
            CHECK(memcmp(p, p2, sizeof p) == 0);
            if (cut > 64 && cut + 64 < n)
                cut += 60;
        }
    }
    /* a doubling of every element of a row of 8192 (the exponents' sum is a multiple of
       2^64 then), two neighbours swapped, two signs flipped, and the last bit of one
       element: all seen */
    memcpy(other, row, N * sizeof *row);
    for (int k = 0; k < N; k++)
        other[k] *= 2.0;
    CHECK(!same_print(row, other, N));
    memcpy(other, row, N * sizeof *row);
    other[10] = row[11];
    other[11] = row[10];
    CHECK(!same_print(row, other, N));
    other[10] = row[10];
    other[12] = row[14];
    other[14] = row[12];
    CHECK(!same_print(row, other, N));
    memcpy(other, row, N * sizeof *row);
    other[0] = -row[0];
    other[8] = -row[8];
    CHECK(!same_print(row, other, N));
    memcpy(other, row, N * sizeof *row);
    other[N - 1] = nextafter(row[N - 1], 2.0);
    CHECK(!same_print(row, other, N));
    CHECK(same_print(row, row, N));
    free(row);
    free(other);
}

/* The grads of every record of t, chunk by chunk in age order, for comparing a tape before
   and after a failed call (slots past a chunk's fill were never written: left out). */
static double *all_grads(const pyad_tape *t, size_t *n)
{
    double *g = malloc((size_t)t->norder * PYAD_CHUNK * sizeof *g);
    *n = 0;
    for (uint32_t k = 0; k < t->norder; k++) {
        const uint32_t c = t->order[k], fill = t->chunks[c].fill;
        memcpy(g + *n, t->grad + ((size_t)c << PYAD_CHUNK_BITS), fill * sizeof *g);
        *n += fill;
    }
    return g;
}

/* A borrowed matrix changed in place: the sweeps, compiles and operand reads that need a
   changed row fail with CHANGED and change nothing (grads accumulated by an earlier sweep
   included); those that need none of them, or a row whose adjoint is 0, go on; with the
   matrix as it was, everything works again. On one thread and on five. */
static void changed_scene(int64_t nout, int64_t count, int consecutive)
{
    scene sc = make_scene(nout, count, 3, consecutive);
    recording a = record(&sc, BORROWED), b = record(&sc, MATVEC);
    CHECK(pyad_backward(a.t, a.out, 1.0) == PYAD_OK); /* grads to keep through the failures */
    CHECK(pyad_backward(b.t, b.out, 1.0) == PYAD_OK);
    const int64_t len = tape_len(a.t), bytes = nbytes(a.t);
    size_t nbefore = 0, nafter = 0;
    double *before = all_grads(a.t, &nbefore);
    /* the last row with a nonzero adjoint (w_j != 0), and one whose adjoint is 0 */
    int64_t hot = -1, cold = -1;
    for (int64_t j = 0; j < nout; j++)
        *(sc.w[j] != 0.0 ? &hot : &cold) = j;
    CHECK(hot >= 0 && cold >= 0 && count > 0);
    double *cell = sc.c + hot * count + count / 2, old = *cell;
    *cell = nextafter(old, 10.0);
    CHECK(pyad_backward(a.t, a.out, 1.0) == PYAD_CHANGED);
    CHECK(strstr(pyad_tape_errmsg(a.t), "changed in place") != NULL);
    double *after = all_grads(a.t, &nafter);
    CHECK(nafter == nbefore && memcmp(before, after, nbefore * sizeof *before) == 0);
    free(after);
    CHECK(tape_len(a.t) == len && nbytes(a.t) == bytes);
    pyad_program *p = NULL;
    CHECK(pyad_program_new(a.t, count, a.x, 1, &a.out, NULL, 0, NULL, NULL, NULL, &p) ==
          PYAD_CHANGED);
    CHECK(p == NULL);
    int64_t *hs = malloc(((size_t)count + 1) * sizeof *hs), n = -1;
    double *ps = malloc(((size_t)count + 1) * sizeof *ps);
    CHECK(pyad_get_operands(a.t, a.y[hot], count, hs, ps, &n) == PYAD_CHANGED);
    CHECK(pyad_get_operands(a.t, a.y[cold], count, hs, ps, &n) == PYAD_OK && n == count);
    /* a sweep from an output other than the changed one's reads no changed row */
    CHECK(pyad_backward(a.t, a.y[hot == 0 ? 1 : 0], 0.5) == PYAD_OK);
    CHECK(pyad_backward(b.t, b.y[hot == 0 ? 1 : 0], 0.5) == PYAD_OK);
    *cell = old;
    sc.c[cold * count] = -sc.c[cold * count] - 1.0; /* a row of zero adjoint: never read */
    CHECK(pyad_backward(a.t, a.out, 1.0) == PYAD_OK);
    CHECK(pyad_backward(b.t, b.out, 1.0) == PYAD_OK);
    for (int64_t k = 0; k < count; k++)
        CHECK(same_bits(grad(a.t, a.x[k]), grad(b.t, b.x[k])));
    free(hs);
    free(ps);
    free(before);
    drop(&a);
    drop(&b);
    free_scene(&sc);
}

/* A sweep whose gathering of a group's adjoints (over three segments) finds no memory fails
   with NOMEM and changes nothing; then it works, with the grads of a matvec without the
   failure. */
static void test_sweep_out_of_memory(void)
{
    scene sc = make_scene(2500, 40, 3, 1);
    recording a = record(&sc, BORROWED), b = record(&sc, BORROWED);
    CHECK(pyad_backward(a.t, a.out, 1.0) == PYAD_OK); /* grads to keep: the chunks are dirty */
    CHECK(pyad_backward(b.t, b.out, 1.0) == PYAD_OK);
    int failures = 0, st = PYAD_NOMEM;
    for (int64_t k = 1; st == PYAD_NOMEM && k < 20; k++) {
        size_t nbefore = 0, nafter = 0;
        double *before = all_grads(a.t, &nbefore);
        const int64_t bytes = nbytes(a.t);
        CHECK(pyad_debug_fail_alloc(k) == PYAD_OK);
        st = pyad_backward(a.t, a.out, 1.0);
        CHECK(pyad_debug_fail_alloc(0) == PYAD_OK);
        double *after = all_grads(a.t, &nafter);
        if (st == PYAD_NOMEM) {
            failures++;
            CHECK(nafter == nbefore && memcmp(before, after, nbefore * sizeof *before) == 0);
            CHECK(nbytes(a.t) == bytes);
        }
        free(before);
        free(after);
    }
    CHECK(st == PYAD_OK && failures >= 1);
    CHECK(pyad_backward(b.t, b.out, 1.0) == PYAD_OK);
    for (int64_t k = 0; k < sc.count; k++)
        CHECK(same_bits(grad(a.t, a.x[k]), grad(b.t, b.x[k])));
    drop(&a);
    drop(&b);
    free_scene(&sc);
}

static void test_changed(void)
{
    changed_scene(9, 6, 1);
    changed_scene(9, 6, 0);
    changed_scene(2500, 300, 1); /* over three segments */
}

/* Tokens come back once no record reads their matrix: after the collection of its group's
   first segment, and at a reset; each once, however small the caller's buffer. */
static void test_released(void)
{
    pyad_tape *t = new_tape();
    double xs[PYAD_CHUNK] = {1, 2, 3, 4}, c[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t x[PYAD_CHUNK], y[2], tokens[3], n = -1;
    CHECK(pyad_push_leaves(t, PYAD_CHUNK, xs, x) == PYAD_OK); /* fills segment 0 */
    CHECK(pyad_tape_released(t, 3, tokens, &n) == PYAD_OK && n == 0);
    CHECK(pyad_tape_released(t, -1, tokens, &n) == PYAD_MISUSE);
    CHECK(pyad_tape_released(t, 3, NULL, &n) == PYAD_MISUSE);
    CHECK(pyad_tape_released(t, 3, tokens, NULL) == PYAD_MISUSE);
    for (int64_t k = 0; k < 5; k++)
        CHECK(pyad_push_matvec_borrowed(t, 2, 4, c, x, 100 + k, y) == (k ? PYAD_OK : PYAD_SEGMENT));
    const uint32_t first = slot(y[0]) >> PYAD_CHUNK_BITS;
    CHECK(pyad_tape_released(t, 3, tokens, &n) == PYAD_OK && n == 0);
    /* the groups' segment collected, as in test_collected */
    uint32_t fill[8];
    for (int k = 0; k < 8; k++)
        fill[k] = filler_segment(t);
    unpin_chunk(t, first);
    for (int k = 0; k < 7; k++)
        unpin_chunk(t, fill[k]);
    CHECK(t->chunks[first].state == PYAD_CHUNK_FREE);
    int64_t seen = 0, sum = 0;
    do {
        CHECK(pyad_tape_released(t, 2, tokens, &n) == PYAD_OK);
        for (int64_t k = 0; k < n; k++)
            sum += tokens[k];
        seen += n;
    } while (n == 2);
    CHECK(seen == 5 && sum == 5 * 100 + 10);
    CHECK(pyad_tape_released(t, 3, tokens, &n) == PYAD_OK && n == 0);
    /* a reset releases every borrow */
    const int st = pyad_push_matvec_borrowed(t, 2, 4, c, x, 7, y);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    CHECK(pyad_tape_reset(t) == PYAD_OK);
    CHECK(pyad_tape_released(t, 3, tokens, &n) == PYAD_OK && n == 1 && tokens[0] == 7);
    pyad_tape_free(t);
}

/* A record that nothing kept, in a segment kept for another record's sake: its handle still
   resolves, but once its operand's segment is collected pyad_get_operands refuses it (STALE)
   instead of naming a record gone (the API fuzzer found one). */
static void test_operands_of_unkept(void)
{
    pyad_tape *t = new_tape();
    static double zeros[PYAD_CHUNK];
    int64_t h[PYAD_CHUNK];
    CHECK(pyad_push_leaves(t, PYAD_CHUNK, zeros, h) == PYAD_OK); /* fills segment 0 */
    const uint32_t leaves = filler_segment(t);
    const int64_t leaf = pyad__handle(t, leaves << PYAD_CHUNK_BITS);
    const int64_t unkept = pyad_push_v(t, PYAD_OP_TANH, leaf);
    CHECK(unkept == -PYAD_SEGMENT);
    int64_t u = 0, z = 0, n = -1, hs[2];
    double ps[2];
    CHECK(pyad_tape_opened(t, &u) == PYAD_OK);
    CHECK(pyad_push_leaves(t, 1, zeros, &z) == PYAD_OK);
    CHECK(pyad_push_leaves(t, PYAD_CHUNK - 2, zeros, h) == PYAD_OK); /* segment of u is full */
    CHECK(pyad_push_v(t, PYAD_OP_SIN, z) == -PYAD_SEGMENT);       /* kept: it uses z */
    int64_t w = 0;
    CHECK(pyad_tape_opened(t, &w) == PYAD_OK);
    CHECK(pyad_get_operands(t, u, 2, hs, ps, &n) == PYAD_OK && n == 1 && hs[0] == leaf);
    uint32_t fill[8];
    for (int k = 0; k < 8; k++)
        fill[k] = filler_segment(t);
    unpin_chunk(t, leaves);
    unpin_chunk(t, slot(u) >> PYAD_CHUNK_BITS);
    for (int k = 0; k < 7; k++)
        unpin_chunk(t, fill[k]);
    CHECK(t->chunks[leaves].state == PYAD_CHUNK_FREE);
    CHECK(t->chunks[slot(u) >> PYAD_CHUNK_BITS].state == PYAD_CHUNK_USED);
    double v = 0.0;
    CHECK(pyad_get_value(t, u, &v) == PYAD_OK); /* still resolves */
    CHECK(pyad_get_operands(t, u, 2, hs, ps, &n) == PYAD_STALE);
    CHECK(strstr(pyad_tape_errmsg(t), "nothing kept") != NULL);
    CHECK(pyad_get_operands(t, w, 2, hs, ps, &n) == PYAD_OK && n == 1 && hs[0] == z);
    pyad_tape_free(t);
}

/* A group whose later rows lie in reused segments of lower slots than their row index (the
   sweep once read adjoints at slot - row, off the buffer): grads exact, by integers. */
static void test_low_slots(void)
{
    enum { ROWS = 4000, COLS = 3 };
    double *c = malloc(ROWS * COLS * sizeof *c), xs[PYAD_CHUNK] = {1, 2, 3};
    for (int e = 0; e < ROWS * COLS; e++)
        c[e] = (double)(e % 7) - 3.0;
    for (int borrowed = 0; borrowed < 2; borrowed++) {
        pyad_tape *t = new_tape();
        int64_t x[PYAD_CHUNK], *y = malloc(ROWS * sizeof *y);
        CHECK(pyad_push_leaves(t, PYAD_CHUNK, xs, x) == PYAD_OK); /* fills segment 0 */
        uint32_t fill[10];
        for (int k = 0; k < 10; k++)
            fill[k] = filler_segment(t);
        for (int k = 0; k < 9; k++) /* segments 1 .. 9 go back on the free list */
            unpin_chunk(t, fill[k]);
        const int st = borrowed ? pyad_push_matvec_borrowed(t, ROWS, COLS, c, x, 1, y)
                                : pyad_push_matvec(t, ROWS, COLS, c, x, y);
        CHECK(st == PYAD_SEGMENT);
        int low = 0;
        for (int j = 0; j < ROWS; j++)
            low |= slot(y[j]) < (uint32_t)j;
        CHECK(low);
        int64_t w = got(t, pyad_push_nary(t, PYAD_OP_SUM, ROWS, y, NULL));
        CHECK(pyad_backward(t, w, 1.0) == PYAD_OK);
        for (int k = 0; k < COLS; k++) {
            double want = 0.0;
            for (int j = 0; j < ROWS; j++)
                want += c[j * COLS + k];
            CHECK(grad(t, x[k]) == want);
        }
        free(y);
        pyad_tape_free(t);
    }
    free(c);
}

/* pyad_num_threads: set, read, clamp, default, refusals. */
static void test_num_threads(void)
{
    int64_t n = 0, before = 0;
    CHECK(pyad_num_threads(-1, &before) == PYAD_OK && before >= 1 && before <= 8);
    CHECK(pyad_num_threads(3, &n) == PYAD_OK && n == 3);
    CHECK(pyad_num_threads(-1, &n) == PYAD_OK && n == 3);
    CHECK(pyad_num_threads(1000000, &n) == PYAD_OK && n == 8);
    CHECK(pyad_num_threads(-2, &n) == PYAD_MISUSE && n == 8);
    CHECK(pyad_num_threads(1, NULL) == PYAD_MISUSE);
    CHECK(pyad_num_threads(0, &n) == PYAD_OK && n >= 1 && n <= 8);
    CHECK(pyad_num_threads(before, &n) == PYAD_OK && n == before);
}

static void scenarios(void)
{
    against_dots(5, 4, 0, 1);
    against_dots(7, 6, 3, 0);
    against_dots(1, 1, 0, 1);
    against_dots(3, 0, 2, 1);
    against_dots(40, 30, PYAD_CHUNK - 7, 1);  /* the group opens a segment */
    against_dots(2500, 1100, 1000, 1);        /* nout and count beyond a segment */
    against_dots(1300, 1030, 10, 0);
}

void test_matvec(void)
{
    scenarios();
    /* every product cut into parts (more parts than some have rows or columns): recording,
       sweep, replay and hvp of the matvecs, bit for bit the dots, which are never cut */
    int64_t threads = 0, n = 0;
    CHECK(pyad_num_threads(-1, &threads) == PYAD_OK);
    CHECK(pyad_num_threads(5, &n) == PYAD_OK);
    CHECK(pyad_debug_part_min(-1) == PYAD_MISUSE);
    CHECK(pyad_debug_part_min(1) == PYAD_OK);
    scenarios();
    /* and with the loops compiled for the build's own vectors, not the processor's widest */
    CHECK(pyad_debug_wide_vectors(2) == PYAD_MISUSE);
    CHECK(pyad_debug_wide_vectors(0) == PYAD_OK);
    scenarios();
    CHECK(pyad_debug_wide_vectors(1) == PYAD_OK);
    CHECK(pyad_debug_part_min(0) == PYAD_OK);
    CHECK(pyad_num_threads(threads, &n) == PYAD_OK);
    test_num_threads();
    test_refused();
    test_collected();
    test_operands_of_unkept();
    test_low_slots();
    test_prints();
    test_released();
    test_sweep_out_of_memory();
    test_changed();
    CHECK(pyad_num_threads(5, &n) == PYAD_OK);
    CHECK(pyad_debug_part_min(1) == PYAD_OK);
    test_changed();
    CHECK(pyad_debug_part_min(0) == PYAD_OK);
    CHECK(pyad_num_threads(threads, &n) == PYAD_OK);
}
