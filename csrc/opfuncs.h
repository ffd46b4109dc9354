/*
 * opfuncs.h - what the rows of the op table (ops.def) are written in: the fields of a row's
 * MATH and the helper functions where one expression is not enough.
 */
#ifndef PYAD_OPFUNCS_H
#define PYAD_OPFUNCS_H

#include <float.h>
#include <math.h>

/* The fields of a row's MATH (ops.def says what each means), as statements for the scope a
   consumer expands them in: `a` and `b` (0.0 for a unary op) must be in scope, and
   PYAD_REFUSED(status) defined, the consumer's answer to a refused operand or an overflow
   (return the status, format a message, or nothing where the caller does not check). They
   declare y, da, db, daa, dab and dbb; a consumer uses the names it needs and the compiler
   drops the others' arithmetic (pure, as libm is with -fno-math-errno). No top-level comma
   in what they expand to: a consumer passes MATH on as one macro argument. */
#define REFUSE(cond, STATUS)                                                                       \
    if (PYAD_UNLIKELY(cond)) {                                                                     \
        PYAD_REFUSED(PYAD_##STATUS);                                                               \
    }
/* (a row need not read both operands, nor its value) */
#define VALUE(expr)                                                                                \
    const double y = (expr);                                                                       \
    (void)a;                                                                                       \
    (void)b;                                                                                       \
    (void)y;
#define NO_OVERFLOW REFUSE(isinf(y) && isfinite(a) && isfinite(b), OVERFLOW)
#define FIRST(...) PYAD_FIRST(__VA_ARGS__, 0.0, 0.0)
#define SECOND(...) PYAD_SECOND(__VA_ARGS__, 0.0, 0.0, 0.0)
/* the missing partials of a unary op are 0 */
#define PYAD_FIRST(x, z, ...)                                                                      \
    const double da = (x);                                                                         \
    const double db = (z);                                                                         \
    (void)da;                                                                                      \
    (void)db;
#define PYAD_SECOND(x, z, w, ...)                                                                  \
    const double daa = (x);                                                                        \
    const double dab = (z);                                                                        \
    const double dbb = (w);                                                                        \
    (void)daa;                                                                                     \
    (void)dab;                                                                                     \
    (void)dbb;

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

/* sigmoid'(a) = s(1 - s) = e / (1 + e)^2 with e = exp(-|a|) (the same call to exp as the
   value's). s(1 - s) from the rounded s is 0 once s rounds to 1 (a > 37) and loses digits
   well before: 1 - s cancels. */
static inline double pyad__sigmoid_d(double a)
{
    const double e = exp(-fabs(a)), d = 1.0 + e;
    return e / (d * d);
}

/* tanh'(a) = 1 - y^2 with y = tanh(a). Where |y| < 1/2 that form is accurate (no
   cancellation); above, 1 - y^2 cancels (and is 0 once y rounds to +-1, |a| > 19), so it is
   4e / (1 + e)^2 = 1 / cosh(a)^2 with e = exp(-2|a|). */
static inline double pyad__tanh_d(double a, double y)
{
    if (fabs(y) < 0.5)
        return 1.0 - y * y;
    const double e = exp(-2.0 * fabs(a)), d = 1.0 + e;
    return 4.0 * e / (d * d);
}

/* expm1'(a) = exp(a) = y + 1, accurate for a >= -1/2 (y + 1 >= 0.6 has no cancellation);
   below, y + 1 cancels (and is 0 once y rounds to -1, a < -37). */
static inline double pyad__expm1_d(double a, double y)
{
    return a >= -0.5 ? y + 1.0 : exp(a);
}

/* 1 / sqrt(1 - a^2) as 1 / sqrt((1 - a)(1 + a)): near |a| = 1, 1 - a*a loses the digits a*a
   rounds off (about 150 ulps at 1 - 2^-27), while 1 - a and 1 + a are exact or nearly so. */
static inline double pyad__asin_d(double a)
{
    return 1.0 / sqrt((1.0 - a) * (1.0 + a));
}

/* asin''(a) = a / (1 - a^2)^(3/2) = a * da / ((1 - a)(1 + a)), from da = asin'(a) (acos'' is
   the same with acos' = -asin'). */
static inline double pyad__asin_dd(double a, double da)
{
    return a * da / ((1.0 - a) * (1.0 + a));
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

/* num / y for the partials of y = hypot(a, b) (num = a or b): 0 at the origin (the
   convention), and from the halved operands where y overflowed (the partials do not). */
static inline double pyad__hypot_ratio(double num, double a, double b, double y)
{
    if (isinf(y) && isfinite(a) && isfinite(b))
        return (0.5 * num) / hypot(0.5 * a, 0.5 * b);
    return pyad__ratio0(num, y);
}

/* k * a^c, also where a^c alone leaves the normal range but k * a^c need not (a^c would
   lose its low bits, or overflow): then as k * h * h with h = |a|^(c/2) and the sign of a^c. */
static inline double pyad__times_pow(double k, double a, double c)
{
    const double p = pow(a, c);
    if (isnormal(p) || isnan(p) || a == 0.0 || !isfinite(a) || !isfinite(c))
        return k * p;
    const double h = pow(fabs(a), 0.5 * c);
    return (a < 0.0 && fmod(c, 2.0) != 0.0 ? -k : k) * h * h;
}

/* k * a^(b - n) for n = 1, 2, with y = a^b. Where b - n rounds, pow(a, b - n) is off by the
   rounding error times ln a (hundreds of ulps for large |ln a|), and then y / a^n, from the
   accurate y, is used instead: a division, cheaper than the pow it replaces. Where that
   quotient or y is not a normal number, the rounding error e is put back as a^e. Where b - n
   is exact, the plain b * pow(a, b - 1) keeps its bits (x**2's partial stays exactly 2x). */
static inline double pyad__pow_k(double k, double a, double b, double y, double n)
{
    const double c = b - n;
    /* the rounding error of c, exact (Fast2Sum, larger operand first) */
    const double e = fabs(b) >= n ? (b - c) - n : b - (c + n);
    if (e == 0.0 || a == 0.0 || !isfinite(a) || !isfinite(b))
        return pyad__times_pow(k, a, c);
    const double q = n == 1.0 ? y / a : y / a / a;
    if (isnormal(q) && isnormal(y))
        return k * q;
    return pyad__times_pow(k, a, c) * pow(a, e);
}

static inline double pyad__pow_da(double a, double b, double y)
{
    return b == 0.0 ? 0.0 : pyad__pow_k(b, a, b, y, 1.0);
}

/* y log a, and y log^2 a, for a > 0. Where y is below the normal range it has lost low bits
   while y log a need not have: then from h = a^(b/2), as h log a * h. */
static inline double pyad__pow_ylog(double a, double b, double y, int squared)
{
    const double l = log(a);
    if (!(fabs(y) < DBL_MIN) || y == 0.0)
        return squared ? y * l * l : y * l;
    const double h = pow(a, 0.5 * b);
    return squared ? (h * l) * (h * l) : h * l * h;
}

/* d(a**b)/db = y log a; taken as 0 at a == 0 and undefined (NaN) for a < 0. */
static inline double pyad__pow_db(double a, double b, double y)
{
    return a > 0.0 ? pyad__pow_ylog(a, b, y, 0) : (a == 0.0 ? 0.0 : (double)NAN);
}

/* Second partials of a**b, with the first partials' conventions: zero where da or db is
   taken as 0 (b == 0, a == 0) and NaN where db is (a < 0). */
static inline double pyad__pow_daa(double a, double b, double y)
{
    return (b == 0.0 || b == 1.0) ? 0.0 : pyad__pow_k(b * (b - 1.0), a, b, y, 2.0);
}

/* (1 + b log a) a^(b-1). Near the curve b log a = -1 this keeps an absolute error of about
   an ulp of a^(b-1), not a relative one: that would need log a to more than double
   precision. */
static inline double pyad__pow_dab(double a, double b, double y)
{
    return a > 0.0 ? pyad__pow_k(1.0 + b * log(a), a, b, y, 1.0) : (a == 0.0 ? 0.0 : (double)NAN);
}

static inline double pyad__pow_dbb(double a, double b, double y)
{
    return a > 0.0 ? pyad__pow_ylog(a, b, y, 1) : (a == 0.0 ? 0.0 : (double)NAN);
}

/* num / (a^2 + b^2) for the partials of atan2, num one of b, -a, a - b, a + b (which = 0..3).
   Where a^2 + b^2 overflows or leaves the normal range (or nearly: below 2^-969 the smaller
   square's underflow would show), a and b are first scaled by a power of 2. 0 at the origin
   (the convention) and where a or b is infinite (the limit). */
static inline double pyad__atan2_num(int which, double a, double b)
{
    return which == 0 ? b : which == 1 ? -a : which == 2 ? a - b : a + b;
}

static inline double pyad__atan2_ratio(int which, double a, double b)
{
    const double r = a * a + b * b;
    if (r >= 0x1p-969 && r <= DBL_MAX)
        return pyad__atan2_num(which, a, b) / r;
    if (a == 0.0 && b == 0.0)
        return 0.0;
    if (isnan(r))
        return r;
    if (isinf(a) || isinf(b))
        return 0.0;
    /* the exponent frexp gives (a mantissa in [1/2, 1)), without frexp's out-pointer, so
       that the compiler can drop a partial nobody reads */
    const int e = ilogb(fmax(fabs(a), fabs(b))) + 1;
    const double as = ldexp(a, -e), bs = ldexp(b, -e);
    return ldexp(pyad__atan2_num(which, as, bs) / (as * as + bs * bs), -e);
}

#endif /* PYAD_OPFUNCS_H */
