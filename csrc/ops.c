/*
 * ops.c - the op table's own tables (names, arities) and each op evaluated on plain numbers:
 * the kernels that building a program (constant partials) and the pyad_eval entry points
 * use, expanded from the rows of ops.def; and the messages that name an op whose operands
 * were refused or whose result debug mode refused.
 */
#include "internal.h"
#include "opfuncs.h"

static const char *const op_names[] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) #name,
#include "ops.def"
#undef PYAD_OP
};

const signed char pyad__arity[] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) ARITY,
#include "ops.def"
#undef PYAD_OP
};

int pyad_op_count(void)
{
    return PYAD_OP_COUNT;
}

const char *pyad_op_name(int op)
{
    return op >= 0 && op < PYAD_OP_COUNT ? op_names[op] : NULL;
}

int pyad_op_arity(int op)
{
    return op >= 0 && op < PYAD_OP_COUNT ? pyad__arity[op] : -2;
}

/* One case per unary and binary op: the row's MATH, then what the function does with its
   results; a unary op's b is 0, as its MATH expects. */
#define PYAD_CASE_0(NAME, MATH, THEN)
#define PYAD_CASE_PYAD_NARY(NAME, MATH, THEN)
#define PYAD_CASE_1(NAME, MATH, THEN)                                                              \
    case PYAD_OP_##NAME: {                                                                         \
        b = 0.0;                                                                                   \
        MATH                                                                                       \
        THEN                                                                                       \
    }
#define PYAD_CASE_2(NAME, MATH, THEN)                                                              \
    case PYAD_OP_##NAME: {                                                                         \
        MATH                                                                                       \
        THEN                                                                                       \
    }

int pyad__kernel(int op, double a, double b, double *res, double *pa, double *pb)
{
#define PYAD_REFUSED(status) return status
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH)                                                     \
    PYAD_CASE_##ARITY(NAME, MATH, *res = y; *pa = da; *pb = db; return PYAD_OK;)
    switch (op) {
#include "ops.def"
    default:
        return PYAD_MISUSE;
    }
#undef PYAD_OP
#undef PYAD_REFUSED
}

int pyad_eval(int op, double a, double b, double *y, double *da, double *db)
{
    if (y == NULL || da == NULL || db == NULL || op < 0 || op >= PYAD_OP_COUNT ||
        pyad__arity[op] < 1)
        return PYAD_MISUSE;
    double r, pa, pb;
    const int st = pyad__kernel(op, a, b, &r, &pa, &pb);
    if (st == PYAD_OK) {
        *y = r;
        *da = pa;
        *db = pyad__arity[op] == 2 ? pb : 0.0;
    }
    return st;
}

static int put_second(double *out, double y, double da, double db, double daa, double dab,
                      double dbb)
{
    const double second[6] = {y, da, db, daa, dab, dbb};
    memcpy(out, second, sizeof second);
    return PYAD_OK;
}

/* Values and partials of every order, without the checks: out of the domain they are what
   the formulas give (NaN, infinities), as in a replay. */
int pyad_eval_second(int op, double a, double b, double *out)
{
    if (out == NULL || op < 0 || op >= PYAD_OP_COUNT || pyad__arity[op] < 1)
        return PYAD_MISUSE;
#define PYAD_REFUSED(status) (void)(status)
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH)                                                     \
    PYAD_CASE_##ARITY(NAME, MATH, return put_second(out, y, da, db, daa, dab, dbb);)
    switch (op) {
#include "ops.def"
    default:
        return PYAD_MISUSE;
    }
#undef PYAD_OP
#undef PYAD_REFUSED
}

/* ---- messages about an op's result ---------------------------------------------------- */

int pyad__nonfinite(pyad_tape *t, int op, double y, double da, double db)
{
    return pyad__fail(t, PYAD_NONFINITE, "%s produced value %.17g with partials %.17g, %.17g",
                      pyad_op_name(op), y, da, db);
}

int pyad__math_error(pyad_tape *t, int status, int op, double a, double b)
{
    const char *name = pyad_op_name(op);
    if (pyad__arity[op] == 1)
        return pyad__fail(t, status, "%s: %s(%.17g)", pyad_strstatus(status), name, a);
    return pyad__fail(t, status, "%s: %s(%.17g, %.17g)", pyad_strstatus(status), name, a, b);
}
