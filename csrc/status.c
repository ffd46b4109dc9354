/*
 * status.c - the tables generated from status.def and ops.def, error text, and the op
 * kernels: each op's value, partials and error checks, expanded from its ops.def row.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"
#include "opfuncs.h"

static const char *const status_names[] = {
#define PYAD_STATUS(NAME, MSG) #NAME,
#include "status.def"
#undef PYAD_STATUS
};

static const char *const status_messages[] = {
#define PYAD_STATUS(NAME, MSG) MSG,
#include "status.def"
#undef PYAD_STATUS
};

static const char *const op_names[] = {
#define PYAD_OP(NAME, name, ARITY, VALUE, DA, DB, DAA, DAB, DBB, PRE, POST, PARTIALS) #name,
#include "ops.def"
#undef PYAD_OP
};

const signed char pyad__arity[] = {
#define PYAD_OP(NAME, name, ARITY, VALUE, DA, DB, DAA, DAB, DBB, PRE, POST, PARTIALS) ARITY,
#include "ops.def"
#undef PYAD_OP
};

const char *pyad_version(void) { return PYAD_VERSION; }
int pyad_status_count(void) { return PYAD_STATUS_COUNT; }
int pyad_op_count(void) { return PYAD_OP_COUNT; }
int pyad_chunk_records(void) { return (int)PYAD_CHUNK; }

const char *pyad_status_name(int status)
{
    return status >= 0 && status < PYAD_STATUS_COUNT ? status_names[status] : NULL;
}

const char *pyad_strstatus(int status)
{
    return status >= 0 && status < PYAD_STATUS_COUNT ? status_messages[status] : "unknown status";
}

const char *pyad_op_name(int op)
{
    return op >= 0 && op < PYAD_OP_COUNT ? op_names[op] : NULL;
}

int pyad_op_arity(int op)
{
    return op >= 0 && op < PYAD_OP_COUNT ? pyad__arity[op] : -2;
}

/* The message of the calling thread's latest failed call, and the tape it failed on. Per
   thread, because several threads may use one tape: a caller reading the message of its
   failure after the call must not read another thread's, nor race with its writing. */
static _Thread_local char errmsg[200];
static _Thread_local const pyad_tape *errtape;

int pyad__fail(pyad_tape *t, int status, const char *fmt, ...)
{
    if (t != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, sizeof errmsg, fmt, ap);
        va_end(ap);
        errtape = t;
    }
    return status;
}

void pyad__clear_error(const pyad_tape *t)
{
    if (errtape == t)
        errtape = NULL;
}

const char *pyad_tape_errmsg(const pyad_tape *t)
{
    if (t == NULL)
        return "no tape";
    return errtape == t ? errmsg : "";
}

int pyad__kernel(int op, double a, double b, double *res, double *pa, double *pb)
{
    int st;
    switch (op) {
#define PYAD_OP(NAME, name, ARITY, VALUE, DA, DB, DAA, DAB, DBB, PRE, POST, PARTIALS)                                        \
    case PYAD_OP_##NAME: {                                                                    \
        st = (PRE);                                                                           \
        if (PYAD_UNLIKELY(st != PYAD_OK))                                                     \
            return st;                                                                        \
        const double y = (VALUE);                                                             \
        st = (POST);                                                                          \
        if (PYAD_UNLIKELY(st != PYAD_OK))                                                     \
            return st;                                                                        \
        *res = y;                                                                             \
        *pa = (DA);                                                                           \
        *pb = (DB);                                                                           \
        (void)y;                                                                              \
        return PYAD_OK;                                                                       \
    }
#include "ops.def"
#undef PYAD_OP
    default:
        return PYAD_MISUSE;
    }
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

int pyad_eval_second(int op, double a, double b, double *out)
{
    if (out == NULL || op < 0 || op >= PYAD_OP_COUNT || pyad__arity[op] < 1)
        return PYAD_MISUSE;
    if (pyad__arity[op] == 1)
        b = 0.0;
    switch (op) {
#define PYAD_OP(NAME, name, ARITY, VALUE, DA, DB, DAA, DAB, DBB, PRE, POST, PARTIALS)                   \
    case PYAD_OP_##NAME: {                                                                    \
        const double y = (VALUE), da = (DA), db = (DB);                                       \
        const double second[6] = {y, da, db, (DAA), (DAB), (DBB)};                            \
        memcpy(out, second, sizeof second);                                                   \
        (void)y;                                                                              \
        (void)da;                                                                             \
        (void)db;                                                                             \
        return PYAD_OK;                                                                       \
    }
#include "ops.def"
#undef PYAD_OP
    default:
        return PYAD_MISUSE;
    }
}
