/*
 * program.c - building a replayable program from a tape (pyad_program_new).
 *
 * Three passes over the records in creation order (the tape's chunks oldest first):
 *  1. list them (seq) and mark, newest to oldest, every record an output or a guard needs;
 *     an output of a group (softmax, matvec) pulls in its first output (nary.c has the
 *     layout), which stands for the whole group: the program computes every output of a
 *     group at its first;
 *  2. count instructions and n-ary operand entries, so every array is allocated once;
 *  3. map each needed record to its slot (inputs keep their place, other leaves become
 *     constants) and write the instructions with their operands' slots. A group becomes all
 *     its instructions at its first output, whether or not the tape still holds the later
 *     ones (segments are reused: an output nothing kept may be gone); a matvec's matrix is
 *     copied once.
 * Constants are deduplicated by bit pattern: a loop that multiplies by 100.0 gets one slot.
 */
#include <stdlib.h>

#include "alloc.h"
#include "program.h"

#define UNMAPPED UINT32_MAX

/* Constants: values in order of first use, found again through an open-addressing table of
   their bit patterns. */
typedef struct const_pool {
    double *val;
    uint32_t n, cap;
    uint32_t *table; /* index + 1, 0 when empty; tsize entries, a power of two */
    uint32_t tsize;
} const_pool;

static uint32_t hash_bits(uint64_t u, uint32_t mask)
{
    u ^= u >> 33;
    u *= 0xff51afd7ed558ccdULL;
    u ^= u >> 33;
    return (uint32_t)u & mask;
}

static uint64_t bits_of(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static int pool_grow(const_pool *cp)
{
    const uint32_t cap = cp->cap ? 2 * cp->cap : 16;
    double *val = pyad__realloc(cp->val, (size_t)cap * sizeof *val);
    if (val == NULL)
        return PYAD_NOMEM;
    cp->val = val;
    cp->cap = cap;
    uint32_t *table = pyad__calloc(2 * (size_t)cap, sizeof *table);
    if (table == NULL)
        return PYAD_NOMEM;
    free(cp->table);
    cp->table = table;
    cp->tsize = 2 * cap;
    for (uint32_t i = 0; i < cp->n; i++) {
        uint32_t h = hash_bits(bits_of(cp->val[i]), cp->tsize - 1);
        while (cp->table[h] != 0)
            h = (h + 1) & (cp->tsize - 1);
        cp->table[h] = i + 1;
    }
    return PYAD_OK;
}

/* Index of constant v, added if new; UNMAPPED when out of memory. */
static uint32_t pool_index(const_pool *cp, double v)
{
    if (cp->n == cp->cap && pool_grow(cp) != PYAD_OK)
        return UNMAPPED;
    const uint64_t u = bits_of(v);
    uint32_t h = hash_bits(u, cp->tsize - 1);
    while (cp->table[h] != 0) {
        const uint32_t i = cp->table[h] - 1;
        if (bits_of(cp->val[i]) == u)
            return i;
        h = (h + 1) & (cp->tsize - 1);
    }
    cp->val[cp->n] = v;
    cp->table[h] = ++cp->n;
    return cp->n - 1;
}

void pyad_program_free(pyad_program *p)
{
    if (p == NULL)
        return;
    free(p->ins);
    free(p->cpart);
    free(p->nary);
    free(p->side);
    free(p->mat);
    free(p->side_first);
    free(p->zero);
    free(p->consts);
    free(p->out);
    free(p->guard);
    free(p);
}

/* Scratch of one build. */
typedef struct builder {
    pyad_tape *t;
    uint32_t *seq;     /* tape slots in creation order */
    uint8_t *need;     /* slot -> needed by an output or a guard */
    uint32_t *map;     /* slot -> program slot, or a constant's pool index | CONST_TAG */
    const_pool consts;
    uint32_t nseq;
} builder;

#define CONST_TAG 0x80000000u

static void builder_free(builder *bd)
{
    free(bd->seq);
    free(bd->need);
    free(bd->map);
    free(bd->consts.val);
    free(bd->consts.table);
}

static int is_leaf(const pyad_tape *t, uint32_t s)
{
    return (t->kind[s] & PYAD_OP_MASK) == PYAD_OP_LEAF;
}

/* Output i > 0 of a group (softmax, matvec): its first output stands for it (emits its
   instruction). */
static int is_later_output(const pyad_tape *t, uint32_t s)
{
    return pyad__later_output(t, s);
}

/* n-ary operand entries of record s (0 for others). */
static uint32_t nary_count(const pyad_tape *t, uint32_t s)
{
    const pyad_rec r = t->rec[s];
    return r.b & PYAD_NARY_BIT ? r.b & ~PYAD_NARY_BIT : 0;
}

/* Instructions that record s (not a later output of a group) becomes. */
static uint32_t instructions_of(const pyad_tape *t, uint32_t s)
{
    const unsigned op = t->kind[s] & PYAD_OP_MASK;
    return op == PYAD_OP_SOFTMAX  ? nary_count(t, s)
           : op == PYAD_OP_MATVEC ? pyad__matvec_of(t, s).rows
                                  : 1;
}

/* Matrix elements that record s (the first output of a matvec, else none) brings. */
static uint64_t matrix_of(const pyad_tape *t, uint32_t s)
{
    if ((t->kind[s] & PYAD_OP_MASK) != PYAD_OP_MATVEC)
        return 0;
    const pyad_matvec g = pyad__matvec_of(t, s);
    return (uint64_t)g.rows * g.count;
}

static int need_operand(builder *bd, uint32_t o, uint32_t s)
{
    if (!pyad__older_record(bd->t, o, s)) /* a chunk kept for another record's sake */
        return pyad__fail(bd->t, PYAD_STALE,
                          "the outputs use a record whose operands' segment was reused (keep "
                          "a handle's segment pinned while compiling from it)");
    bd->need[o] = 1;
    return PYAD_OK;
}

/* Mark the operands of needed record s (for a later softmax output, its first output). */
static int mark_operands(builder *bd, uint32_t s)
{
    pyad_tape *t = bd->t;
    const pyad_rec r = t->rec[s];
    const unsigned op = t->kind[s] & PYAD_OP_MASK;
    int st = PYAD_OK;
    if (op == PYAD_OP_LEAF)
        return PYAD_OK;
    if (op == PYAD_OP_PRIMITIVE)
        return pyad__fail(t, PYAD_NOREPLAY,
                          "the function uses pyad.primitive, whose Python code a replay cannot "
                          "run; compile cannot replay it");
    if (is_later_output(t, s)) /* PYAD_NO_HEAD is no slot: refused */
        return need_operand(bd, pyad__group_head(t, s), s);
    if (r.b & PYAD_NARY_BIT) {
        const pyad_chunk *ch = &t->chunks[s >> PYAD_CHUNK_BITS];
        const uint32_t count = r.b & ~PYAD_NARY_BIT;
        for (uint32_t e = r.a; e < r.a + count && st == PYAD_OK; e++)
            if (ch->side_slot[e] != s)
                st = need_operand(bd, ch->side_slot[e], s);
        return st;
    }
    if ((st = need_operand(bd, r.a, s)) == PYAD_OK && r.b != s)
        st = need_operand(bd, r.b, s);
    return st;
}

/* The slot (or tagged constant) for an output or guard operand given as handle or constant. */
static int operand_ref(builder *bd, int64_t h, double c, uint32_t *ref)
{
    if (h == 0) {
        const uint32_t i = pool_index(&bd->consts, c);
        if (i == UNMAPPED)
            return PYAD_NOMEM;
        *ref = i | CONST_TAG;
        return PYAD_OK;
    }
    uint32_t s = 0;
    const int st = pyad__resolve(bd->t, h, &s);
    if (st == PYAD_OK)
        *ref = s;
    return st;
}

/* The arrays sized by nrec, nnary and nside (out and guard are the caller's), and nbytes. */
int pyad__program_alloc(pyad_program *p)
{
    const size_t n = p->nrec ? p->nrec : 1;
    p->ins = pyad__malloc(n * sizeof *p->ins);
    p->cpart = pyad__calloc(2 * n, sizeof *p->cpart);
    p->nary = pyad__malloc((p->nnary ? p->nnary : 1) * sizeof *p->nary);
    p->side = pyad__malloc((p->nside ? p->nside : 1) * sizeof *p->side);
    p->mat = p->nmat <= SIZE_MAX / sizeof *p->mat
                 ? pyad__malloc((p->nmat ? (size_t)p->nmat : 1) * sizeof *p->mat)
                 : NULL;
    if (!p->ins || !p->cpart || !p->nary || !p->side || !p->mat)
        return PYAD_NOMEM;
    pyad__advise_huge(p->mat, (size_t)p->nmat * sizeof *p->mat);
    p->nbytes = sizeof *p + n * (sizeof *p->ins + 2 * sizeof *p->cpart) +
                p->nnary * sizeof *p->nary + p->nside * sizeof *p->side + p->nout * sizeof *p->out +
                p->nguard * sizeof *p->guard + (size_t)p->nmat * sizeof *p->mat;
    return PYAD_OK;
}

/* Program slot of tape slot s (already mapped), or of a constant. */
static uint32_t slot_of(const builder *bd, const pyad_program *p, uint32_t ref)
{
    const uint32_t m = (ref & CONST_TAG) ? ref : bd->map[ref];
    return (m & CONST_TAG) ? p->nin + p->nrec + (m & ~CONST_TAG) : m;
}

static uint32_t const_ref(builder *bd, double c, int *st)
{
    const uint32_t i = pool_index(&bd->consts, c);
    if (i == UNMAPPED)
        *st = PYAD_NOMEM;
    return i | CONST_TAG;
}

/* The op table's KEEP column: what a replay keeps of each op's partials (see ops.def). */
enum { STORED, CONST, OPERANDS };
static const unsigned char partials_of[PYAD_OP_COUNT] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) [PYAD_OP_##NAME] = KEEP,
#include "ops.def"
#undef PYAD_OP
};

/* The class of unary or binary instruction i's partials (program.h) and its part number, in
   instruction order; c is the value of its constant operand (0 for the plain form). */
void pyad__program_classify(pyad_program *p, uint32_t i, double c)
{
    const unsigned kind = p->ins[i].kind & PYAD_KIND_MASK, op = kind & PYAD_OP_MASK,
                   form = kind >> PYAD_OP_BITS;
    double y, da, db;
    const unsigned keep = partials_of[op];
    if (keep == OPERANDS && form == PYAD_FORM_PLAIN) {
        p->ins[i].kind |= PYAD_OPERAND_BIT;
        p->ins[i].part = 0; /* unused; set so that equal programs are equal bytes */
    } else if ((keep == CONST || keep == OPERANDS) &&
               pyad__kernel((int)op, c, c, &y, &da, &db) == PYAD_OK) {
        /* the op table's partials at the constant (any value stands for the variable) */
        const uint32_t k = p->nstatic++;
        p->cpart[2 * k] = form == PYAD_FORM_CV ? 0.0 : da;
        p->cpart[2 * k + 1] = pyad__arity[op] == 1 || form == PYAD_FORM_VC ? 0.0 : db;
        p->ins[i].kind |= PYAD_STATIC_BIT;
        p->ins[i].part = k;
    } else {
        p->ins[i].part = p->nstored++;
    }
}

/* Pass 3 for one needed non-input record s: instruction i. */
static int emit(builder *bd, pyad_program *p, uint32_t s, uint32_t i, uint32_t *nary_i,
                uint32_t *side_i, uint64_t *mat_i)
{
    pyad_tape *t = bd->t;
    const pyad_rec r = t->rec[s];
    const unsigned kind = t->kind[s], op = kind & PYAD_OP_MASK, form = kind >> PYAD_OP_BITS;
    int st = PYAD_OK;
    p->ins[i].kind = kind;
    if (r.b & PYAD_NARY_BIT) {
        const pyad_chunk *ch = &t->chunks[s >> PYAD_CHUNK_BITS];
        const uint32_t count = nary_count(t, s), made = instructions_of(t, s);
        /* a group's first output: instructions i .. i + made - 1, one per output, which share
           its operand list (and a matvec's matrix, copied once) */
        const uint64_t nmat = matrix_of(t, s);
        if (nmat > 0) {
            const pyad_matvec g = pyad__matvec_of(t, s);
            if ((st = pyad__matvec_check(t, g, NULL, 0, g.rows)) != PYAD_OK)
                return st; /* a borrowed matrix changed since it was recorded */
            memcpy(p->mat + *mat_i, g.c, (size_t)nmat * sizeof *p->mat);
        }
        for (uint32_t j = 0; j < made; j++) {
            p->ins[i + j] = (pyad_instr){*nary_i, PYAD_NARY_BIT, kind, 0};
            p->nary[(*nary_i)++] = (pyad_nary_ref){*side_i, count, j, made, *mat_i};
        }
        *mat_i += nmat;
        for (uint32_t e = r.a; e < r.a + count; e++) {
            const uint32_t o = ch->side_slot[e];
            p->side[(*side_i)++] = o == s ? const_ref(bd, ch->side_val[e], &st) : o;
        }
        return st;
    }
    if (pyad__arity[op] == 1) {
        p->ins[i].a = r.a;
        p->ins[i].b = 0 | CONST_TAG; /* constant 0: 0.0 */
    } else if (form == PYAD_FORM_VC) {
        p->ins[i].a = r.a;
        p->ins[i].b = const_ref(bd, r.db, &st);
    } else if (form == PYAD_FORM_CV) {
        p->ins[i].a = const_ref(bd, r.db, &st);
        p->ins[i].b = r.a;
    } else {
        p->ins[i].a = r.a;
        p->ins[i].b = r.b;
    }
    pyad__program_classify(p, i, form == PYAD_FORM_PLAIN ? 0.0 : r.db);
    return st;
}

/* Operand references (tape slots or tagged constants) become program slots. */
static void resolve_refs(const builder *bd, pyad_program *p)
{
    for (uint32_t i = 0; i < p->nrec; i++) {
        if (pyad__is_nary(p->ins[i].kind))
            continue;
        p->ins[i].a = slot_of(bd, p, p->ins[i].a);
        p->ins[i].b = slot_of(bd, p, p->ins[i].b);
    }
    for (uint32_t e = 0; e < p->nside; e++)
        p->side[e] = slot_of(bd, p, p->side[e]);
    for (uint32_t j = 0; j < p->nout; j++)
        p->out[j] = slot_of(bd, p, p->out[j]);
    for (uint32_t g = 0; g < p->nguard; g++) {
        p->guard[g].lhs = slot_of(bd, p, p->guard[g].lhs);
        p->guard[g].rhs = slot_of(bd, p, p->guard[g].rhs);
    }
}

/* Walk the reverse pass's writes to adjoints in its order and flag each slot's first one
   (see program.h); outputs are cleared and seeded before the sweep, so none of their writes
   is a first. */
static int mark_first_touches(pyad_program *p)
{
    const uint32_t ns = pyad__nslots(p), nwritable = p->nin + p->nrec;
    uint8_t *touched = pyad__calloc(ns ? ns : 1, 1);
    p->side_first = pyad__calloc(p->nside ? p->nside : 1, 1);
    if (touched == NULL || p->side_first == NULL) {
        free(touched);
        return PYAD_NOMEM;
    }
    for (uint32_t j = 0; j < p->nout; j++)
        touched[p->out[j]] = 2; /* seeded */
    for (uint32_t i = p->nrec; i-- > 0;) {
        pyad_instr *in = &p->ins[i];
        if (in->b & PYAD_NARY_BIT) {
            const pyad_nary_ref r = p->nary[in->a];
            if (r.index != r.rows - 1)
                continue; /* a group: swept at its last output */
            for (uint32_t e = r.first; e < r.first + r.count; e++)
                if (!touched[p->side[e]])
                    touched[p->side[e]] = p->side_first[e] = 1;
            continue;
        }
        if (!touched[in->a]) {
            touched[in->a] = 1;
            in->kind |= PYAD_FIRST_A;
        }
        if (!touched[in->b]) {
            touched[in->b] = 1;
            in->kind |= PYAD_FIRST_B;
        }
    }
    p->nzero = 0;
    for (uint32_t s = 0; s < nwritable; s++)
        p->nzero += touched[s] != 1;
    for (uint32_t s = nwritable; s < ns; s++)
        p->nzero += touched[s] == 2; /* a constant output */
    p->zero = pyad__malloc((p->nzero ? p->nzero : 1) * sizeof *p->zero);
    if (p->zero == NULL) {
        free(touched);
        return PYAD_NOMEM;
    }
    uint32_t k = 0;
    for (uint32_t s = 0; s < ns; s++)
        if (s < nwritable ? touched[s] != 1 : touched[s] == 2)
            p->zero[k++] = s;
    p->nbytes += p->nside + (size_t)p->nzero * sizeof *p->zero;
    free(touched);
    return PYAD_OK;
}

/* The fields that follow from the instructions once their operands are program slots and
   each unary or binary one is classified: maxn, cpart's size, first touches and the zero
   list. Building from a tape and loading a saved program both end here. */
int pyad__program_finish(pyad_program *p)
{
    p->maxn = 0;
    for (uint32_t k = 0; k < p->nnary; k++)
        if (p->nary[k].count > p->maxn)
            p->maxn = p->nary[k].count;
    /* cpart was sized for every instruction; keep the static ones' share */
    const size_t ncpart = p->nstatic ? 2 * (size_t)p->nstatic : 1;
    double *cpart = pyad__realloc(p->cpart, ncpart * sizeof *cpart);
    if (cpart != NULL) {
        p->cpart = cpart;
        p->nbytes -= 2 * (size_t)(p->nrec - p->nstatic) * sizeof *cpart;
    }
    return mark_first_touches(p);
}

static int build(builder *bd, pyad_program *p, const int64_t *inputs, const int64_t *outputs,
                 const double *out_consts, const int64_t *guard_h, const double *guard_c,
                 const int *guard_kind)
{
    pyad_tape *t = bd->t;
    const size_t cap = (size_t)t->cap_chunks * PYAD_CHUNK;
    bd->seq = pyad__malloc((t->nrecords ? t->nrecords : 1) * sizeof *bd->seq);
    bd->need = pyad__calloc(cap ? cap : 1, 1);
    bd->map = pyad__malloc((cap ? cap : 1) * sizeof *bd->map);
    if (!bd->seq || !bd->need || !bd->map)
        return PYAD_NOMEM;
    for (uint32_t k = 0; k < t->norder; k++) {
        const uint32_t c = t->order[k];
        for (uint32_t j = 0; j < t->chunks[c].fill; j++) {
            const uint32_t s = (c << PYAD_CHUNK_BITS) | j;
            bd->seq[bd->nseq++] = s;
            bd->map[s] = UNMAPPED;
        }
    }
    int st = pool_index(&bd->consts, 0.0) == UNMAPPED ? PYAD_NOMEM : PYAD_OK; /* constant 0 */

    /* inputs, outputs and guards: the roots */
    for (uint32_t i = 0; st == PYAD_OK && i < p->nin; i++) {
        uint32_t s = 0;
        if ((st = pyad__resolve(t, inputs[i], &s)) != PYAD_OK)
            break;
        if (!is_leaf(t, s) || bd->map[s] != UNMAPPED)
            return pyad__fail(t, PYAD_MISUSE, "input %u is not a leaf or is given twice", i);
        bd->map[s] = i;
    }
    for (uint32_t j = 0; st == PYAD_OK && j < p->nout; j++)
        if ((st = operand_ref(bd, outputs[j], out_consts ? out_consts[j] : 0.0, &p->out[j])) ==
                PYAD_OK &&
            !(p->out[j] & CONST_TAG))
            bd->need[p->out[j]] = 1;
    for (uint32_t g = 0; st == PYAD_OK && g < p->nguard; g++) {
        uint32_t side[2] = {0, 0};
        for (int k = 0; st == PYAD_OK && k < 2; k++) {
            st = operand_ref(bd, guard_h[2 * g + (uint32_t)k],
                             guard_c ? guard_c[2 * g + (uint32_t)k] : 0.0, &side[k]);
            if (st == PYAD_OK && !(side[k] & CONST_TAG))
                bd->need[side[k]] = 1;
        }
        if (guard_kind[g] < 0 || guard_kind[g] > 7)
            return pyad__fail(t, PYAD_MISUSE, "bad kind %d of guard %u", guard_kind[g], g);
        p->guard[g] = (pyad_guard){side[0], side[1], (uint32_t)guard_kind[g]};
    }
    if (st != PYAD_OK)
        return st;

    /* pass 1: mark, newest first */
    for (uint32_t at = bd->nseq; at-- > 0;)
        if (bd->need[bd->seq[at]] && (st = mark_operands(bd, bd->seq[at])) != PYAD_OK)
            return st;
    /* pass 2: count (a softmax at its first output, for all of them) */
    uint64_t nrec = 0, nnary = 0, nside = 0, nmat = 0;
    for (uint32_t at = 0; at < bd->nseq; at++) {
        const uint32_t s = bd->seq[at];
        if (!bd->need[s] || is_leaf(t, s) || is_later_output(t, s))
            continue;
        const uint32_t count = nary_count(t, s);
        const uint32_t made = instructions_of(t, s);
        nrec += made;
        nnary += t->rec[s].b & PYAD_NARY_BIT ? made : 0;
        nside += count;
        nmat += matrix_of(t, s);
    }
    if (p->nin + nrec + nside >= CONST_TAG)
        return pyad__fail(t, PYAD_FULL, "program too large");
    p->nrec = (uint32_t)nrec;
    p->nnary = (uint32_t)nnary;
    p->nside = (uint32_t)nside;
    p->nmat = nmat;
    /* pass 3: the instructions (outputs and guards were allocated by the caller) */
    if ((st = pyad__program_alloc(p)) != PYAD_OK)
        return st;
    uint32_t i = 0, nary_i = 0, side_i = 0;
    uint64_t mat_i = 0;
    for (uint32_t at = 0; at < bd->nseq && st == PYAD_OK; at++) {
        const uint32_t s = bd->seq[at];
        if (!bd->need[s] || bd->map[s] != UNMAPPED)
            continue;
        if (is_leaf(t, s)) {
            bd->map[s] = const_ref(bd, t->val[s], &st);
        } else if (is_later_output(t, s)) { /* emitted with its first output, mapped before */
            bd->map[s] = bd->map[pyad__group_head(t, s)] + (uint32_t)t->rec[s].da;
        } else {
            st = emit(bd, p, s, i, &nary_i, &side_i, &mat_i);
            bd->map[s] = p->nin + i;
            i += instructions_of(t, s);
        }
    }
    if (st != PYAD_OK)
        return st;
    p->nconst = bd->consts.n;
    p->consts = pyad__malloc(p->nconst * sizeof *p->consts);
    if (p->consts == NULL)
        return PYAD_NOMEM;
    memcpy(p->consts, bd->consts.val, p->nconst * sizeof *p->consts);
    p->nbytes += p->nconst * sizeof *p->consts;
    resolve_refs(bd, p);
    return pyad__program_finish(p);
}

int pyad_program_new(pyad_tape *t, int64_t nin, const int64_t *inputs, int64_t nout,
                     const int64_t *outputs, const double *out_consts, int64_t nguard,
                     const int64_t *guard_h, const double *guard_c, const int *guard_kind,
                     pyad_program **out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (out == NULL || nin < 0 || nout < 0 || nguard < 0 || nin > (int64_t)(CONST_TAG / 2) ||
        nout > (int64_t)UINT32_MAX || nguard > (int64_t)UINT32_MAX || (nin > 0 && inputs == NULL) ||
        (nout > 0 && outputs == NULL) || (nguard > 0 && (guard_h == NULL || guard_kind == NULL)))
        return pyad__fail(t, PYAD_MISUSE, "bad arguments to pyad_program_new");
    *out = NULL;
    pyad_program *p = pyad__calloc(1, sizeof *p);
    if (p == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for a program");
    p->nin = (uint32_t)nin;
    p->nout = (uint32_t)nout;
    p->nguard = (uint32_t)nguard;
    p->out = pyad__malloc((nout ? (size_t)nout : 1) * sizeof *p->out);
    p->guard = pyad__malloc((nguard ? (size_t)nguard : 1) * sizeof *p->guard);
    builder bd = {.t = t};
    st = (p->out && p->guard)
             ? build(&bd, p, inputs, outputs, out_consts, guard_h, guard_c, guard_kind)
             : PYAD_NOMEM;
    builder_free(&bd);
    if (st != PYAD_OK) {
        pyad_program_free(p);
        if (st == PYAD_NOMEM)
            return pyad__fail(t, st, "out of memory while compiling the tape");
        return st;
    }
    *out = p;
    return PYAD_OK;
}

int pyad_program_info(const pyad_program *p, int64_t *info)
{
    if (p == NULL || info == NULL)
        return PYAD_MISUSE;
    const int64_t v[8] = {p->nin,    p->nout,  p->nrec,   pyad__nslots(p),
                          p->nconst, p->nside, p->nguard, (int64_t)p->nbytes};
    memcpy(info, v, sizeof v);
    return PYAD_OK;
}
