/*
 * access.c - reading and writing records by handle: value and grad (one or many), op and
 * operands with their partials.
 *
 * Every handle is resolved (pyad__resolve) before anything is read or written, and an array
 * of handles is checked whole first, so a call given a stale handle changes nothing. Only a
 * leaf's value may be set; setting a nonzero grad marks its chunk dirty, for the sweep.
 */
#include "internal.h"

#define RESOLVE_OR_RETURN(t, h, s)                                                                 \
    do {                                                                                           \
        int st_ = pyad__enter(t);                                                                  \
        if (st_ == PYAD_OK)                                                                        \
            st_ = pyad__resolve(t, h, &(s));                                                       \
        if (st_ != PYAD_OK)                                                                        \
            return st_;                                                                            \
    } while (0)

/* The value, or with `grad` set the grad, of the record h names. */
static int get_number(pyad_tape *t, int64_t h, int grad, double *out)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if (out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    *out = grad ? t->grad[s] : t->val[s];
    return PYAD_OK;
}

int pyad_get_value(pyad_tape *t, int64_t h, double *out)
{
    return get_number(t, h, 0, out);
}

int pyad_set_value(pyad_tape *t, int64_t h, double v)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if ((t->kind[s] & PYAD_OP_MASK) != PYAD_OP_LEAF)
        return pyad__fail(t, PYAD_NOTLEAF,
                          "cannot set the value of a computed %s node: only inputs (leaves) "
                          "can be assigned",
                          pyad_op_name(t->kind[s] & PYAD_OP_MASK));
    t->val[s] = v;
    return PYAD_OK;
}

int pyad_get_grad(pyad_tape *t, int64_t h, double *out)
{
    return get_number(t, h, 1, out);
}

int pyad_set_grad(pyad_tape *t, int64_t h, double g)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    t->grad[s] = g;
    if (g != 0.0)
        t->chunks[s >> PYAD_CHUNK_BITS].dirty = 1;
    return PYAD_OK;
}

static int check_handles(pyad_tape *t, int64_t n, const int64_t *handles)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (n < 0 || (n > 0 && handles == NULL))
        return pyad__fail(t, PYAD_MISUSE, "bad handle array (n = %lld)", (long long)n);
    uint32_t s;
    for (int64_t i = 0; i < n; i++)
        if ((st = pyad__resolve(t, handles[i], &s)) != PYAD_OK)
            return st;
    return PYAD_OK;
}

/* The values, or with `grad` set the grads, of n records into out. */
static int get_numbers(pyad_tape *t, int64_t n, const int64_t *handles, int grad, double *out)
{
    int st = check_handles(t, n, handles);
    if (st != PYAD_OK)
        return st;
    if (n > 0 && out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    const double *from = grad ? t->grad : t->val;
    for (int64_t i = 0; i < n; i++)
        out[i] = from[(uint32_t)handles[i] & PYAD_SLOT_MASK];
    return PYAD_OK;
}

int pyad_get_values(pyad_tape *t, int64_t n, const int64_t *handles, double *out)
{
    return get_numbers(t, n, handles, 0, out);
}

int pyad_get_grads(pyad_tape *t, int64_t n, const int64_t *handles, double *out)
{
    return get_numbers(t, n, handles, 1, out);
}

int pyad_set_grads(pyad_tape *t, int64_t n, const int64_t *handles, double g)
{
    int st = check_handles(t, n, handles);
    if (st != PYAD_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t s = (uint32_t)handles[i] & PYAD_SLOT_MASK;
        t->grad[s] = g;
        if (g != 0.0)
            t->chunks[s >> PYAD_CHUNK_BITS].dirty = 1;
    }
    return PYAD_OK;
}

int pyad_get_op(pyad_tape *t, int64_t h, int *op)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if (op == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    *op = t->kind[s] & PYAD_OP_MASK;
    return PYAD_OK;
}

/* STALE for a record nothing kept whose operands are gone (pyad__older_record): its chunk
   stays for another record's sake, so its handle still resolves, but naming its operands
   would hand out handles of records gone, or of newer ones in their slots. */
static int operands_gone(pyad_tape *t, int64_t h)
{
    return pyad__fail(t, PYAD_STALE,
                      "handle %#llx names a record that nothing kept: its segment stays for "
                      "another record's sake, but its operands are gone",
                      (unsigned long long)h);
}

int pyad_get_operands(pyad_tape *t, int64_t h, int64_t cap, int64_t *handles, double *partials,
                      int64_t *n)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if (n == NULL || cap < 0 || (cap > 0 && (handles == NULL || partials == NULL)))
        return pyad__fail(t, PYAD_MISUSE, "bad output buffers");
    const unsigned op = t->kind[s] & PYAD_OP_MASK;
    int64_t k = 0;
#define EMIT(slot, partial)                                                                        \
    do {                                                                                           \
        if (k < cap) {                                                                             \
            handles[k] = pyad__handle(t, slot);                                                    \
            partials[k] = (partial);                                                               \
        }                                                                                          \
        k++;                                                                                       \
    } while (0)
    const pyad_rec r = t->rec[s];
    if (op == PYAD_OP_SOFTMAX || op == PYAD_OP_MATVEC) {
        if ((k = pyad__group_operands(t, s, cap, handles, partials)) < 0)
            return k == -2   ? PYAD_CHANGED
                   : k == -3 ? operands_gone(t, h)
                             : pyad__group_orphan(t, h);
    } else if (r.b & PYAD_NARY_BIT) {
        const pyad_chunk *ch = &t->chunks[s >> PYAD_CHUNK_BITS];
        for (uint32_t e = r.a, end = r.a + (r.b & ~PYAD_NARY_BIT); e < end; e++)
            if (ch->side_slot[e] != s && !pyad__older_record(t, ch->side_slot[e], s))
                return operands_gone(t, h);
        for (uint32_t e = r.a, end = r.a + (r.b & ~PYAD_NARY_BIT); e < end; e++)
            if (ch->side_slot[e] != s)
                EMIT(ch->side_slot[e], ch->side_val[e]);
    } else if (op != PYAD_OP_LEAF) {
        if (!pyad__older_record(t, r.a, s) || (r.b != s && !pyad__older_record(t, r.b, s)))
            return operands_gone(t, h);
        EMIT(r.a, r.da);
        if (r.b != s)
            EMIT(r.b, r.db);
    }
#undef EMIT
    *n = k;
    return PYAD_OK;
}
