/*
 * replay.c - evaluating a program: forward replay, guards, reverse sweep, and
 * Hessian-vector products by forward-over-reverse.
 *
 * First order. The forward pass recomputes every value from the op table's MATH and
 * keeps, for the reverse pass, only the partials it cannot get otherwise (see the partial
 * classes in program.h: constants kept by the program, a product's operand values, the
 * partials stored for the rest), computed by the very expressions a recording evaluates. The
 * reverse pass is two multiply-adds per instruction, visiting instructions in the order the tape's
 * sweep visits records, so gradients are bit for bit the recording's; the first write to
 * each adjoint is a store, so nothing is cleared before a sweep. Several points are
 * evaluated in blocks with the point index innermost (slot s of point q at s * B + q): one
 * instruction dispatch serves B points and the arithmetic vectorises. The single point
 * (B = 1) is a separate instantiation of the same code, without the inner loops.
 *
 * A zero adjoint is skipped, as the tape's sweep skips it (so an infinite partial times a
 * zero adjoint never turns into NaN); this also ends the sweep's work early when adjoints
 * underflow to zero in long chains.
 *
 * Second order (one point, D tangent directions innermost): the forward pass also carries
 * the tangents of values and of the partials (from each row's SECOND field); the reverse
 * pass carries the tangents of the adjoints: adj'[a] += pa * adj'[y] + pa' * adj[y].
 */
#include <stdlib.h>

#include "program.h"
#include "narymath.h"
#include "opfuncs.h"

#if defined(__GNUC__)
#define PYAD_ALWAYS_INLINE static inline __attribute__((always_inline))
/* The loops over a block's points read and write each point's own slots only. */
#define PYAD_IVDEP _Pragma("GCC ivdep")
#else
#define PYAD_ALWAYS_INLINE static inline
#define PYAD_IVDEP
#endif

/* ---- first order ------------------------------------------------------------------------ */

/* Work buffer of a block of B points. */
typedef struct block {
    int64_t B;
    double *val, *adj; /* nslots * B */
    double *pp;        /* nstored * 2B: pair k's partials, da at 2kB + q, db at (2k+1)B + q */
    double *sp;        /* nside * B: partials of n-ary operands */
    double *scratch;   /* 2 * maxn: one point's n-ary operands, softmax outputs */
} block;

static size_t per_point(const pyad_program *p)
{
    return 2 * (size_t)pyad__nslots(p) + 2 * (size_t)p->nstored + p->nside;
}

static block block_layout(const pyad_program *p, double *work, int64_t B)
{
    const size_t n = (size_t)B;
    block w = {B, work, NULL, NULL, NULL, NULL};
    w.adj = w.val + pyad__nslots(p) * n;
    w.pp = w.adj + pyad__nslots(p) * n;
    w.sp = w.pp + 2 * (size_t)p->nstored * n;
    w.scratch = w.sp + p->nside * n;
    return w;
}

/* n-ary instruction i at the B points of a block; returns the instructions done (all of a
   softmax's outputs at once). Partials are stored for logsumexp only: sum's are 1, dot's are
   the other operand's value and softmax's follow from its outputs, so the reverse pass
   recomputes them (bit for bit the recorded ones) instead of reading them. */
/* A matvec's rows at the B points of a block, at its first instruction i. One point: x's
   values gathered, then the rows several at a time (pyad__matvec_rows). A block: each row's
   sums over the points at once, the point innermost, which vectorises; every point's sum
   runs left to right as the recording's. */
PYAD_NOINLINE uint32_t forward_matvec(const pyad_program *p, const block *w, uint32_t i,
                                      const int64_t B)
{
    const pyad_nary_ref r = p->nary[p->ins[i].a];
    const size_t nb = (size_t)B, n = r.count;
    const uint32_t *side = p->side + r.first;
    const double *c = p->mat + r.mat;
    double *out = w->val + (size_t)(p->nin + i) * nb;
    if (B == 1) {
        double *x = w->scratch;
        for (size_t k = 0; k < n; k++)
            x[k] = w->val[side[k]];
        pyad__matvec_forward(c, n, x, r.rows, out, NULL, NULL);
        return r.rows;
    }
    for (size_t j = 0; j < r.rows; j++) {
        double *restrict y = out + j * nb;
        const double *cj = c + j * n;
        for (size_t q = 0; q < nb; q++)
            y[q] = 0.0;
        for (size_t k = 0; k < n; k++) {
            const double *restrict x = w->val + side[k] * nb, ck = cj[k];
            PYAD_IVDEP
            for (size_t q = 0; q < nb; q++)
                y[q] += ck * x[q];
        }
    }
    return r.rows;
}

PYAD_ALWAYS_INLINE uint32_t forward_nary(const pyad_program *p, const block *w, uint32_t i,
                                         const int64_t B)
{
    const pyad_nary_ref r = p->nary[p->ins[i].a];
    const unsigned op = p->ins[i].kind & PYAD_OP_MASK;
    const size_t nb = (size_t)B;
    if (op == PYAD_OP_MATVEC)
        return forward_matvec(p, w, i, B);
    const int64_t n = r.count;
    const uint32_t *side = p->side + r.first;
    double *v = w->scratch, *y = w->scratch + p->maxn;
    double *out = w->val + (size_t)(p->nin + i) * nb;
    for (size_t q = 0; q < nb; q++) {
        for (uint32_t j = 0; j < r.count; j++)
            v[j] = w->val[side[j] * nb + q];
        double m = 0.0, s = 0.0;
        switch (op) {
        case PYAD_OP_SUM:
            out[q] = pyad__sum_of(v, n);
            break;
        case PYAD_OP_DOT:
            out[q] = pyad__dot_of(v, n / 2);
            break;
        case PYAD_OP_LOGSUMEXP:
            out[q] = pyad__lse_of(v, n, &m, &s);
            for (uint32_t j = 0; j < r.count; j++)
                w->sp[(r.first + j) * nb + q] = pyad__lse_partial(v[j], m, s);
            break;
        default: /* PYAD_OP_SOFTMAX: outputs i .. i + n - 1 */
            pyad__softmax_of(v, n, pyad__max_of(v, n), y);
            for (uint32_t o = 0; o < r.count; o++)
                out[o * nb + q] = y[o];
            break;
        }
    }
    return op == PYAD_OP_SOFTMAX ? r.count : 1;
}

/* One case per op and form, from the op table: each evaluates the row's MATH at the B points
   (a replay checks no domain: a refused operand gives what the formula gives), and writes
   the value alone where the program keeps the partials, or the value and the partials. */
#define PYAD_REFUSED(status) (void)(status)
#define PYAD_FWD_0(NAME, MATH)
#define PYAD_FWD_PYAD_NARY(NAME, MATH)
#define PYAD_FWD_CASES(KIND, XA, XB, MATH, PA, PB)                                                 \
    case (KIND) | PYAD_STATIC_BIT:                                                                 \
    case (KIND) | PYAD_OPERAND_BIT:                                                                \
        for (int64_t q = 0; q < B; q++) {                                                          \
            const double a = (XA), b = (XB);                                                       \
            MATH                                                                                   \
            yv[q] = y;                                                                             \
        }                                                                                          \
        break;                                                                                     \
    case (KIND):                                                                                   \
        for (int64_t q = 0; q < B; q++) {                                                          \
            const double a = (XA), b = (XB);                                                       \
            MATH                                                                                   \
            yv[q] = y;                                                                             \
            qa[q] = (PA);                                                                          \
            qb[q] = (PB);                                                                          \
        }                                                                                          \
        break;
#define PYAD_FWD_1(NAME, MATH) PYAD_FWD_CASES(PYAD_OP_##NAME, xa[q], 0.0, MATH, da, 0.0)
#define PYAD_FWD_2(NAME, MATH)                                                                     \
    PYAD_FWD_CASES(PYAD_OP_##NAME, xa[q], xb[q], MATH, da, db)                                     \
    PYAD_FWD_CASES(PYAD_OP_##NAME | PYAD_FORM_VC << PYAD_OP_BITS, xa[q], xb[q], MATH, da, 0.0)     \
    PYAD_FWD_CASES(PYAD_OP_##NAME | PYAD_FORM_CV << PYAD_OP_BITS, xa[q], xb[q], MATH, 0.0, db)

PYAD_ALWAYS_INLINE void forward(const pyad_program *p, const block *w, const int64_t B)
{
    const size_t nb = (size_t)B;
    const pyad_instr *ins = p->ins;
    double *val = w->val, *yv = w->val + p->nin * nb;
    for (uint32_t i = 0, n = p->nrec; i < n; i++, yv += nb) {
        const pyad_instr in = ins[i];
        const double *xa = val + in.a * nb, *xb = val + in.b * nb;
        double *qa = w->pp + 2 * (size_t)in.part * nb, *qb = qa + nb;
        switch (in.kind & PYAD_SWITCH_MASK) {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_FWD_##ARITY(NAME, MATH)
#include "ops.def"
#undef PYAD_OP
        default: { /* the n-ary ops */
            const uint32_t more = forward_nary(p, w, i, B) - 1;
            i += more;
            yv += more * nb;
            break;
        }
        }
    }
}

/* adj = (first ? 0 : adj) + term where the adjoint factor g is not 0, else unchanged (or 0
   if first): the tape's `grad += partial * g`, skipped at g == 0, on a cleared grad. */
PYAD_ALWAYS_INLINE void add_term(double *adj, int first, double term, double g)
{
    const double old = first ? 0.0 : *adj;
    *adj = g != 0.0 ? old + term : old;
}

/* The reverse of a matvec, met at its last instruction i: rows last to first, each adding
   C[j,k] * g to x_k's adjoint in k order, as the tape's sweep of the dots does (a zero g
   skipped). The last row makes the first touches; at one point with x's slots consecutive
   the others are pyad__matvec_axpys (cut into parts of columns when large: one addition per
   adjoint, so neither the order across k nor the parts change a bit). Returns the
   instructions done. */
PYAD_NOINLINE uint32_t reverse_matvec(const pyad_program *p, const block *w, uint32_t i,
                                      const int64_t B)
{
    const pyad_nary_ref r = p->nary[p->ins[i].a];
    const size_t nb = (size_t)B, n = r.count, out = p->nin + i - (r.rows - 1);
    const uint32_t *side = p->side + r.first;
    const uint8_t *first = p->side_first + r.first;
    const double *c = p->mat + r.mat;
    double *adj = w->adj;
    int consecutive = 1;
    for (size_t k = 0; k < n; k++)
        consecutive &= side[k] == side[0] + k;
    for (size_t j = r.rows; j-- > 0;) {
        const double *cj = c + j * n, *g = adj + (out + j) * nb;
        const int firsts = j == r.rows - 1;
        if (B == 1 && !firsts && consecutive) {
            pyad__matvec_reverse(adj + (n > 0 ? side[0] : 0), c, n, adj + out, 0, j + 1);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            double *a = adj + side[k] * nb;
            const double ck = cj[k];
            const int fk = firsts && first[k];
            PYAD_IVDEP
            for (size_t q = 0; q < nb; q++)
                add_term(a + q, fk, ck * g[q], g[q]);
        }
    }
    return r.rows;
}

/* The reverse of n-ary instruction i, in the tape's order: entries first to last, and a
   softmax's outputs (met at its last one) last to first, each skipped where its adjoint is
   0. Returns the instructions done. */
PYAD_NOINLINE uint32_t reverse_nary(const pyad_program *p, const block *w, uint32_t i,
                                    const int64_t B)
{
    const pyad_nary_ref r = p->nary[p->ins[i].a];
    const unsigned op = p->ins[i].kind & PYAD_OP_MASK;
    const size_t nb = (size_t)B;
    const uint32_t *side = p->side + r.first;
    const uint8_t *first = p->side_first + r.first;
    double *adj = w->adj;
    const double *val = w->val;
    if (op == PYAD_OP_MATVEC)
        return reverse_matvec(p, w, i, B);
    if (op == PYAD_OP_SOFTMAX) { /* outputs out .. i, last to first, at each point */
        const size_t out = p->nin + i - (r.count - 1);
        const int64_t n = r.count;
        double *y = w->scratch + p->maxn;
        for (size_t q = 0; q < nb; q++) {
            int64_t top = -1; /* found at the first nonzero adjoint */
            double rest = 0.0;
            for (int64_t o = n; o-- > 0;) {
                const double go = adj[(out + (size_t)o) * nb + q];
                const int firsts = o == n - 1;
                if (go == 0.0) {
                    for (int64_t j = 0; firsts && j < n; j++)
                        add_term(adj + side[j] * nb + q, first[j], 0.0, 0.0);
                    continue;
                }
                if (top < 0) {
                    for (int64_t j = 0; j < n; j++)
                        y[j] = val[(out + (size_t)j) * nb + q];
                    top = pyad__softmax_top(y, n, &rest);
                }
                const double co = pyad__softmax_rest(y, o, top, rest);
                for (int64_t j = 0; j < n; j++)
                    add_term(adj + side[j] * nb + q, firsts && first[j],
                             pyad__softmax_partial(y[o], co, y[j], o == j) * go, go);
            }
        }
        return r.count;
    }
    const double *sp = w->sp + r.first * nb;
    for (size_t q = 0; q < nb; q++) {
        const double g = adj[(p->nin + i) * nb + q];
        switch (op) {
        case PYAD_OP_SUM: /* the recorded partial is 1.0, and 1.0 * g is g */
            for (uint32_t e = 0; e < r.count; e++)
                add_term(adj + side[e] * nb + q, first[e], g, g);
            break;
        case PYAD_OP_DOT:
            for (uint32_t e = 0; e < r.count; e += 2) {
                add_term(adj + side[e] * nb + q, first[e], val[side[e + 1] * nb + q] * g, g);
                add_term(adj + side[e + 1] * nb + q, first[e + 1], val[side[e] * nb + q] * g, g);
            }
            break;
        default: /* PYAD_OP_LOGSUMEXP */
            for (uint32_t e = 0; e < r.count; e++)
                add_term(adj + side[e] * nb + q, first[e], sp[e * nb + q] * g, g);
            break;
        }
    }
    return 1;
}

PYAD_ALWAYS_INLINE void reverse(const pyad_program *p, const block *w, const int64_t B)
{
    const size_t nb = (size_t)B;
    double *adj = w->adj;
    const double *val = w->val;
    for (uint32_t i = p->nrec; i-- > 0;) {
        const pyad_instr in = p->ins[i];
        if (PYAD_UNLIKELY(in.b & PYAD_NARY_BIT)) {
            i -= reverse_nary(p, w, i, B) - 1;
            continue;
        }
        const double *g = adj + (size_t)(p->nin + i) * nb;
        double *ga = adj + in.a * nb, *gb = adj + in.b * nb;
        const int fa = (in.kind & PYAD_FIRST_A) != 0, fb = (in.kind & PYAD_FIRST_B) != 0;
        if (B == 1) { /* one point: the adjoint in a register */
            const double g0 = g[0];
            if (g0 == 0.0) {
                if (fa)
                    ga[0] = 0.0;
                if (fb)
                    gb[0] = 0.0;
                continue;
            }
            const double *q0 = in.kind & PYAD_STATIC_BIT    ? p->cpart + 2 * (size_t)in.part
                               : in.kind & PYAD_OPERAND_BIT ? NULL
                                                            : w->pp + 2 * (size_t)in.part;
            const double pa = q0 ? q0[0] : val[in.b], pb = q0 ? q0[1] : val[in.a];
            ga[0] = (fa ? 0.0 : ga[0]) + pa * g0;
            gb[0] = (fb ? 0.0 : gb[0]) + pb * g0;
            continue;
        }
        /* sums taken always and kept by a select, not a branch, so that a block's loops
           vectorise; a before b, as the tape's sweep adds them (they meet when a == b) */
        if (in.kind & PYAD_STATIC_BIT) { /* the same partials at every point */
            const double ca = p->cpart[2 * (size_t)in.part], cb = p->cpart[2 * (size_t)in.part + 1];
            PYAD_IVDEP
            for (size_t q = 0; q < nb; q++)
                add_term(ga + q, fa, ca * g[q], g[q]);
            PYAD_IVDEP
            for (size_t q = 0; q < nb; q++)
                add_term(gb + q, fb, cb * g[q], g[q]);
            continue;
        }
        const double *qa, *qb;
        if (in.kind & PYAD_OPERAND_BIT) { /* a product: each operand's partial is the other */
            qa = val + in.b * nb;
            qb = val + in.a * nb;
        } else {
            qa = w->pp + 2 * (size_t)in.part * nb;
            qb = qa + nb;
        }
        PYAD_IVDEP
        for (size_t q = 0; q < nb; q++)
            add_term(ga + q, fa, qa[q] * g[q], g[q]);
        PYAD_IVDEP
        for (size_t q = 0; q < nb; q++)
            add_term(gb + q, fb, qb[q] * g[q], g[q]);
    }
}

/* The single point and the block of points: one instantiation each. */
#if defined(__GNUC__)
/* One point: threaded code. Each case of the forward pass ends with a jump of its own to the
   next instruction's case (GCC's labels as values), so the branch predictor learns which
   case follows which, where the switch's one shared jump mispredicts on mixed programs.
   Measured (make -C csrc bench, old and new alternated, 2026-12-04): W2's forward pass 1.62-1.70
   -> 1.39-1.50 ns per instruction, forward + reverse 4.00-4.15 -> 3.68-3.86; W1, bound by
   libm, unchanged. The cases compute what forward()'s do, from the same rows. */
#define PYAD_THR_ENTRY(NAME, FORM, KIND)                                                           \
    [(KIND) | PYAD_STATIC_BIT] = &&thr_##NAME##_##FORM##_value,                                    \
              [(KIND) | PYAD_OPERAND_BIT] = &&thr_##NAME##_##FORM##_value,                         \
              [(KIND)] = &&thr_##NAME##_##FORM##_partials,
#define PYAD_THR_TABLE_0(NAME)
#define PYAD_THR_TABLE_PYAD_NARY(NAME) [PYAD_OP_##NAME] = &&thr_nary,
#define PYAD_THR_TABLE_1(NAME) PYAD_THR_ENTRY(NAME, plain, PYAD_OP_##NAME)
#define PYAD_THR_TABLE_2(NAME)                                                                     \
    PYAD_THR_ENTRY(NAME, plain, PYAD_OP_##NAME)                                                    \
    PYAD_THR_ENTRY(NAME, vc, PYAD_OP_##NAME | PYAD_FORM_VC << PYAD_OP_BITS)                        \
    PYAD_THR_ENTRY(NAME, cv, PYAD_OP_##NAME | PYAD_FORM_CV << PYAD_OP_BITS)
/* to the next instruction's case; a kind no row made (none in a checked program) is n-ary's */
#define PYAD_THR_NEXT                                                                              \
    do {                                                                                           \
        if (++i == n)                                                                              \
            return;                                                                                \
        in = ins[i];                                                                               \
        const void *next_ = table[in.kind & PYAD_SWITCH_MASK];                                     \
        goto *(next_ != NULL ? next_ : &&thr_nary);                                                \
    } while (0)
#define PYAD_THR_CASES(NAME, FORM, XB, MATH, PA, PB)                                               \
    thr_##NAME##_##FORM##_value:                                                                   \
    {                                                                                              \
        const double a = val[in.a], b = (XB);                                                      \
        MATH                                                                                       \
        val[p->nin + i] = y;                                                                       \
        PYAD_THR_NEXT;                                                                             \
    }                                                                                              \
    thr_##NAME##_##FORM##_partials:                                                                \
    {                                                                                              \
        const double a = val[in.a], b = (XB);                                                      \
        MATH                                                                                       \
        val[p->nin + i] = y;                                                                       \
        double *pair = w->pp + 2 * (size_t)in.part;                                                \
        pair[0] = (PA);                                                                            \
        pair[1] = (PB);                                                                            \
        PYAD_THR_NEXT;                                                                             \
    }
#define PYAD_THR_CODE_0(NAME, MATH)
#define PYAD_THR_CODE_PYAD_NARY(NAME, MATH)
#define PYAD_THR_CODE_1(NAME, MATH) PYAD_THR_CASES(NAME, plain, 0.0, MATH, da, 0.0)
#define PYAD_THR_CODE_2(NAME, MATH)                                                                \
    PYAD_THR_CASES(NAME, plain, val[in.b], MATH, da, db)                                           \
    PYAD_THR_CASES(NAME, vc, val[in.b], MATH, da, 0.0)                                             \
    PYAD_THR_CASES(NAME, cv, val[in.b], MATH, 0.0, db)

PYAD_HOT static void forward_one(const pyad_program *p, const block *w)
{
    static const void *const table[PYAD_SWITCH_MASK + 1] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_THR_TABLE_##ARITY(NAME)
#include "ops.def"
#undef PYAD_OP
    };
    const pyad_instr *ins = p->ins;
    double *val = w->val;
    const uint32_t n = p->nrec;
    uint32_t i = 0;
    if (n == 0)
        return;
    pyad_instr in = ins[0];
    {
        const void *first = table[in.kind & PYAD_SWITCH_MASK];
        goto *(first != NULL ? first : &&thr_nary);
    }
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_THR_CODE_##ARITY(NAME, MATH)
#include "ops.def"
#undef PYAD_OP
thr_nary:
    {
        i += forward_nary(p, w, i, 1) - 1;
        PYAD_THR_NEXT;
    }
}
#else
PYAD_HOT static void forward_one(const pyad_program *p, const block *w)
{
    forward(p, w, 1);
}
#endif
static void forward_many(const pyad_program *p, const block *w)
{
    forward(p, w, w->B);
}
PYAD_HOT static void reverse_one(const pyad_program *p, const block *w)
{
    reverse(p, w, 1);
}
static void reverse_many(const pyad_program *p, const block *w)
{
    reverse(p, w, w->B);
}

/* Inputs x[k][nin] of points p0 .. p0 + B, and the constants, into the value slots. */
static void load_values(const pyad_program *p, double *val, int64_t B, const double *x)
{
    const size_t nb = (size_t)B;
    for (size_t q = 0; q < nb; q++)
        for (uint32_t i = 0; i < p->nin; i++)
            val[i * nb + q] = x[q * p->nin + i];
    double *c = val + (size_t)(p->nin + p->nrec) * nb;
    for (uint32_t j = 0; j < p->nconst; j++)
        for (size_t q = 0; q < nb; q++)
            c[j * nb + q] = p->consts[j];
}

static int held(unsigned cmp, double l, double r)
{
    switch (cmp) {
    case PYAD_CMP_LT:
        return l < r;
    case PYAD_CMP_LE:
        return l <= r;
    case PYAD_CMP_GT:
        return l > r;
    default:
        return l >= r;
    }
}

/* guards[q] = 0 if every guard held at point q, else 1 + the first that did not. */
static void check_guards(const pyad_program *p, const double *val, int64_t B, int64_t *guards)
{
    const size_t nb = (size_t)B;
    for (size_t q = 0; q < nb; q++)
        guards[q] = 0;
    for (uint32_t g = 0; g < p->nguard; g++) {
        const pyad_guard gd = p->guard[g];
        const int expect = (gd.kind & PYAD_CMP_HELD) != 0;
        for (size_t q = 0; q < nb; q++)
            if (guards[q] == 0 &&
                held(gd.kind & 3u, val[gd.lhs * nb + q], val[gd.rhs * nb + q]) != expect)
                guards[q] = (int64_t)g + 1;
    }
}

int64_t pyad_program_work(const pyad_program *p, int64_t points, int64_t directions)
{
    if (p == NULL || points < 1 || directions < 0 || (directions > 0 && points != 1))
        return -1;
    const double d = (double)directions, n = (double)points;
    const double slots = (double)pyad__nslots(p) + (double)p->nrec, side = (double)p->nside;
    const double need = directions == 0
                            ? n * (double)per_point(p) + 2.0 * p->maxn + 2.0
                            : (2.0 + 2.0 * d) * slots + side + (2.0 + d) * p->maxn + d + 2.0;
    return need < 0x1p60 ? (int64_t)need : -1;
}

int pyad_program_run(const pyad_program *p, int64_t k, const double *x, int64_t nseed,
                     const double *seeds, double *values, double *grads, int64_t *guards,
                     double *work, int64_t nwork)
{
    if (p == NULL || k < 0 || nseed < 0 || (k > 0 && p->nin > 0 && x == NULL) ||
        (nseed > 0 && (seeds == NULL || grads == NULL)) || work == NULL)
        return PYAD_MISUSE;
    const int64_t fixed = pyad_program_work(p, 1, 0) - (int64_t)per_point(p);
    int64_t B = (nwork - fixed) / (int64_t)(per_point(p) ? per_point(p) : 1);
    if (B < 1)
        return PYAD_MISUSE;
    for (int64_t p0 = 0; p0 < k; p0 += B) {
        const int64_t nb = k - p0 < B ? k - p0 : B;
        const size_t un = (size_t)nb, u0 = (size_t)p0;
        const block w = block_layout(p, work, nb);
        load_values(p, w.val, nb, x + u0 * p->nin);
        if (nb == 1)
            forward_one(p, &w);
        else
            forward_many(p, &w);
        if (guards != NULL)
            check_guards(p, w.val, nb, guards + u0);
        for (size_t q = 0; values != NULL && q < un; q++)
            for (uint32_t j = 0; j < p->nout; j++)
                values[(u0 + q) * p->nout + j] = w.val[p->out[j] * un + q];
        for (size_t s = 0; s < (size_t)nseed; s++) {
            for (uint32_t z = 0; z < p->nzero; z++) /* the rest is written first, not added to */
                memset(w.adj + p->zero[z] * un, 0, un * sizeof *w.adj);
            for (uint32_t j = 0; j < p->nout; j++)
                for (size_t q = 0; q < un; q++)
                    w.adj[p->out[j] * un + q] += seeds[s * p->nout + j];
            if (nb == 1)
                reverse_one(p, &w);
            else
                reverse_many(p, &w);
            for (size_t q = 0; q < un; q++) {
                double *gq = grads + ((u0 + q) * (size_t)nseed + s) * p->nin;
                for (uint32_t i = 0; i < p->nin; i++)
                    gq[i] = w.adj[i * un + q];
            }
        }
    }
    return PYAD_OK;
}

/* ---- second order ----------------------------------------------------------------------- */

typedef struct hblock {
    int64_t D;
    double *val, *adj; /* nslots */
    double *tan, *adt; /* nslots * D: tangents of values and of adjoints */
    double *pa, *pb;   /* nrec */
    double *tpa, *tpb; /* nrec * D: tangents of the partials */
    double *sp;        /* nside: logsumexp's partials */
    double *v, *tv;    /* scratch: one n-ary instruction's operands and their tangents */
    double *y;         /* ... and a softmax's outputs */
} hblock;

static hblock hblock_layout(const pyad_program *p, double *work, int64_t D)
{
    const size_t d = (size_t)D, ns = pyad__nslots(p), nr = p->nrec;
    hblock h;
    h.D = D;
    h.val = work;
    h.adj = h.val + ns;
    h.tan = h.adj + ns;
    h.adt = h.tan + ns * d;
    h.pa = h.adt + ns * d;
    h.pb = h.pa + nr;
    h.tpa = h.pb + nr;
    h.tpb = h.tpa + nr * d;
    h.sp = h.tpb + nr * d;
    h.v = h.sp + p->nside;
    h.tv = h.v + p->maxn;
    h.y = h.tv + (size_t)p->maxn * d;
    return h;
}

/* p * t, or 0 where the tangent t is 0. */
static inline double pyad__times(double p, double t)
{
    return t != 0.0 ? p * t : 0.0;
}

/* Values and tangents of n-ary instruction i (partials as in forward_nary). */
static void hvp_forward_nary(const pyad_program *p, const hblock *h, uint32_t i)
{
    const size_t D = (size_t)h->D;
    const pyad_nary_ref r = p->nary[p->ins[i].a];
    const unsigned op = p->ins[i].kind & PYAD_OP_MASK;
    if (r.index != 0)
        return; /* a group: computed at its first output */
    const uint32_t n = r.count, *side = p->side + r.first;
    const size_t self = p->nin + i;
    if (op == PYAD_OP_MATVEC) {
        /* linear: the tangents are C times x's tangents, the dots' sums (whose terms for the
           constants, 0, change nothing) */
        const double *c = p->mat + r.mat;
        for (uint32_t j = 0; j < n; j++)
            h->v[j] = h->val[side[j]];
        pyad__matvec_forward(c, n, h->v, r.rows, h->val + self, NULL, NULL);
        for (uint32_t o = 0; o < r.rows; o++)
            for (size_t d = 0; d < D; d++) {
                double t = 0.0;
                for (uint32_t j = 0; j < n; j++)
                    t += pyad__times(c[(size_t)o * n + j], h->tan[side[j] * D + d]);
                h->tan[(self + o) * D + d] = t;
            }
        return;
    }
    for (uint32_t j = 0; j < n; j++) {
        h->v[j] = h->val[side[j]];
        memcpy(h->tv + j * D, h->tan + side[j] * D, D * sizeof *h->tv);
    }
    double m = 0.0, s = 0.0, *sp = h->sp + r.first;
    switch (op) {
    case PYAD_OP_SUM:
    case PYAD_OP_DOT:
    case PYAD_OP_LOGSUMEXP:
        if (op == PYAD_OP_SUM)
            h->val[self] = pyad__sum_of(h->v, n);
        else if (op == PYAD_OP_DOT)
            h->val[self] = pyad__dot_of(h->v, n / 2);
        else
            h->val[self] = pyad__lse_of(h->v, n, &m, &s);
        for (uint32_t j = 0; op == PYAD_OP_LOGSUMEXP && j < n; j++)
            sp[j] = pyad__lse_partial(h->v[j], m, s);
        for (size_t d = 0; d < D; d++) {
            double t = 0.0;
            for (uint32_t j = 0; j < n; j++) {
                const double pj = op == PYAD_OP_SUM   ? 1.0
                                  : op == PYAD_OP_DOT ? h->v[j ^ 1u] /* the pair's other */
                                                      : sp[j];
                t += pyad__times(pj, h->tv[j * D + d]);
            }
            h->tan[self * D + d] = t;
        }
        break;
    default: { /* PYAD_OP_SOFTMAX: outputs self .. self + n - 1 */
        pyad__softmax_of(h->v, n, pyad__max_of(h->v, n), h->y);
        double rest;
        const int64_t top = pyad__softmax_top(h->y, n, &rest);
        for (uint32_t o = 0; o < n; o++) {
            h->val[self + o] = h->y[o];
            const double co = pyad__softmax_rest(h->y, o, top, rest);
            for (size_t d = 0; d < D; d++) {
                double t = 0.0;
                for (uint32_t j = 0; j < n; j++)
                    t += pyad__times(pyad__softmax_partial(h->y[o], co, h->y[j], o == j),
                                     h->tv[j * D + d]);
                h->tan[(self + o) * D + d] = t;
            }
        }
        break;
    }
    }
}

/* adj[s] += p g and adj'[s] += p g' + p' g for operand slot s, partial p, its tangent tp.
   Terms whose adjoint factor is 0 are left out, as the first-order sweep skips a zero
   adjoint: an infinite partial (sqrt at 0) times a zero adjoint adds nothing, not NaN. */
static void hvp_push(const hblock *h, size_t s, double p, const double *tp, double g,
                     const double *gd)
{
    const size_t D = (size_t)h->D;
    if (g != 0.0)
        h->adj[s] += p * g;
    for (size_t d = 0; d < D; d++) {
        if (gd[d] != 0.0)
            h->adt[s * D + d] += p * gd[d];
        if (g != 0.0)
            h->adt[s * D + d] += tp[d] * g;
    }
}

/* The reverse of n-ary instruction i with tangents; tp is scratch of D doubles. The tangent
   of each partial follows from the operands' and outputs' tangents. */
static void hvp_reverse_nary(const pyad_program *p, const hblock *h, uint32_t i, double *tp)
{
    const size_t D = (size_t)h->D;
    const pyad_nary_ref r = p->nary[p->ins[i].a];
    const unsigned op = p->ins[i].kind & PYAD_OP_MASK;
    if (r.index != r.rows - 1)
        return; /* a group: swept at its last output */
    const uint32_t n = r.count, *side = p->side + r.first;
    const size_t self = p->nin + i;
    const double g = h->adj[self], *gd = h->adt + self * D;
    switch (op) {
    case PYAD_OP_MATVEC: { /* rows last to first; the partials' tangents are 0 (constants) */
        const size_t out = self - (r.rows - 1);
        memset(tp, 0, D * sizeof *tp);
        for (uint32_t o = r.rows; o-- > 0;) {
            const double *co = p->mat + r.mat + (size_t)o * n;
            for (uint32_t e = 0; e < n; e++)
                hvp_push(h, side[e], co[e], tp, h->adj[out + o], h->adt + (out + o) * D);
        }
        break;
    }
    case PYAD_OP_SUM:
        memset(tp, 0, D * sizeof *tp);
        for (uint32_t e = 0; e < n; e++)
            hvp_push(h, side[e], 1.0, tp, g, gd);
        break;
    case PYAD_OP_DOT:
        for (uint32_t e = 0; e < n; e++) {
            const size_t other = side[e ^ 1u];
            hvp_push(h, side[e], h->val[other], h->tan + other * D, g, gd);
        }
        break;
    case PYAD_OP_LOGSUMEXP:
        for (uint32_t e = 0; e < n; e++) {
            const double pe = h->sp[r.first + e];
            for (size_t d = 0; d < D; d++)
                tp[d] = pe * (h->tan[side[e] * D + d] - h->tan[self * D + d]);
            hvp_push(h, side[e], pe, tp, g, gd);
        }
        break;
    default: { /* PYAD_OP_SOFTMAX: outputs first .. self */
        const size_t first = self - (n - 1);
        for (uint32_t j = 0; j < n; j++)
            h->y[j] = h->val[first + j];
        double rest;
        const int64_t top = pyad__softmax_top(h->y, n, &rest);
        for (uint32_t o = n; o-- > 0;) {
            const size_t so = first + o;
            const double yo = h->val[so], *to = h->tan + so * D;
            const double co = pyad__softmax_rest(h->y, o, top, rest);
            for (uint32_t j = 0; j < n; j++) {
                const size_t sj = first + j;
                const double yj = h->val[sj], *tj = h->tan + sj * D;
                /* the tangent of y_o (delta_oj - y_j); on the diagonal, of y_o (1 - y_o)
                   with 1 - y_o kept accurate as co */
                const double factor = o == j ? co : 0.0 - yj;
                for (size_t d = 0; d < D; d++)
                    tp[d] = to[d] * factor - yo * tj[d];
                hvp_push(h, side[j], pyad__softmax_partial(yo, co, yj, o == j), tp, h->adj[so],
                         h->adt + so * D);
            }
        }
        break;
    }
    }
}

/* Every form computes all partials (a second partial may need both first ones) into the
   locals of hvp_forward (named h_ for "held": the row's MATH declares y, da, ...); va and vb
   say which operands vary (are not constants). */
#define PYAD_HFWD_0(NAME, MATH)
#define PYAD_HFWD_PYAD_NARY(NAME, MATH)
#define PYAD_HFWD_CASE(A, B, MATH)                                                                 \
    {                                                                                              \
        const double a = (A), b = (B);                                                             \
        MATH                                                                                       \
        hy = y;                                                                                    \
        hda = da;                                                                                  \
        hdb = db;                                                                                  \
        hdaa = daa;                                                                                \
        hdab = dab;                                                                                \
        hdbb = dbb;                                                                                \
        break;                                                                                     \
    }
#define PYAD_HFWD_1(NAME, MATH)                                                                    \
    case PYAD_OP_##NAME:                                                                           \
        PYAD_HFWD_CASE(h->val[p->ins[i].a], 0.0, MATH)
#define PYAD_HFWD_2(NAME, MATH)                                                                    \
    case PYAD_OP_##NAME:                                                                           \
    case PYAD_OP_##NAME | PYAD_FORM_VC << PYAD_OP_BITS:                                            \
    case PYAD_OP_##NAME | PYAD_FORM_CV << PYAD_OP_BITS:                                            \
        va = (kind >> PYAD_OP_BITS) != PYAD_FORM_CV;                                               \
        vb = (kind >> PYAD_OP_BITS) != PYAD_FORM_VC;                                               \
        PYAD_HFWD_CASE(h->val[p->ins[i].a], h->val[p->ins[i].b], MATH)

static void hvp_forward(const pyad_program *p, const hblock *h)
{
    const size_t D = (size_t)h->D;
    for (uint32_t i = 0; i < p->nrec; i++) {
        const unsigned kind = p->ins[i].kind & PYAD_KIND_MASK;
        if (p->ins[i].b & PYAD_NARY_BIT) {
            hvp_forward_nary(p, h, i);
            continue;
        }
        double hy = 0.0, hda = 0.0, hdb = 0.0, hdaa = 0.0, hdab = 0.0, hdbb = 0.0;
        int va = 1, vb = 0;
        switch (kind) {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_HFWD_##ARITY(NAME, MATH)
#include "ops.def"
#undef PYAD_OP
        default:
            break;
        }
        const size_t self = p->nin + i, sa = p->ins[i].a, sb = p->ins[i].b;
        h->val[self] = hy;
        h->pa[i] = va ? hda : 0.0;
        h->pb[i] = vb ? hdb : 0.0;
        /* A zero tangent contributes nothing, whatever it multiplies: as in the reverse
           pass's zero skip, an infinite partial in a direction that does not move it stays
           out of the result instead of turning it into NaN. */
        for (size_t d = 0; d < D; d++) {
            const double ta = va ? h->tan[sa * D + d] : 0.0, tb = vb ? h->tan[sb * D + d] : 0.0;
            h->tan[self * D + d] = pyad__times(hda, ta) + pyad__times(hdb, tb);
            h->tpa[i * D + d] = pyad__times(hdaa, ta) + pyad__times(hdab, tb);
            h->tpb[i * D + d] = pyad__times(hdab, ta) + pyad__times(hdbb, tb);
        }
    }
}

static void hvp_reverse(const pyad_program *p, const hblock *h, double *tp)
{
    const size_t D = (size_t)h->D;
    for (uint32_t i = p->nrec; i-- > 0;) {
        if (p->ins[i].b & PYAD_NARY_BIT) {
            hvp_reverse_nary(p, h, i, tp);
            continue;
        }
        const size_t self = p->nin + i;
        const double g = h->adj[self], *gd = h->adt + self * D;
        hvp_push(h, p->ins[i].a, h->pa[i], h->tpa + i * D, g, gd);
        hvp_push(h, p->ins[i].b, h->pb[i], h->tpb + i * D, g, gd);
    }
}

int pyad_program_hvp(const pyad_program *p, const double *x, int64_t ndir, const double *v,
                     double *value, double *grad, double *hv, int64_t *guards, double *work,
                     int64_t nwork)
{
    if (p == NULL || p->nout != 1 || ndir < 1 || (p->nin > 0 && (x == NULL || v == NULL)) ||
        hv == NULL || work == NULL || nwork < pyad_program_work(p, 1, ndir))
        return PYAD_MISUSE;
    const size_t D = (size_t)ndir, ns = pyad__nslots(p);
    const hblock h = hblock_layout(p, work, ndir);
    load_values(p, h.val, 1, x);
    memset(h.tan, 0, ns * D * sizeof *h.tan);
    for (size_t d = 0; d < D; d++)
        for (uint32_t i = 0; i < p->nin; i++)
            h.tan[i * D + d] = v[d * p->nin + i];
    hvp_forward(p, &h);
    if (guards != NULL)
        check_guards(p, h.val, 1, guards);
    if (value != NULL)
        *value = h.val[p->out[0]];
    memset(h.adj, 0, ns * sizeof *h.adj);
    memset(h.adt, 0, ns * D * sizeof *h.adt);
    h.adj[p->out[0]] = 1.0;
    hvp_reverse(p, &h, h.y + p->maxn);
    for (uint32_t i = 0; grad != NULL && i < p->nin; i++)
        grad[i] = h.adj[i];
    for (size_t d = 0; d < D; d++)
        for (uint32_t i = 0; i < p->nin; i++)
            hv[d * p->nin + i] = h.adt[i * D + d];
    return PYAD_OK;
}
