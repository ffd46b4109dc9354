/*
 * C unit tests of programs (pyad_program_new, _run, _hvp): a replay at the recorded point
 * gives the tape's own values and pyad_backward's grads bit for bit, and at another point a
 * fresh recording's; batched runs equal single ones; dead code, constants, guards, errors
 * that leave the tape usable, Hessian-vector products against analytic Hessians. Public API
 * only. test_program() is called from test_main.c; failures count in pyad_test_failures.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../pyad.h"
#include "check.h"

/* What the current check is about (printed with a failure). */
static const char *context = "";

/* ---- helpers ------------------------------------------------------------------------------ */

static int64_t leaf(pyad_tape *t, double v)
{
    return got(t, pyad_push_leaf(t, v));
}

/* The same bits (any NaN matches any NaN). */
static int same(double a, double b)
{
    uint64_t u, v;
    memcpy(&u, &a, sizeof u);
    memcpy(&v, &b, sizeof v);
    return u == v || (isnan(a) && isnan(b));
}

static void report(const char *file, int line, const char *func, const char *what, double a,
                   double b)
{
    fprintf(stderr, "%s:%d: %s [%s]: %s: %.17g vs %.17g\n", file, line, func, context, what, a, b);
    pyad_test_failures++;
}

#define CHECK_SAME(x, y)                                                                           \
    do {                                                                                           \
        const double x_got = (x), y_want = (y);                                                    \
        if (!same(x_got, y_want))                                                                  \
            report(__FILE__, __LINE__, __func__, #x " same as " #y, x_got, y_want);                \
    } while (0)

/* Close relative to the larger magnitude, or the same non-finite value. */
#define CHECK_NEAR(x, y, tol)                                                                      \
    do {                                                                                           \
        const double x_got = (x), y_want = (y);                                                    \
        if (!same(x_got, y_want) &&                                                                \
            !(fabs(x_got - y_want) <= (tol) * (1.0 + fmax(fabs(x_got), fabs(y_want)))))            \
            report(__FILE__, __LINE__, __func__, #x " near " #y, x_got, y_want);                   \
    } while (0)

enum { INFO_IN, INFO_OUT, INFO_INSTR, INFO_SLOTS, INFO_CONST, INFO_SIDE, INFO_GUARD, INFO_BYTES };

static int64_t info_of(const pyad_program *p, int which)
{
    int64_t info[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    CHECK(pyad_program_info(p, info) == PYAD_OK);
    return info[which];
}

static pyad_program *compile(pyad_tape *t, int64_t nin, const int64_t *in, int64_t nout,
                             const int64_t *out, const double *out_consts)
{
    pyad_program *p = NULL;
    CHECK(pyad_program_new(t, nin, in, nout, out, out_consts, 0, NULL, NULL, NULL, &p) == PYAD_OK &&
          p != NULL);
    return p;
}

static double *work_for(const pyad_program *p, int64_t points, int64_t dirs, int64_t *nwork)
{
    *nwork = pyad_program_work(p, points, dirs);
    CHECK(*nwork > 0);
    double *w = malloc((size_t)(*nwork > 0 ? *nwork : 1) * sizeof *w);
    CHECK(w != NULL);
    return w;
}

/* pyad_program_run with a work buffer sized for `room` points. */
static int run_room(const pyad_program *p, int64_t room, int64_t k, const double *x, int64_t nseed,
                    const double *seeds, double *values, double *grads, int64_t *guards)
{
    int64_t nwork = 0;
    double *work = work_for(p, room, 0, &nwork);
    const int st = pyad_program_run(p, k, x, nseed, seeds, values, grads, guards, work, nwork);
    free(work);
    return st;
}

static int hvp(const pyad_program *p, const double *x, int64_t ndir, const double *v, double *value,
               double *grad, double *hv, int64_t *guards)
{
    int64_t nwork = 0;
    double *work = work_for(p, 1, ndir, &nwork);
    const int st = pyad_program_hvp(p, x, ndir, v, value, grad, hv, guards, work, nwork);
    free(work);
    return st;
}

/* A small deterministic generator: uniform in [lo, hi). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static double uniform(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(rng_state >> 11) * 0x1p-53;
}

/* ---- every unary and binary op, all forms --------------------------------------------------- */

typedef struct entry {
    int64_t (*v)(int64_t);
    int64_t (*vv)(int64_t, int64_t);
    int64_t (*vc)(int64_t, double);
    int64_t (*cv)(double, int64_t);
} entry;

/* The per-op entry points, from the op table's rows. */
#define ENTRY_0(NAME, name)
#define ENTRY_PYAD_NARY(NAME, name)
#define ENTRY_1(NAME, name) [PYAD_OP_##NAME] = {pyad_##name, NULL, NULL, NULL},
#define ENTRY_2(NAME, name)                                                                        \
    [PYAD_OP_##NAME] = {NULL, pyad_##name, pyad_##name##_vc, pyad_##name##_cv},
static const entry entries[PYAD_OP_COUNT] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) ENTRY_##ARITY(NAME, name)
#include "../ops.def"
#undef PYAD_OP
};

enum form { UNARY, VV, VC, CV };
static const char *const form_names[] = {"v", "vv", "vc", "cv"};

/* out = 2 * op(-(-x), -(-y)) in the given form (x = a, y = b; the constant is a or b), so
   the op's operands are records, not inputs, and its result feeds a static instruction. */
static int64_t record_op(pyad_tape *t, int op, enum form form, double a, double b, int64_t *hx,
                         int64_t *hy)
{
    *hx = leaf(t, a);
    *hy = leaf(t, b);
    const int64_t u = got(t, pyad_neg(got(t, pyad_neg(*hx))));
    const int64_t v = got(t, pyad_neg(got(t, pyad_neg(*hy))));
    const entry *e = &entries[op];
    int64_t r = 0;
    switch (form) {
    case UNARY:
        r = e->v(u);
        break;
    case VV:
        r = e->vv(u, v);
        break;
    case VC:
        r = e->vc(u, b);
        break;
    case CV:
        r = e->cv(a, v);
        break;
    }
    return got(t, pyad_mul_vc(got(t, r), 2.0));
}

/* Can the form be recorded at (a, b)? */
static int recordable(int op, double a, double b)
{
    double y, da, db;
    return pyad_eval(op, a, b, &y, &da, &db) == PYAD_OK;
}

/* Value and grads of a fresh recording at (a, b). */
static void fresh_op(int op, enum form form, double a, double b, double *y, double *g)
{
    pyad_tape *t = new_tape();
    int64_t hx, hy;
    const int64_t out = record_op(t, op, form, a, b, &hx, &hy);
    *y = value(t, out);
    CHECK(pyad_backward(t, out, 1.0) == PYAD_OK);
    g[0] = grad(t, hx);
    g[1] = grad(t, hy);
    pyad_tape_free(t);
}

/* The Hessian of 2 * op in the form, times v (IEEE arithmetic, as the product would be). */
static int expected_hv(int op, enum form form, double a, double b, const double *v, double *hv)
{
    double s[6];
    CHECK(pyad_eval_second(op, a, b, s) == PYAD_OK);
    const int va = form != CV, vb = form == VV || form == CV;
    for (int j = 1; j < 6; j++) /* infinite or NaN partials: no Hessian to compare */
        if (!isfinite(s[j]) && ((j == 1 || j == 3) ? va : (j == 2 || j == 5) ? vb : va && vb))
            return 0;
    const double daa = va ? s[3] : 0.0, dab = va && vb ? s[4] : 0.0, dbb = vb ? s[5] : 0.0;
    hv[0] = 2.0 * (daa * v[0] + dab * v[1]);
    hv[1] = 2.0 * (dab * v[0] + dbb * v[1]);
    return 1;
}

static void check_op_form(int op, enum form form)
{
    static const double pts[][2] = {{0.6, 0.35}, {1.3, -0.8},  {-0.7, 2.0}, {2.0, 3.0},
                                    {0.0, 0.0},  {-0.45, 0.5}, {0.3, 0.7},  {-3.0, -1.5}};
    enum { NPTS = sizeof pts / sizeof pts[0] };
    char buf[64];
    snprintf(buf, sizeof buf, "%s %s", pyad_op_name(op), form_names[form]);
    context = buf;
    const double a0 = pts[0][0], b0 = pts[0][1];
    CHECK(recordable(op, a0, b0));

    /* at the recorded point: the tape's value and pyad_backward's grads, bit for bit */
    pyad_tape *t = new_tape();
    int64_t in[2];
    const int64_t out = record_op(t, op, form, a0, b0, &in[0], &in[1]);
    const double y0 = value(t, out);
    CHECK(pyad_backward(t, out, 1.0) == PYAD_OK);
    const double gx = grad(t, in[0]), gy = grad(t, in[1]);
    pyad_program *p = compile(t, 2, in, 1, &out, NULL);
    CHECK(info_of(p, INFO_INSTR) == (form == VV ? 6 : 4)); /* negs of unused operands: dead */
    const double seed = 1.0;
    double x[NPTS * 2], vals[NPTS], grads[NPTS * 2];
    int64_t guards[NPTS];
    x[0] = a0;
    x[1] = b0;
    CHECK(run_room(p, 1, 1, x, 1, &seed, vals, grads, guards) == PYAD_OK);
    CHECK_SAME(vals[0], y0);
    CHECK_SAME(grads[0], gx);
    CHECK_SAME(grads[1], gy);
    CHECK(guards[0] == 0);
    pyad_tape_free(t); /* the program does not need its tape */

    /* at other points: a fresh recording's value and grads (the constant stays the recorded
       one, as in the program); one by one, then all at once in blocks of 1, 3 and k */
    int64_t k = 0;
    for (size_t i = 0; i < NPTS; i++) {
        const double a = form == CV ? a0 : pts[i][0], b = form == VC ? b0 : pts[i][1];
        if (!recordable(op, a, b))
            continue;
        double y, g[2];
        fresh_op(op, form, a, b, &y, g);
        x[2 * k] = pts[i][0];
        x[2 * k + 1] = pts[i][1];
        CHECK(run_room(p, 1, 1, x + 2 * k, 1, &seed, vals + k, grads + 2 * k, NULL) == PYAD_OK);
        CHECK_SAME(vals[k], y);
        CHECK_SAME(grads[2 * k], g[0]);
        CHECK_SAME(grads[2 * k + 1], g[1]);

        /* second order: hvp's value and grad are run's, H v is the op table's */
        static const double dirs[2][2] = {{1.0, 0.0}, {0.5, -2.0}};
        double hv[4], hval, hgrad[2], want[2];
        CHECK(hvp(p, x + 2 * k, 2, &dirs[0][0], &hval, hgrad, hv, NULL) == PYAD_OK);
        CHECK_SAME(hval, y);
        CHECK_SAME(hgrad[0], g[0]);
        CHECK_SAME(hgrad[1], g[1]);
        for (int d = 0; d < 2; d++)
            if (expected_hv(op, form, a, b, dirs[d], want)) {
                CHECK_NEAR(hv[2 * d], want[0], 1e-15);
                CHECK_NEAR(hv[2 * d + 1], want[1], 1e-15);
            }
        k++;
    }
    CHECK(k >= 3);
    const int64_t rooms[3] = {1, 3, k};
    for (int r = 0; r < 3; r++) {
        double bv[NPTS], bg[NPTS * 2];
        CHECK(run_room(p, rooms[r], k, x, 1, &seed, bv, bg, guards) == PYAD_OK);
        for (int64_t q = 0; q < k; q++) {
            CHECK_SAME(bv[q], vals[q]);
            CHECK_SAME(bg[2 * q], grads[2 * q]);
            CHECK_SAME(bg[2 * q + 1], grads[2 * q + 1]);
            CHECK(guards[q] == 0);
        }
    }
    pyad_program_free(p);
    context = "";
}

static void test_every_op(void)
{
    int n = 0;
    for (int op = 0; op < pyad_op_count(); op++) {
        if (pyad_op_arity(op) == 1) {
            CHECK(entries[op].v != NULL);
            check_op_form(op, UNARY);
            n++;
        } else if (pyad_op_arity(op) == 2) {
            CHECK(entries[op].vv != NULL);
            check_op_form(op, VV);
            check_op_form(op, VC);
            check_op_form(op, CV);
            n++;
        }
    }
    CHECK(n >= 26); /* 7 binary + 19 unary rows today */
}

/* ---- a composite function of 3 inputs with every kind of instruction ------------------------ */

enum { NIN = 3, NOUT = 3, NGUARD = 2 };

typedef struct composite {
    int64_t in[NIN], out[NOUT];
    int64_t guard_h[2 * NGUARD];
    double guard_c[2 * NGUARD];
    int guard_kind[NGUARD];
} composite;

static int compare(int cmp, double l, double r)
{
    switch (cmp) {
    case 0:
        return l < r;
    case 1:
        return l <= r;
    case 2:
        return l > r;
    default:
        return l >= r;
    }
}

/* out0 = s * d with s = d + dot + softmax_3 + z**x + hypot(x, y) - 0.5 and
   d = (sin(xy) + 1) / z; out1 = softmax_0 (x, z, 1, xy); out2 = logsumexp(x, y, 0.3); guards
   x < y and out2 >= 1.6 (as they were at the recording); a dead exp. */
static void record_composite(pyad_tape *t, const double *x, composite *c)
{
    for (int i = 0; i < NIN; i++)
        c->in[i] = leaf(t, x[i]);
    const int64_t X = c->in[0], Y = c->in[1], Z = c->in[2];
    const int64_t xy = got(t, pyad_mul(X, Y));
    const int64_t d = got(t, pyad_div(got(t, pyad_add_vc(got(t, pyad_sin(xy)), 1.0)), Z));
    const int64_t lh[3] = {X, Y, 0};
    const double lc[3] = {0.0, 0.0, 0.3};
    const int64_t lse = got(t, pyad_push_nary(t, PYAD_OP_LOGSUMEXP, 3, lh, lc));
    const int64_t sh[4] = {X, Z, 0, xy};
    const double sc[4] = {0.0, 0.0, 1.0, 0.0};
    int64_t sm[4] = {0, 0, 0, 0};
    const int st = pyad_push_softmax(t, 4, sh, sc, sm);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    const int64_t hw[3] = {X, 0, sm[1]}, hx[3] = {Y, Z, lse};
    const double cw[3] = {0.0, 2.0, 0.0};
    const int64_t dt = got(t, pyad_push_dot(t, 3, hw, cw, hx, NULL));
    const int64_t pw = got(t, pyad_pow(Z, X));
    const int64_t hy = got(t, pyad_hypot(X, Y));
    (void)got(t, pyad_exp(dt)); /* dead */
    const int64_t th[6] = {d, dt, sm[3], pw, hy, 0};
    const double tc[6] = {0.0, 0.0, 0.0, 0.0, 0.0, -0.5};
    const int64_t s = got(t, pyad_push_nary(t, PYAD_OP_SUM, 6, th, tc));
    c->out[0] = got(t, pyad_mul(s, d));
    c->out[1] = sm[0];
    c->out[2] = lse;
    const int64_t gh[4] = {X, Y, lse, 0};
    const double gc[4] = {0.0, 0.0, 0.0, 1.6};
    memcpy(c->guard_h, gh, sizeof gh);
    memcpy(c->guard_c, gc, sizeof gc);
    c->guard_kind[0] = 0 | (compare(0, x[0], x[1]) ? 4 : 0);
    c->guard_kind[1] = 3 | (compare(3, value(t, lse), 1.6) ? 4 : 0);
}

static pyad_program *compile_composite(pyad_tape *t, const composite *c, int64_t nout)
{
    pyad_program *p = NULL;
    CHECK(pyad_program_new(t, NIN, c->in, nout, c->out, NULL, NGUARD, c->guard_h, c->guard_c,
                           c->guard_kind, &p) == PYAD_OK);
    return p;
}

static void random_point(double *x)
{
    x[0] = uniform(-1.0, 1.0);
    x[1] = uniform(-1.0, 1.0);
    x[2] = uniform(0.5, 2.0);
}

static void test_composite_batched(void)
{
    enum { K = 37, NSEED = 4 };
    context = "composite";
    static double x[K * NIN];
    for (int q = 0; q < K; q++)
        random_point(x + q * NIN);
    pyad_tape *t = new_tape();
    composite c;
    record_composite(t, x, &c);
    pyad_program *p = compile_composite(t, &c, NOUT);
    CHECK(info_of(p, INFO_IN) == NIN && info_of(p, INFO_OUT) == NOUT);
    CHECK(info_of(p, INFO_GUARD) == NGUARD);
    CHECK(info_of(p, INFO_INSTR) == tape_len(t) - NIN - 1); /* all records but the dead exp */
    CHECK(info_of(p, INFO_SIDE) == 3 + 4 + 6 + 6);        /* lse, softmax, dot, sum */
    CHECK(info_of(p, INFO_BYTES) > 0);
    pyad_tape_free(t);

    /* seeds: the three jacobian rows, then a mix */
    static const double seeds[NSEED * NOUT] = {1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, -1.0, 2.0};
    static double v1[K * NOUT], g1[K * NSEED * NIN];
    static int64_t gd1[K];
    for (int q = 0; q < K; q++)
        CHECK(run_room(p, 1, 1, x + q * NIN, NSEED, seeds, v1 + q * NOUT, g1 + q * NSEED * NIN,
                       gd1 + q) == PYAD_OK);

    /* single runs against fresh recordings: one tape per jacobian row */
    int flipped = 0;
    for (int q = 0; q < K; q++) {
        for (int j = 0; j < NOUT; j++) {
            pyad_tape *u = new_tape();
            composite f;
            record_composite(u, x + q * NIN, &f);
            CHECK_SAME(v1[q * NOUT + j], value(u, f.out[j]));
            CHECK(pyad_backward(u, f.out[j], 1.0) == PYAD_OK);
            for (int i = 0; i < NIN; i++)
                CHECK_SAME(g1[(q * NSEED + j) * NIN + i], grad(u, f.in[i]));
            int64_t want = 0;
            for (int g = NGUARD; g-- > 0;)
                if (f.guard_kind[g] != c.guard_kind[g])
                    want = g + 1;
            CHECK(gd1[q] == want);
            flipped += want != 0;
            pyad_tape_free(u);
        }
        for (int i = 0; i < NIN; i++) { /* the mixed row is the rows' combination */
            const double *g = g1 + q * NSEED * NIN;
            CHECK_NEAR(g[3 * NIN + i], 0.5 * g[i] - g[NIN + i] + 2.0 * g[2 * NIN + i], 1e-13);
        }
    }
    CHECK(flipped > 0 && flipped < K * NOUT); /* some points flip a guard, some do not */

    /* batched, in blocks of 1, 3, 8, K points, and more room than needed */
    static double vb[K * NOUT], gb[K * NSEED * NIN];
    static int64_t gdb[K];
    const int64_t rooms[5] = {1, 3, 8, K, K + 5};
    for (int r = 0; r < 5; r++) {
        memset(vb, 0xff, sizeof vb);
        memset(gb, 0xff, sizeof gb);
        memset(gdb, 0xff, sizeof gdb);
        CHECK(run_room(p, rooms[r], K, x, NSEED, seeds, vb, gb, gdb) == PYAD_OK);
        for (int i = 0; i < K * NOUT; i++)
            CHECK_SAME(vb[i], v1[i]);
        for (int i = 0; i < K * NSEED * NIN; i++)
            CHECK_SAME(gb[i], g1[i]);
        for (int q = 0; q < K; q++)
            CHECK(gdb[q] == gd1[q]);
        /* values and guards NULL: the same grads */
        memset(gb, 0xff, sizeof gb);
        CHECK(run_room(p, rooms[r], K, x, NSEED, seeds, NULL, gb, NULL) == PYAD_OK);
        for (int i = 0; i < K * NSEED * NIN; i++)
            CHECK_SAME(gb[i], g1[i]);
        /* no seeds: values and guards only (seeds and grads NULL) */
        memset(vb, 0xff, sizeof vb);
        CHECK(run_room(p, rooms[r], K, x, 0, NULL, vb, NULL, gdb) == PYAD_OK);
        for (int i = 0; i < K * NOUT; i++)
            CHECK_SAME(vb[i], v1[i]);
        for (int q = 0; q < K; q++)
            CHECK(gdb[q] == gd1[q]);
        /* one seed row */
        CHECK(run_room(p, rooms[r], K, x, 1, seeds + 3, NULL, gb, NULL) == PYAD_OK);
        for (int q = 0; q < K; q++)
            for (int i = 0; i < NIN; i++)
                CHECK_SAME(gb[q * NIN + i], g1[(q * NSEED + 1) * NIN + i]);
    }
    /* a work buffer between block sizes, and k = 0 */
    int64_t nwork = pyad_program_work(p, 3, 0) + pyad_program_work(p, 1, 0) / 2;
    double *work = malloc((size_t)nwork * sizeof *work);
    CHECK(pyad_program_run(p, K, x, NSEED, seeds, vb, gb, gdb, work, nwork) == PYAD_OK);
    for (int i = 0; i < K * NSEED * NIN; i++)
        CHECK_SAME(gb[i], g1[i]);
    CHECK(pyad_program_run(p, 0, NULL, NSEED, seeds, NULL, gb, NULL, work, nwork) == PYAD_OK);
    free(work);
    pyad_program_free(p);
    context = "";
}

/* hvp on the composite's first output against central differences of run's gradient. */
static void test_composite_hvp(void)
{
    context = "composite hvp";
    double x0[NIN];
    random_point(x0);
    pyad_tape *t = new_tape();
    composite c;
    record_composite(t, x0, &c);
    pyad_program *p = compile_composite(t, &c, 1);
    pyad_tape_free(t);
    const double seed = 1.0;
    for (int trial = 0; trial < 4; trial++) {
        double x[NIN], v[3 * NIN], hv[3 * NIN], val, g[NIN], rv, rg[NIN];
        int64_t guard = -1, rguard = -2;
        random_point(x);
        for (int i = 0; i < 3 * NIN; i++)
            v[i] = uniform(-1.0, 1.0);
        CHECK(hvp(p, x, 3, v, &val, g, hv, &guard) == PYAD_OK);
        CHECK(run_room(p, 1, 1, x, 1, &seed, &rv, rg, &rguard) == PYAD_OK);
        CHECK_SAME(val, rv);
        CHECK(guard == rguard);
        for (int i = 0; i < NIN; i++)
            CHECK_SAME(g[i], rg[i]);
        for (int d = 0; d < 3; d++) {
            const double h = 1e-5;
            double xp[NIN], xm[NIN], gp[NIN], gm[NIN];
            for (int i = 0; i < NIN; i++) {
                xp[i] = x[i] + h * v[d * NIN + i];
                xm[i] = x[i] - h * v[d * NIN + i];
            }
            CHECK(run_room(p, 1, 1, xp, 1, &seed, NULL, gp, NULL) == PYAD_OK);
            CHECK(run_room(p, 1, 1, xm, 1, &seed, NULL, gm, NULL) == PYAD_OK);
            for (int i = 0; i < NIN; i++)
                CHECK_NEAR(hv[d * NIN + i], (gp[i] - gm[i]) / (2.0 * h), 1e-6);
            /* one direction at a time gives the same bits */
            double one[NIN];
            CHECK(hvp(p, x, 1, v + d * NIN, NULL, NULL, one, NULL) == PYAD_OK);
            for (int i = 0; i < NIN; i++)
                CHECK_SAME(one[i], hv[d * NIN + i]);
        }
    }
    pyad_program_free(p);
    context = "";
}

/* ---- hvp against an analytic Hessian ------------------------------------------------------- */

/* f = x y^2 + sin x + exp(xy) + x/z + y log z + z^2.5 + tanh(xz) */
static int64_t record_analytic(pyad_tape *t, const double *x, int64_t *in)
{
    for (int i = 0; i < 3; i++)
        in[i] = leaf(t, x[i]);
    const int64_t X = in[0], Y = in[1], Z = in[2];
    const int64_t xy = got(t, pyad_mul(X, Y));
    int64_t f = got(t, pyad_mul(xy, Y));
    f = got(t, pyad_add(f, got(t, pyad_sin(X))));
    f = got(t, pyad_add(f, got(t, pyad_exp(xy))));
    f = got(t, pyad_add(f, got(t, pyad_div(X, Z))));
    f = got(t, pyad_add(f, got(t, pyad_mul(Y, got(t, pyad_log(Z))))));
    f = got(t, pyad_add(f, got(t, pyad_pow_vc(Z, 2.5))));
    return got(t, pyad_add(f, got(t, pyad_tanh(got(t, pyad_mul(X, Z))))));
}

static void analytic(const double *p, double *f, double *g, double *H)
{
    const double x = p[0], y = p[1], z = p[2], e = exp(x * y), th = tanh(x * z);
    const double t1 = 1.0 - th * th, t2 = -2.0 * th * t1;
    *f = x * y * y + sin(x) + e + x / z + y * log(z) + pow(z, 2.5) + th;
    g[0] = y * y + cos(x) + y * e + 1.0 / z + z * t1;
    g[1] = 2.0 * x * y + x * e + log(z);
    g[2] = -x / (z * z) + y / z + 2.5 * pow(z, 1.5) + x * t1;
    H[0] = -sin(x) + y * y * e + z * z * t2;
    H[1] = H[3] = 2.0 * y + (1.0 + x * y) * e;
    H[2] = H[6] = -1.0 / (z * z) + t1 + x * z * t2;
    H[4] = 2.0 * x + x * x * e;
    H[5] = H[7] = 1.0 / z;
    H[8] = 2.0 * x / (z * z * z) - y / (z * z) + 3.75 * sqrt(z) + x * x * t2;
}

static void test_hvp_analytic(void)
{
    context = "hvp analytic";
    const double x0[3] = {0.7, -0.4, 1.3};
    pyad_tape *t = new_tape();
    int64_t in[3];
    const int64_t f = record_analytic(t, x0, in);
    pyad_program *p = compile(t, 3, in, 1, &f, NULL);
    pyad_tape_free(t);
    static const double pts[3][3] = {{0.7, -0.4, 1.3}, {-1.1, 0.5, 0.6}, {0.2, 1.5, 2.2}};
    static const double dirs[3][3] = {{1.0, 0.0, 0.0}, {0.5, -2.0, 1.0}, {0.0, 0.0, 3.0}};
    for (int k = 0; k < 3; k++) {
        double fv, g[3], H[9];
        analytic(pts[k], &fv, g, H);
        for (int64_t ndir = 1; ndir <= 3; ndir++) {
            double val, grad[3], hv[9];
            CHECK(hvp(p, pts[k], ndir, &dirs[0][0], &val, grad, hv, NULL) == PYAD_OK);
            CHECK_NEAR(val, fv, 1e-14);
            for (int i = 0; i < 3; i++)
                CHECK_NEAR(grad[i], g[i], 1e-14);
            for (int64_t d = 0; d < ndir; d++)
                for (int i = 0; i < 3; i++) {
                    double want = 0.0;
                    for (int j = 0; j < 3; j++)
                        want += H[3 * i + j] * dirs[d][j];
                    CHECK_NEAR(hv[d * 3 + i], want, 1e-13);
                }
        }
        /* hvp's value and grad are run's, bit for bit */
        double val, grad[3], hv[3], rv, rg[3];
        const double seed = 1.0;
        CHECK(hvp(p, pts[k], 1, dirs[1], &val, grad, hv, NULL) == PYAD_OK);
        CHECK(run_room(p, 1, 1, pts[k], 1, &seed, &rv, rg, NULL) == PYAD_OK);
        CHECK_SAME(val, rv);
        for (int i = 0; i < 3; i++)
            CHECK_SAME(grad[i], rg[i]);
        /* value, grad and guards may be NULL */
        double hv2[3];
        CHECK(hvp(p, pts[k], 1, dirs[1], NULL, NULL, hv2, NULL) == PYAD_OK);
        for (int i = 0; i < 3; i++)
            CHECK_SAME(hv2[i], hv[i]);
    }
    pyad_program_free(p);
    context = "";
}

/* ---- dead code, constants, outputs that are constants or inputs ---------------------------- */

static void test_dead_code(void)
{
    context = "dead code";
    pyad_tape *t = new_tape();
    const int64_t x = leaf(t, 0.8), y = leaf(t, -1.2);
    (void)got(t, pyad_exp(x)); /* dead */
    const int64_t b = got(t, pyad_mul(x, y));
    const int64_t c = got(t, pyad_sin(b));
    (void)got(t, pyad_cos(c)); /* dead: after the output */
    const int64_t ph[2] = {x, y};
    const double pc[2] = {0.0, 0.0}, pp[2] = {1.0, 2.0};
    (void)got(t, pyad_push_primitive(t, 2, ph, pc, 3.0, pp)); /* dead: no NOREPLAY */
    const int64_t in[2] = {x, y};
    pyad_program *p = compile(t, 2, in, 1, &c, NULL);
    CHECK(info_of(p, INFO_INSTR) == 2);
    pyad_program_free(p);

    /* a softmax whose only use is its 2nd output: the group is replayed, at its first */
    const int64_t sh[3] = {x, y, 0};
    const double sc[3] = {0.0, 0.0, 0.5};
    int64_t sm[3];
    const int st = pyad_push_softmax(t, 3, sh, sc, sm);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    const int64_t f = got(t, pyad_mul(sm[1], x));
    p = compile(t, 2, in, 1, &f, NULL);
    CHECK(info_of(p, INFO_INSTR) == 4);
    CHECK(info_of(p, INFO_SIDE) == 3);
    const double x0[2] = {0.8, -1.2}, seed = 1.0;
    double v, g[2];
    CHECK(run_room(p, 1, 1, x0, 1, &seed, &v, g, NULL) == PYAD_OK);
    CHECK_SAME(v, value(t, f));
    CHECK(pyad_backward(t, f, 1.0) == PYAD_OK);
    CHECK_SAME(g[0], grad(t, x));
    CHECK_SAME(g[1], grad(t, y));
    pyad_tape_free(t);

    /* at another point, against a fresh recording and the formula */
    const double x1[2] = {-0.3, 0.9};
    t = new_tape();
    const int64_t x2 = leaf(t, x1[0]), y2 = leaf(t, x1[1]);
    const int64_t sh2[3] = {x2, y2, 0};
    CHECK(pyad_push_softmax(t, 3, sh2, sc, sm) >= 0);
    const int64_t f2 = got(t, pyad_mul(sm[1], x2));
    CHECK(pyad_backward(t, f2, 1.0) == PYAD_OK);
    CHECK(run_room(p, 1, 1, x1, 1, &seed, &v, g, NULL) == PYAD_OK);
    CHECK_SAME(v, value(t, f2));
    CHECK_SAME(g[0], grad(t, x2));
    CHECK_SAME(g[1], grad(t, y2));
    const double s1 = exp(x1[1]) / (exp(x1[0]) + exp(x1[1]) + exp(0.5));
    const double s0 = exp(x1[0]) / (exp(x1[0]) + exp(x1[1]) + exp(0.5));
    CHECK_NEAR(v, s1 * x1[0], 1e-15);
    CHECK_NEAR(g[0], s1 - x1[0] * s1 * s0, 1e-15);
    CHECK_NEAR(g[1], x1[0] * s1 * (1.0 - s1), 1e-15);
    /* and its hvp against central differences */
    const double dir[2] = {0.3, -0.7}, h = 1e-5;
    double hv[2], gp[2], gm[2];
    const double xp[2] = {x1[0] + h * dir[0], x1[1] + h * dir[1]};
    const double xm[2] = {x1[0] - h * dir[0], x1[1] - h * dir[1]};
    CHECK(hvp(p, x1, 1, dir, NULL, NULL, hv, NULL) == PYAD_OK);
    CHECK(run_room(p, 1, 1, xp, 1, &seed, NULL, gp, NULL) == PYAD_OK);
    CHECK(run_room(p, 1, 1, xm, 1, &seed, NULL, gm, NULL) == PYAD_OK);
    for (int i = 0; i < 2; i++)
        CHECK_NEAR(hv[i], (gp[i] - gm[i]) / (2.0 * h), 1e-7);
    pyad_program_free(p);
    pyad_tape_free(t);
    context = "";
}

static void test_constants_and_trivial_outputs(void)
{
    context = "constants";
    pyad_tape *t = new_tape();
    const int64_t x = leaf(t, 1.5), k100 = leaf(t, 100.0); /* k100 is not an input */
    int64_t v = got(t, pyad_mul_vc(x, 100.0));
    v = got(t, pyad_add_vc(v, 100.0));
    v = got(t, pyad_mul(v, k100));
    v = got(t, pyad_sub_cv(100.0, v));
    v = got(t, pyad_sin(v));
    v = got(t, pyad_add_vc(v, 0.0));
    const double want = sin(100.0 - (1.5 * 100.0 + 100.0) * 100.0) + 0.0;
    CHECK(value(t, v) == want);
    /* outputs: v, the constant 100, the input x, the constant 2.5, x again */
    const int64_t out[5] = {v, 0, x, 0, x};
    const double oc[5] = {7.0, 100.0, 7.0, 2.5, 7.0};
    pyad_program *p = compile(t, 1, &x, 5, out, oc);
    CHECK(info_of(p, INFO_CONST) == 3); /* 0.0, 100.0, 2.5 */
    CHECK(info_of(p, INFO_INSTR) == 6);
    CHECK(info_of(p, INFO_OUT) == 5);
    static const double seeds[3 * 5] = {1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1};
    const double x0 = 1.5;
    double vals[5], g[3];
    CHECK(run_room(p, 1, 1, &x0, 3, seeds, vals, g, NULL) == PYAD_OK);
    CHECK_SAME(vals[0], want);
    CHECK(vals[1] == 100.0 && vals[2] == 1.5 && vals[3] == 2.5 && vals[4] == 1.5);
    CHECK(pyad_backward(t, v, 1.0) == PYAD_OK);
    CHECK_SAME(g[0], grad(t, x));
    CHECK(g[1] == 0.0); /* constant outputs have no gradient */
    CHECK(g[2] == 2.0); /* x given twice as an output */
    pyad_program_free(p);
    /* -0.0 is not 0.0: a constant of its own */
    const int64_t z = got(t, pyad_mul_vc(x, -0.0));
    const int64_t out2[2] = {v, z};
    p = compile(t, 1, &x, 2, out2, NULL);
    CHECK(info_of(p, INFO_CONST) == 3); /* 0.0, 100.0, -0.0 */
    CHECK(run_room(p, 1, 1, &x0, 0, NULL, vals, NULL, NULL) == PYAD_OK);
    CHECK_SAME(vals[1], -0.0);
    pyad_program_free(p);
    /* no inputs at all: every leaf is a constant; outputs only constants, or none */
    const int64_t c3 = got(t, pyad_mul_vc(x, 3.0));
    p = compile(t, 0, NULL, 1, &c3, NULL);
    double v2[2];
    const double one = 1.0;
    CHECK(run_room(p, 2, 2, NULL, 1, &one, v2, v2, NULL) == PYAD_OK); /* grads: 0 each */
    CHECK(pyad_program_run(p, 0, NULL, 0, NULL, NULL, NULL, NULL, v2, 0) == PYAD_MISUSE);
    CHECK(run_room(p, 2, 2, NULL, 0, NULL, v2, NULL, NULL) == PYAD_OK);
    CHECK(v2[0] == 4.5 && v2[1] == 4.5);
    pyad_program_free(p);
    const double c7 = 7.0;
    const int64_t zero = 0;
    p = compile(t, 1, &x, 1, &zero, &c7);
    CHECK(info_of(p, INFO_INSTR) == 0);
    CHECK(run_room(p, 1, 1, &x0, 1, &one, vals, g, NULL) == PYAD_OK);
    CHECK(vals[0] == 7.0 && g[0] == 0.0);
    CHECK(hvp(p, &x0, 1, &one, vals, g, v2, NULL) == PYAD_OK);
    CHECK(vals[0] == 7.0 && g[0] == 0.0 && v2[0] == 0.0);
    pyad_program_free(p);
    p = compile(t, 1, &x, 0, NULL, NULL);
    CHECK(info_of(p, INFO_INSTR) == 0 && info_of(p, INFO_OUT) == 0);
    CHECK(run_room(p, 1, 1, &x0, 0, NULL, NULL, NULL, NULL) == PYAD_OK);
    pyad_program_free(p);
    pyad_tape_free(t);
    context = "";
}

/* ---- guards --------------------------------------------------------------------------------- */

static void test_guards(void)
{
    context = "guards";
    pyad_tape *t = new_tape();
    const int64_t x = leaf(t, 1.0), y = leaf(t, 2.0);
    const int64_t f = got(t, pyad_mul(x, y));
    const double pts[5] = {0.5, 1.0, 1.5, NAN, -INFINITY};
    /* each kind alone: x (cmp) 1.0, recorded as held or not */
    for (int kind = 0; kind < 8; kind++) {
        const int64_t gh[2] = {x, 0};
        const double gc[2] = {0.0, 1.0};
        pyad_program *p = NULL;
        CHECK(pyad_program_new(t, 2, (int64_t[]){x, y}, 1, &f, NULL, 1, gh, gc, &kind, &p) ==
              PYAD_OK);
        double xs[10], vals[5];
        int64_t guards[5], one = -1;
        for (int q = 0; q < 5; q++) {
            xs[2 * q] = pts[q];
            xs[2 * q + 1] = 2.0;
        }
        CHECK(run_room(p, 5, 5, xs, 0, NULL, vals, NULL, guards) == PYAD_OK);
        for (int q = 0; q < 5; q++) {
            const int held = compare(kind & 3, pts[q], 1.0);
            CHECK(guards[q] == (held != ((kind & 4) != 0) ? 1 : 0));
            CHECK(hvp(p, xs + 2 * q, 1, xs, NULL, NULL, vals, &one) == PYAD_OK);
            CHECK(one == guards[q]);
        }
        pyad_program_free(p);
    }
    /* several guards: 1 + the index of the first that flipped */
    const int64_t gh[6] = {x, y, f, 0, y, 0};
    const double gc[6] = {0.0, 0.0, 0.0, 1.5, 0.0, 3.0};
    const int gk[3] = {0 | 4, 3 | 4, 2}; /* x < y held, f >= 1.5 held, y > 3 did not */
    pyad_program *p = NULL;
    CHECK(pyad_program_new(t, 2, (int64_t[]){x, y}, 1, &f, NULL, 3, gh, gc, gk, &p) == PYAD_OK);
    CHECK(info_of(p, INFO_GUARD) == 3);
    const double xs[7][2] = {{1.0, 2.0}, {3.0, 2.0}, {0.5, 2.0}, {0.5, 4.0},
                             {3.0, 4.0}, {NAN, 2.0}, {1.0, NAN}};
    const int64_t want[7] = {0, 1, 2, 3, 3, 1, 1};
    int64_t guards[7];
    CHECK(run_room(p, 3, 7, &xs[0][0], 0, NULL, NULL, NULL, guards) == PYAD_OK);
    for (int q = 0; q < 7; q++) {
        CHECK(guards[q] == want[q]);
    }
    pyad_program_free(p);
    /* a guard on a record nothing else needs is replayed for the guard */
    const int64_t lx = got(t, pyad_log(x));
    const int64_t gh2[2] = {lx, 0};
    const double gc2[2] = {0.0, 0.5};
    const int gk2 = 0 | 4; /* log x < 0.5 */
    CHECK(pyad_program_new(t, 2, (int64_t[]){x, y}, 1, &f, NULL, 1, gh2, gc2, &gk2, &p) == PYAD_OK);
    CHECK(info_of(p, INFO_INSTR) == 2);
    const double xs2[3][2] = {{1.0, 2.0}, {2.0, 2.0}, {-1.0, 2.0}}; /* log(-1) is NaN */
    CHECK(run_room(p, 3, 3, &xs2[0][0], 0, NULL, NULL, NULL, guards) == PYAD_OK);
    CHECK(guards[0] == 0 && guards[1] == 1 && guards[2] == 1);
    pyad_program_free(p);
    pyad_tape_free(t);
    context = "";
}

/* ---- errors --------------------------------------------------------------------------------- */

/* The tape still records and sweeps. */
static void check_usable(pyad_tape *t, int64_t x, int64_t len)
{
    CHECK(tape_len(t) == len);
    const int64_t r = got(t, pyad_mul_vc(x, 3.0));
    CHECK(pyad_backward(t, r, 1.0) == PYAD_OK);
    CHECK(grad(t, r) == 1.0);
}

static void test_errors(void)
{
    context = "errors";
    pyad_tape *t = new_tape(), *u = new_tape();
    const int64_t x = leaf(t, 2.0), y = leaf(t, 3.0);
    const int64_t f = got(t, pyad_mul(x, y));
    const int64_t xu = leaf(u, 1.0);
    const int64_t in[2] = {x, y};
    const int kind = 4;
    const int64_t gh[2] = {x, y};
    static int sentinel;
    pyad_program *p = (pyad_program *)(void *)&sentinel; /* set to NULL on failure */
    int64_t len = tape_len(t);

    CHECK(pyad_program_new(NULL, 2, in, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_MISUSE);
    CHECK(pyad_program_new(t, 2, in, 1, &f, NULL, 0, NULL, NULL, NULL, NULL) == PYAD_MISUSE);
    CHECK(pyad_program_new(t, -1, in, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_MISUSE);
    CHECK(pyad_program_new(t, 2, in, -1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_MISUSE);
    CHECK(pyad_program_new(t, 2, in, 1, &f, NULL, -1, gh, NULL, &kind, &p) == PYAD_MISUSE);
    CHECK(pyad_program_new(t, 2, NULL, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_MISUSE);
    CHECK(pyad_program_new(t, 2, in, 1, NULL, NULL, 0, NULL, NULL, NULL, &p) == PYAD_MISUSE);
    CHECK(pyad_program_new(t, 2, in, 1, &f, NULL, 1, NULL, NULL, &kind, &p) == PYAD_MISUSE);
    CHECK(pyad_program_new(t, 2, in, 1, &f, NULL, 1, gh, NULL, NULL, &p) == PYAD_MISUSE);
    check_usable(t, x, len++);

    /* inputs that are not leaves, or given twice */
    const int64_t notleaf[2] = {x, f}, twice[2] = {x, x};
    p = (pyad_program *)(void *)&sentinel;
    CHECK(pyad_program_new(t, 2, notleaf, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_MISUSE);
    CHECK(p == NULL);
    CHECK(strlen(pyad_tape_errmsg(t)) > 0);
    CHECK(pyad_program_new(t, 2, twice, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_MISUSE);
    CHECK(p == NULL);
    /* bad guard kinds */
    const int bad_kinds[2] = {8, -1};
    for (int i = 0; i < 2; i++)
        CHECK(pyad_program_new(t, 2, in, 1, &f, NULL, 1, gh, NULL, bad_kinds + i, &p) ==
                  PYAD_MISUSE &&
              p == NULL);
    check_usable(t, x, len++);

    /* stale handles and handles of another tape, as inputs, outputs, guard operands */
    const int64_t foreign_in[2] = {x, xu}, zero_in[2] = {x, 0}, past[2] = {x, f + 1000};
    CHECK(pyad_program_new(t, 2, foreign_in, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_STALE);
    CHECK(pyad_program_new(t, 2, zero_in, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_STALE);
    CHECK(pyad_program_new(t, 2, past, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_STALE);
    CHECK(pyad_program_new(t, 2, in, 1, &xu, NULL, 0, NULL, NULL, NULL, &p) == PYAD_STALE);
    const int64_t gforeign[2] = {x, xu};
    CHECK(pyad_program_new(t, 2, in, 1, &f, NULL, 1, gforeign, NULL, &kind, &p) == PYAD_STALE);
    CHECK(p == NULL);
    check_usable(t, x, len++);

    /* a needed primitive cannot be replayed */
    const double pc[2] = {0.0, 0.0}, pp[2] = {1.0, 1.0};
    const int64_t prim = got(t, pyad_push_primitive(t, 2, in, pc, 5.0, pp));
    const int64_t above = got(t, pyad_exp(got(t, pyad_mul_vc(prim, 0.1))));
    len += 3;
    CHECK(pyad_program_new(t, 2, in, 1, &above, NULL, 0, NULL, NULL, NULL, &p) == PYAD_NOREPLAY);
    CHECK(p == NULL && strlen(pyad_tape_errmsg(t)) > 0);
    const int64_t pg[2] = {prim, 0};
    CHECK(pyad_program_new(t, 2, in, 1, &f, NULL, 1, pg, NULL, &kind, &p) == PYAD_NOREPLAY);
    check_usable(t, x, len++);

    /* run and hvp misuse */
    p = compile(t, 2, in, 1, &f, NULL);
    int64_t nwork = 0;
    double *work = work_for(p, 1, 2, &nwork);
    const double x0[2] = {2.0, 3.0}, seed = 1.0, dirs[4] = {1.0, 0.0, 0.0, 1.0};
    double vals[2], g[2], hv[4];
    int64_t guard;
    const int64_t need1 = pyad_program_work(p, 1, 0);
    CHECK(need1 > 0 && need1 <= nwork);
    CHECK(pyad_program_run(p, 1, x0, 1, &seed, vals, g, &guard, work, need1) == PYAD_OK);
    CHECK(pyad_program_run(p, 1, x0, 1, &seed, vals, g, &guard, work, need1 - 1) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, 1, x0, 1, &seed, vals, g, &guard, work, 0) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, 1, x0, 1, &seed, vals, g, &guard, work, -5) == PYAD_MISUSE);
    CHECK(pyad_program_run(NULL, 1, x0, 1, &seed, vals, g, &guard, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, -1, x0, 1, &seed, vals, g, &guard, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, 1, NULL, 1, &seed, vals, g, &guard, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, 1, x0, -1, &seed, vals, g, &guard, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, 1, x0, 1, NULL, vals, g, &guard, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, 1, x0, 1, &seed, vals, NULL, &guard, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, 1, x0, 1, &seed, vals, g, &guard, NULL, nwork) == PYAD_MISUSE);
    const int64_t hneed = pyad_program_work(p, 1, 2);
    CHECK(pyad_program_hvp(p, x0, 2, dirs, vals, g, hv, NULL, work, hneed) == PYAD_OK);
    CHECK(hv[0] == 0.0 && hv[1] == 1.0 && hv[2] == 1.0 && hv[3] == 0.0); /* H of x*y */
    CHECK(pyad_program_hvp(p, x0, 2, dirs, vals, g, hv, NULL, work, hneed - 1) == PYAD_MISUSE);
    CHECK(pyad_program_hvp(p, x0, 0, dirs, vals, g, hv, NULL, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_hvp(p, x0, -1, dirs, vals, g, hv, NULL, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_hvp(NULL, x0, 1, dirs, vals, g, hv, NULL, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_hvp(p, NULL, 1, dirs, vals, g, hv, NULL, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_hvp(p, x0, 1, NULL, vals, g, hv, NULL, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_hvp(p, x0, 1, dirs, vals, g, NULL, NULL, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_hvp(p, x0, 1, dirs, vals, g, hv, NULL, NULL, nwork) == PYAD_MISUSE);
    /* work sizes */
    CHECK(pyad_program_work(NULL, 1, 0) == -1 && pyad_program_work(p, 0, 0) == -1);
    CHECK(pyad_program_work(p, 2, 1) == -1 && pyad_program_work(p, 1, -1) == -1);
    CHECK(pyad_program_work(p, INT64_MAX, 0) == -1);
    CHECK(pyad_program_work(p, 1, 0) < pyad_program_work(p, 2, 0));
    CHECK(pyad_program_work(p, 1, 1) < pyad_program_work(p, 1, 2));
    int64_t info[8];
    CHECK(pyad_program_info(NULL, info) == PYAD_MISUSE &&
          pyad_program_info(p, NULL) == PYAD_MISUSE);
    pyad_program_free(p);
    free(work);

    /* hvp needs exactly one output */
    const int64_t two[2] = {f, x};
    p = compile(t, 2, in, 2, two, NULL);
    work = work_for(p, 1, 1, &nwork);
    CHECK(pyad_program_hvp(p, x0, 1, dirs, vals, g, hv, NULL, work, nwork) == PYAD_MISUSE);
    CHECK(pyad_program_run(p, 1, x0, 0, NULL, vals, NULL, NULL, work, nwork) == PYAD_OK);
    CHECK(vals[0] == 6.0 && vals[1] == 2.0);
    free(work);
    pyad_program_free(p);
    p = compile(t, 2, in, 0, NULL, NULL);
    work = work_for(p, 1, 1, &nwork);
    CHECK(pyad_program_hvp(p, x0, 1, dirs, vals, g, hv, NULL, work, nwork) == PYAD_MISUSE);
    free(work);
    pyad_program_free(p);
    check_usable(t, x, len++);

    /* after a reset every old handle is stale */
    CHECK(pyad_tape_reset(t) == PYAD_OK);
    CHECK(pyad_program_new(t, 2, in, 1, &f, NULL, 0, NULL, NULL, NULL, &p) == PYAD_STALE);
    CHECK(p == NULL);
    const int64_t x2 = leaf(t, 1.0);
    check_usable(t, x2, 1);

    pyad_program_free(NULL); /* a no-op */
    pyad_tape_free(t);
    pyad_tape_free(u);
    context = "";
}

/* ---- tapes of several segments, reused out of order ---------------------------------------- */

/* v = tanh(v * 1.0001 + c) over n steps from p; SEGMENT handles go to pins (if not NULL). */
static int64_t chain(pyad_tape *t, int64_t p, int n, int64_t *pins, int *npins)
{
    int64_t v = p;
    for (int i = 0; i < n; i++) {
        int64_t r = pyad_mul_vc(v, 1.0001);
        if (r == -(int64_t)PYAD_SEGMENT && pins != NULL)
            pins[(*npins)++] = got(t, r);
        r = got(t, r);
        int64_t s = pyad_add_vc(r, 0.01 * (double)(i % 7));
        if (s == -(int64_t)PYAD_SEGMENT && pins != NULL)
            pins[(*npins)++] = got(t, s);
        s = got(t, s);
        v = pyad_tanh(s);
        if (v == -(int64_t)PYAD_SEGMENT && pins != NULL)
            pins[(*npins)++] = got(t, v);
        v = got(t, v);
    }
    return v;
}

static void test_reused_segments(void)
{
    context = "segments";
    pyad_tape *t = new_tape();
    const int64_t p = leaf(t, 0.5);
    int64_t pins[256];
    int npins = 0;
    int64_t v = p;
    for (int step = 0; step < 5; step++) {
        v = chain(t, p, 1200, pins, &npins);
        for (int i = 0; i + 1 < npins; i++) /* the old graphs die */
            CHECK(pyad_tape_unpin(t, pins[i]) == PYAD_OK);
        if (npins > 0) {
            pins[0] = pins[npins - 1];
            npins = 1;
        }
    }
    pyad_program *prog = compile(t, 1, &p, 1, &v, NULL);
    CHECK(info_of(prog, INFO_INSTR) == 3 * 1200);
    const double x0 = 0.5, seed = 1.0;
    double val, g;
    CHECK(run_room(prog, 1, 1, &x0, 1, &seed, &val, &g, NULL) == PYAD_OK);
    CHECK_SAME(val, value(t, v));
    CHECK(pyad_backward(t, v, 1.0) == PYAD_OK);
    CHECK_SAME(g, grad(t, p));
    pyad_tape_free(t);
    /* at another point, against a fresh recording */
    const double x1 = -0.25;
    t = new_tape();
    const int64_t p1 = leaf(t, x1);
    const int64_t v1 = chain(t, p1, 1200, NULL, NULL);
    CHECK(pyad_backward(t, v1, 1.0) == PYAD_OK);
    CHECK(run_room(prog, 1, 1, &x1, 1, &seed, &val, &g, NULL) == PYAD_OK);
    CHECK_SAME(val, value(t, v1));
    CHECK_SAME(g, grad(t, p1));
    pyad_tape_free(t);
    pyad_program_free(prog);
    context = "";
}

/* ---- softmax groups whose segments were reused ------------------------------------------------
 */

/* The segment of a record: handles of one tape generation differ only in their slot, whose
   high bits name the segment (the frontend uses the same rule). */
static int64_t segment_of(int64_t h)
{
    int shift = 0;
    while ((1 << shift) < pyad_chunk_records())
        shift++;
    return h >> shift;
}

typedef struct scene {
    int n, before_end, nkeep;
    int keep[2];
} scene;

/* Pins the way the frontend holds them: every segment opened gets one; `hold` lists the
   segments some kept record lives in, which keep theirs. */
typedef struct pins {
    int64_t cur;      /* a record of the current segment */
    int64_t hold[4];  /* segments (segment_of) still pinned by a kept record */
    int nhold;
} pins;

static int held(const pins *ps, int64_t h)
{
    for (int k = 0; k < ps->nhold; k++)
        if (ps->hold[k] == segment_of(h))
            return 1;
    return 0;
}

/* A push as the frontend does it: on a new segment, the previous current one loses its pin
   unless a kept record lives there. */
static int64_t pushed(pyad_tape *t, pins *ps, int64_t r)
{
    const int64_t h = got(t, r);
    if (r == -(int64_t)PYAD_SEGMENT) {
        if (!held(ps, ps->cur))
            CHECK(pyad_tape_unpin(t, ps->cur) == PYAD_OK);
        ps->cur = h;
    }
    return h;
}

/* Inputs x, y, z in the first segment (kept), then a softmax of n operands drawn from
   (x, y * 0.5, 0.75, z, x - y) starting `before_end` records before the end of the second
   segment; outputs keep[] kept, the others dropped with their segments (output 0's is held
   by the links of the kept ones); six segments of leaves recorded and dropped; returns
   sum_k (k + 1) * outputs[keep[k]]. `left` gets the softmax records the tape still holds. */
static int64_t record_scene(pyad_tape *t, const double *x, const scene *sc, int64_t *in,
                            int64_t *left)
{
    const int64_t C = pyad_chunk_records();
    pins ps = {0, {0}, 0};
    CHECK(pyad_tape_segment(t, &ps.cur) == PYAD_OK);
    ps.hold[ps.nhold++] = segment_of(ps.cur);
    for (int i = 0; i < 3; i++)
        in[i] = pushed(t, &ps, pyad_push_leaf(t, x[i]));
    const int64_t ops[5] = {in[0], pushed(t, &ps, pyad_mul_vc(in[1], 0.5)), 0, in[2],
                            pushed(t, &ps, pyad_sub(in[0], in[1]))};
    int64_t *hs = malloc((size_t)sc->n * sizeof *hs), *outs = malloc((size_t)sc->n * sizeof *outs);
    double *cs = malloc((size_t)sc->n * sizeof *cs);
    CHECK(hs && outs && cs);
    for (int j = 0; j < sc->n; j++) {
        hs[j] = ops[j % 5];
        cs[j] = 0.75;
    }
    while (tape_len(t) < 2 * C - sc->before_end)
        pushed(t, &ps, pyad_push_leaf(t, 0.0));
    const int st = pyad_push_softmax(t, sc->n, hs, cs, outs);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    for (int k = 0; k < sc->nkeep; k++)
        ps.hold[ps.nhold++] = segment_of(outs[sc->keep[k]]);
    /* the segments the softmax opened, each with its pin, as the frontend adopts them */
    for (int j = 1; j < sc->n; j++)
        if (segment_of(outs[j]) != segment_of(outs[j - 1])) {
            if (!held(&ps, ps.cur))
                CHECK(pyad_tape_unpin(t, ps.cur) == PYAD_OK);
            ps.cur = outs[j];
        }
    for (int64_t k = 0; k < 6 * C; k++)
        pushed(t, &ps, pyad_push_leaf(t, 1.0));
    int64_t out = 0;
    for (int k = 0; k < sc->nkeep; k++) {
        const int64_t term = pushed(t, &ps, pyad_mul_vc(outs[sc->keep[k]], 1.0 + k));
        out = k == 0 ? term : pushed(t, &ps, pyad_add(out, term));
    }
    int64_t counts[64], depth = -1;
    CHECK(pyad_op_count() <= 64 && pyad_tape_stats(t, counts, &depth) == PYAD_OK);
    *left = counts[PYAD_OP_SOFTMAX];
    free(hs);
    free(outs);
    free(cs);
    return out;
}

/* The softmax records the scene leaves: those in the segments of output 0 and the kept ones. */
static int64_t left_expected(const scene *sc)
{
    const int64_t C = pyad_chunk_records(), first = 2 * C - sc->before_end;
    int64_t n = 0;
    for (int64_t j = 0; j < sc->n; j++) {
        const int64_t seg = (first + j) / C;
        int kept = seg == first / C;
        for (int k = 0; k < sc->nkeep; k++)
            kept |= seg == (first + sc->keep[k]) / C;
        n += kept;
    }
    return n;
}

static void test_softmax_segments_reused(void)
{
    context = "softmax after segment reuse";
    const int C = pyad_chunk_records();
    const scene scenes[] = {
        {4, 2, 1, {3, 0}},          /* output 0's segment held by nothing but the links */
        {4, 2, 1, {0, 0}},          /* the segment of outputs 2 and 3 reused */
        {7, 6, 1, {5, 0}},
        {C + 40, 20, 1, {C + 30, 0}}, /* three segments, the middle one reused */
        {C + 40, 20, 2, {0, 5}},
        {2 * C + 3, 500, 2, {700, 2 * C + 2}},
    };
    const double x0[3] = {0.3, -1.2, 0.8}, x1[3] = {-0.4, 0.9, 1.7}, seed = 1.0;
    for (size_t c = 0; c < sizeof scenes / sizeof *scenes; c++) {
        const scene *sc = &scenes[c];
        int64_t in[3], left = -1;
        pyad_tape *t = new_tape();
        const int64_t out = record_scene(t, x0, sc, in, &left);
        CHECK(left == left_expected(sc));
        pyad_program *p = compile(t, 3, in, 1, &out, NULL);
        double v = NAN, g[3] = {NAN, NAN, NAN};
        if (p != NULL) {
            CHECK(info_of(p, INFO_SIDE) == sc->n);
            CHECK(run_room(p, 1, 1, x0, 1, &seed, &v, g, NULL) == PYAD_OK);
        }
        CHECK_SAME(v, value(t, out));
        CHECK(pyad_backward(t, out, 1.0) == PYAD_OK);
        for (int i = 0; i < 3; i++)
            CHECK_SAME(g[i], grad(t, in[i]));
        pyad_tape_free(t);
        /* at another point, against a fresh recording */
        t = new_tape();
        const int64_t out1 = record_scene(t, x1, sc, in, &left);
        CHECK(pyad_backward(t, out1, 1.0) == PYAD_OK);
        if (p != NULL)
            CHECK(run_room(p, 1, 1, x1, 1, &seed, &v, g, NULL) == PYAD_OK);
        CHECK_SAME(v, value(t, out1));
        for (int i = 0; i < 3; i++)
            CHECK_SAME(g[i], grad(t, in[i]));
        pyad_tape_free(t);
        pyad_program_free(p);
    }
    context = "";
}

/* A softmax output kept only by accident (its segment kept for another record's sake) after
   its first output's segment was reused: its handle still resolves, but nothing may read
   the group through it. Every entry point refuses it or skips it; none reads out of bounds,
   also once the first output's slot holds the first output of a newer softmax. */
static void check_orphan(pyad_tape *t, int64_t orphan, int64_t user, int64_t x)
{
    int64_t hs[4], n = -1;
    double ps[4];
    CHECK(pyad_get_operands(t, orphan, 4, hs, ps, &n) == PYAD_STALE);
    CHECK(pyad_backward(t, orphan, 1.0) == PYAD_STALE);
    pyad_program *p = NULL;
    CHECK(pyad_program_new(t, 1, &x, 1, &orphan, NULL, 0, NULL, NULL, NULL, &p) == PYAD_STALE);
    CHECK(p == NULL);
    CHECK(pyad_program_new(t, 1, &x, 1, &user, NULL, 0, NULL, NULL, NULL, &p) == PYAD_STALE);
    CHECK(p == NULL);
    int64_t counts[64], depth = -1;
    CHECK(pyad_tape_stats(t, counts, &depth) == PYAD_OK && depth >= 0);
}

static void test_softmax_output_without_its_first(void)
{
    context = "softmax output without its first";
    const int64_t C = pyad_chunk_records();
    pyad_tape *t = new_tape();
    pins ps = {0, {0}, 0};
    CHECK(pyad_tape_segment(t, &ps.cur) == PYAD_OK);
    ps.hold[ps.nhold++] = segment_of(ps.cur);
    const int64_t x = pushed(t, &ps, pyad_push_leaf(t, 0.3));
    const int64_t y = pushed(t, &ps, pyad_push_leaf(t, -0.7));
    while (tape_len(t) < 2 * C - 2)
        pushed(t, &ps, pyad_push_leaf(t, 0.0));
    const int64_t hs[4] = {x, y, 0, x};
    const double cs[4] = {0.0, 0.0, 0.5, 0.0};
    int64_t outs[4];
    CHECK(pyad_push_softmax(t, 4, hs, cs, outs) == PYAD_SEGMENT);
    CHECK(pyad_tape_unpin(t, ps.cur) == PYAD_OK); /* outputs 0 and 1 are dropped */
    ps.cur = outs[2];
    const int64_t r = pushed(t, &ps, pyad_exp(x));    /* kept by u below */
    const int64_t w = pushed(t, &ps, pyad_exp(outs[0])); /* dropped: uses output 0 */
    while (segment_of(ps.cur) == segment_of(r))
        pushed(t, &ps, pyad_push_leaf(t, 0.0));
    ps.hold[ps.nhold++] = segment_of(ps.cur);
    const int64_t u = pushed(t, &ps, pyad_mul_vc(r, 2.0));
    for (int64_t k = 0; k < 6 * C; k++) /* churn: the tape collects the dropped segments */
        pushed(t, &ps, pyad_push_leaf(t, 1.0));
    double v;
    CHECK(pyad_get_value(t, outs[0], &v) == PYAD_STALE); /* its segment was collected */
    CHECK(pyad_get_value(t, outs[2], &v) == PYAD_OK);    /* kept along with r */
    check_orphan(t, outs[2], w, x);
    /* u's program is fine, and the orphans' segment is no obstacle */
    pyad_program *p = compile(t, 1, &x, 1, &u, NULL);
    const double x0 = 0.3, seed = 1.0;
    double val = NAN, g = NAN;
    if (p != NULL)
        CHECK(run_room(p, 1, 1, &x0, 1, &seed, &val, &g, NULL) == PYAD_OK);
    pyad_program_free(p);
    CHECK_SAME(val, value(t, u));
    CHECK(pyad_set_grad(t, x, 0.0) == PYAD_OK);
    CHECK(pyad_backward(t, u, 1.0) == PYAD_OK);
    CHECK_SAME(g, grad(t, x));

    /* output 0's slot reused by the first output of a newer softmax of as many outputs */
    int reopened = 0;
    for (int k = 0; k < 64 && !reopened; k++) {
        const int64_t h = pushed(t, &ps, pyad_push_leaf(t, 0.0));
        reopened = segment_of(h) == segment_of(outs[0]);
    }
    CHECK(reopened);
    int64_t last = 0;
    CHECK(pyad_tape_last(t, &last) == PYAD_OK);
    while (last + 1 < outs[0]) /* the segment's slots are filled in order */
        last = pushed(t, &ps, pyad_push_leaf(t, 0.0));
    int64_t outs2[4];
    const int st = pyad_push_softmax(t, 4, hs, cs, outs2);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    CHECK(outs2[0] == outs[0]); /* the same handle names the new record */
    CHECK(pyad_get_value(t, outs[2], &v) == PYAD_OK);
    check_orphan(t, outs[2], w, x);
    pyad_tape_free(t);
    context = "";
}

/* ---- one program, two threads at once ------------------------------------------------------- */

struct runner {
    const pyad_program *p;
    const double *x;
    double grads[64 * NIN];
    int status;
};

static void *run_thread(void *arg)
{
    struct runner *r = arg;
    const double seed[NOUT] = {1.0, 1.0, 1.0};
    double *work = malloc((size_t)pyad_program_work(r->p, 5, 0) * sizeof *work);
    r->status = work ? pyad_program_run(r->p, 64, r->x, 1, seed, NULL, r->grads, NULL, work,
                                        pyad_program_work(r->p, 5, 0))
                     : PYAD_NOMEM;
    free(work);
    return NULL;
}

static void test_threads(void)
{
    static double x[64 * NIN];
    for (int q = 0; q < 64; q++)
        random_point(x + q * NIN);
    pyad_tape *t = new_tape();
    composite c;
    record_composite(t, x, &c);
    pyad_program *p = compile_composite(t, &c, NOUT);
    pyad_tape_free(t);
    static struct runner r[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        r[i].p = p;
        r[i].x = x;
        CHECK(pthread_create(&th[i], NULL, run_thread, &r[i]) == 0);
    }
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(th[i], NULL) == 0);
    CHECK(r[0].status == PYAD_OK && r[1].status == PYAD_OK);
    CHECK(memcmp(r[0].grads, r[1].grads, sizeof r[0].grads) == 0);
    pyad_program_free(p);
}

void test_program(void)
{
    test_every_op();
    test_composite_batched();
    test_composite_hvp();
    test_hvp_analytic();
    test_dead_code();
    test_constants_and_trivial_outputs();
    test_guards();
    test_errors();
    test_reused_segments();
    test_softmax_segments_reused();
    test_softmax_output_without_its_first();
    test_threads();
}
