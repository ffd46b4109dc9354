/*
 * record.c - recording leaves, unary and binary records.
 *
 * Every unary and binary op of ops.def gets its own entry points, expanded from its row:
 * pyad_<name>(a) for unary ops; pyad_<name>(a, b), pyad_<name>_vc(a, c) and
 * pyad_<name>_cv(c, b) for binary ones (c a constant). They take handles only (the tape is
 * found from the handle), because each argument cffi converts costs the Python caller about
 * as much as the C work of a push. pyad_push_v/vv/vc/cv are the same entry points chosen by
 * op code, for C callers that hold a tape.
 *
 * A push validates, computes, reserves (the only step that can run out of memory), then
 * writes and commits: a push that fails has changed nothing.
 */
#include <stddef.h>

#include "internal.h"
#include "opfuncs.h"

#define SELF UINT32_MAX /* b operand: the record itself (unary, constant operand) */

static inline int64_t record(pyad_tape *t, unsigned kind, uint32_t a, uint32_t b, double y,
                             double da, double db)
{
    /* A constant-operand record keeps the constant in db (internal.h): its one partial is da,
       and debug mode must not take an infinite constant for an infinite partial. */
    const double pb = kind >> PYAD_OP_BITS == PYAD_FORM_PLAIN ? db : 0.0;
    if (PYAD_UNLIKELY(!pyad__finite(t, y, da, pb)) && kind != PYAD_OP_LEAF)
        return -pyad__nonfinite(t, (int)(kind & PYAD_OP_MASK), y, da, pb);
    uint32_t s;
    int opened;
    const int st = pyad__reserve(t, 1, 0, &s, &opened);
    if (PYAD_UNLIKELY(st != PYAD_OK))
        return -st;
    t->kind[s] = (uint8_t)kind;
    t->rec[s] = (pyad_rec){a == SELF ? s : a, b == SELF ? s : b, da, db};
    t->val[s] = y;
    t->grad[s] = 0.0;
    pyad__commit(t, 1, 0);
    return PYAD_UNLIKELY(opened) ? -(int64_t)PYAD_SEGMENT : pyad__handle(t, s);
}

int64_t pyad_push_leaf(pyad_tape *t, double v)
{
    const int st = pyad__enter(t);
    if (PYAD_UNLIKELY(st != PYAD_OK))
        return -st;
    return record(t, PYAD_OP_LEAF, SELF, SELF, v, 0.0, 0.0);
}

/* The entry points of one row: its MATH with a and b in scope (b = 0 for a unary op), a
   refused operand or an overflow answered with the message that names the op. */
#define PYAD_REFUSED(status) return -pyad__math_error(t, status, (int)op, a, b)

#define PYAD_DEFINE_0(NAME, name, MATH)
#define PYAD_DEFINE_PYAD_NARY(NAME, name, MATH)

#define PYAD_DEFINE_1(NAME, name, MATH)                                                            \
    int64_t pyad_##name(int64_t ha)                                                                \
    {                                                                                              \
        const unsigned op = PYAD_OP_##NAME;                                                        \
        pyad_tape *t = NULL;                                                                       \
        uint32_t sa = 0;                                                                           \
        const int st = pyad__operand(ha, &t, &sa);                                                 \
        if (PYAD_UNLIKELY(st != PYAD_OK))                                                          \
            return -st;                                                                            \
        const double a = t->val[sa], b = 0.0;                                                      \
        MATH                                                                                       \
        return record(t, op, sa, SELF, y, da, 0.0);                                                \
    }

#define PYAD_DEFINE_2(NAME, name, MATH)                                                            \
    int64_t pyad_##name(int64_t ha, int64_t hb)                                                    \
    {                                                                                              \
        const unsigned op = PYAD_OP_##NAME;                                                        \
        pyad_tape *t = NULL;                                                                       \
        uint32_t sa = 0, sb = 0;                                                                   \
        int st = pyad__operand(ha, &t, &sa);                                                       \
        if (PYAD_UNLIKELY(st != PYAD_OK))                                                          \
            return -st;                                                                            \
        if (PYAD_UNLIKELY((st = pyad__resolve(t, hb, &sb)) != PYAD_OK))                            \
            return -st;                                                                            \
        const double a = t->val[sa], b = t->val[sb];                                               \
        MATH                                                                                       \
        return record(t, op, sa, sb, y, da, db);                                                   \
    }                                                                                              \
    int64_t pyad_##name##_vc(int64_t ha, double b)                                                 \
    {                                                                                              \
        const unsigned op = PYAD_OP_##NAME;                                                        \
        pyad_tape *t = NULL;                                                                       \
        uint32_t sa = 0;                                                                           \
        const int st = pyad__operand(ha, &t, &sa);                                                 \
        if (PYAD_UNLIKELY(st != PYAD_OK))                                                          \
            return -st;                                                                            \
        const double a = t->val[sa];                                                               \
        MATH                                                                                       \
        return record(t, op | PYAD_FORM_VC << PYAD_OP_BITS, sa, SELF, y, da, b);                   \
    }                                                                                              \
    int64_t pyad_##name##_cv(double a, int64_t hb)                                                 \
    {                                                                                              \
        const unsigned op = PYAD_OP_##NAME;                                                        \
        pyad_tape *t = NULL;                                                                       \
        uint32_t sb = 0;                                                                           \
        const int st = pyad__operand(hb, &t, &sb);                                                 \
        if (PYAD_UNLIKELY(st != PYAD_OK))                                                          \
            return -st;                                                                            \
        const double b = t->val[sb];                                                               \
        MATH                                                                                       \
        return record(t, op | PYAD_FORM_CV << PYAD_OP_BITS, sb, SELF, y, db, a);                   \
    }

#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_DEFINE_##ARITY(NAME, name, MATH)
#include "ops.def"
#undef PYAD_OP
#undef PYAD_REFUSED

/* ---- the same, chosen by op code ----------------------------------------------------- */

/* The tape-taking entry points also insist that the operands are the given tape's. */
static int64_t check_tape(pyad_tape *t, int64_t h, int op, int arity)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return -st;
    if ((unsigned)op >= PYAD_OP_COUNT || pyad__arity[op] != arity)
        return -pyad__fail(t, PYAD_MISUSE, "op %d is not an op of arity %d", op, arity);
    uint32_t s;
    return -pyad__resolve(t, h, &s);
}

/* Entry points by op code: tables expanded from ops.def (NULL for ops of another arity). */
#define PYAD_UNARY_ENTRY_0(name, suffix) NULL
#define PYAD_UNARY_ENTRY_2(name, suffix) NULL
#define PYAD_UNARY_ENTRY_PYAD_NARY(name, suffix) NULL
#define PYAD_UNARY_ENTRY_1(name, suffix) pyad_##name##suffix
#define PYAD_BINARY_ENTRY_0(name, suffix) NULL
#define PYAD_BINARY_ENTRY_1(name, suffix) NULL
#define PYAD_BINARY_ENTRY_PYAD_NARY(name, suffix) NULL
#define PYAD_BINARY_ENTRY_2(name, suffix) pyad_##name##suffix

typedef int64_t (*unary_fn)(int64_t);
typedef int64_t (*vv_fn)(int64_t, int64_t);
typedef int64_t (*vc_fn)(int64_t, double);
typedef int64_t (*cv_fn)(double, int64_t);

#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) [PYAD_OP_##NAME] = PYAD_UNARY_ENTRY_##ARITY(name, ),
static const unary_fn unary_table[PYAD_OP_COUNT] = {
#include "ops.def"
};
#undef PYAD_OP
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) [PYAD_OP_##NAME] = PYAD_BINARY_ENTRY_##ARITY(name, ),
static const vv_fn vv_table[PYAD_OP_COUNT] = {
#include "ops.def"
};
#undef PYAD_OP
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH)                                                     \
    [PYAD_OP_##NAME] = PYAD_BINARY_ENTRY_##ARITY(name, _vc),
static const vc_fn vc_table[PYAD_OP_COUNT] = {
#include "ops.def"
};
#undef PYAD_OP
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH)                                                     \
    [PYAD_OP_##NAME] = PYAD_BINARY_ENTRY_##ARITY(name, _cv),
static const cv_fn cv_table[PYAD_OP_COUNT] = {
#include "ops.def"
};
#undef PYAD_OP

int64_t pyad_push_v(pyad_tape *t, int op, int64_t ha)
{
    const int64_t st = check_tape(t, ha, op, 1);
    return st != 0 ? st : unary_table[op](ha);
}

int64_t pyad_push_vv(pyad_tape *t, int op, int64_t ha, int64_t hb)
{
    int64_t st = check_tape(t, ha, op, 2);
    if (st == 0)
        st = check_tape(t, hb, op, 2);
    return st != 0 ? st : vv_table[op](ha, hb);
}

int64_t pyad_push_vc(pyad_tape *t, int op, int64_t ha, double b)
{
    const int64_t st = check_tape(t, ha, op, 2);
    return st != 0 ? st : vc_table[op](ha, b);
}

int64_t pyad_push_cv(pyad_tape *t, int op, double a, int64_t hb)
{
    const int64_t st = check_tape(t, hb, op, 2);
    return st != 0 ? st : cv_table[op](a, hb);
}
