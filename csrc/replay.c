/*
 * replay.c - evaluating a program: forward replay, guards, reverse sweep, and
 * Hessian-vector products by forward-over-reverse.
 *
 * First order. The forward pass recomputes every value and stores both partials (from the
 * op table's VALUE, DA and DB columns, the very expressions a recording evaluates), so the
 * reverse pass is two multiply-adds per instruction, visiting instructions in the order the
 * tape's sweep visits records: gradients are bit for bit the recording's. Several points are
 * evaluated in blocks with the point index innermost (slot s of point q at s * B + q): one
 * instruction dispatch serves B points and the arithmetic ops vectorise. The single point
 * (B = 1) is a separate instantiation of the same code, without the inner loops.
 *
 * A zero adjoint is skipped, as the tape's sweep skips it (so an infinite partial times a
 * zero adjoint never turns into NaN); this also ends the sweep's work early when adjoints
 * underflow to zero in long chains.
 *
 * Second order (one point, D tangent directions innermost): the forward pass also carries
 * the tangents of values and of the partials (from the DAA, DAB, DBB columns); the reverse
 * pass carries the tangents of the adjoints: adj'[a] += pa * adj'[y] + pa' * adj[y].
 */
#include <stdlib.h>

#include "program.h"
#include "narymath.h"
#include "opfuncs.h"

#if defined(__GNUC__)
#define PYAD_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define PYAD_ALWAYS_INLINE static inline
#endif

/* ---- first order ------------------------------------------------------------------------ */

/* Work buffer of a block of B points. */
typedef struct block {
    int64_t B;
    double *val, *adj; /* nslots * B */
    double *pa, *pb;   /* nrec * B */
    double *sp;        /* nside * B: partials of n-ary operands */
    double *scratch;   /* 2 * maxn: one point's n-ary operands, softmax outputs */
} block;

static size_t per_point(const pyad_program *p)
{
    return 2 * (size_t)pyad__nslots(p) + 2 * (size_t)p->nrec + p->nside;
}

static block block_layout(const pyad_program *p, double *work, int64_t B)
{
    const size_t n = (size_t)B;
    block w = {B, work, NULL, NULL, NULL, NULL, NULL};
    w.adj = w.val + pyad__nslots(p) * n;
    w.pa = w.adj + pyad__nslots(p) * n;
    w.pb = w.pa + p->nrec * n;
    w.sp = w.pb + p->nrec * n;
    w.scratch = w.sp + p->nside * n;
    return w;
}

static void forward_nary(const pyad_program *p, const block *w, uint32_t i)
{
    const int64_t B = w->B;
    const pyad_nary_ref r = p->nary[p->a[i]];
    const unsigned op = p->kind[i] & PYAD_OP_MASK;
    if (op == PYAD_OP_SOFTMAX && r.index != 0)
        return; /* computed with output 0 */
    double *v = w->scratch, *y = w->scratch + p->maxn;
    const int64_t n = r.count;
    for (int64_t q = 0; q < B; q++) {
        for (uint32_t j = 0; j < r.count; j++)
            v[j] = w->val[(size_t)p->side[r.first + j] * (size_t)B + (size_t)q];
        double *sp = w->sp + (size_t)r.first * (size_t)B + (size_t)q; /* entry j at sp[j*B] */
        double *out = w->val + (size_t)(p->nin + i) * (size_t)B + (size_t)q;
        double m = 0.0, s = 0.0;
        switch (op) {
        case PYAD_OP_SUM:
            *out = pyad__sum_of(v, n);
            for (int64_t j = 0; j < n; j++)
                sp[j * B] = 1.0;
            break;
        case PYAD_OP_DOT:
            *out = pyad__dot_of(v, n / 2);
            for (int64_t j = 0; j < n; j += 2) {
                sp[j * B] = v[j + 1];
                sp[(j + 1) * B] = v[j];
            }
            break;
        case PYAD_OP_LOGSUMEXP:
            *out = pyad__lse_of(v, n, &m, &s);
            for (int64_t j = 0; j < n; j++)
                sp[j * B] = pyad__lse_partial(v[j], m, s);
            break;
        default: /* PYAD_OP_SOFTMAX: outputs i .. i + n - 1 */
            pyad__softmax_of(v, n, pyad__max_of(v, n), y);
            for (uint32_t o = 0; o < r.count; o++) {
                out[(size_t)o * (size_t)B] = y[o];
                double *po = w->sp + (size_t)p->nary[p->a[i + o]].first * (size_t)B + (size_t)q;
                for (uint32_t j = 0; j < r.count; j++)
                    po[(size_t)j * (size_t)B] = pyad__softmax_partial(y[o], y[j], o == j);
            }
            break;
        }
    }
}

/* One case per op and form, from the op table. */
#define PYAD_FWD_0(NAME, VALUE, DA, DB)
#define PYAD_FWD_PYAD_NARY(NAME, VALUE, DA, DB)
#define PYAD_FWD_1(NAME, VALUE, DA, DB)                                                       \
    case PYAD_OP_##NAME:                                                                      \
        for (int64_t q = 0; q < B; q++) {                                                     \
            const double a = xa[q];                                                           \
            const double y = (VALUE);                                                         \
            yv[q] = y;                                                                        \
            qa[q] = (DA);                                                                     \
            qb[q] = 0.0;                                                                      \
        }                                                                                     \
        break;
#define PYAD_FWD_FORM(NAME, FORM, VALUE, PA, PB)                                              \
    case PYAD_OP_##NAME | FORM << PYAD_OP_BITS:                                               \
        for (int64_t q = 0; q < B; q++) {                                                     \
            const double a = xa[q], b = xb[q];                                                \
            const double y = (VALUE);                                                         \
            yv[q] = y;                                                                        \
            qa[q] = (PA);                                                                     \
            qb[q] = (PB);                                                                     \
            (void)b;                                                                          \
        }                                                                                     \
        break;
#define PYAD_FWD_2(NAME, VALUE, DA, DB)                                                       \
    PYAD_FWD_FORM(NAME, PYAD_FORM_PLAIN, VALUE, DA, DB)                                       \
    PYAD_FWD_FORM(NAME, PYAD_FORM_VC, VALUE, DA, 0.0)                                         \
    PYAD_FWD_FORM(NAME, PYAD_FORM_CV, VALUE, 0.0, DB)

PYAD_ALWAYS_INLINE void forward(const pyad_program *p, const block *w, const int64_t B)
{
    for (uint32_t i = 0; i < p->nrec; i++) {
        const unsigned kind = p->kind[i];
        if (PYAD_UNLIKELY(p->b[i] & PYAD_NARY_BIT)) {
            forward_nary(p, w, i);
            continue;
        }
        const double *xa = w->val + (size_t)p->a[i] * (size_t)B;
        const double *xb = w->val + (size_t)p->b[i] * (size_t)B;
        double *restrict yv = w->val + (size_t)(p->nin + i) * (size_t)B;
        double *restrict qa = w->pa + (size_t)i * (size_t)B;
        double *restrict qb = w->pb + (size_t)i * (size_t)B;
        switch (kind) {
#define PYAD_OP(NAME, name, ARITY, VALUE, DA, DB, DAA, DAB, DBB, PRE, POST)                   \
    PYAD_FWD_##ARITY(NAME, VALUE, DA, DB)
#include "ops.def"
#undef PYAD_OP
        default:
            break; /* not reached: the program holds op codes of the table only */
        }
    }
}

static void reverse_nary(const pyad_program *p, const block *w, uint32_t i, const double *g)
{
    const int64_t B = w->B;
    const pyad_nary_ref r = p->nary[p->a[i]];
    for (uint32_t e = r.first; e < r.first + r.count; e++) {
        double *ge = w->adj + (size_t)p->side[e] * (size_t)B;
        const double *pe = w->sp + (size_t)e * (size_t)B;
        for (int64_t q = 0; q < B; q++)
            if (g[q] != 0.0)
                ge[q] += pe[q] * g[q];
    }
}

PYAD_ALWAYS_INLINE void reverse(const pyad_program *p, const block *w, const int64_t B)
{
    double *adj = w->adj;
    for (uint32_t i = p->nrec; i-- > 0;) {
        const double *g = adj + (size_t)(p->nin + i) * (size_t)B;
        if (B == 1 && g[0] == 0.0)
            continue;
        if (PYAD_UNLIKELY(p->b[i] & PYAD_NARY_BIT)) {
            reverse_nary(p, w, i, g);
            continue;
        }
        double *ga = adj + (size_t)p->a[i] * (size_t)B, *gb = adj + (size_t)p->b[i] * (size_t)B;
        const double *qa = w->pa + (size_t)i * (size_t)B, *qb = w->pb + (size_t)i * (size_t)B;
        for (int64_t q = 0; q < B; q++)
            if (g[q] != 0.0)
                ga[q] += qa[q] * g[q];
        for (int64_t q = 0; q < B; q++)
            if (g[q] != 0.0)
                gb[q] += qb[q] * g[q];
    }
}

/* The single point and the block of points: one instantiation each. */
static void forward_one(const pyad_program *p, const block *w) { forward(p, w, 1); }
static void forward_many(const pyad_program *p, const block *w) { forward(p, w, w->B); }
static void reverse_one(const pyad_program *p, const block *w) { reverse(p, w, 1); }
static void reverse_many(const pyad_program *p, const block *w) { reverse(p, w, w->B); }

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
            if (guards[q] == 0 && held(gd.kind & 3u, val[gd.lhs * nb + q], val[gd.rhs * nb + q]) != expect)
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
                            : (2.0 + 2.0 * d) * slots + (1.0 + d) * side +
                                  (2.0 + 2.0 * d) * p->maxn + 2.0;
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
    const size_t nslots = pyad__nslots(p);
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
            memset(w.adj, 0, nslots * un * sizeof *w.adj);
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
    double *val, *adj;  /* nslots */
    double *tan, *adt;  /* nslots * D: tangents of values and of adjoints */
    double *pa, *pb;    /* nrec */
    double *tpa, *tpb;  /* nrec * D: tangents of the partials */
    double *sp, *tsp;   /* nside, nside * D */
    double *v, *tv;     /* scratch: one n-ary instruction's operands and their tangents */
    double *y, *ty;     /* ... and a softmax's outputs and theirs */
} hblock;

static hblock hblock_layout(const pyad_program *p, double *work, int64_t D)
{
    const size_t d = (size_t)D, ns = pyad__nslots(p), nr = p->nrec, ne = p->nside;
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
    h.tsp = h.sp + ne;
    h.v = h.tsp + ne * d;
    h.tv = h.v + p->maxn;
    h.y = h.tv + (size_t)p->maxn * d;
    h.ty = h.y + p->maxn;
    return h;
}

static void hvp_forward_nary(const pyad_program *p, const hblock *h, uint32_t i)
{
    const size_t D = (size_t)h->D;
    const pyad_nary_ref r = p->nary[p->a[i]];
    const unsigned op = p->kind[i] & PYAD_OP_MASK;
    if (op == PYAD_OP_SOFTMAX && r.index != 0)
        return;
    const uint32_t n = r.count, self = p->nin + i;
    for (uint32_t j = 0; j < n; j++) {
        const uint32_t s = p->side[r.first + j];
        h->v[j] = h->val[s];
        memcpy(h->tv + j * D, h->tan + s * D, D * sizeof *h->tv);
    }
    double *sp = h->sp + r.first, *tsp = h->tsp + r.first * D, *ty = h->tan + self * D;
    double m = 0.0, s = 0.0;
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
        for (uint32_t j = 0; j < n; j++)
            sp[j] = op == PYAD_OP_SUM   ? 1.0
                    : op == PYAD_OP_DOT ? h->v[j ^ 1u]
                                        : pyad__lse_partial(h->v[j], m, s);
        for (size_t d = 0; d < D; d++) {
            double t = 0.0;
            for (uint32_t j = 0; j < n; j++)
                t += sp[j] * h->tv[j * D + d];
            ty[d] = t;
        }
        for (uint32_t j = 0; j < n; j++)
            for (size_t d = 0; d < D; d++)
                tsp[j * D + d] = op == PYAD_OP_SUM   ? 0.0
                                 : op == PYAD_OP_DOT ? h->tv[(j ^ 1u) * D + d]
                                                     : sp[j] * (h->tv[j * D + d] - ty[d]);
        break;
    default: /* PYAD_OP_SOFTMAX: outputs self .. self + n - 1, partials y_o (δoj - y_j) */
        pyad__softmax_of(h->v, n, pyad__max_of(h->v, n), h->y);
        for (uint32_t o = 0; o < n; o++) {
            h->val[self + o] = h->y[o];
            double *so = h->sp + p->nary[p->a[i + o]].first;
            for (uint32_t j = 0; j < n; j++)
                so[j] = pyad__softmax_partial(h->y[o], h->y[j], o == j);
            for (size_t d = 0; d < D; d++) {
                double t = 0.0;
                for (uint32_t j = 0; j < n; j++)
                    t += so[j] * h->tv[j * D + d];
                h->ty[o * D + d] = t;
            }
            memcpy(h->tan + (self + o) * D, h->ty + o * D, D * sizeof *h->ty);
        }
        for (uint32_t o = 0; o < n; o++) {
            double *tso = h->tsp + p->nary[p->a[i + o]].first * D;
            for (uint32_t j = 0; j < n; j++)
                for (size_t d = 0; d < D; d++)
                    tso[j * D + d] = h->ty[o * D + d] * ((o == j ? 1.0 : 0.0) - h->y[j]) -
                                     h->y[o] * h->ty[j * D + d];
        }
        break;
    }
}

/* Every form computes all partials (a second partial may need both first ones) into the
   locals of hvp_forward; va and vb say which operands vary (are not constants). */
#define PYAD_HFWD_0(NAME, VALUE, DA, DB, DAA, DAB, DBB)
#define PYAD_HFWD_PYAD_NARY(NAME, VALUE, DA, DB, DAA, DAB, DBB)
#define PYAD_HFWD_1(NAME, VALUE, DA, DB, DAA, DAB, DBB)                                       \
    case PYAD_OP_##NAME: {                                                                    \
        const double a = h->val[p->a[i]];                                                     \
        y = (VALUE);                                                                          \
        da = (DA);                                                                            \
        daa = (DAA);                                                                          \
        break;                                                                                \
    }
#define PYAD_HFWD_2(NAME, VALUE, DA, DB, DAA, DAB, DBB)                                       \
    case PYAD_OP_##NAME:                                                                      \
    case PYAD_OP_##NAME | PYAD_FORM_VC << PYAD_OP_BITS:                                       \
    case PYAD_OP_##NAME | PYAD_FORM_CV << PYAD_OP_BITS: {                                     \
        const double a = h->val[p->a[i]], b = h->val[p->b[i]];                                \
        y = (VALUE);                                                                          \
        da = (DA);                                                                            \
        db = (DB);                                                                            \
        daa = (DAA);                                                                          \
        dab = (DAB);                                                                          \
        dbb = (DBB);                                                                          \
        va = (kind >> PYAD_OP_BITS) != PYAD_FORM_CV;                                          \
        vb = (kind >> PYAD_OP_BITS) != PYAD_FORM_VC;                                          \
        break;                                                                                \
    }

static void hvp_forward(const pyad_program *p, const hblock *h)
{
    const size_t D = (size_t)h->D;
    for (uint32_t i = 0; i < p->nrec; i++) {
        const unsigned kind = p->kind[i];
        if (p->b[i] & PYAD_NARY_BIT) {
            hvp_forward_nary(p, h, i);
            continue;
        }
        double y = 0.0, da = 0.0, db = 0.0, daa = 0.0, dab = 0.0, dbb = 0.0;
        int va = 1, vb = 0;
        switch (kind) {
#define PYAD_OP(NAME, name, ARITY, VALUE, DA, DB, DAA, DAB, DBB, PRE, POST)                   \
    PYAD_HFWD_##ARITY(NAME, VALUE, DA, DB, DAA, DAB, DBB)
#include "ops.def"
#undef PYAD_OP
        default:
            break;
        }
        const size_t self = p->nin + i, sa = p->a[i], sb = p->b[i];
        h->val[self] = y;
        h->pa[i] = va ? da : 0.0;
        h->pb[i] = vb ? db : 0.0;
        for (size_t d = 0; d < D; d++) {
            const double ta = va ? h->tan[sa * D + d] : 0.0, tb = vb ? h->tan[sb * D + d] : 0.0;
            h->tan[self * D + d] = (va ? da * ta : 0.0) + (vb ? db * tb : 0.0);
            h->tpa[i * D + d] = va ? daa * ta + (vb ? dab * tb : 0.0) : 0.0;
            h->tpb[i * D + d] = vb ? (va ? dab * ta : 0.0) + dbb * tb : 0.0;
        }
    }
}

static void hvp_reverse(const pyad_program *p, const hblock *h)
{
    const size_t D = (size_t)h->D;
    for (uint32_t i = p->nrec; i-- > 0;) {
        const size_t self = p->nin + i;
        const double g = h->adj[self], *gd = h->adt + self * D;
        if (p->b[i] & PYAD_NARY_BIT) {
            const pyad_nary_ref r = p->nary[p->a[i]];
            for (uint32_t e = r.first; e < r.first + r.count; e++) {
                const size_t s = p->side[e];
                h->adj[s] += h->sp[e] * g;
                for (size_t d = 0; d < D; d++)
                    h->adt[s * D + d] += h->sp[e] * gd[d] + h->tsp[e * D + d] * g;
            }
            continue;
        }
        const size_t sa = p->a[i], sb = p->b[i];
        h->adj[sa] += h->pa[i] * g;
        for (size_t d = 0; d < D; d++)
            h->adt[sa * D + d] += h->pa[i] * gd[d] + h->tpa[i * D + d] * g;
        h->adj[sb] += h->pb[i] * g;
        for (size_t d = 0; d < D; d++)
            h->adt[sb * D + d] += h->pb[i] * gd[d] + h->tpb[i * D + d] * g;
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
    hvp_reverse(p, &h);
    for (uint32_t i = 0; grad != NULL && i < p->nin; i++)
        grad[i] = h.adj[i];
    for (size_t d = 0; d < D; d++)
        for (uint32_t i = 0; i < p->nin; i++)
            hv[d * p->nin + i] = h.adt[i * D + d];
    return PYAD_OK;
}
