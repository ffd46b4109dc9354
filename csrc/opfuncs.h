/*
 * opfuncs.h - helpers the op table (ops.def) uses where one expression is not enough.
 * Kept here so that ops.def stays one line per op.
 */
#ifndef PYAD_OPFUNCS_H
#define PYAD_OPFUNCS_H

#include <math.h>

#define PYAD_CHECK(cond, STATUS) ((cond) ? PYAD_##STATUS : PYAD_OK)
/* An infinite result from finite inputs is an overflow, as Python's math module says. */
#define PYAD_CHECK_OVERFLOW(y, a) PYAD_CHECK(isinf(y) && isfinite(a), OVERFLOW)
#define PYAD_CHECK_OVERFLOW2(y, a, b) PYAD_CHECK(isinf(y) && isfinite(a) && isfinite(b), OVERFLOW)

/* Logistic function without overflow, from e = exp(-|a|) (exp only of a non-positive
   number). Softplus's value needs the same e: written this way, and built with
   -fno-math-errno (exp is then a pure function), the two share one call to exp. */
static inline double pyad__sigmoid_e(double a, double e)
{
    return a >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

static inline double pyad__sigmoid(double a)
{
    return pyad__sigmoid_e(a, exp(-fabs(a)));
}

static inline double pyad__sign(double a)
{
    return a > 0.0 ? 1.0 : (a < 0.0 ? -1.0 : 0.0);
}

/* num / den, or 0 where den is 0 (hypot at the origin). */
static inline double pyad__ratio0(double num, double den)
{
    return den == 0.0 ? 0.0 : num / den;
}

/* Python's float ** : 0 to a finite negative power divides by zero, a finite negative base
   to a finite non-integer power has no real value. */
static inline int pyad__pow_check(double a, double b)
{
    if (a == 0.0 && b < 0.0 && isfinite(b))
        return PYAD_ZERODIV;
    if (a < 0.0 && isfinite(a) && isfinite(b) && b != floor(b))
        return PYAD_DOMAIN;
    return PYAD_OK;
}

static inline double pyad__pow_da(double a, double b)
{
    return b == 0.0 ? 0.0 : b * pow(a, b - 1.0);
}

/* d(a**b)/db = y log a; taken as 0 at a == 0 and undefined (NaN) for a < 0. */
static inline double pyad__pow_db(double a, double y)
{
    return a > 0.0 ? y * log(a) : (a == 0.0 ? 0.0 : (double)NAN);
}

/* Second partials of a**b, with the first partials' conventions: zero where da or db is
   taken as 0 (b == 0, a == 0) and NaN where db is (a < 0). */
static inline double pyad__pow_daa(double a, double b)
{
    return (b == 0.0 || b == 1.0) ? 0.0 : b * (b - 1.0) * pow(a, b - 2.0);
}

static inline double pyad__pow_dab(double a, double b)
{
    return a > 0.0 ? pow(a, b - 1.0) * (1.0 + b * log(a)) : (a == 0.0 ? 0.0 : (double)NAN);
}

static inline double pyad__pow_dbb(double a, double y)
{
    if (a > 0.0) {
        const double l = log(a);
        return y * l * l;
    }
    return a == 0.0 ? 0.0 : (double)NAN;
}

static inline double pyad__atan2_da(double a, double b)
{
    const double r = a * a + b * b;
    return r == 0.0 ? 0.0 : b / r;
}

static inline double pyad__atan2_db(double a, double b)
{
    const double r = a * a + b * b;
    return r == 0.0 ? 0.0 : -a / r;
}

#endif /* PYAD_OPFUNCS_H */
