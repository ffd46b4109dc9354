/*
 * test_bulk.c - the array pushes (csrc/bulk.c) against the one-record pushes: every unary and
 * binary op in every form, sums, logsumexps and dots give the same records bit for bit (kind,
 * operands, partials, values, side entries, then grads after a sweep), across segments too;
 * and a failed array push (a refused element, debug mode, stale or foreign handles, misuse,
 * max_bytes) records nothing and says which element failed. Allocation failure at each of
 * their allocations is test_alloc.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "check.h"

enum { N = 3000, NVAL = 41 };

/* Operand values across the ops' domains and past them: an element whose one-record push
   fails is left out of the comparison of that op (its failure is tested below). */
static double value_of(int k, int which)
{
    static const double v[NVAL] = {
        0.5,    0.25, -0.75, 1.0,   -1.0,  2.0, 3.5,  -2.5, 0.0,  -0.0, 1e-3, 7.0,   -12.25, 0.999,
        1e-310, 30.0, -30.0, 100.0, 0.125, 4.0, -3.0, 1.5,  -0.5, 0.75, 10.0, -7.5,  0.3,    -0.3,
        2.5,    5e-8, -1e-8, 1e20,  -1e20, 0.6, -0.6, 9.0,  -9.0, 0.05, 1.25, -1.25, 700.0};
    return v[(k * (which ? 7 : 1) + which * 3) % NVAL];
}

static int64_t tape_nbytes(pyad_tape *t)
{
    int64_t n = -1;
    CHECK(pyad_tape_nbytes(t, &n) == PYAD_OK);
    return n;
}

/* The record s of tape t, whole, against record s2 of t2. */
static int same_record(const pyad_tape *t, uint32_t s, const pyad_tape *t2, uint32_t s2)
{
    return s == s2 && t->kind[s] == t2->kind[s2] &&
           memcmp(&t->rec[s], &t2->rec[s2], sizeof t->rec[s]) == 0 &&
           memcmp(&t->val[s], &t2->val[s2], sizeof t->val[s]) == 0 &&
           memcmp(&t->grad[s], &t2->grad[s2], sizeof t->grad[s]) == 0;
}

static int64_t one_push(pyad_tape *t, int op, int form, int64_t ha, double ca, int64_t hb,
                        double cb)
{
    switch (form) {
    case 0:
        return pyad_op_arity(op) == 1 ? pyad_push_v(t, op, ha) : pyad_push_vv(t, op, ha, hb);
    case 1:
        return pyad_push_vc(t, op, ha, cb);
    default:
        return pyad_push_cv(t, op, ca, hb);
    }
}

/* Two tapes with the same leaves; on one a map of op in `form` (0 plain, 1 vc, 2 cv) over the
   elements whose one-record push succeeds, on the other those pushes; then the same sum of
   the results swept on both. */
static void map_against_pushes(int op, int form, int64_t n)
{
    pyad_tape *t = new_tape(), *u = new_tape();
    int64_t *la = malloc(2 * N * sizeof *la), *lb = la + N, *ua = malloc(2 * N * sizeof *ua),
            *ub = ua + N;
    int64_t *ha = malloc(N * sizeof *ha), *hb = malloc(N * sizeof *hb);
    int64_t *out = malloc(N * sizeof *out), *uout = malloc(N * sizeof *uout);
    double *ca = malloc(N * sizeof *ca), *cb = malloc(N * sizeof *cb);
    double *va = malloc(2 * N * sizeof *va), *vb = va + N;
    for (int64_t k = 0; k < n; k++) {
        va[k] = value_of((int)k, 0);
        vb[k] = value_of((int)k, 1);
    }
    int st = pyad_push_leaves(t, n, va, la);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    st = pyad_push_leaves(t, n, vb, lb);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    for (int64_t k = 0; k < n; k++) {
        ua[k] = got(u, pyad_push_leaf(u, va[k]));
        CHECK(
            same_record(t, (uint32_t)la[k] & PYAD_SLOT_MASK, u, (uint32_t)ua[k] & PYAD_SLOT_MASK));
    }
    for (int64_t k = 0; k < n; k++)
        ub[k] = got(u, pyad_push_leaf(u, vb[k]));
    /* the elements that the one-record pushes take, in order, on u */
    int64_t m = 0;
    const int64_t len = tape_len(u);
    for (int64_t k = 0; k < n; k++) {
        const int64_t r = one_push(u, op, form, ua[k], va[k], ub[k], vb[k]);
        if (r < 0 && r != -(int64_t)PYAD_SEGMENT)
            continue;
        uout[m] = got(u, r);
        ha[m] = la[k];
        hb[m] = lb[k];
        ca[m] = va[k];
        cb[m] = vb[k];
        m++;
    }
    CHECK(m > n / 4 && tape_len(u) == len + m);
    const int unary = pyad_op_arity(op) == 1;
    int64_t where = -7;
    st = pyad_push_map(t, op, m, form == 2 ? NULL : ha, ca,
                       unary       ? NULL
                       : form == 1 ? NULL
                                   : hb,
                       unary ? NULL : cb, out, &where);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    CHECK(where == -1 && tape_len(t) == tape_len(u));
    for (int64_t k = 0; k < m; k++)
        if (!same_record(t, (uint32_t)out[k] & PYAD_SLOT_MASK, u,
                         (uint32_t)uout[k] & PYAD_SLOT_MASK))
            CHECK(0 && "a mapped record differs from the one-record push's");
    /* values and partials as the API gives them */
    double *vt = malloc(N * sizeof *vt), *vu = malloc(N * sizeof *vu);
    CHECK(pyad_get_values(t, m, out, vt) == PYAD_OK && pyad_get_values(u, m, uout, vu) == PYAD_OK);
    CHECK(memcmp(vt, vu, (size_t)m * sizeof *vt) == 0);
    for (int64_t k = 0; k < m; k += 7) {
        int64_t ht[2], hu[2], nt = -1, nu = -1;
        double pt[2], pu[2];
        CHECK(pyad_get_operands(t, out[k], 2, ht, pt, &nt) == PYAD_OK);
        CHECK(pyad_get_operands(u, uout[k], 2, hu, pu, &nu) == PYAD_OK);
        CHECK(nt == nu && memcmp(pt, pu, (size_t)nt * sizeof *pt) == 0);
    }
    /* grads after sweeping the same sum on both */
    const int64_t st_ = got(t, pyad_push_nary(t, PYAD_OP_SUM, m, out, NULL));
    const int64_t su = got(u, pyad_push_nary(u, PYAD_OP_SUM, m, uout, NULL));
    CHECK(pyad_backward(t, st_, 1.0) == PYAD_OK && pyad_backward(u, su, 1.0) == PYAD_OK);
    for (int64_t k = 0; k < n; k++) {
        CHECK(
            same_record(t, (uint32_t)la[k] & PYAD_SLOT_MASK, u, (uint32_t)ua[k] & PYAD_SLOT_MASK));
        CHECK(
            same_record(t, (uint32_t)lb[k] & PYAD_SLOT_MASK, u, (uint32_t)ub[k] & PYAD_SLOT_MASK));
    }
    for (int64_t k = 0; k < m; k++)
        CHECK(same_record(t, (uint32_t)out[k] & PYAD_SLOT_MASK, u,
                          (uint32_t)uout[k] & PYAD_SLOT_MASK));
    free(vt);
    free(vu);
    free(la);
    free(ua);
    free(ha);
    free(hb);
    free(out);
    free(uout);
    free(ca);
    free(cb);
    free(va);
    pyad_tape_free(t);
    pyad_tape_free(u);
}

static void test_every_op_every_form(void)
{
    for (int op = 0; op < pyad_op_count(); op++) {
        const int arity = pyad_op_arity(op);
        for (int form = 0; arity >= 1 && form < (arity == 1 ? 1 : 3); form++) {
            map_against_pushes(op, form, 200);
            if (op == PYAD_OP_MUL || op == PYAD_OP_LOG || op == PYAD_OP_POW)
                map_against_pushes(op, form, N); /* into several segments */
        }
    }
}

/* log of [1, 2, -1, 3]: DOMAIN at element 2, with the one-record push's message, nothing
   recorded. */
static void test_refused_element(void)
{
    pyad_tape *t = new_tape();
    const double v[4] = {1.0, 2.0, -1.0, 3.0};
    int64_t x[4], out[4], where = -7;
    CHECK(pyad_push_leaves(t, 4, v, x) == PYAD_OK);
    CHECK(pyad_push_v(t, PYAD_OP_LOG, x[2]) == -PYAD_DOMAIN);
    char one[200];
    snprintf(one, sizeof one, "%s at element 2", pyad_tape_errmsg(t));
    const int64_t len = tape_len(t), nbytes = tape_nbytes(t);
    CHECK(pyad_push_map(t, PYAD_OP_LOG, 4, x, NULL, NULL, NULL, out, &where) == PYAD_DOMAIN);
    CHECK(where == 2 && tape_len(t) == len && tape_nbytes(t) == nbytes);
    CHECK(strcmp(pyad_tape_errmsg(t), one) == 0 && strstr(one, "log(-1)") != NULL);
    CHECK(pyad_push_map(t, PYAD_OP_LOG, 4, x, NULL, NULL, NULL, out, NULL) == PYAD_DOMAIN);
    /* the first failing element wins, whatever its status; constant forms too */
    const double c[4] = {1.0, 0.0, 1e308, 0.0};
    CHECK(pyad_push_map(t, PYAD_OP_DIV, 4, x, NULL, NULL, c, out, &where) == PYAD_ZERODIV);
    CHECK(where == 1 && strstr(pyad_tape_errmsg(t), "div(2, 0) at element 1") != NULL);
    const double zero[4] = {0.0, 0.0, 0.0, 0.0};
    CHECK(pyad_push_map(t, PYAD_OP_POW, 4, NULL, zero, x, NULL, out, &where) == PYAD_ZERODIV);
    CHECK(where == 2 && strstr(pyad_tape_errmsg(t), "pow(0, -1) at element 2") != NULL);
    CHECK(tape_len(t) == len && tape_nbytes(t) == nbytes);
    const double big[4] = {1.0, 2.0, 1000.0, 3.0};
    CHECK(pyad_push_leaves(t, 4, big, x) == PYAD_OK);
    CHECK(pyad_push_map(t, PYAD_OP_EXP, 4, x, NULL, NULL, NULL, out, &where) == PYAD_OVERFLOW);
    CHECK(where == 2 && strstr(pyad_tape_errmsg(t), "exp(1000) at element 2") != NULL);
    /* debug mode: sqrt(0) has an infinite partial */
    const double w[4] = {1.0, 4.0, 0.0, 9.0};
    CHECK(pyad_push_leaves(t, 4, w, x) == PYAD_OK);
    CHECK(pyad_push_map(t, PYAD_OP_SQRT, 4, x, NULL, NULL, NULL, out, &where) == PYAD_OK);
    CHECK(pyad_tape_set_debug(t, 1) == PYAD_OK);
    const int64_t len2 = tape_len(t);
    CHECK(pyad_push_v(t, PYAD_OP_SQRT, x[2]) == -PYAD_NONFINITE);
    snprintf(one, sizeof one, "%s at element 2", pyad_tape_errmsg(t));
    CHECK(pyad_push_map(t, PYAD_OP_SQRT, 4, x, NULL, NULL, NULL, out, &where) == PYAD_NONFINITE);
    CHECK(where == 2 && tape_len(t) == len2 && strcmp(pyad_tape_errmsg(t), one) == 0);
    /* a constant b of inf is not an infinite partial (record.c's rule) */
    const double inf[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
    CHECK(pyad_push_map(t, PYAD_OP_ADD, 4, x, NULL, NULL, inf, out, &where) == PYAD_NONFINITE);
    CHECK(where == 0); /* the value is infinite */
    CHECK(pyad_push_map(t, PYAD_OP_ATAN2, 2, x, NULL, NULL, inf, out, &where) == PYAD_OK);
    CHECK(where == -1 && tape_len(t) == len2 + 2);
    pyad_tape_free(t);
}

/* Stale and foreign handles, and every kind of misuse: refused, the tape unchanged. */
static void test_refused_calls(void)
{
    pyad_tape *t = new_tape(), *u = new_tape();
    const double v[3] = {1.0, 2.0, 3.0};
    int64_t x[3], y[3], out[3], where = -7;
    CHECK(pyad_push_leaves(t, 3, v, x) == PYAD_OK && pyad_push_leaves(u, 3, v, y) == PYAD_OK);
    const int64_t len = tape_len(t), nbytes = tape_nbytes(t);
    int64_t mixed[3] = {x[0], x[1], y[2]};
    CHECK(pyad_push_map(t, PYAD_OP_EXP, 3, mixed, NULL, NULL, NULL, out, &where) == PYAD_STALE);
    CHECK(where == 2 && strstr(pyad_tape_errmsg(t), "at element 2") != NULL);
    CHECK(pyad_push_map(t, PYAD_OP_MUL, 3, x, NULL, mixed, NULL, out, &where) == PYAD_STALE);
    CHECK(where == 2);
    mixed[2] = 0;
    CHECK(pyad_push_map(t, PYAD_OP_EXP, 3, mixed, NULL, NULL, NULL, out, &where) == PYAD_STALE);
    CHECK(pyad_push_reduce(t, PYAD_OP_SUM, 1, 3, y, NULL, out) == PYAD_STALE);
    CHECK(pyad_push_dots(t, 1, 3, x, NULL, y, NULL, out) == PYAD_STALE);
    CHECK(pyad_get_values(t, 3, y, (double[3]){0}) == PYAD_STALE);
    /* misuse */
    struct {
        int st;
        const char *why;
    } cases[] = {
        {pyad_push_map(t, PYAD_OP_SUM, 3, x, NULL, NULL, NULL, out, &where), "not op"},
        {pyad_push_map(t, 99, 3, x, NULL, NULL, NULL, out, &where), "not op 99"},
        {pyad_push_map(t, -1, 3, x, NULL, NULL, NULL, out, &where), "not op -1"},
        {pyad_push_map(t, PYAD_OP_LEAF, 3, x, NULL, NULL, NULL, out, &where), "not op 0"},
        {pyad_push_map(t, PYAD_OP_EXP, 3, x, NULL, x, NULL, out, &where), "unary"},
        {pyad_push_map(t, PYAD_OP_EXP, 3, x, NULL, NULL, v, out, &where), "unary"},
        {pyad_push_map(t, PYAD_OP_EXP, 3, NULL, v, NULL, NULL, out, &where), "constants"},
        {pyad_push_map(t, PYAD_OP_MUL, 3, x, NULL, NULL, NULL, out, &where), "binary"},
        {pyad_push_map(t, PYAD_OP_MUL, 3, NULL, NULL, x, NULL, out, &where), "binary"},
        {pyad_push_map(t, PYAD_OP_MUL, 3, NULL, v, NULL, v, out, &where), "two constants"},
        {pyad_push_map(t, PYAD_OP_MUL, -1, x, NULL, x, NULL, out, &where), "count -1"},
        {pyad_push_map(t, PYAD_OP_MUL, INT64_MAX, x, NULL, x, NULL, out, &where), "count"},
        {pyad_push_map(t, PYAD_OP_MUL, 3, x, NULL, x, NULL, NULL, &where), "NULL out"},
        {pyad_push_leaves(t, 3, NULL, out), "NULL values"},
        {pyad_push_leaves(t, 3, v, NULL), "NULL out"},
        {pyad_push_leaves(t, -5, v, out), "count -5"},
        {pyad_push_leaves(t, (int64_t)1 << 40, v, out), "count"},
        {pyad_push_reduce(t, PYAD_OP_DOT, 1, 3, x, NULL, out), "pyad_push_dots"},
        {pyad_push_reduce(t, PYAD_OP_EXP, 1, 3, x, NULL, out), "not op"},
        {pyad_push_reduce(t, PYAD_OP_SUM, 1, -1, x, NULL, out), "count -1"},
        {pyad_push_reduce(t, PYAD_OP_SUM, -1, 1, x, NULL, out), "count -1"},
        {pyad_push_reduce(t, PYAD_OP_SUM, 1, 3, NULL, NULL, out), "neither"},
        {pyad_push_reduce(t, PYAD_OP_SUM, 1, 3, x, NULL, NULL), "NULL out"},
        {pyad_push_dots(t, 1, -2, x, NULL, x, NULL, out), "count -2"},
        {pyad_push_dots(t, 1, 3, x, NULL, NULL, NULL, out), "neither"},
        {pyad_get_values(t, -1, x, (double[3]){0}), "n = -1"},
        {pyad_get_values(t, 3, x, NULL), "NULL out"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        if (cases[k].st != PYAD_MISUSE)
            fprintf(stderr, "case %zu gave %d\n", k, cases[k].st);
        CHECK(cases[k].st == PYAD_MISUSE);
    }
    /* (each message checked right after its call: the latest one) */
    CHECK(pyad_push_map(t, PYAD_OP_MUL, 3, NULL, v, NULL, v, out, &where) == PYAD_MISUSE);
    CHECK(strstr(pyad_tape_errmsg(t), "two constants") != NULL && where == -1);
    CHECK(pyad_push_map(t, PYAD_OP_EXP, 3, x, NULL, x, NULL, out, &where) == PYAD_MISUSE);
    CHECK(strstr(pyad_tape_errmsg(t), "unary") != NULL);
    CHECK(pyad_push_map(NULL, PYAD_OP_EXP, 3, x, NULL, NULL, NULL, out, &where) == PYAD_MISUSE);
    CHECK(pyad_push_reduce(t, PYAD_OP_LOGSUMEXP, 2, 0, x, NULL, out) == PYAD_DOMAIN);
    CHECK(tape_len(t) == len && tape_nbytes(t) == nbytes);
    /* nothing to record: nothing is read */
    CHECK(pyad_push_map(t, PYAD_OP_MUL, 0, NULL, NULL, NULL, NULL, NULL, &where) == PYAD_OK);
    CHECK(pyad_push_leaves(t, 0, NULL, NULL) == PYAD_OK);
    CHECK(pyad_push_reduce(t, PYAD_OP_LOGSUMEXP, 0, 0, NULL, NULL, NULL) == PYAD_OK);
    CHECK(pyad_push_dots(t, 0, 5, NULL, NULL, NULL, NULL, NULL) == PYAD_OK);
    CHECK(pyad_get_values(t, 0, NULL, NULL) == PYAD_OK);
    CHECK(tape_len(t) == len && tape_nbytes(t) == nbytes);
    /* after a reset, the old handles are stale */
    CHECK(pyad_tape_reset(t) == PYAD_OK);
    CHECK(pyad_push_map(t, PYAD_OP_EXP, 3, x, NULL, NULL, NULL, out, &where) == PYAD_STALE);
    CHECK(where == 0 && tape_len(t) == 0);
    pyad_tape_free(t);
    pyad_tape_free(u);
}

/* Records across segments: each segment opened is pinned once, PYAD_SEGMENT says so, and
   pyad_tape_opened names the call's first record in the last one. */
static void test_segments(void)
{
    pyad_tape *t = new_tape();
    enum { M = 3000 };
    double *v = malloc(M * sizeof *v);
    int64_t *x = malloc(M * sizeof *x), *y = malloc(M * sizeof *y), h = 0;
    for (int k = 0; k < M; k++)
        v[k] = 0.001 * k;
    CHECK(pyad_push_leaves(t, 10, v, x) == PYAD_OK);
    CHECK(pyad_push_leaves(t, M, v, x) == PYAD_SEGMENT);
    CHECK(tape_len(t) == M + 10 && pyad_tape_opened(t, &h) == PYAD_OK);
    CHECK(h == x[2 * PYAD_CHUNK - 10] && (h & PYAD_CHUNK_MASK) == 0);
    for (int k = 0; k < M; k++) {
        CHECK(value(t, x[k]) == v[k]);
        const uint32_t s = (uint32_t)x[k] & PYAD_SLOT_MASK;
        CHECK(t->kind[s] == PYAD_OP_LEAF && t->rec[s].a == s && t->rec[s].b == s);
        if (k > 0 && (s & PYAD_CHUNK_MASK) == 0)
            CHECK(t->chunks[s >> PYAD_CHUNK_BITS].pins == 1);
    }
    CHECK(t->chunks[((uint32_t)x[0] & PYAD_SLOT_MASK) >> PYAD_CHUNK_BITS].pins ==
          1); /* tape's first */
    /* a map that fits in the current segment opens none */
    const int64_t room = PYAD_CHUNK - (int64_t)(((uint32_t)x[M - 1] & PYAD_CHUNK_MASK) + 1);
    CHECK(pyad_push_map(t, PYAD_OP_SIN, room, x, NULL, NULL, NULL, y, NULL) == PYAD_OK);
    CHECK(pyad_push_map(t, PYAD_OP_SIN, 1, x, NULL, NULL, NULL, y, NULL) == PYAD_SEGMENT);
    CHECK(pyad_tape_opened(t, &h) == PYAD_OK && h == y[0]);
    /* the sweep goes through all of them */
    CHECK(pyad_push_map(t, PYAD_OP_MUL, M, x, NULL, x, NULL, y, NULL) == PYAD_SEGMENT);
    const int64_t s = got(t, pyad_push_nary(t, PYAD_OP_SUM, M, y, NULL));
    CHECK(pyad_backward(t, s, 1.0) == PYAD_OK);
    double *g = malloc(M * sizeof *g);
    CHECK(pyad_get_grads(t, M, x, g) == PYAD_OK);
    for (int k = 0; k < M; k++)
        CHECK(g[k] == 2.0 * v[k]);
    free(g);
    free(v);
    free(x);
    free(y);
    pyad_tape_free(t);
}

/* The same records, side entries included, from pyad_push_reduce / pyad_push_dots and from
   one pyad_push_nary / pyad_push_dot per output. */
static void reduce_against_pushes(int op, int64_t nout, int64_t count)
{
    pyad_tape *t = new_tape(), *u = new_tape();
    const int64_t total = nout * count;
    double *v = malloc((size_t)(2 * total + 1) * sizeof *v);
    int64_t *ht = malloc((size_t)(2 * total + 1) * sizeof *ht);
    int64_t *hu = malloc((size_t)(2 * total + 1) * sizeof *hu);
    int64_t *out = malloc((size_t)nout * sizeof *out), *uout = malloc((size_t)nout * sizeof *out);
    double *c = malloc((size_t)(2 * total + 1) * sizeof *c);
    for (int64_t k = 0; k < 2 * total; k++) {
        v[k] = value_of((int)k, 1) * 0.01;
        c[k] = value_of((int)k, 0);
    }
    CHECK(pyad_push_leaves(t, 2 * total, v, ht) >= 0);
    for (int64_t k = 0; k < 2 * total; k++) {
        hu[k] = got(u, pyad_push_leaf(u, v[k]));
        if (k % 3 == 1)
            ht[k] = hu[k] = 0; /* a constant */
    }
    int st;
    if (op == PYAD_OP_DOT) {
        st = pyad_push_dots(t, nout, count, ht, c, ht + total, c + total, out);
        for (int64_t j = 0; j < nout; j++)
            uout[j] = got(u, pyad_push_dot(u, count, hu + j * count, c + j * count,
                                           hu + total + j * count, c + total + j * count));
    } else {
        st = pyad_push_reduce(t, op, nout, count, ht, c, out);
        for (int64_t j = 0; j < nout; j++)
            uout[j] = got(u, pyad_push_nary(u, op, count, hu + j * count, c + j * count));
    }
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    CHECK(tape_len(t) == tape_len(u));
    for (int64_t j = 0; j < nout; j++) {
        const uint32_t s = (uint32_t)out[j] & PYAD_SLOT_MASK,
                       su = (uint32_t)uout[j] & PYAD_SLOT_MASK;
        CHECK(same_record(t, s, u, su));
        const pyad_chunk *ct = &t->chunks[s >> PYAD_CHUNK_BITS],
                         *cu = &u->chunks[su >> PYAD_CHUNK_BITS];
        const uint32_t e = t->rec[s].a, ne = t->rec[s].b & ~PYAD_NARY_BIT;
        for (uint32_t i = e; i < e + ne; i++) /* (a loop: no side arrays for count 0) */
            CHECK(ct->side_slot[i] == cu->side_slot[i] &&
                  memcmp(&ct->side_val[i], &cu->side_val[i], sizeof *ct->side_val) == 0);
    }
    for (uint32_t c2 = 0; c2 < t->norder; c2++)
        CHECK(t->chunks[t->order[c2]].side_len == u->chunks[u->order[c2]].side_len);
    free(v);
    free(ht);
    free(hu);
    free(out);
    free(uout);
    free(c);
    pyad_tape_free(t);
    pyad_tape_free(u);
}

static void test_reductions(void)
{
    const int ops[3] = {PYAD_OP_SUM, PYAD_OP_LOGSUMEXP, PYAD_OP_DOT};
    for (int i = 0; i < 3; i++) {
        reduce_against_pushes(ops[i], 50, 7);
        reduce_against_pushes(ops[i], 1500, 3); /* into a second segment */
        reduce_against_pushes(ops[i], 3, 20);
        reduce_against_pushes(ops[i], 3, 1);
        if (ops[i] != PYAD_OP_LOGSUMEXP)
            reduce_against_pushes(ops[i], 5, 0);
    }
    /* debug mode names the output */
    pyad_tape *t = new_tape();
    const double v[4] = {1.0, INFINITY, 2.0, 3.0};
    int64_t x[4], out[2];
    CHECK(pyad_push_leaves(t, 4, v, x) == PYAD_OK && pyad_tape_set_debug(t, 1) == PYAD_OK);
    CHECK(pyad_push_reduce(t, PYAD_OP_SUM, 2, 2, x, NULL, out) == PYAD_NONFINITE);
    CHECK(strstr(pyad_tape_errmsg(t), "at output 0") != NULL && tape_len(t) == 4);
    CHECK(pyad_push_dots(t, 2, 1, x, NULL, x + 2, NULL, out) == PYAD_NONFINITE);
    CHECK(strstr(pyad_tape_errmsg(t), "at output 1") != NULL && tape_len(t) == 4);
    pyad_tape_free(t);
}

/* max_bytes: an array push that would grow the tape past it records nothing. */
static void test_max_bytes(void)
{
    pyad_tape *t = new_tape();
    enum { M = 2 * PYAD_CHUNK };
    double *v = calloc(M, sizeof *v);
    int64_t *x = malloc(M * sizeof *x), *y = malloc(M * sizeof *y);
    CHECK(pyad_push_leaves(t, 100, v, x) == PYAD_OK);
    for (int k = 100; k < M; k++)
        x[k] = x[k % 100];
    const int64_t nbytes = tape_nbytes(t);
    CHECK(pyad_tape_set_max_bytes(t, nbytes) == PYAD_OK);
    CHECK(pyad_push_leaves(t, M, v, y) == PYAD_FULL);
    CHECK(strstr(pyad_tape_errmsg(t), "max_bytes") != NULL);
    CHECK(pyad_push_map(t, PYAD_OP_EXP, PYAD_CHUNK, x, NULL, NULL, NULL, y, NULL) == PYAD_FULL);
    CHECK(pyad_push_reduce(t, PYAD_OP_SUM, 2, 50, x, NULL, y) == PYAD_FULL);
    CHECK(pyad_push_dots(t, 2, 50, x, NULL, x, NULL, y) == PYAD_FULL);
    CHECK(tape_len(t) == 100 && tape_nbytes(t) == nbytes);
    CHECK(pyad_push_map(t, PYAD_OP_EXP, 100, x, NULL, NULL, NULL, y, NULL) == PYAD_OK);
    CHECK(pyad_tape_set_max_bytes(t, 0) == PYAD_OK);
    CHECK(pyad_push_leaves(t, M, v, y) == PYAD_SEGMENT && tape_len(t) == 200 + M);
    free(v);
    free(x);
    free(y);
    pyad_tape_free(t);
}

void test_bulk(void)
{
    test_every_op_every_form();
    test_refused_element();
    test_refused_calls();
    test_segments();
    test_reductions();
    test_max_bytes();
}
