/*
 * test_alloc.c - allocation failure at every allocation of a workload.
 *
 * The workload is a list of steps, each one C call: every kind of push (leaf, unary, binary,
 * constant operand, sum, dot, logsumexp, softmax, primitive, the array pushes of each kind
 * and matvec), enough records to open new segments, unpins that let the tape reuse them,
 * backward, stats, reset, compile and replay. A first run counts its allocations (A) and keeps
 * every step's result. Then, for each n in 1..A, the workload runs again with its n-th allocation
 * failing: the step that makes it must return PYAD_NOMEM and leave the tape exactly as it was
 * (compared field by field with a snapshot taken before it), the same call retried must give the
 * first run's result, and every later step too. Leaks show up under `make sanitize` (LSan) and
 * `make valgrind`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "check.h"

enum kind {
    NEW,
    LEAF,
    UNARY,
    VV,
    VC,
    CV,
    SUM,
    LSE,
    DOT,
    SOFTMAX,
    PRIM,
    LEAVES,
    MAP,
    REDUCE,
    DOTS,
    MATVEC,
    LENT, /* a matvec whose matrix is lent (pyad_push_matvec_borrowed), as MATVEC otherwise */
    SETGRAD,
    BACKWARD,
    STATS,
    PIN,
    UNPIN,
    PROGRAM,
    RUN,
    HVP,
    PROGRAM_FREE,
    RESET
};

typedef struct step {
    unsigned char kind;
    int op;
    int a, b; /* operand steps (their first record); n-ary: operands are steps a..a+n-1;
                 MAP: b is the form (0 plain, 1 vc, 2 cv); REDUCE, DOTS, MATVEC: b is the
                 count (MATVEC, LENT: n rows over b of the leaves from a) */
    int n;
    double c;
} step;

enum { MAXV = 48, NLEAF = 24, NIN = 6, SOFT_MAX = 1100 };

/* What a step gave: status, values and record slots; compared bit for bit between runs. */
typedef struct result {
    int st;
    int nv, ns;
    double v[MAXV];
    uint32_t slot[MAXV];
} result;

typedef struct ctx {
    pyad_tape *t;
    int64_t *h; /* per step: the handle of the record it pushed (first output for softmax) */
    int64_t soft[SOFT_MAX];
    pyad_program *prog;
    int64_t prog_in[NIN];
} ctx;

/* ---- the workload -------------------------------------------------------------------- */

typedef struct builder {
    step *s;
    int n, cap;
    int64_t nrec;    /* records pushed since the tape was created or reset */
    int seg_step[16]; /* a step whose record lies in each segment (in opening order) */
} builder;

static int add(builder *b, step s, int records)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 1024;
        b->s = realloc(b->s, (size_t)b->cap * sizeof *b->s);
    }
    const int64_t seg = b->nrec / PYAD_CHUNK;
    if (records > 0 && seg < 16 && b->seg_step[seg] < 0)
        b->seg_step[seg] = b->n;
    b->nrec += records;
    b->s[b->n] = s;
    return b->n++;
}

static void forget_segments(builder *b)
{
    b->nrec = 0;
    for (int k = 0; k < 16; k++)
        b->seg_step[k] = -1;
}

static int leaf(builder *b, double v)
{
    return add(b, (step){LEAF, 0, -1, -1, 0, v}, 1);
}

/* Records until the tape holds `until` records: a leaf every 100, each other record its
   predecessor plus one, except that the record opening a segment is a dot of leaves (side
   entries in a new segment): a segment never depends on the one before. */
static int chain(builder *b, int64_t until, int first_leaf)
{
    int prev = -1;
    while (b->nrec < until) {
        if (b->nrec % PYAD_CHUNK == 0 && prev >= 0 && b->nrec > 0)
            prev = add(b, (step){DOT, 0, first_leaf, 0, 12, 0.0}, 1);
        else if (b->nrec % 100 == 0 || prev < 0)
            prev = leaf(b, (double)(b->nrec % 7));
        else
            prev = add(b, (step){VC, PYAD_OP_ADD, prev, -1, 0, 1.0}, 1);
    }
    return prev;
}

static int build_workload(builder *b)
{
    forget_segments(b);
    add(b, (step){NEW, 0, -1, -1, 0, 0.0}, 0);
    const int l0 = b->n;
    for (int k = 0; k < NLEAF; k++)
        leaf(b, 0.3 + 0.07 * k);
    add(b, (step){UNARY, PYAD_OP_EXP, l0, -1, 0, 0.0}, 1);
    const int lg = add(b, (step){UNARY, PYAD_OP_LOG, l0 + 1, -1, 0, 0.0}, 1);
    add(b, (step){UNARY, PYAD_OP_TANH, l0 + 2, -1, 0, 0.0}, 1);
    const int mul = add(b, (step){VV, PYAD_OP_MUL, l0, l0 + 1, 0, 0.0}, 1);
    add(b, (step){VV, PYAD_OP_ATAN2, l0 + 2, l0 + 3, 0, 0.0}, 1);
    const int pw = add(b, (step){VC, PYAD_OP_POW, l0 + 3, -1, 0, 2.0}, 1);
    const int dv = add(b, (step){CV, PYAD_OP_DIV, -1, l0 + 4, 0, 1.0}, 1);
    const int s3 = add(b, (step){SUM, PYAD_OP_SUM, l0, -1, 3, 0.0}, 1);
    const int s20 = add(b, (step){SUM, PYAD_OP_SUM, l0, -1, 20, 0.0}, 1); /* heap scratch */
    add(b, (step){LSE, PYAD_OP_LOGSUMEXP, l0 + 1, -1, 5, 0.0}, 1);
    const int lse = add(b, (step){LSE, PYAD_OP_LOGSUMEXP, l0 + 2, -1, 18, 0.0}, 1);
    add(b, (step){DOT, 0, l0, -1, 4, 0.0}, 1);
    const int d12 = add(b, (step){DOT, 0, l0 + 3, -1, 12, 0.0}, 1);
    const int sm = add(b, (step){SOFTMAX, 0, l0 + 5, -1, 4, 0.0}, 4);
    add(b, (step){PRIM, 0, l0 + 6, -1, 3, 0.5}, 1);
    add(b, (step){LEAVES, 0, -1, -1, 30, 0.5}, 30);
    add(b, (step){MAP, PYAD_OP_MUL, l0, 0, 40, 0.0}, 40);
    add(b, (step){MAP, PYAD_OP_DIV, l0, 2, 10, 0.0}, 10);
    add(b, (step){MAP, PYAD_OP_LOG, l0, 0, 20, 0.0}, 20);
    add(b, (step){REDUCE, PYAD_OP_SUM, l0, 4, 5, 0.0}, 5);
    add(b, (step){REDUCE, PYAD_OP_LOGSUMEXP, l0, 20, 3, 0.0}, 3);
    add(b, (step){DOTS, 0, l0, 3, 4, 0.0}, 4);
    const int mv = add(b, (step){MATVEC, 0, l0 + 2, 5, 6, 0.0}, 6);
    add(b, (step){LENT, 0, l0 + 2, 5, 6, 0.0}, 6);
    int out = add(b, (step){VV, PYAD_OP_ADD, s20, d12, 0, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_ADD, out, mv, 0, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_MUL, out, lse, 0, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_ADD, out, sm, 0, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_SUB, out, mul, 0, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_ADD, out, pw, 0, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_ADD, out, dv, 0, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_ADD, out, lg, 0, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_ADD, out, s3, 0, 0.0}, 1);
    add(b, (step){SETGRAD, 0, l0 + 5, -1, 0, 0.5}, 0);
    add(b, (step){BACKWARD, 0, out, -1, 0, 1.0}, 0);
    add(b, (step){BACKWARD, 0, out, -1, 0, 2.0}, 0);
    add(b, (step){STATS, 0, -1, -1, 0, 0.0}, 0);
    add(b, (step){PROGRAM, 0, l0, out, 0, 0.0}, 0);
    add(b, (step){RUN, 0, -1, -1, 0, 0.0}, 0);
    add(b, (step){HVP, 0, -1, -1, 0, 0.0}, 0);
    add(b, (step){PROGRAM_FREE, 0, -1, -1, 0, 0.0}, 0);

    /* Three segments, the second opened by a softmax across the boundary, then the second
       released: its fourth release collects it (the tape collects after four) although it
       holds outputs of that softmax (nothing uses them; the first segment keeps the first
       output, and every output holds a link to it), and the records that follow reuse it. */
    chain(b, PYAD_CHUNK - 20, l0);
    add(b, (step){SOFTMAX, 0, l0, -1, 40, 0.0}, 40);
    chain(b, 2 * PYAD_CHUNK + 50, l0);
    const int seg1 = b->seg_step[1];
    for (int k = 0; k < 4; k++) {
        if (k > 0)
            add(b, (step){PIN, 0, seg1, -1, 0, 0.0}, 0);
        add(b, (step){UNPIN, 0, seg1, -1, 0, 0.0}, 0);
    }
    int last = chain(b, 3 * PYAD_CHUNK + 100, l0);
    add(b, (step){SOFTMAX, 0, l0, -1, 24, 0.0}, 24);
    add(b, (step){BACKWARD, 0, last, -1, 0, 1.0}, 0);
    add(b, (step){BACKWARD, 0, last, -1, 0, 1.0}, 0); /* every swept segment dirty now */
    add(b, (step){STATS, 0, -1, -1, 0, 0.0}, 0);

    /* After a reset: segments come back from the free list with their side arrays. */
    add(b, (step){RESET, 0, -1, -1, 0, 0.0}, 0);
    forget_segments(b);
    const int r0 = b->n;
    for (int k = 0; k < NLEAF; k++)
        leaf(b, 1.0 - 0.03 * k);
    add(b, (step){SOFTMAX, 0, r0, -1, 20, 0.0}, 20);
    last = chain(b, PYAD_CHUNK + 10, r0);
    out = add(b, (step){DOT, 0, r0 + 2, -1, 20, 0.0}, 1);
    out = add(b, (step){VV, PYAD_OP_MUL, out, r0 + 1, 0, 0.0}, 1);
    add(b, (step){BACKWARD, 0, last, -1, 0, 1.0}, 0);
    add(b, (step){BACKWARD, 0, out, -1, 0, 1.0}, 0);
    add(b, (step){PROGRAM, 0, r0, out, 0, 0.0}, 0);
    add(b, (step){RUN, 0, -1, -1, 0, 0.0}, 0);
    add(b, (step){HVP, 0, -1, -1, 0, 0.0}, 0);
    add(b, (step){PROGRAM_FREE, 0, -1, -1, 0, 0.0}, 0);
    add(b, (step){STATS, 0, -1, -1, 0, 0.0}, 0);
    return b->n;
}

/* A softmax whose outputs open two new segments (kept apart: its 1100 records would make
   each run of the main workload several times slower). */
static int build_big_softmax(builder *b)
{
    forget_segments(b);
    add(b, (step){NEW, 0, -1, -1, 0, 0.0}, 0);
    const int l0 = b->n;
    for (int k = 0; k < NLEAF; k++)
        leaf(b, 0.3 + 0.07 * k);
    chain(b, PYAD_CHUNK - 20, l0); /* 20 records of room left: 1080 go to new segments */
    const int sm = add(b, (step){SOFTMAX, 0, l0, -1, SOFT_MAX, 0.0}, SOFT_MAX);
    add(b, (step){BACKWARD, 0, sm, -1, 0, 1.0}, 0);
    add(b, (step){STATS, 0, -1, -1, 0, 0.0}, 0);
    return b->n;
}

/* The array pushes across segments: each opens two, the reductions with side entries in
   them (kept apart, as the big softmax). */
static int build_big_bulk(builder *b)
{
    forget_segments(b);
    add(b, (step){NEW, 0, -1, -1, 0, 0.0}, 0);
    const int l0 = b->n;
    for (int k = 0; k < NLEAF; k++)
        leaf(b, 0.3 + 0.07 * k);
    chain(b, PYAD_CHUNK - 20, l0);
    const int m = add(b, (step){MAP, PYAD_OP_SIN, l0, 0, SOFT_MAX, 0.0}, SOFT_MAX);
    add(b, (step){LEAVES, 0, -1, -1, SOFT_MAX, 0.25}, SOFT_MAX);
    add(b, (step){REDUCE, PYAD_OP_LOGSUMEXP, l0, 3, SOFT_MAX, 0.0}, SOFT_MAX);
    add(b, (step){DOTS, 0, l0, 2, SOFT_MAX, 0.0}, SOFT_MAX);
    add(b, (step){MATVEC, 0, l0, 7, SOFT_MAX, 0.0}, SOFT_MAX);
    add(b, (step){LENT, 0, l0, 7, SOFT_MAX, 0.0}, SOFT_MAX);
    add(b, (step){BACKWARD, 0, m, -1, 0, 1.0}, 0);
    add(b, (step){STATS, 0, -1, -1, 0, 0.0}, 0);
    return b->n;
}

/* ---- running one step ---------------------------------------------------------------- */

/* Operand j of an n-ary step over steps a..: every third is a constant. */
static void operands(const ctx *c, const step *s, int64_t *h, double *k)
{
    for (int j = 0; j < s->n; j++) {
        h[j] = j % 3 == 1 ? 0 : c->h[s->a + j % NLEAF];
        k[j] = j % 3 == 1 ? 0.25 * j : 0.0;
    }
}

static void put(ctx *c, result *r, double v)
{
    (void)c;
    if (r->nv < MAXV)
        r->v[r->nv++] = v;
}

static void put_record(ctx *c, result *r, int64_t h)
{
    double v = NAN;
    CHECK(pyad_get_value(c->t, h, &v) == PYAD_OK);
    put(c, r, v);
    if (r->ns < MAXV)
        r->slot[r->ns++] = (uint32_t)h & PYAD_SLOT_MASK;
}

/* A push's outcome: the status (PYAD_OK for a new handle) and the record. */
static void pushed(ctx *c, int i, result *r, int64_t h)
{
    if (h == -(int64_t)PYAD_SEGMENT) {
        CHECK(pyad_tape_last(c->t, &h) == PYAD_OK);
        r->st = PYAD_SEGMENT;
    } else if (h < 0) {
        r->st = (int)-h;
        return;
    }
    c->h[i] = h;
    put_record(c, r, h);
}

static void program_io(ctx *c, double *x, double *v)
{
    for (int j = 0; j < NIN; j++) {
        CHECK(pyad_get_value(c->t, c->prog_in[j], &x[j]) == PYAD_OK);
        x[NIN + j] = x[j] + 0.01;
        x[2 * NIN + j] = x[j] * 0.9;
        v[j] = 1.0 + j;
        v[NIN + j] = j % 2 ? -1.0 : 0.5;
    }
}

/* The matrix LENT steps lend: k of run_array, kept as long as any tape may read it. */
static double lent[SOFT_MAX * 7 + 1];

/* An array push: operands from the leaves at steps a.., outputs into c->soft. */
static void run_array(ctx *c, const step *s, int i, result *r)
{
    const int grouped =
        s->kind == REDUCE || s->kind == DOTS || s->kind == MATVEC || s->kind == LENT;
    const int64_t total = (int64_t)s->n * (grouped ? s->b : 1);
    int64_t *h = malloc((size_t)(total + 1) * sizeof *h); /* b (x): the same turned by one */
    double *k = malloc((size_t)(total + 1) * sizeof *k);
    for (int64_t j = 0; j <= total; j++) {
        h[j] = s->a < 0 || (j % 3 == 1 && s->kind != MAP && s->kind != MATVEC && s->kind != LENT)
                   ? 0
                   : c->h[s->a + j % NLEAF];
        k[j] = 0.5 + 0.01 * (double)j;
        if (s->kind == LENT)
            lent[j] = k[j];
    }
    switch (s->kind) {
    case LEAVES:
        r->st = pyad_push_leaves(c->t, s->n, k, c->soft);
        break;
    case MAP: {
        const int unary = pyad_op_arity(s->op) == 1;
        r->st = pyad_push_map(c->t, s->op, s->n, s->b == 2 ? NULL : h, k,
                              unary || s->b == 1 ? NULL : h + 1, unary ? NULL : k, c->soft, NULL);
        break;
    }
    case REDUCE:
        r->st = pyad_push_reduce(c->t, s->op, s->n, s->b, h, k, c->soft);
        break;
    case MATVEC: /* the matrix from k, x the first b of h */
        r->st = pyad_push_matvec(c->t, s->n, s->b, k, h, c->soft);
        break;
    case LENT:
        r->st = pyad_push_matvec_borrowed(c->t, s->n, s->b, lent, h, i, c->soft);
        break;
    default:
        r->st = pyad_push_dots(c->t, s->n, s->b, h, k, h + 1, k, c->soft);
        break;
    }
    free(h);
    free(k);
    if (r->st != PYAD_OK && r->st != PYAD_SEGMENT)
        return;
    c->h[i] = c->soft[0];
    for (int j = 0; j < s->n; j += 1 + s->n / 16)
        put_record(c, r, c->soft[j]);
    put_record(c, r, c->soft[s->n - 1]);
}

static void run_step(ctx *c, const step *steps, int i, result *r)
{
    const step *s = &steps[i];
    int64_t hs[SOFT_MAX], hx[SOFT_MAX];
    double ks[SOFT_MAX], kx[SOFT_MAX];
    memset(r, 0, sizeof *r);
    switch (s->kind) {
    case NEW:
        r->st = pyad_tape_new(&c->t);
        if (r->st != PYAD_OK)
            CHECK(c->t == NULL);
        return;
    case LEAF:
        pushed(c, i, r, pyad_push_leaf(c->t, s->c));
        return;
    case UNARY:
        pushed(c, i, r, pyad_push_v(c->t, s->op, c->h[s->a]));
        return;
    case VV:
        pushed(c, i, r, pyad_push_vv(c->t, s->op, c->h[s->a], c->h[s->b]));
        return;
    case VC:
        pushed(c, i, r, pyad_push_vc(c->t, s->op, c->h[s->a], s->c));
        return;
    case CV:
        pushed(c, i, r, pyad_push_cv(c->t, s->op, s->c, c->h[s->b]));
        return;
    case SUM:
    case LSE:
        operands(c, s, hs, ks);
        pushed(c, i, r, pyad_push_nary(c->t, s->op, s->n, hs, ks));
        return;
    case DOT:
        operands(c, s, hs, ks);
        for (int j = 0; j < s->n; j++) {
            hx[j] = hs[(j + 1) % s->n];
            kx[j] = ks[(j + 1) % s->n] + 1.0;
        }
        pushed(c, i, r, pyad_push_dot(c->t, s->n, hs, ks, hx, kx));
        return;
    case PRIM: {
        operands(c, s, hs, ks);
        double partials[8] = {0.5, 0.25, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0};
        pushed(c, i, r, pyad_push_primitive(c->t, s->n, hs, ks, s->c, partials));
        return;
    }
    case SOFTMAX:
        operands(c, s, hs, ks);
        r->st = pyad_push_softmax(c->t, s->n, hs, ks, c->soft);
        if (r->st != PYAD_OK && r->st != PYAD_SEGMENT)
            return;
        c->h[i] = c->soft[0];
        for (int j = 0; j < s->n; j += 1 + s->n / 16)
            put_record(c, r, c->soft[j]);
        put_record(c, r, c->soft[s->n - 1]);
        return;
    case LEAVES:
    case MAP:
    case REDUCE:
    case DOTS:
    case MATVEC:
    case LENT:
        run_array(c, s, i, r);
        return;
    case SETGRAD:
        r->st = pyad_set_grad(c->t, c->h[s->a], s->c);
        return;
    case BACKWARD: {
        r->st = pyad_backward(c->t, c->h[s->a], s->c);
        if (r->st != PYAD_OK)
            return;
        /* the grads of the leaves pushed right after the tape's creation or reset */
        for (int k = i; k-- > 0;)
            if (steps[k].kind == NEW || steps[k].kind == RESET) {
                for (int j = 0; j < NLEAF; j++) {
                    double g = NAN;
                    CHECK(pyad_get_grad(c->t, c->h[k + 1 + j], &g) == PYAD_OK);
                    put(c, r, g);
                }
                break;
            }
        return;
    }
    case STATS: {
        int64_t counts[PYAD_OP_COUNT], depth = -1;
        r->st = pyad_tape_stats(c->t, counts, &depth);
        if (r->st != PYAD_OK)
            return;
        for (int op = 0; op < PYAD_OP_COUNT; op++)
            put(c, r, (double)counts[op]);
        put(c, r, (double)depth);
        return;
    }
    case PIN:
        r->st = pyad_tape_pin(c->t, c->h[s->a]);
        return;
    case UNPIN: {
        r->st = pyad_tape_unpin(c->t, c->h[s->a]);
        int64_t n = -1;
        CHECK(pyad_tape_len(c->t, &n) == PYAD_OK);
        put(c, r, (double)n);
        return;
    }
    case PROGRAM: {
        for (int j = 0; j < NIN; j++)
            c->prog_in[j] = c->h[s->a + j];
        const int64_t outs[1] = {c->h[s->b]};
        const int64_t guard_h[2] = {c->h[s->a], 0};
        const double guard_c[2] = {0.0, 0.5};
        double x0 = NAN;
        CHECK(pyad_get_value(c->t, guard_h[0], &x0) == PYAD_OK);
        const int guard_kind[1] = {0 | (x0 < 0.5 ? 4 : 0)};
        c->prog = (pyad_program *)&c->prog; /* must be overwritten */
        r->st = pyad_program_new(c->t, NIN, c->prog_in, 1, outs, NULL, 1, guard_h, guard_c,
                                 guard_kind, &c->prog);
        if (r->st != PYAD_OK) {
            CHECK(c->prog == NULL);
            return;
        }
        int64_t info[8];
        CHECK(pyad_program_info(c->prog, info) == PYAD_OK);
        for (int j = 0; j < 7; j++) /* not the bytes: a failed shrink may keep some */
            put(c, r, (double)info[j]);
        return;
    }
    case RUN: {
        double x[3 * NIN], v[2 * NIN], values[3], grads[3 * NIN];
        int64_t guards[3];
        program_io(c, x, v);
        const int64_t nwork = pyad_program_work(c->prog, 2, 0);
        double *work = malloc((size_t)nwork * sizeof *work);
        const double seed = 1.0;
        r->st = pyad_program_run(c->prog, 3, x, 1, &seed, values, grads, guards, work, nwork);
        free(work);
        for (int j = 0; r->st == PYAD_OK && j < 3; j++)
            put(c, r, values[j]), put(c, r, (double)guards[j]);
        for (int j = 0; r->st == PYAD_OK && j < 3 * NIN; j++)
            put(c, r, grads[j]);
        return;
    }
    case HVP: {
        double x[3 * NIN], v[2 * NIN], value = NAN, g[NIN], hv[2 * NIN];
        int64_t guard = -1;
        program_io(c, x, v);
        const int64_t nwork = pyad_program_work(c->prog, 1, 2);
        double *work = malloc((size_t)nwork * sizeof *work);
        r->st = pyad_program_hvp(c->prog, x, 2, v, &value, g, hv, &guard, work, nwork);
        free(work);
        if (r->st != PYAD_OK)
            return;
        put(c, r, value);
        put(c, r, (double)guard);
        for (int j = 0; j < NIN; j++)
            put(c, r, g[j]);
        for (int j = 0; j < 2 * NIN; j++)
            put(c, r, hv[j]);
        return;
    }
    case PROGRAM_FREE:
        pyad_program_free(c->prog);
        c->prog = NULL;
        return;
    case RESET:
        r->st = pyad_tape_reset(c->t);
        return;
    default:
        CHECK(0);
    }
}

static int same_result(const result *x, const result *y)
{
    return x->st == y->st && x->nv == y->nv && x->ns == y->ns &&
           memcmp(x->v, y->v, (size_t)x->nv * sizeof *x->v) == 0 &&
           memcmp(x->slot, y->slot, (size_t)x->ns * sizeof *x->slot) == 0;
}

/* ---- snapshots: everything a failed call must leave as it was -------------------------- */

typedef struct snap {
    unsigned char *b;
    size_t n, cap;
} snap;

static void snap_put(snap *s, const void *p, size_t bytes)
{
    if (bytes == 0)
        return;
    if (s->n + bytes > s->cap) {
        s->cap = 2 * (s->n + bytes);
        s->b = realloc(s->b, s->cap);
    }
    memcpy(s->b + s->n, p, bytes);
    s->n += bytes;
}

#define SNAP(s, x) snap_put(s, &(x), sizeof(x))

static void snap_take(pyad_tape *t, snap *s)
{
    s->n = 0;
    int64_t nbytes = -1;
    CHECK(pyad_tape_nbytes(t, &nbytes) == PYAD_OK);
    SNAP(s, nbytes);
    SNAP(s, t->nrecords);
    SNAP(s, t->tag);
    SNAP(s, t->cur);
    SNAP(s, t->cap_chunks);
    SNAP(s, t->norder);
    SNAP(s, t->nfree);
    SNAP(s, t->unpins_since_collect);
    SNAP(s, t->live_after_collect);
    SNAP(s, t->save_cap);
    snap_put(s, t->free_ids, t->nfree * sizeof *t->free_ids);
    for (uint32_t k = 0; k < t->norder; k++) {
        const uint32_t c = t->order[k];
        const pyad_chunk *ch = &t->chunks[c];
        SNAP(s, c);
        SNAP(s, ch->fill);
        SNAP(s, ch->pins);
        SNAP(s, ch->pos);
        SNAP(s, ch->state);
        SNAP(s, ch->dirty);
        SNAP(s, ch->side_len);
        SNAP(s, ch->side_cap);
        const size_t base = (size_t)c << PYAD_CHUNK_BITS;
        snap_put(s, t->kind + base, ch->fill * sizeof *t->kind);
        snap_put(s, t->rec + base, ch->fill * sizeof *t->rec);
        snap_put(s, t->val + base, ch->fill * sizeof *t->val);
        snap_put(s, t->grad + base, ch->fill * sizeof *t->grad);
        snap_put(s, ch->side_slot, ch->side_len * sizeof *ch->side_slot);
        snap_put(s, ch->side_val, ch->side_len * sizeof *ch->side_val);
    }
}

/* ---- the test ------------------------------------------------------------------------ */

typedef struct tally {
    int points, absorbed, mismatches;
} tally;

/* One run of the workload; with fail_at > 0 its fail_at-th allocation fails. Without it,
   `ref` receives each step's result and `count` the allocations made before each step. */
static void run_workload(const step *steps, int nsteps, int64_t fail_at, result *ref,
                         int64_t *count, tally *tl)
{
    ctx c = {0};
    c.h = calloc((size_t)nsteps, sizeof *c.h);
    snap before = {0}, after = {0};
    result r;
    const int64_t start = pyad_debug_alloc_count();
    CHECK(pyad_debug_fail_alloc(fail_at) == PYAD_OK);
    int failed_step = -1;
    for (int i = 0; i < nsteps; i++) {
        const int64_t made = pyad_debug_alloc_count() - start;
        if (fail_at == 0) {
            count[i] = made;
            run_step(&c, steps, i, &ref[i]);
            continue;
        }
        const int here = failed_step < 0 && count[i] < fail_at && fail_at <= count[i + 1];
        if (failed_step < 0)
            CHECK(made == count[i]);
        if (here && c.t != NULL)
            snap_take(c.t, &before);
        run_step(&c, steps, i, &r);
        if (here) {
            failed_step = i;
            CHECK(pyad_debug_alloc_count() - start >= fail_at);
            if (r.st == PYAD_OK && steps[i].kind == PROGRAM) {
                tl->absorbed++; /* a failed shrink of a finished program keeps the block */
            } else {
                if (r.st != PYAD_NOMEM)
                    fprintf(stderr, "allocation %lld: step %d (kind %d) gave %d\n",
                            (long long)fail_at, i, steps[i].kind, r.st);
                CHECK(r.st == PYAD_NOMEM);
                if (c.t != NULL) {
                    snap_take(c.t, &after);
                    if (!(before.n == after.n && memcmp(before.b, after.b, before.n) == 0)) {
                        fprintf(stderr, "allocation %lld: step %d (kind %d) changed the tape\n",
                                (long long)fail_at, i, steps[i].kind);
                        CHECK(0);
                    }
                    CHECK(pyad_tape_errmsg(c.t)[0] != '\0');
                }
                run_step(&c, steps, i, &r); /* the hook fired once: the retry succeeds */
            }
            tl->points++;
        }
        if (!same_result(&r, &ref[i]) && tl->mismatches++ < 5)
            fprintf(stderr, "allocation %lld: step %d (kind %d) differs from the first run\n",
                    (long long)fail_at, i, steps[i].kind);
    }
    if (fail_at == 0)
        count[nsteps] = pyad_debug_alloc_count() - start;
    else
        CHECK(failed_step >= 0);
    CHECK(pyad_debug_fail_alloc(0) == PYAD_OK);
    pyad_program_free(c.prog);
    pyad_tape_free(c.t);
    free(c.h);
    free(before.b);
    free(after.b);
}

static int64_t every_allocation_fails(int (*build)(builder *), const char *name, int check_reuse)
{
    builder b = {0};
    const int nsteps = build(&b);
    result *ref = calloc((size_t)nsteps, sizeof *ref);
    int64_t *count = calloc((size_t)nsteps + 1, sizeof *count);
    tally tl = {0, 0, 0};
    run_workload(b.s, nsteps, 0, ref, count, &tl);
    for (int i = 0; i < nsteps; i++)
        CHECK(ref[i].st == PYAD_OK || ref[i].st == PYAD_SEGMENT);
    /* the workload does what it is meant to: the last unpin collects a segment, which the
       next segment opened reuses */
    int last_unpin = -1, reuse = -1;
    for (int i = 0; i < nsteps; i++)
        if (b.s[i].kind == UNPIN)
            last_unpin = i;
    for (int i = last_unpin; reuse < 0 && i >= 0 && i < nsteps; i++)
        if (ref[i].st == PYAD_SEGMENT)
            reuse = i;
    for (int i = 0; !check_reuse && i < nsteps; i++)
        if (b.s[i].kind == SOFTMAX) /* its records in three segments: 0, then two new ones */
            CHECK(ref[i].slot[0] >> PYAD_CHUNK_BITS == 0 &&
                  ref[i].slot[ref[i].ns - 1] >> PYAD_CHUNK_BITS == 2);
    if (check_reuse) {
        CHECK(last_unpin > 0 && ref[last_unpin].v[0] <= ref[last_unpin - 2].v[0] - PYAD_CHUNK);
        CHECK(reuse > 0 && b.s[reuse].kind == DOT && ref[reuse].slot[0] >> PYAD_CHUNK_BITS == 1);
    }
    const int64_t total = count[nsteps];
    CHECK(total > 20);
    for (int64_t n = 1; n <= total; n++)
        run_workload(b.s, nsteps, n, ref, count, &tl);
    CHECK(tl.points == total && tl.mismatches == 0);
    printf("allocation failure, %s: %d steps, %lld allocations, %d failure points "
           "(%d absorbed by a program's final shrink)\n",
           name, nsteps, (long long)total, tl.points, tl.absorbed);
    free(ref);
    free(count);
    free(b.s);
    return total;
}

static int64_t nbytes_of(pyad_tape *t)
{
    int64_t n = -1;
    CHECK(pyad_tape_nbytes(t, &n) == PYAD_OK);
    return n;
}

/* Leaves until a push fails; its status, and the leaves pushed into *n. */
static int64_t fill(pyad_tape *t, int64_t *first, int64_t *n, int64_t limit)
{
    for (*n = 0; *n < limit; ++*n) {
        const int64_t h = pyad_push_leaf(t, (double)*n);
        if (h < 0 && h != -(int64_t)PYAD_SEGMENT)
            return h;
        if (*n == 0)
            *first = got(t, h);
    }
    return 0;
}

static void test_max_bytes(void)
{
    pyad_tape *t = new_tape();
    CHECK(pyad_tape_set_max_bytes(t, -1) == PYAD_MISUSE);
    CHECK(pyad_tape_set_max_bytes(NULL, 0) == PYAD_MISUSE);
    const int64_t one = nbytes_of(t); /* a tape of one segment */
    int64_t first = 0, n = 0;
    CHECK(pyad_tape_set_max_bytes(t, one) == PYAD_OK);

    /* growth of the records */
    CHECK(fill(t, &first, &n, 3 * PYAD_CHUNK) == -PYAD_FULL && n == PYAD_CHUNK);
    CHECK(strstr(pyad_tape_errmsg(t), "max_bytes") != NULL);
    char cap[32];
    snprintf(cap, sizeof cap, "%lld", (long long)one);
    CHECK(strstr(pyad_tape_errmsg(t), cap) != NULL);
    CHECK(tape_len(t) == PYAD_CHUNK && nbytes_of(t) == one && value(t, first) == 0.0);

    /* n-ary operands, and the reverse sweep's scratch, count too */
    CHECK(pyad_tape_reset(t) == PYAD_OK);
    int64_t h[64];
    for (int j = 0; j < 64; j++)
        h[j] = got(t, pyad_push_leaf(t, 0.5 * j));
    CHECK(pyad_push_nary(t, PYAD_OP_SUM, 64, h, NULL) == -PYAD_FULL);
    CHECK(tape_len(t) == 64 && nbytes_of(t) == one);
    CHECK(pyad_set_grad(t, h[1], 1.0) == PYAD_OK);
    CHECK(pyad_backward(t, h[0], 1.0) == PYAD_FULL);
    CHECK(grad(t, h[0]) == 0.0 && grad(t, h[1]) == 1.0 && nbytes_of(t) == one);
    CHECK(pyad_tape_set_max_bytes(t, 0) == PYAD_OK); /* no cap: both go through */
    const int64_t s = got(t, pyad_push_nary(t, PYAD_OP_SUM, 64, h, NULL));
    CHECK(value(t, s) == 0.5 * 63 * 64 / 2);
    CHECK(pyad_backward(t, s, 1.0) == PYAD_OK && grad(t, h[1]) == 2.0);

    /* a cap that leaves room for less than the usual growth step gets a smaller step */
    CHECK(pyad_tape_reset(t) == PYAD_OK);
    CHECK(fill(t, &first, &n, 16 * PYAD_CHUNK) == 0);
    const int64_t before = nbytes_of(t), chunks = t->cap_chunks;
    const int64_t per_chunk = PYAD_CHUNK * (int64_t)(sizeof *t->kind + sizeof *t->rec +
                                                     sizeof *t->val + sizeof *t->grad) +
                              (int64_t)(sizeof *t->chunks + sizeof *t->order + sizeof *t->free_ids);
    CHECK(chunks >= 16 && pyad_tape_set_max_bytes(t, before + per_chunk * 3 / 2) == PYAD_OK);
    CHECK(fill(t, &first, &n, 4 * PYAD_CHUNK) == -PYAD_FULL);
    CHECK(tape_len(t) == (chunks + 1) * PYAD_CHUNK && t->cap_chunks == chunks + 1);
    CHECK(nbytes_of(t) == before + per_chunk);
    pyad_tape_free(t);
}

/* A tape grown past 1 MiB per buffer (growth maps pages instead of calling realloc from 64 KiB),
   each push's allocations failing in turn before it goes through. */
static void test_growth_to_mapped_buffers(void)
{
    enum { N = 140000 };
    pyad__arena_drop_kept(); /* grow into new mappings, not pages kept from earlier tapes */
    pyad_tape *t = new_tape();
    const int64_t x = got(t, pyad_push_leaf(t, 0.0));
    int64_t prev = x;
    int failures = 0;
    for (int i = 1; i < N; i++) {
        const int64_t len = tape_len(t), nbytes = nbytes_of(t);
        int64_t r;
        for (int64_t k = 1;; k++) {
            CHECK(pyad_debug_fail_alloc(k) == PYAD_OK);
            r = pyad_push_vc(t, PYAD_OP_ADD, prev, 1.0);
            CHECK(pyad_debug_fail_alloc(0) == PYAD_OK);
            if (r != -(int64_t)PYAD_NOMEM)
                break;
            failures++;
            CHECK(tape_len(t) == len && nbytes_of(t) == nbytes && value(t, prev) == i - 1);
        }
        prev = got(t, r);
    }
    CHECK(t->slot_bytes[1] >= (size_t)1 << 20 && t->slot_bytes[2] >= (size_t)1 << 20);
    CHECK(failures >= 7 * 20); /* every buffer failed in each of the growths */
    CHECK(value(t, prev) == N - 1 && tape_len(t) == N);
    CHECK(pyad_backward(t, prev, 1.0) == PYAD_OK && grad(t, x) == 1.0);
    printf("allocation failure, growth to %d records: %d failure points\n", N, failures);
    pyad_tape_free(t);
}

void test_alloc(void)
{
    test_growth_to_mapped_buffers();
    test_max_bytes();
    every_allocation_fails(build_workload, "workload", 1);
    every_allocation_fails(build_big_softmax, "softmax over three segments", 0);
    every_allocation_fails(build_big_bulk, "array pushes over three segments", 0);
}
