/*
 * C unit tests of saved programs (pyad_program_save, pyad_program_load): a loaded program is
 * field for field the one pyad_program_new built (derived fields included) and replays bit
 * for bit like it; every corruption is refused with PYAD_BADFORMAT, and one that gets past
 * the checksum (resealed with pyad__saved_seal) is refused by the structural checks or is a
 * program that replays within its bounds (ASan and valgrind watch). test_saved() is called
 * from test_main.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../program.h"
#include "check.h"

static const char *context = "";

#define CHECKC(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: [%s] CHECK(%s) failed\n", __FILE__, __LINE__, context, #cond); \
            pyad_test_failures++;                                                                  \
        }                                                                                          \
    } while (0)

static int64_t leaf(pyad_tape *t, double v)
{
    return got(t, pyad_push_leaf(t, v));
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * (double)(next_rand() >> 11) * 0x1p-53;
}

/* ---- saving and loading --------------------------------------------------------------------- */

static uint8_t *save(const pyad_program *p, int64_t *len)
{
    *len = -1;
    CHECKC(pyad_program_save(p, NULL, 0, len) == PYAD_OK && *len > 0);
    uint8_t *buf = malloc((size_t)*len);
    int64_t again = -1;
    CHECKC(buf != NULL && pyad_program_save(p, buf, *len, &again) == PYAD_OK && again == *len);
    return buf;
}

static pyad_program *load(const uint8_t *buf, int64_t len)
{
    pyad_program *p = NULL;
    char msg[200] = "unset";
    const int st = pyad_program_load(buf, len, &p, msg, sizeof msg);
    if (st != PYAD_OK)
        fprintf(stderr, "[%s] load failed: %d %s\n", context, st, msg);
    CHECKC(st == PYAD_OK && p != NULL && msg[0] == '\0');
    return p;
}

/* Every field of the two programs, derived ones included, is the same. */
static void check_same_program(const pyad_program *a, const pyad_program *b)
{
    CHECKC(a->nin == b->nin && a->nrec == b->nrec && a->nconst == b->nconst);
    CHECKC(a->nout == b->nout && a->nguard == b->nguard && a->nnary == b->nnary);
    CHECKC(a->nside == b->nside && a->maxn == b->maxn && a->nstatic == b->nstatic);
    CHECKC(a->nstored == b->nstored && a->nzero == b->nzero && a->nbytes == b->nbytes);
    if (a->nrec != b->nrec || a->nnary != b->nnary || a->nside != b->nside ||
        a->nconst != b->nconst || a->nout != b->nout || a->nguard != b->nguard ||
        a->nzero != b->nzero || a->nstatic != b->nstatic)
        return;
    CHECKC(memcmp(a->ins, b->ins, a->nrec * sizeof *a->ins) == 0);
    CHECKC(memcmp(a->cpart, b->cpart, 2 * (size_t)a->nstatic * sizeof *a->cpart) == 0);
    CHECKC(memcmp(a->nary, b->nary, a->nnary * sizeof *a->nary) == 0);
    CHECKC(memcmp(a->side, b->side, a->nside * sizeof *a->side) == 0);
    CHECKC(memcmp(a->side_first, b->side_first, a->nside) == 0);
    CHECKC(memcmp(a->zero, b->zero, a->nzero * sizeof *a->zero) == 0);
    CHECKC(memcmp(a->consts, b->consts, a->nconst * sizeof *a->consts) == 0);
    CHECKC(memcmp(a->out, b->out, a->nout * sizeof *a->out) == 0);
    CHECKC(memcmp(a->guard, b->guard, a->nguard * sizeof *a->guard) == 0);
}

/* ---- replays -------------------------------------------------------------------------------- */

/* Values, grads (one sweep per output) and guards of k points, blocks of `room` points. */
static int run(const pyad_program *p, int64_t room, int64_t k, const double *x, double *vals,
               double *grads, int64_t *guards)
{
    const int64_t nin = p->nin, nout = p->nout;
    double *seeds = calloc((size_t)(nout * nout + 1), sizeof *seeds);
    for (int64_t j = 0; j < nout; j++)
        seeds[j * nout + j] = 1.0;
    const int64_t nwork = pyad_program_work(p, room, 0);
    double *work = malloc((size_t)(nwork > 0 ? nwork : 1) * sizeof *work);
    const int st =
        nwork > 0 && work != NULL
            ? pyad_program_run(p, k, x, nout, seeds, vals, nout ? grads : NULL, guards, work, nwork)
            : PYAD_NOMEM;
    (void)nin;
    free(work);
    free(seeds);
    return st;
}

static int hvp(const pyad_program *p, const double *x, int64_t ndir, const double *v, double *value,
               double *grad, double *hv, int64_t *guard)
{
    const int64_t nwork = pyad_program_work(p, 1, ndir);
    double *work = malloc((size_t)(nwork > 0 ? nwork : 1) * sizeof *work);
    const int st = nwork > 0 && work != NULL
                       ? pyad_program_hvp(p, x, ndir, v, value, grad, hv, guard, work, nwork)
                       : PYAD_NOMEM;
    free(work);
    return st;
}

/* The two programs give the same bits at k random points (with the recorded point first),
   one by one and in blocks, first and second order. */
static void check_same_replay(const pyad_program *a, const pyad_program *b, const double *x0)
{
    enum { K = 7 };
    const size_t nin = a->nin, nout = a->nout;
    double *x = malloc(K * nin * sizeof *x + 1);
    double *va = malloc(K * nout * sizeof *va + 1), *vb = malloc(K * nout * sizeof *vb + 1);
    double *ga = malloc(K * nout * nin * sizeof *ga + 1);
    double *gb = malloc(K * nout * nin * sizeof *gb + 1);
    int64_t gda[K], gdb[K];
    for (size_t q = 0; q < K; q++)
        for (size_t i = 0; i < nin; i++)
            x[q * nin + i] = q == 0 ? x0[i] : x0[i] * uniform(0.6, 1.4) + uniform(-0.2, 0.2);
    const int64_t rooms[3] = {1, 3, K};
    for (int r = 0; r < 3; r++) {
        CHECKC(run(a, rooms[r], K, x, va, ga, gda) == PYAD_OK);
        CHECKC(run(b, rooms[r], K, x, vb, gb, gdb) == PYAD_OK);
        for (size_t j = 0; j < K * nout; j++)
            CHECKC(same_bits(va[j], vb[j]));
        for (size_t j = 0; j < K * nout * nin; j++)
            CHECKC(same_bits(ga[j], gb[j]));
        for (size_t q = 0; q < K; q++)
            CHECKC(gda[q] == gdb[q]);
    }
    if (nout == 1 && nin > 0) {
        double *v = malloc(2 * nin * sizeof *v), *ha = malloc(2 * nin * sizeof *ha);
        double *hb = malloc(2 * nin * sizeof *hb), *da = malloc(nin * sizeof *da);
        double *db = malloc(nin * sizeof *db);
        for (size_t i = 0; i < 2 * nin; i++)
            v[i] = uniform(-1.0, 1.0);
        for (size_t q = 0; q < K; q++) {
            double ya = 0.0, yb = 1.0;
            int64_t g1 = -1, g2 = -2;
            CHECKC(hvp(a, x + q * nin, 2, v, &ya, da, ha, &g1) == PYAD_OK);
            CHECKC(hvp(b, x + q * nin, 2, v, &yb, db, hb, &g2) == PYAD_OK);
            CHECKC(same_bits(ya, yb) && g1 == g2);
            for (size_t i = 0; i < nin; i++)
                CHECKC(same_bits(da[i], db[i]));
            for (size_t i = 0; i < 2 * nin; i++)
                CHECKC(same_bits(ha[i], hb[i]));
        }
        free(v);
        free(ha);
        free(hb);
        free(da);
        free(db);
    }
    free(x);
    free(va);
    free(vb);
    free(ga);
    free(gb);
}

/* Save, load, compare; the loaded program saves to the same bytes. */
static void check_round_trip(const pyad_program *p, const double *x0)
{
    int64_t len = 0, len2 = 0;
    uint8_t *buf = save(p, &len);
    pyad_program *q = load(buf, len);
    if (q != NULL) {
        check_same_program(p, q);
        check_same_replay(p, q, x0);
        uint8_t *again = save(q, &len2);
        CHECKC(len2 == len && memcmp(buf, again, (size_t)len) == 0);
        free(again);
    }
    pyad_program_free(q);
    free(buf);
}

/* ---- programs ------------------------------------------------------------------------------- */

enum { ZOO_IN = 3, ZOO_MAXOUT = 128, ZOO_GUARDS = 8 };

typedef struct zoo {
    pyad_tape *t;
    int64_t in[ZOO_IN], out[ZOO_MAXOUT];
    double out_c[ZOO_MAXOUT];
    int64_t nout;
    int64_t guard_h[2 * ZOO_GUARDS];
    double guard_c[2 * ZOO_GUARDS];
    int guard_kind[ZOO_GUARDS];
} zoo;

static void add_out(zoo *z, int64_t h)
{
    CHECKC(z->nout < ZOO_MAXOUT);
    if (z->nout < ZOO_MAXOUT) {
        z->out_c[z->nout] = 0.0;
        z->out[z->nout++] = h;
    }
}

/* Every unary op, every binary op in its three forms, each n-ary op (with constant
   operands, an empty sum and a one-output softmax), a leaf that is no input (a constant),
   outputs that are an input and a constant, guards of every kind. */
static void build_zoo(zoo *z, const double *x)
{
    memset(z, 0, sizeof *z);
    z->t = new_tape();
    pyad_tape *t = z->t;
    for (int i = 0; i < ZOO_IN; i++)
        z->in[i] = leaf(t, x[i]);
    const int64_t X = z->in[0], Y = z->in[1], Z = z->in[2], K = leaf(t, 0.75);
    for (int op = 0; op < pyad_op_count(); op++) {
        if (pyad_op_arity(op) == 1) {
            add_out(z, got(t, pyad_push_v(t, op, X)));
        } else if (pyad_op_arity(op) == 2) {
            add_out(z, got(t, pyad_push_vv(t, op, Y, Z)));
            add_out(z, got(t, pyad_push_vc(t, op, Y, 1.25)));
            add_out(z, got(t, pyad_push_cv(t, op, 1.25, Z)));
            add_out(z, got(t, pyad_push_vv(t, op, X, K)));
        }
    }
    const int64_t h3[3] = {X, 0, Z};
    const double c3[3] = {0.0, 2.5, 0.0};
    add_out(z, got(t, pyad_push_nary(t, PYAD_OP_SUM, 3, h3, c3)));
    add_out(z, got(t, pyad_push_nary(t, PYAD_OP_SUM, 0, NULL, NULL)));
    add_out(z, got(t, pyad_push_nary(t, PYAD_OP_LOGSUMEXP, 3, h3, c3)));
    const int64_t hw[2] = {X, 0}, hx[2] = {Y, Z};
    const double cw[2] = {0.0, -1.5};
    const int64_t d = got(t, pyad_push_dot(t, 2, hw, cw, hx, NULL));
    add_out(z, d);
    int64_t sm[4] = {0, 0, 0, 0};
    const int64_t hs[4] = {X, d, 0, Y};
    const double cs[4] = {0.0, 0.0, 0.1, 0.0};
    int st = pyad_push_softmax(t, 4, hs, cs, sm);
    CHECKC(st == PYAD_OK || st == PYAD_SEGMENT);
    add_out(z, got(t, pyad_mul(sm[2], sm[0]))); /* the group from its middle outputs */
    st = pyad_push_softmax(t, 1, hs, cs, sm);
    CHECKC(st == PYAD_OK || st == PYAD_SEGMENT);
    add_out(z, sm[0]);
    const double mc[6] = {1.5, -2.0, 0.25, 0.5, 3.0, -1.0}; /* a matvec of 2 rows, x shuffled */
    const int64_t mx[3] = {Z, X, d};
    int64_t mv[2] = {0, 0};
    st = pyad_push_matvec(t, 2, 3, mc, mx, mv);
    CHECKC(st == PYAD_OK || st == PYAD_SEGMENT);
    add_out(z, got(t, pyad_mul(mv[1], mv[1])));
    add_out(z, Y);        /* an input */
    add_out(z, 0);        /* a constant */
    z->out_c[z->nout - 1] = -3.5;
    for (int g = 0; g < ZOO_GUARDS; g++) {
        z->guard_h[2 * g] = g % 2 ? X : d;
        z->guard_h[2 * g + 1] = g % 3 ? 0 : Z;
        z->guard_c[2 * g + 1] = 0.25 * g;
        z->guard_kind[g] = g;
    }
}

static pyad_program *zoo_program(zoo *z, int64_t nout, const int64_t *out, const double *oc)
{
    pyad_program *p = NULL;
    CHECKC(pyad_program_new(z->t, ZOO_IN, z->in, nout, out, oc, ZOO_GUARDS, z->guard_h, z->guard_c,
                            z->guard_kind, &p) == PYAD_OK);
    return p;
}

/* One output: the sum of all of the zoo's (for hvp). */
static pyad_program *zoo_scalar(zoo *z)
{
    const int64_t s = got(z->t, pyad_push_nary(z->t, PYAD_OP_SUM, z->nout, z->out, z->out_c));
    return zoo_program(z, 1, &s, NULL);
}

static void test_round_trips(void)
{
    const double x0[ZOO_IN] = {0.3, 0.6, 1.7};
    zoo z;
    build_zoo(&z, x0);
    context = "zoo";
    pyad_program *p = zoo_program(&z, z.nout, z.out, z.out_c);
    check_round_trip(p, x0);
    pyad_program_free(p);
    context = "zoo scalar";
    p = zoo_scalar(&z);
    check_round_trip(p, x0);
    pyad_program_free(p);
    pyad_tape_free(z.t);

    /* edge cases: no instruction, no input, no output */
    context = "trivial";
    pyad_tape *t = new_tape();
    const int64_t x = leaf(t, 2.0);
    pyad_program *q = NULL;
    CHECKC(pyad_program_new(t, 1, &x, 1, &x, NULL, 0, NULL, NULL, NULL, &q) == PYAD_OK);
    check_round_trip(q, &x0[0]);
    pyad_program_free(q);
    const int64_t zero = 0;
    const double c = 4.0;
    CHECKC(pyad_program_new(t, 0, NULL, 1, &zero, &c, 0, NULL, NULL, NULL, &q) == PYAD_OK);
    check_round_trip(q, NULL);
    pyad_program_free(q);
    CHECKC(pyad_program_new(t, 1, &x, 0, NULL, NULL, 0, NULL, NULL, NULL, &q) == PYAD_OK);
    check_round_trip(q, &x0[0]);
    pyad_program_free(q);
    pyad_tape_free(t);
    context = "";
}

/* A random DAG over n inputs: each record a random op of earlier records or constants. */
static pyad_program *random_program(pyad_tape *t, int nin, int nrec, double *x0)
{
    int64_t *h = malloc((size_t)(nin + nrec) * sizeof *h), in[8];
    int n = 0;
    for (int i = 0; i < nin; i++) {
        x0[i] = uniform(0.2, 0.9);
        h[n++] = in[i] = leaf(t, x0[i]);
    }
    static const int safe1[] = {PYAD_OP_NEG,  PYAD_OP_TANH,     PYAD_OP_SIN, PYAD_OP_SIGMOID,
                                PYAD_OP_ATAN, PYAD_OP_SOFTPLUS, PYAD_OP_ABS, PYAD_OP_RELU};
    static const int safe2[] = {PYAD_OP_ADD, PYAD_OP_SUB, PYAD_OP_MUL, PYAD_OP_HYPOT,
                                PYAD_OP_ATAN2};
    while (n < nin + nrec) {
        const int64_t a = h[next_rand() % (uint64_t)n], b = h[next_rand() % (uint64_t)n];
        const double c = uniform(-2.0, 2.0);
        int64_t r = 0;
        switch (next_rand() % 6) {
        case 0:
            r = pyad_push_v(t, safe1[next_rand() % 8], a);
            break;
        case 1:
            r = pyad_push_vv(t, safe2[next_rand() % 5], a, b);
            break;
        case 2:
            r = pyad_push_vc(t, safe2[next_rand() % 5], a, c);
            break;
        case 3:
            r = pyad_push_cv(t, safe2[next_rand() % 5], c, b);
            break;
        case 4: {
            const int64_t l[3] = {a, b, 0};
            const double lc[3] = {0.0, 0.0, c};
            r = pyad_push_nary(t, next_rand() % 2 ? PYAD_OP_SUM : PYAD_OP_LOGSUMEXP, 3, l, lc);
            break;
        }
        default: {
            const int64_t l[2] = {a, b};
            int64_t sm[2];
            const int st = pyad_push_softmax(t, 2, l, NULL, sm);
            CHECKC(st == PYAD_OK || st == PYAD_SEGMENT);
            r = sm[next_rand() % 2];
            break;
        }
        }
        h[n++] = got(t, r);
    }
    const int64_t outs[3] = {h[n - 1], h[n - 2], h[nin + nrec / 2]};
    const int64_t gh[2] = {h[n - 3], 0};
    const double gc[2] = {0.0, 0.5};
    const int gk = 2 | 4;
    pyad_program *p = NULL;
    CHECKC(pyad_program_new(t, nin, in, 3, outs, NULL, 1, gh, gc, &gk, &p) == PYAD_OK);
    free(h);
    return p;
}

static void test_random_round_trips(void)
{
    context = "random DAGs";
    for (int trial = 0; trial < 40; trial++) {
        pyad_tape *t = new_tape();
        double x0[8];
        pyad_program *p = random_program(t, 1 + trial % 8, 5 + 7 * trial, x0);
        check_round_trip(p, x0);
        pyad_program_free(p);
        pyad_tape_free(t);
    }
    context = "";
}

/* ---- corruption ----------------------------------------------------------------------------- */

static int corruption_cases = 0;

/* A buffer the loader refused or accepted: refused with BADFORMAT and a reason; accepted,
   it replays and saves within its bounds (what ASan checks) and saves to the same bytes. */
static void load_anything(const uint8_t *buf, int64_t len, int must_fail)
{
    corruption_cases++;
    pyad_program *p = NULL;
    char msg[160] = "";
    const int st = pyad_program_load(buf, len, &p, msg, sizeof msg);
    if (must_fail)
        CHECKC(st == PYAD_BADFORMAT);
    if (st != PYAD_OK) {
        CHECKC(st == PYAD_BADFORMAT && p == NULL && msg[0] != '\0');
        return;
    }
    CHECKC(p != NULL);
    if (p == NULL)
        return;
    if (p->nin <= 64 && p->nrec <= 100000) {
        double x[3 * 64], vals[3 * 64 + 1], *grads = malloc(3 * 64 * 64 * sizeof *grads + 8);
        int64_t guards[3];
        for (int i = 0; i < 3 * 64; i++)
            x[i] = uniform(-2.0, 2.0);
        if (p->nout <= 64) {
            CHECKC(run(p, 2, 3, x, vals, grads, guards) == PYAD_OK);
            if (p->nout == 1 && p->nin > 0) {
                double v[2 * 64], hv[2 * 64], y, g[64];
                for (int i = 0; i < 2 * 64; i++)
                    v[i] = uniform(-1.0, 1.0);
                CHECKC(hvp(p, x, 2, v, &y, g, hv, guards) == PYAD_OK);
            }
        }
        free(grads);
    }
    /* saved again, it is the same program; with our op table, the same bytes too */
    int64_t n = 0;
    uint8_t *again = save(p, &n);
    pyad_program *q = load(again, n);
    if (q != NULL)
        check_same_program(p, q);
    pyad_program_free(q);
    const size_t table = (size_t)(again[40] | again[41] << 8);
    if ((int64_t)(48 + table) <= len && memcmp(again, buf, 48 + table) == 0)
        CHECKC(n == len && memcmp(again, buf, (size_t)len) == 0);
    free(again);
    pyad_program_free(p);
}

/* Every single-byte change (three patterns) and every truncation of a saved program is
   refused; the same changes with the checksum recomputed reach the structural checks. */
static void corrupt_everywhere(const pyad_program *p)
{
    int64_t len = 0;
    uint8_t *buf = save(p, &len), *copy = malloc((size_t)len + 1);
    static const uint8_t flips[3] = {0x01, 0x80, 0xff};
    for (int64_t at = 0; at < len; at++)
        for (int f = 0; f < 3; f++) {
            memcpy(copy, buf, (size_t)len);
            copy[at] ^= flips[f];
            load_anything(copy, len, 1);
            if (at < len - 8) {
                pyad__saved_seal(copy, len);
                load_anything(copy, len, 0);
            }
        }
    for (int64_t n = 0; n < len; n++) {
        load_anything(buf, n, 1);
        memcpy(copy, buf, (size_t)n);
        if (n >= 8) {
            pyad__saved_seal(copy, n);
            load_anything(copy, n, 1);
        }
    }
    memcpy(copy, buf, (size_t)len);
    copy[len] = 0;
    load_anything(copy, len + 1, 1); /* a trailing byte */
    /* random multi-byte damage behind a valid checksum */
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(copy, buf, (size_t)len);
        const int nhit = 1 + (int)(next_rand() % 4);
        for (int k = 0; k < nhit; k++) {
            const uint64_t r = next_rand();
            copy[(r >> 8) % (uint64_t)(len - 8)] = (uint8_t)r;
        }
        pyad__saved_seal(copy, len);
        load_anything(copy, len, 0);
    }
    free(copy);
    free(buf);
}

static void test_corruption(void)
{
    const double x0[ZOO_IN] = {0.3, 0.6, 1.7};
    zoo z;
    build_zoo(&z, x0);
    context = "corrupt zoo";
    const int64_t few[6] = {z.out[0],          z.out[30],         z.out[z.nout - 6],
                            z.out[z.nout - 5], z.out[z.nout - 4], z.out[z.nout - 3]};
    pyad_program *p = zoo_program(&z, 6, few, NULL);
    corrupt_everywhere(p);
    pyad_program_free(p);
    context = "corrupt zoo scalar";
    p = zoo_scalar(&z);
    corrupt_everywhere(p);
    pyad_program_free(p);
    pyad_tape_free(z.t);
    printf("saved programs: %d corrupted buffers tried\n", corruption_cases);
    context = "";
}

/* ---- hand-made buffers: each structural check and its message ------------------------------- */

typedef struct blob {
    uint8_t b[1024];
    int64_t n, code; /* length, the code section's offset */
} blob;

static void put32(blob *w, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        w->b[w->n++] = (uint8_t)(v >> (8 * k));
}

static void put8(blob *w, unsigned v)
{
    w->b[w->n++] = (uint8_t)v;
}

static void put64(blob *w, uint64_t v)
{
    put32(w, (uint32_t)v);
    put32(w, (uint32_t)(v >> 32));
}

/* A header for nin inputs, nrec instructions, nside n-ary entries, consts 0.0 and 2.0, and
   an op table of the names given (NULL: ours). */
static void begin_ops(blob *w, uint32_t nin, uint32_t nrec, uint32_t nside, int nops,
                      const char *const *names)
{
    memcpy(w->b, "PYADPROG", 8);
    w->n = 8;
    if (names == NULL)
        nops = pyad_op_count();
    const uint32_t head[10] = {1, nin, nrec, 2, 0, 0, nside, (uint32_t)nops, 0, 0};
    for (int k = 0; k < 10; k++)
        put32(w, head[k]);
    for (int op = 0; op < nops; op++) {
        const char *name = names ? names[op] : pyad_op_name(op);
        put8(w, (unsigned)strlen(name));
        memcpy(w->b + w->n, name, strlen(name));
        w->n += (int64_t)strlen(name);
    }
    w->code = w->n;
    w->n = 40;
    put32(w, (uint32_t)(w->code - 48));
    w->n = w->code;
}

static void begin(blob *w, uint32_t nin, uint32_t nrec, uint32_t nside)
{
    begin_ops(w, nin, nrec, nside, 0, NULL);
}

/* Closes the code section, adds the constants, outputs and guards, sets the sizes and
   seals it. */
static void end(blob *w, uint32_t nout, const uint32_t *out, uint32_t nguard, const uint32_t *guard)
{
    const uint32_t code = (uint32_t)(w->n - w->code);
    put64(w, 0);
    double two = 2.0;
    uint64_t bits;
    memcpy(&bits, &two, sizeof bits);
    put64(w, bits);
    for (uint32_t j = 0; j < nout; j++)
        put32(w, out[j]);
    for (uint32_t g = 0; g < nguard; g++) {
        put32(w, guard[3 * g]);
        put32(w, guard[3 * g + 1]);
        put8(w, guard[3 * g + 2]);
    }
    const int64_t n = w->n;
    w->n = 24;
    put32(w, nout);
    put32(w, nguard);
    w->n = 44;
    put32(w, code);
    w->n = n + 8;
    pyad__saved_seal(w->b, w->n);
}

/* The load fails with BADFORMAT and a message containing `want`. */
static void expect_bad(const blob *w, const char *want)
{
    pyad_program *p = NULL;
    char msg[200] = "";
    const int st = pyad_program_load(w->b, w->n, &p, msg, sizeof msg);
    corruption_cases++;
    if (st != PYAD_BADFORMAT || strstr(msg, want) == NULL) {
        fprintf(stderr, "%s:%d: [%s] status %d, message \"%s\", expected BADFORMAT and \"%s\"\n",
                __FILE__, __LINE__, context, st, msg, want);
        pyad_test_failures++;
    }
    pyad_program_free(p);
}

static void expect_ok(const blob *w)
{
    pyad_program *p = load(w->b, w->n);
    if (p != NULL)
        load_anything(w->b, w->n, 0);
    pyad_program_free(p);
}

enum {
    ADD = PYAD_OP_ADD,
    SIN = PYAD_OP_SIN,
    SUM = PYAD_OP_SUM,
    DOT = PYAD_OP_DOT,
    LSE = PYAD_OP_LOGSUMEXP,
    SOFTMAX = PYAD_OP_SOFTMAX,
    MATVEC = PYAD_OP_MATVEC
};
#define VC (1u << 6)
#define CV (2u << 6)

static void test_structural_checks(void)
{
    context = "hand-made";
    blob w;
    const uint32_t out0[1] = {2};
    /* 2 inputs (slots 0, 1), instructions from slot 2, constants after them */
    begin(&w, 2, 2, 0); /* a valid one: sin(x); add(y, sin x) */
    put8(&w, SIN), put32(&w, 0), put8(&w, ADD), put32(&w, 1), put32(&w, 2);
    end(&w, 1, (uint32_t[]){3}, 1, (uint32_t[]){0, 5, 4 | 1});
    expect_ok(&w);

    begin(&w, 2, 2, 0);
    put8(&w, SIN), put32(&w, 0), put8(&w, ADD), put32(&w, 1), put32(&w, 3);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 1 reads second operand slot 3, not computed before it");
    begin(&w, 2, 2, 0);
    put8(&w, SIN), put32(&w, 2), put8(&w, ADD), put32(&w, 1), put32(&w, 2);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 0 reads operand slot 2, not computed before it");
    begin(&w, 2, 1, 0);
    put8(&w, SIN), put32(&w, 5);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "past the 5 slots");
    begin(&w, 2, 1, 0);
    put8(&w, 63), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "op code 63, past the");
    begin(&w, 2, 1, 0);
    put8(&w, PYAD_OP_LEAF), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "cannot hold");
    begin(&w, 2, 1, 0);
    put8(&w, PYAD_OP_PRIMITIVE), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "cannot hold");
    begin(&w, 2, 1, 0);
    put8(&w, SIN | VC), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "unknown form 1");
    begin(&w, 2, 1, 0);
    put8(&w, ADD | (3u << 6)), put32(&w, 0), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "unknown form 3");
    begin(&w, 2, 1, 0);
    put8(&w, ADD | VC), put32(&w, 0), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "takes a constant as its second operand, but slot 1 is not a constant");
    begin(&w, 2, 1, 0);
    put8(&w, ADD | CV), put32(&w, 0), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "its first operand");
    begin(&w, 2, 1, 0);
    put8(&w, ADD | CV), put32(&w, 4), put32(&w, 1); /* 2.0 + y: fine */
    end(&w, 1, out0, 0, NULL);
    expect_ok(&w);
    begin(&w, 2, 1, 0);
    put8(&w, ADD), put32(&w, 3), put32(&w, 4); /* constants as plain operands: fine */
    end(&w, 1, out0, 0, NULL);
    expect_ok(&w);
    begin(&w, 2, 2, 0); /* truncated inside an instruction */
    put8(&w, SIN), put32(&w, 0), put8(&w, ADD), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "ends inside instruction 1");
    begin(&w, 2, 1, 0);
    put8(&w, SIN), put32(&w, 0), put8(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "1 bytes of code after the last instruction");
    begin(&w, 2, 1, 0);
    put8(&w, SIN), put32(&w, 0);
    end(&w, 1, (uint32_t[]){5}, 0, NULL);
    expect_bad(&w, "output 0 is slot 5, past the 5 slots");
    begin(&w, 2, 1, 0);
    put8(&w, SIN), put32(&w, 0);
    end(&w, 1, out0, 1, (uint32_t[]){0, 9, 0});
    expect_bad(&w, "guard 0 compares slots 0 and 9");
    begin(&w, 2, 1, 0);
    put8(&w, SIN), put32(&w, 0);
    end(&w, 1, out0, 1, (uint32_t[]){0, 1, 8});
    expect_bad(&w, "guard 0 has unknown kind 8");

    /* n-ary lists */
    begin(&w, 2, 1, 3);
    put8(&w, SUM), put32(&w, 3), put32(&w, 0), put32(&w, 1), put32(&w, 4);
    end(&w, 1, out0, 0, NULL);
    expect_ok(&w);
    begin(&w, 2, 1, 0);
    put8(&w, SUM), put32(&w, 0); /* the empty sum */
    end(&w, 1, out0, 0, NULL);
    expect_ok(&w);
    begin(&w, 2, 1, 0);
    put8(&w, LSE), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "logsumexp of no operands");
    begin(&w, 2, 1, 3);
    put8(&w, DOT), put32(&w, 3), put32(&w, 0), put32(&w, 1), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "dot of an odd number (3)");
    begin(&w, 2, 1, 2);
    put8(&w, SUM), put32(&w, 2), put32(&w, 0), put32(&w, 2);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 0 reads n-ary operand slot 2, not computed before it");
    begin(&w, 2, 1, 2);
    put8(&w, SUM), put32(&w, 1000), put32(&w, 0), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "lists 1000 operands past the code section's end");
    begin(&w, 2, 1, 3);
    put8(&w, SUM), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "the header counts 3 n-ary operand entries, the code has 2");

    /* softmax groups */
    begin(&w, 2, 3, 2);
    put8(&w, SOFTMAX), put32(&w, 0), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    put8(&w, SOFTMAX), put32(&w, 1);
    put8(&w, ADD), put32(&w, 2), put32(&w, 3);
    end(&w, 1, (uint32_t[]){4}, 0, NULL);
    expect_ok(&w);
    begin(&w, 2, 3, 2);
    put8(&w, SOFTMAX), put32(&w, 0), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    put8(&w, ADD), put32(&w, 2), put32(&w, 0);
    put8(&w, SOFTMAX), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 1 (add) interrupts a softmax of 2 outputs at output 1");
    begin(&w, 2, 2, 2);
    put8(&w, SOFTMAX), put32(&w, 0), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    put8(&w, SOFTMAX), put32(&w, 2);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 1 is output 2 of a softmax where output 1 was due");
    begin(&w, 2, 1, 0);
    put8(&w, SOFTMAX), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 0 is output 1 of a softmax where output 0 was due");
    begin(&w, 2, 2, 3);
    put8(&w, SOFTMAX), put32(&w, 0), put32(&w, 3), put32(&w, 0), put32(&w, 1), put32(&w, 0);
    put8(&w, SOFTMAX), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "starts a softmax of 3 outputs, past the last instruction");
    begin(&w, 2, 3, 3);
    put8(&w, SOFTMAX), put32(&w, 0), put32(&w, 3), put32(&w, 0), put32(&w, 1), put32(&w, 0);
    put8(&w, SOFTMAX), put32(&w, 1);
    put8(&w, SIN), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "interrupts a softmax of 3 outputs at output 2");
    begin(&w, 2, 2, 2); /* a softmax output reading its own group */
    put8(&w, SOFTMAX), put32(&w, 0), put32(&w, 2), put32(&w, 0), put32(&w, 3);
    put8(&w, SOFTMAX), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "reads n-ary operand slot 3, not computed before it");

    /* matvec groups: index, rows, count, slots and the matrix (rows x count u64) */
    begin(&w, 2, 2, 2);
    put8(&w, MATVEC), put32(&w, 0), put32(&w, 2), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    for (int e = 0; e < 4; e++)
        put64(&w, 0x3ff0000000000000ULL); /* 1.0 */
    put8(&w, MATVEC), put32(&w, 1);
    end(&w, 1, (uint32_t[]){3}, 0, NULL);
    expect_ok(&w);
    begin(&w, 2, 1, 2);
    put8(&w, MATVEC), put32(&w, 0), put32(&w, 0), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 0 is a matvec of no rows");
    begin(&w, 2, 1, 2);
    put8(&w, MATVEC), put32(&w, 0), put32(&w, 2), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    for (int e = 0; e < 4; e++)
        put64(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "starts a matvec of 2 outputs, past the last instruction");
    begin(&w, 2, 2, 2);
    put8(&w, MATVEC), put32(&w, 0), put32(&w, 2), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    for (int e = 0; e < 3; e++)
        put64(&w, 0);
    put8(&w, MATVEC);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 0 holds a 2 x 2 matrix past the code section's end");
    begin(&w, 2, 3, 2);
    put8(&w, MATVEC), put32(&w, 0), put32(&w, 2), put32(&w, 2), put32(&w, 0), put32(&w, 1);
    for (int e = 0; e < 4; e++)
        put64(&w, 0);
    put8(&w, SOFTMAX), put32(&w, 1);
    put8(&w, MATVEC), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 1 (softmax) interrupts a matvec of 2 outputs at output 1");
    begin(&w, 2, 2, 2); /* reading its own group */
    put8(&w, MATVEC), put32(&w, 0), put32(&w, 2), put32(&w, 2), put32(&w, 0), put32(&w, 3);
    for (int e = 0; e < 4; e++)
        put64(&w, 0);
    put8(&w, MATVEC), put32(&w, 1);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "reads n-ary operand slot 3, not computed before it");

    /* op tables: codes are mapped by name */
    static const char *const swapped[3] = {"sin", "add", "leaf"};
    begin_ops(&w, 2, 2, 0, 3, swapped);
    put8(&w, 0), put32(&w, 0), put8(&w, 1), put32(&w, 1), put32(&w, 2);
    end(&w, 1, (uint32_t[]){3}, 0, NULL);
    {
        pyad_program *p = load(w.b, w.n);
        CHECKC(p != NULL && (p->ins[0].kind & PYAD_OP_MASK) == PYAD_OP_SIN &&
               (p->ins[1].kind & PYAD_OP_MASK) == PYAD_OP_ADD);
        pyad_program_free(p);
    }
    static const char *const unknown[2] = {"sin", "frobnicate"};
    begin_ops(&w, 2, 1, 0, 2, unknown); /* unknown but unused: fine */
    put8(&w, 0), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_ok(&w);
    begin_ops(&w, 2, 1, 0, 2, unknown);
    put8(&w, 1), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 0 uses the op frobnicate, which this pyad does not have");
    begin_ops(&w, 2, 1, 0, 2, unknown);
    put8(&w, 2), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "instruction 0 has op code 2, past the 2 ops of the op table");
    static const char *const twice[2] = {"sin", "sin"};
    begin_ops(&w, 2, 1, 0, 2, twice);
    put8(&w, 0), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "op table entries 0 and 1 are both sin");
    static const char *const upper[1] = {"Sin"};
    begin_ops(&w, 2, 1, 0, 1, upper);
    put8(&w, 0), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "op table entry 0 has the byte 0x53");
    static const char *const empty[1] = {""};
    begin_ops(&w, 2, 1, 0, 1, empty);
    put8(&w, 0), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    expect_bad(&w, "op table entry 0 is not a name");
    begin_ops(&w, 2, 0, 0, 0, swapped);
    end(&w, 1, (uint32_t[]){0}, 0, NULL);
    expect_bad(&w, "an op table of 0 ops");

    /* the frame */
    begin(&w, 2, 1, 0);
    put8(&w, SIN), put32(&w, 0);
    end(&w, 1, out0, 0, NULL);
    blob v = w;
    v.b[0] = 'Q';
    pyad__saved_seal(v.b, v.n);
    expect_bad(&v, "bad magic");
    v = w;
    v.b[8] = 2;
    pyad__saved_seal(v.b, v.n);
    expect_bad(&v, "format version 2, this pyad reads version 1");
    v = w;
    v.b[v.n - 1] ^= 1;
    expect_bad(&v, "checksum mismatch");
    v = w;
    v.n -= 1;
    expect_bad(&v, "truncated: the header describes");
    v.n = 20;
    expect_bad(&v, "truncated: 20 bytes");
    v = w;
    v.n += 1;
    expect_bad(&v, "trailing bytes");
    v = w;
    v.b[12 + 3] = 0x20; /* nin = 2^29 + 2 */
    pyad__saved_seal(v.b, v.n);
    expect_bad(&v, "inputs, at most");
    v = w;
    v.b[20] = 0; /* nconst = 0: the sizes no longer match */
    pyad__saved_seal(v.b, v.n);
    expect_bad(&v, "trailing bytes");
    v = w;
    v.b[v.code + 5 + 5] = 1; /* constant 0 (after sin's 5 bytes) is not 0.0 */
    pyad__saved_seal(v.b, v.n);
    expect_bad(&v, "constant 0 is not 0.0");
    /* counts near 2^32 whose sizes overflow 32 bits: refused by the size check */
    v = w;
    memset(v.b + 16, 0xff, 4); /* nrec */
    pyad__saved_seal(v.b, v.n);
    expect_bad(&v, "4294967299 value slots, at most 2147483647");
    v = w;
    memset(v.b + 24, 0xff, 4); /* nout */
    pyad__saved_seal(v.b, v.n);
    expect_bad(&v, "truncated");
    context = "";
}

/* ---- the API's edges and allocation failures ------------------------------------------------ */

static void test_api_edges(void)
{
    context = "api";
    const double x0[ZOO_IN] = {0.3, 0.6, 1.7};
    zoo z;
    build_zoo(&z, x0);
    pyad_program *p = zoo_program(&z, z.nout, z.out, z.out_c), *q = NULL;
    int64_t len = 0, n = 0;
    uint8_t *buf = save(p, &len);
    CHECKC(pyad_program_save(NULL, NULL, 0, &n) == PYAD_MISUSE);
    CHECKC(pyad_program_save(p, NULL, 0, NULL) == PYAD_MISUSE);
    CHECKC(pyad_program_save(p, buf, len - 1, &n) == PYAD_MISUSE && n == len);
    CHECKC(pyad_program_load(buf, len, NULL, NULL, 0) == PYAD_MISUSE);
    CHECKC(pyad_program_load(NULL, 5, &q, NULL, 0) == PYAD_MISUSE);
    CHECKC(pyad_program_load(buf, -1, &q, NULL, 0) == PYAD_MISUSE);
    CHECKC(pyad_program_load(NULL, 0, &q, NULL, 0) == PYAD_BADFORMAT && q == NULL);
    CHECKC(pyad_program_load(buf, len - 1, &q, NULL, 0) == PYAD_BADFORMAT); /* no message */
    char tiny[8];
    CHECKC(pyad_program_load(buf, len - 1, &q, tiny, sizeof tiny) == PYAD_BADFORMAT &&
           strlen(tiny) == 7);
    CHECKC(pyad_program_load(buf, len, &q, NULL, 0) == PYAD_OK);
    pyad_program_free(q);
    CHECKC(strcmp(pyad_status_name(PYAD_BADFORMAT), "BADFORMAT") == 0);

    /* the n-th allocation of a load fails: NOMEM, nothing leaks (ASan, valgrind) */
    const int64_t before = pyad_debug_alloc_count();
    q = load(buf, len);
    pyad_program_free(q);
    const int64_t nalloc = pyad_debug_alloc_count() - before;
    CHECKC(nalloc >= 10);
    for (int64_t k = 1; k <= nalloc; k++) {
        char msg[100] = "";
        q = NULL;
        pyad_debug_fail_alloc(k);
        const int st = pyad_program_load(buf, len, &q, msg, sizeof msg);
        pyad_debug_fail_alloc(0);
        if (st == PYAD_OK) { /* only shrinking cpart failed, which a program survives */
            check_same_replay(p, q, x0);
            pyad_program_free(q);
            continue;
        }
        CHECKC(st == PYAD_NOMEM && q == NULL && strstr(msg, "out of memory") != NULL);
    }
    free(buf);
    pyad_program_free(p);
    pyad_tape_free(z.t);
    context = "";
}

void test_saved(void)
{
    test_round_trips();
    test_random_round_trips();
    test_structural_checks();
    test_api_edges();
    test_corruption();
}
