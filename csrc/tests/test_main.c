/*
 * C unit tests of the tape: recording, the sweep, errors that leave the tape unchanged,
 * stale and foreign handles, segments and their reuse. Run by `make -C csrc test`
 * and, under ASan/UBSan, `make -C csrc sanitize`.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "check.h"

int pyad_test_failures = 0;

static int64_t tape_nbytes(pyad_tape *t)
{
    int64_t n = -1;
    CHECK(pyad_tape_nbytes(t, &n) == PYAD_OK);
    return n;
}

static void test_tables(void)
{
    CHECK(pyad_status_count() == PYAD_STATUS_COUNT);
    CHECK(strcmp(pyad_status_name(PYAD_OK), "OK") == 0);
    CHECK(strcmp(pyad_status_name(PYAD_DOMAIN), "DOMAIN") == 0);
    CHECK(pyad_status_name(-1) == NULL && pyad_status_name(PYAD_STATUS_COUNT) == NULL);
    CHECK(strcmp(pyad_op_name(PYAD_OP_MUL), "mul") == 0);
    CHECK(pyad_op_arity(PYAD_OP_LOG) == 1 && pyad_op_arity(PYAD_OP_ATAN2) == 2);
    CHECK(pyad_op_arity(PYAD_OP_SOFTMAX) == PYAD_NARY && pyad_op_arity(99) == -2);
    for (int op = 0; op < pyad_op_count(); op++)
        CHECK(pyad_op_name(op) != NULL);
    pyad_tape_free(NULL); /* a no-op */
    CHECK(pyad_tape_new(NULL) == PYAD_MISUSE);
}

static void test_seed_example(void)
{
    /* f = log(x) + x*y - sin(y) at (2, 5): df/dx = 1/x + y, df/dy = x - cos(y). */
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 2.0)), y = got(t, pyad_push_leaf(t, 5.0));
    int64_t lx = got(t, pyad_push_v(t, PYAD_OP_LOG, x));
    int64_t xy = got(t, pyad_push_vv(t, PYAD_OP_MUL, x, y));
    int64_t s = got(t, pyad_push_vv(t, PYAD_OP_ADD, lx, xy));
    int64_t sy = got(t, pyad_push_v(t, PYAD_OP_SIN, y));
    int64_t f = got(t, pyad_push_vv(t, PYAD_OP_SUB, s, sy));
    CHECK(value(t, f) == 11.652071455223084);
    CHECK(pyad_backward(t, f, 1.0) == PYAD_OK);
    CHECK(grad(t, x) == 5.5);
    CHECK_CLOSE(grad(t, y), 2.0 - cos(5.0), 1e-15);
    CHECK(grad(t, f) == 1.0);
    /* Repeated calls accumulate; a call on an intermediate node adds its own adjoints. */
    CHECK(pyad_backward(t, f, 1.0) == PYAD_OK);
    CHECK(grad(t, x) == 11.0);
    CHECK(pyad_backward(t, xy, 2.0) == PYAD_OK);
    CHECK(grad(t, x) == 21.0 && grad(t, y) == 2.0 * (2.0 - cos(5.0)) + 4.0);
    CHECK(grad(t, xy) == 4.0);
    CHECK(tape_len(t) == 7);
    pyad_tape_free(t);
}

static void test_per_op_entry_points(void)
{
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 3.0)), y = got(t, pyad_push_leaf(t, 4.0));
    int64_t h = got(t, pyad_hypot(x, y));
    CHECK(value(t, h) == 5.0);
    int64_t d = got(t, pyad_div_cv(1.0, h)); /* 1 / hypot(x, y) */
    CHECK(value(t, d) == 0.2);
    int64_t e = got(t, pyad_pow_vc(d, 2.0));
    CHECK_CLOSE(value(t, e), 0.04, 1e-15);
    CHECK(pyad_backward(t, e, 1.0) == PYAD_OK);
    /* e = (x^2 + y^2)^-1: de/dx = -2x / (x^2+y^2)^2 */
    CHECK_CLOSE(grad(t, x), -6.0 / 625.0, 1e-14);
    CHECK_CLOSE(grad(t, y), -8.0 / 625.0, 1e-14);
    CHECK(pyad_log(got(t, pyad_neg(x))) == -PYAD_DOMAIN && tape_len(t) == 6);
    pyad_tape_free(t);
    CHECK(pyad_exp(x) == -PYAD_STALE); /* the tape is gone */
}

/* Every unary and binary op through the op-code entry points agrees with pyad_eval. */
static void test_every_op_by_code(void)
{
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 0.5)), y = got(t, pyad_push_leaf(t, 0.25));
    for (int op = 0; op < pyad_op_count(); op++) {
        double v, da, db;
        const int arity = pyad_op_arity(op);
        if (arity == 1) {
            CHECK(pyad_eval(op, 0.5, 0.0, &v, &da, &db) == PYAD_OK);
            CHECK(value(t, got(t, pyad_push_v(t, op, x))) == v);
        } else if (arity == 2) {
            CHECK(pyad_eval(op, 0.5, 0.25, &v, &da, &db) == PYAD_OK);
            CHECK(value(t, got(t, pyad_push_vv(t, op, x, y))) == v);
            CHECK(value(t, got(t, pyad_push_vc(t, op, x, 0.25))) == v);
            CHECK(value(t, got(t, pyad_push_cv(t, op, 0.5, y))) == v);
        } else {
            CHECK(pyad_push_v(t, op, x) == -PYAD_MISUSE);
            CHECK(pyad_push_vv(t, op, x, y) == -PYAD_MISUSE);
        }
    }
    pyad_tape_free(t);
}

static void test_constants_and_operands(void)
{
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 3.0));
    int64_t a = got(t, pyad_push_vc(t, PYAD_OP_SUB, x, 1.0));  /* x - 1 */
    int64_t b = got(t, pyad_push_cv(t, PYAD_OP_DIV, 6.0, x));  /* 6 / x */
    int64_t c = got(t, pyad_push_vc(t, PYAD_OP_POW, x, 2.0));  /* x ** 2 */
    int64_t d = got(t, pyad_push_vv(t, PYAD_OP_MUL, x, x));    /* x * x */
    CHECK(value(t, a) == 2.0 && value(t, b) == 2.0 && value(t, c) == 9.0);
    int64_t hs[2];
    double ps[2];
    int64_t n = -1;
    CHECK(pyad_get_operands(t, b, 2, hs, ps, &n) == PYAD_OK && n == 1);
    CHECK(hs[0] == x && ps[0] == -6.0 / 9.0);
    CHECK(pyad_get_operands(t, d, 2, hs, ps, &n) == PYAD_OK && n == 2 && hs[1] == x);
    CHECK(pyad_get_operands(t, x, 0, NULL, NULL, &n) == PYAD_OK && n == 0);
    for (int64_t h = a; h <= d; h++)
        CHECK(pyad_backward(t, h, 1.0) == PYAD_OK);
    /* grads of several records at once */
    int64_t many[2] = {x, a};
    double gs[2] = {0.0, 0.0};
    CHECK(pyad_get_grads(t, 2, many, gs) == PYAD_OK && gs[1] == 1.0);
    int64_t bad[2] = {x, 77};
    CHECK(pyad_get_grads(t, 2, bad, gs) == PYAD_STALE &&
          pyad_set_grads(t, 2, bad, 5.0) == PYAD_STALE);
    CHECK(grad(t, x) == gs[0]); /* a failed set changed nothing */
    /* 1 + (-2/3) + 6 + 6 */
    CHECK_CLOSE(grad(t, x), 1.0 - 6.0 / 9.0 + 12.0, 1e-15);
    pyad_tape_free(t);
}

static void test_errors_leave_tape_unchanged(void)
{
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, -1.0)), z = got(t, pyad_push_leaf(t, 0.0));
    int64_t big = got(t, pyad_push_leaf(t, 1000.0));
    const int64_t len = tape_len(t), bytes = tape_nbytes(t);
    int64_t last0 = 0, last1 = 0;
    CHECK(pyad_tape_last(t, &last0) == PYAD_OK);
    CHECK(pyad_push_v(t, PYAD_OP_LOG, x) == -PYAD_DOMAIN);
    CHECK(strstr(pyad_tape_errmsg(t), "log(-1)") != NULL);
    CHECK(pyad_push_v(t, PYAD_OP_SQRT, x) == -PYAD_DOMAIN);
    CHECK(pyad_push_vv(t, PYAD_OP_DIV, x, z) == -PYAD_ZERODIV);
    CHECK(pyad_push_cv(t, PYAD_OP_DIV, 1.0, z) == -PYAD_ZERODIV);
    CHECK(pyad_push_vc(t, PYAD_OP_POW, z, -1.0) == -PYAD_ZERODIV);
    CHECK(pyad_push_vc(t, PYAD_OP_POW, x, 0.5) == -PYAD_DOMAIN);
    CHECK(pyad_push_v(t, PYAD_OP_EXP, big) == -PYAD_OVERFLOW);
    CHECK(pyad_push_v(t, PYAD_OP_COSH, big) == -PYAD_OVERFLOW);
    CHECK(pyad_push_v(t, PYAD_OP_ASIN, big) == -PYAD_DOMAIN);
    CHECK(pyad_push_v(t, 99, x) == -PYAD_MISUSE);
    CHECK(pyad_push_v(t, PYAD_OP_ADD, x) == -PYAD_MISUSE);
    CHECK(pyad_push_vv(t, PYAD_OP_LOG, x, x) == -PYAD_MISUSE);
    CHECK(pyad_push_v(t, PYAD_OP_EXP, 12345) == -PYAD_STALE);
    int64_t hs[2] = {x, 0};
    double cs[2] = {0.0, 1.0};
    CHECK(pyad_push_nary(t, PYAD_OP_DOT, 1, hs, cs) == -PYAD_MISUSE);
    CHECK(pyad_push_nary(t, PYAD_OP_SUM, 2, hs, NULL) == -PYAD_MISUSE); /* 0 but no consts */
    CHECK(pyad_push_dot(t, 1, hs, NULL, NULL, NULL) == -PYAD_MISUSE);
    CHECK(pyad_push_nary(t, PYAD_OP_LOGSUMEXP, 0, hs, cs) == -PYAD_DOMAIN);
    CHECK(pyad_push_nary(t, PYAD_OP_SOFTMAX, 2, hs, cs) == -PYAD_MISUSE);
    CHECK(pyad_set_value(t, x, 2.0) == PYAD_OK && value(t, x) == 2.0);
    CHECK(tape_len(t) == len && tape_nbytes(t) == bytes);
    CHECK(pyad_tape_last(t, &last1) == PYAD_OK && last0 == last1);
    CHECK(pyad_get_value(t, x, NULL) == PYAD_MISUSE);
    CHECK(pyad_get_value(NULL, x, NULL) == PYAD_MISUSE);
    pyad_tape_free(t);
}

static void test_stale_and_foreign(void)
{
    pyad_tape *t = new_tape(), *u = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 1.0)), y = got(u, pyad_push_leaf(u, 1.0));
    CHECK(pyad_push_vv(t, PYAD_OP_ADD, x, y) == -PYAD_STALE);
    CHECK(pyad_push_vv(t, PYAD_OP_ADD, y, x) == -PYAD_STALE);
    CHECK(pyad_add(x, y) == -PYAD_STALE && pyad_add(y, x) == -PYAD_STALE);
    CHECK(pyad_backward(u, x, 1.0) == PYAD_STALE);
    CHECK(pyad_exp(0) == -PYAD_STALE && pyad_exp(-5) == -PYAD_STALE &&
          pyad_exp(INT64_MAX) == -PYAD_STALE);
    CHECK(pyad_tape_reset(t) == PYAD_OK && tape_len(t) == 0);
    CHECK(pyad_push_v(t, PYAD_OP_EXP, x) == -PYAD_STALE);
    CHECK(pyad_exp(x) == -PYAD_STALE);
    double v;
    CHECK(pyad_get_value(t, x, &v) == PYAD_STALE);
    int64_t x2 = got(t, pyad_push_leaf(t, 4.0));
    CHECK(x2 != x && (x2 & 0xfffffff) == (x & 0xfffffff)); /* same slot, new generation */
    CHECK(pyad_tape_unpin(t, x) == PYAD_OK);                 /* old generation: ignored */
    /* Generations are per registry index: many resets later the first handle is still stale,
       and a tape reusing a freed index does not revive the old tape's handles. */
    for (int i = 0; i < 1000; i++)
        CHECK(pyad_tape_reset(t) == PYAD_OK);
    x2 = got(t, pyad_push_leaf(t, 4.0));
    CHECK(pyad_get_value(t, x, &v) == PYAD_STALE && value(t, x2) == 4.0);
    /* One record past the end of the tape is not a record. */
    CHECK(pyad_get_value(t, x2 + 1, &v) == PYAD_STALE);
    pyad_tape_free(t);
    pyad_tape_free(u);
}

static void test_nary(void)
{
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 1.0)), y = got(t, pyad_push_leaf(t, 2.0));
    int64_t hs[4] = {x, y, 0, x};
    double cs[4] = {0.0, 0.0, 3.0, 0.0};
    int64_t s = got(t, pyad_push_nary(t, PYAD_OP_SUM, 4, hs, cs));
    CHECK(value(t, s) == 7.0);
    int64_t hw[2] = {x, 0}, hx[2] = {y, x};
    double cw[2] = {0.0, 3.0};
    int64_t d = got(t, pyad_push_dot(t, 2, hw, cw, hx, NULL)); /* x*y + 3*x */
    CHECK(value(t, d) == 5.0);
    CHECK(pyad_backward(t, d, 1.0) == PYAD_OK);
    CHECK(grad(t, x) == 5.0 && grad(t, y) == 1.0);
    int64_t lse = got(t, pyad_push_nary(t, PYAD_OP_LOGSUMEXP, 2, hs, cs));
    CHECK_CLOSE(value(t, lse), log(exp(1.0) + exp(2.0)), 1e-15);
    int64_t out[3];
    int64_t in3[3] = {x, y, 0};
    double c3[3] = {0.0, 0.0, 0.5};
    int st = pyad_push_softmax(t, 3, in3, c3, out);
    CHECK(st == PYAD_OK || st == PYAD_SEGMENT);
    const double sum = exp(1.0) + exp(2.0) + exp(0.5);
    CHECK_CLOSE(value(t, out[1]), exp(2.0) / sum, 1e-15);
    CHECK(pyad_set_grad(t, x, 0.0) == PYAD_OK && pyad_set_grad(t, y, 0.0) == PYAD_OK);
    CHECK(pyad_backward(t, out[0], 1.0) == PYAD_OK);
    const double p0 = exp(1.0) / sum, p1 = exp(2.0) / sum;
    CHECK_CLOSE(grad(t, x), p0 * (1 - p0), 1e-15);
    CHECK_CLOSE(grad(t, y), -p0 * p1, 1e-15);
    int64_t hs2[2];
    double ps2[2];
    int64_t n = 0;
    CHECK(pyad_get_operands(t, out[0], 2, hs2, ps2, &n) == PYAD_OK && n == 2);
    CHECK(hs2[0] == x && hs2[1] == y);
    pyad_tape_free(t);
}

/* softmax over more values than a segment holds: outputs span several segments. */
static void test_softmax_spans_segments(void)
{
    pyad_tape *t = new_tape();
    enum { N = 2500 };
    static int64_t h[N], out[N];
    for (int i = 0; i < N; i++)
        h[i] = got(t, pyad_push_leaf(t, sin((double)i)));
    CHECK(pyad_push_softmax(t, N, h, NULL, out) == PYAD_SEGMENT);
    double total = 0.0;
    for (int i = 0; i < N; i++)
        total += value(t, out[i]);
    CHECK_CLOSE(total, 1.0, 1e-12);
    CHECK(pyad_backward(t, out[N - 1], 1.0) == PYAD_OK);
    const double y = value(t, out[N - 1]);
    CHECK_CLOSE(grad(t, h[N - 1]), y * (1.0 - y), 1e-12);
    CHECK_CLOSE(grad(t, h[0]), -y * value(t, out[0]), 1e-12);
    CHECK(tape_len(t) == 2 * N);
    pyad_tape_free(t);
}

/* A softmax's outputs are one level above its deepest operand, the later ones too (they
   reach their operands through output 0), also across a segment end and with constants. */
static void test_softmax_depth(void)
{
    pyad_tape *t = new_tape();
    const int64_t x = got(t, pyad_push_leaf(t, 0.5));
    const int64_t e = got(t, pyad_exp(x));
    while (tape_len(t) < pyad_chunk_records() - 1)
        got(t, pyad_push_leaf(t, 0.0));
    const int64_t hs[3] = {x, 0, e};
    const double cs[3] = {0.0, 2.0, 0.0};
    int64_t out[3];
    CHECK(pyad_push_softmax(t, 3, hs, cs, out) == PYAD_SEGMENT);
    int64_t counts[PYAD_OP_COUNT], depth = -1;
    CHECK(pyad_tape_stats(t, counts, &depth) == PYAD_OK && depth == 2);
    got(t, pyad_exp(out[2]));
    CHECK(pyad_tape_stats(t, counts, &depth) == PYAD_OK && depth == 3);
    CHECK(counts[PYAD_OP_SOFTMAX] == 3);
    pyad_tape_free(t);
}

static void test_custom_debug_and_stats(void)
{
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 2.0)), y = got(t, pyad_push_leaf(t, 3.0));
    /* f(x, 1.5, y) = x * y + 1.5 as a custom record */
    int64_t hs[3] = {x, 0, y};
    double cs[3] = {0.0, 1.5, 0.0}, ps[3] = {3.0, 99.0, 2.0};
    int64_t f = got(t, pyad_push_primitive(t, 3, hs, cs, 7.5, ps));
    CHECK(value(t, f) == 7.5);
    int op = -1;
    CHECK(pyad_get_op(t, f, &op) == PYAD_OK && op == PYAD_OP_PRIMITIVE);
    CHECK(pyad_backward(t, f, 1.0) == PYAD_OK);
    CHECK(grad(t, x) == 3.0 && grad(t, y) == 2.0);
    int64_t hs2[3];
    double ps2[3];
    int64_t n = 0;
    CHECK(pyad_get_operands(t, f, 3, hs2, ps2, &n) == PYAD_OK && n == 2);
    /* debug mode refuses non-finite records and leaves the tape as it was */
    int64_t z = got(t, pyad_push_leaf(t, 0.0));
    const int64_t len = tape_len(t);
    CHECK(pyad_sqrt(z) >= 0); /* sqrt'(0) is inf: fine while debug is off */
    CHECK(pyad_tape_set_debug(t, 1) == PYAD_OK);
    CHECK(pyad_sqrt(z) == -PYAD_NONFINITE);
    CHECK(strstr(pyad_tape_errmsg(t), "sqrt") != NULL);
    CHECK(pyad_div_cv(1.0, x) >= 0);
    /* a constant operand is no partial: x / inf and atan2(inf, x) are finite, with finite
       partials, though their records keep the infinite constant beside the partial */
    CHECK(pyad_div_vc(x, INFINITY) >= 0);
    CHECK(pyad_atan2_cv(INFINITY, x) >= 0);
    CHECK(pyad_pow_vc(z, 0.5) == -PYAD_NONFINITE); /* the partial itself is infinite */
    double inf_partial[3] = {INFINITY, 0.0, 1.0};
    CHECK(pyad_push_primitive(t, 3, hs, cs, 1.0, inf_partial) == -PYAD_NONFINITE);
    int64_t big[2] = {z, 0};
    double bigc[2] = {0.0, 1e308};
    CHECK(pyad_push_dot(t, 1, big + 1, bigc + 1, big + 1, bigc + 1) == -PYAD_NONFINITE);
    CHECK(tape_len(t) == len + 4);
    CHECK(pyad_tape_set_debug(t, 0) == PYAD_OK);
    /* statistics: counts per op and depth */
    int64_t counts[PYAD_OP_COUNT], depth = -1;
    CHECK(pyad_tape_stats(t, counts, &depth) == PYAD_OK);
    CHECK(counts[PYAD_OP_LEAF] == 3 && counts[PYAD_OP_PRIMITIVE] == 1 && counts[PYAD_OP_SQRT] == 1);
    CHECK(depth == 1);
    int64_t v = x;
    for (int i = 0; i < 3000; i++)
        v = got(t, pyad_exp(got(t, pyad_mul_vc(v, -0.001))));
    CHECK(pyad_tape_stats(t, counts, &depth) == PYAD_OK && depth == 6000);
    pyad_tape_free(t);
}

static void test_deep_chain(void)
{
    /* A million records deep: v = v * 0.999999 + 1e-9; dv/dx0 = 0.999999^n. */
    pyad_tape *t = new_tape();
    const int n = 1000000;
    int64_t x = got(t, pyad_push_leaf(t, 1.0)), v = x;
    for (int i = 0; i < n; i++) {
        v = got(t, pyad_push_vc(t, PYAD_OP_MUL, v, 0.999999));
        v = got(t, pyad_push_vc(t, PYAD_OP_ADD, v, 1e-9));
    }
    CHECK(tape_len(t) == 2 * n + 1);
    CHECK(pyad_backward(t, v, 1.0) == PYAD_OK);
    CHECK_CLOSE(grad(t, x), pow(0.999999, n), 1e-9);
    int64_t bytes = tape_nbytes(t);
    CHECK(bytes < 2 * n * 64);
    pyad_tape_free(t);
}

static void test_fanout(void)
{
    /* v = v + v, 60 times: 2^60 paths, one record each. */
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 1.0)), v = x;
    for (int i = 0; i < 60; i++)
        v = got(t, pyad_push_vv(t, PYAD_OP_ADD, v, v));
    CHECK(pyad_backward(t, v, 1.0) == PYAD_OK);
    CHECK(grad(t, x) == ldexp(1.0, 60));
    pyad_tape_free(t);
}

/* The micrograd loop: long-lived parameters, a new graph per step, old graphs released. */
static void test_segments_are_reused(void)
{
    pyad_tape *t = new_tape();
    const int chunk = pyad_chunk_records();
    int64_t p = got(t, pyad_push_leaf(t, 0.5));
    int64_t pins[64];
    int npins = 0;
    int64_t bytes_at_10 = 0;
    for (int step = 0; step < 200; step++) {
        int64_t v = p;
        for (int i = 0; i < 3000; i++) {
            int64_t r = pyad_push_vc(t, PYAD_OP_MUL, v, 1.0001);
            if (r == -(int64_t)PYAD_SEGMENT) {
                r = got(t, r);
                CHECK(npins < 64);
                pins[npins++] = r;
            }
            v = r;
        }
        CHECK(pyad_backward(t, v, 1.0) == PYAD_OK);
        CHECK_CLOSE(grad(t, p), (double)(step + 1) * pow(1.0001, 3000), 1e-9);
        /* Release every segment but the current one (the frontend's Vars died). */
        for (int i = 0; i < npins - 1; i++)
            CHECK(pyad_tape_unpin(t, pins[i]) == PYAD_OK);
        if (npins > 0) {
            pins[0] = pins[npins - 1];
            npins = 1;
        }
        if (step == 10)
            bytes_at_10 = tape_nbytes(t);
    }
    CHECK(tape_nbytes(t) == bytes_at_10);
    CHECK(tape_len(t) < 4 * 3000 + 4 * chunk);
    CHECK(pyad_tape_unpin(t, p) == PYAD_OK);
    CHECK(pyad_tape_unpin(t, p) == PYAD_MISUSE); /* not pinned any more */
    pyad_tape_free(t);
}

/* A chain whose intermediate Vars all die keeps every segment: the last Var needs them. */
static void test_referenced_segments_survive(void)
{
    pyad_tape *t = new_tape();
    int64_t x = got(t, pyad_push_leaf(t, 1.0)), v = x;
    int64_t first_pin = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t r = pyad_push_vc(t, PYAD_OP_ADD, v, 1.0);
        if (r == -(int64_t)PYAD_SEGMENT) {
            r = got(t, r);
            if (first_pin != 0)
                CHECK(pyad_tape_unpin(t, first_pin) == PYAD_OK);
            first_pin = r;
        }
        v = r;
    }
    CHECK(tape_len(t) == 20001);
    CHECK(pyad_backward(t, v, 1.0) == PYAD_OK);
    CHECK(grad(t, x) == 1.0 && value(t, v) == 20001.0);
    pyad_tape_free(t);
}

static void test_eval(void)
{
    double y, da, db;
    CHECK(pyad_eval(PYAD_OP_SIGMOID, 0.0, 0.0, &y, &da, &db) == PYAD_OK);
    CHECK(y == 0.5 && da == 0.25 && db == 0.0);
    CHECK(pyad_eval(PYAD_OP_SIGMOID, -1000.0, 0.0, &y, &da, &db) == PYAD_OK && y == 0.0);
    CHECK(pyad_eval(PYAD_OP_SOFTPLUS, 1000.0, 0.0, &y, &da, &db) == PYAD_OK && y == 1000.0);
    CHECK(pyad_eval(PYAD_OP_HYPOT, 0.0, 0.0, &y, &da, &db) == PYAD_OK && da == 0.0);
    CHECK(pyad_eval(PYAD_OP_ABS, 0.0, 0.0, &y, &da, &db) == PYAD_OK && da == 0.0);
    CHECK(pyad_eval(PYAD_OP_RELU, 0.0, 0.0, &y, &da, &db) == PYAD_OK && da == 0.0);
    CHECK(pyad_eval(PYAD_OP_LOG, 0.0, 0.0, &y, &da, &db) == PYAD_DOMAIN);
    CHECK(pyad_eval(PYAD_OP_LEAF, 0.0, 0.0, &y, &da, &db) == PYAD_MISUSE);
    CHECK(pyad_eval(PYAD_OP_SUM, 0.0, 0.0, &y, &da, &db) == PYAD_MISUSE);
}

/* The KEEP column promises what a replay relies on: OPERANDS rows have the partials (b, a),
   which the reverse pass reads back from the value slots, and CONST rows the same partials
   at every point, which the program holds. */
enum { STORED, CONST, OPERANDS };
static const int keep_of[] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) KEEP,
#include "../ops.def"
#undef PYAD_OP
};

static void test_keep_column(void)
{
    static const double points[][2] = {{0.5, -3.0}, {-7.25, 1e300}, {0.0, -0.0}, {3.0, 2.0}};
    int operands = 0, constant = 0;
    for (int op = 0; op < PYAD_OP_COUNT; op++) {
        if (pyad_op_arity(op) < 1 || keep_of[op] == STORED)
            continue;
        double y, da0, db0, da, db;
        CHECK(pyad_eval(op, 1.0, 1.0, &y, &da0, &db0) == PYAD_OK);
        for (size_t k = 0; k < sizeof points / sizeof *points; k++) {
            const double a = points[k][0], b = points[k][1];
            CHECK(pyad_eval(op, a, b, &y, &da, &db) == PYAD_OK);
            if (keep_of[op] == OPERANDS)
                CHECK(da == b && db == a);
            else
                CHECK(da == da0 && db == db0);
        }
        operands += keep_of[op] == OPERANDS;
        constant += keep_of[op] == CONST;
    }
    CHECK(operands == 1 && constant == 3); /* mul; add, sub, neg */
    /* a unary op's b is 0 whatever the caller passes: exp(1000) overflows beside b = inf */
    double y, da, db;
    CHECK(pyad_eval(PYAD_OP_EXP, 1000.0, INFINITY, &y, &da, &db) == PYAD_OVERFLOW);
}

int main(void)
{
    test_tables();
    test_seed_example();
    test_per_op_entry_points();
    test_every_op_by_code();
    test_constants_and_operands();
    test_errors_leave_tape_unchanged();
    test_stale_and_foreign();
    test_nary();
    test_softmax_spans_segments();
    test_softmax_depth();
    test_custom_debug_and_stats();
    test_deep_chain();
    test_fanout();
    test_segments_are_reused();
    test_referenced_segments_survive();
    test_tape_threads();
    test_eval();
    test_keep_column();
    test_program();
    test_saved();
    test_bulk();
    test_matvec();
    test_alloc();
    if (pyad_test_failures) {
        fprintf(stderr, "%d C check(s) failed\n", pyad_test_failures);
        return 1;
    }
    printf("pyad C tests passed\n");
    return 0;
}
