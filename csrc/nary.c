/*
 * nary.c - ops over a list of operands: sum, dot, logsumexp (one record each) and softmax
 * (one record per output). Each record keeps its operands in its chunk's side arrays: the
 * operand's slot and partial, or, for a constant operand, the record's own slot and the
 * constant (so a replay can recompute it; the sweep's write to the own slot is overwritten).
 */
#include <math.h>

#include "internal.h"

/* Value of operand j (a record's value or the constant); handles must have been checked.
   With h == NULL every operand is a constant (pyad_eval_nary). */
static double operand(const pyad_tape *t, const int64_t *h, const double *c, int64_t j)
{
    return h != NULL && h[j] != 0 ? t->val[(uint32_t)h[j] & PYAD_SLOT_MASK] : c[j];
}

/* Largest value, with Python's max() semantics (NaN only wins in first place). */
static double max_operand(const pyad_tape *t, int64_t n, const int64_t *h, const double *c)
{
    double m = operand(t, h, c, 0);
    for (int64_t j = 1; j < n; j++) {
        const double v = operand(t, h, c, j);
        if (v > m)
            m = v;
    }
    return m;
}

/* The value of sum, dot or logsumexp, and for logsumexp the max m and sum s it used. */
static double nary_value(const pyad_tape *t, int op, int64_t n, const int64_t *h,
                         const double *c, double *m, double *s)
{
    double y = 0.0;
    *m = 0.0;
    *s = 0.0;
    if (op == PYAD_OP_SUM) {
        for (int64_t j = 0; j < n; j++)
            y += operand(t, h, c, j);
    } else if (op == PYAD_OP_DOT) {
        for (int64_t j = 0; j < n; j += 2)
            y += operand(t, h, c, j) * operand(t, h, c, j + 1);
    } else {
        *m = max_operand(t, n, h, c);
        if (isinf(*m))
            return *m; /* all -inf gives -inf, any +inf gives +inf */
        for (int64_t j = 0; j < n; j++)
            *s += exp(operand(t, h, c, j) - *m);
        y = *m + log(*s);
    }
    return y;
}

/* softmax into y[0..n): exp(x_j - m) / sum. */
static void softmax_values(const pyad_tape *t, int64_t n, const int64_t *h, const double *c,
                           double m, double *y)
{
    double s = 0.0;
    for (int64_t j = 0; j < n; j++) {
        y[j] = exp(operand(t, h, c, j) - m);
        s += y[j];
    }
    for (int64_t j = 0; j < n; j++)
        y[j] /= s;
}

static int check_shape(pyad_tape *t, int op, int64_t n)
{
    if (op != PYAD_OP_SUM && op != PYAD_OP_DOT && op != PYAD_OP_LOGSUMEXP &&
        op != PYAD_OP_SOFTMAX)
        return pyad__fail(t, PYAD_MISUSE, "op %d is not an n-ary op", op);
    if (op == PYAD_OP_DOT && n % 2 != 0)
        return pyad__fail(t, PYAD_MISUSE, "dot needs an even operand count, got %lld",
                          (long long)n);
    if ((op == PYAD_OP_LOGSUMEXP || op == PYAD_OP_SOFTMAX) && n == 0)
        return pyad__fail(t, PYAD_DOMAIN, "math domain error: %s of no values",
                          pyad_op_name(op));
    return PYAD_OK;
}

static int check_operands(pyad_tape *t, int64_t n, const int64_t *h, const double *c)
{
    if (n < 0 || n > (int64_t)UINT32_MAX / 2 || (n > 0 && (h == NULL || c == NULL)))
        return pyad__fail(t, PYAD_MISUSE, "bad operand arrays (n = %lld)", (long long)n);
    uint32_t s = 0;
    for (int64_t j = 0; j < n; j++)
        if (h[j] != 0 && pyad__resolve(t, h[j], &s) != PYAD_OK)
            return PYAD_STALE;
    return PYAD_OK;
}

static void put_side(pyad_chunk *ch, uint32_t e, uint32_t self, int64_t h, double partial,
                     double constant)
{
    ch->side_slot[e] = h != 0 ? (uint32_t)h & PYAD_SLOT_MASK : self;
    ch->side_val[e] = h != 0 ? partial : constant;
}

static void put_record(pyad_tape *t, uint32_t s, int op, uint32_t first, uint32_t count,
                       double y, double aux)
{
    t->kind[s] = (uint8_t)op;
    t->a[s] = first;
    t->b[s] = count;
    t->val[s] = y;
    t->da[s] = aux;
    t->db[s] = 0.0;
    t->grad[s] = 0.0;
}

int64_t pyad_push_nary(pyad_tape *t, int op, int64_t n, const int64_t *h, const double *c)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return -st;
    if (op == PYAD_OP_SOFTMAX)
        return -pyad__fail(t, PYAD_MISUSE, "softmax has several outputs: pyad_push_softmax");
    if ((st = check_shape(t, op, n)) != PYAD_OK || (st = check_operands(t, n, h, c)) != PYAD_OK)
        return -st;
    /* Value first: nothing is reserved until the record is sure to be written. */
    double m, s;
    const double y = nary_value(t, op, n, h, c, &m, &s);
    uint32_t slot;
    int opened;
    if ((st = pyad__reserve(t, 1, (uint32_t)n, &slot, &opened)) != PYAD_OK)
        return -st;
    pyad_chunk *ch = &t->chunks[t->cur];
    const uint32_t first = ch->side_len;
    for (int64_t j = 0; j < n; j++) {
        double p;
        if (op == PYAD_OP_SUM)
            p = 1.0;
        else if (op == PYAD_OP_DOT)
            p = operand(t, h, c, j ^ 1);
        else if (isinf(m))
            p = (m > 0.0 && operand(t, h, c, j) == m) ? 1.0 : 0.0;
        else
            p = exp(operand(t, h, c, j) - m) / s;
        put_side(ch, first + (uint32_t)j, slot, h[j], p, c[j]);
    }
    put_record(t, slot, op, first, (uint32_t)n, y, 0.0);
    pyad__commit(t, 1, (uint32_t)n);
    return opened ? -(int64_t)PYAD_SEGMENT : pyad__handle(t, slot);
}

int pyad_push_softmax(pyad_tape *t, int64_t n, const int64_t *h, const double *c, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if ((st = check_shape(t, PYAD_OP_SOFTMAX, n)) != PYAD_OK ||
        (st = check_operands(t, n, h, c)) != PYAD_OK)
        return st;
    if (n > (int64_t)PYAD_CHUNK || out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "softmax takes 1 to %u values, got %lld", PYAD_CHUNK,
                          (long long)n);
    const double m = max_operand(t, n, h, c);
    if (!isfinite(m))
        return pyad__fail(t, PYAD_DOMAIN, "math domain error: softmax of a non-finite maximum");
    const uint32_t count = (uint32_t)n;
    uint32_t slot;
    int opened;
    if ((st = pyad__reserve(t, count, count * count, &slot, &opened)) != PYAD_OK)
        return st;
    double *y = &t->val[slot];
    softmax_values(t, n, h, c, m, y);
    pyad_chunk *ch = &t->chunks[t->cur];
    const uint32_t side0 = ch->side_len;
    for (uint32_t i = 0; i < count; i++) {
        const uint32_t first = side0 + i * count;
        for (uint32_t j = 0; j < count; j++) {
            const double p = y[i] * ((i == j ? 1.0 : 0.0) - y[j]);
            put_side(ch, first + j, slot + i, h[j], p, c[j]);
        }
        put_record(t, slot + i, PYAD_OP_SOFTMAX, first, count, y[i], (double)i);
        out[i] = pyad__handle(t, slot + i);
    }
    pyad__commit(t, count, count * count);
    return opened ? PYAD_SEGMENT : PYAD_OK;
}

int pyad_eval_nary(int op, int64_t n, const double *x, double *out)
{
    if (n < 0 || (n > 0 && x == NULL) || out == NULL)
        return PYAD_MISUSE;
    int st = check_shape(NULL, op, n);
    if (st != PYAD_OK)
        return st;
    double m, s;
    if (op != PYAD_OP_SOFTMAX) {
        out[0] = nary_value(NULL, op, n, NULL, x, &m, &s);
        return PYAD_OK;
    }
    m = max_operand(NULL, n, NULL, x);
    if (!isfinite(m))
        return PYAD_DOMAIN;
    softmax_values(NULL, n, NULL, x, m, out);
    return PYAD_OK;
}
