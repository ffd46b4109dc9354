/*
 * program.h - a compiled program's layout, shared by program.c (building it from a tape) and
 * replay.c (evaluating it).
 *
 * Value slots: [0, nin) the inputs, [nin, nin + nrec) the instructions' results in order,
 * then the constants (constant 0 is 0.0: the b operand of unary instructions). Constants are
 * slots like any other so that every instruction reads its operands the same way; the
 * reverse sweep's writes to their adjoints are never read.
 *
 * Instruction i (ins[i], see pyad_instr): a and b the operand slots in the op's own order (for
 * a constant-operand form, the constant's slot), result slot nin + i. n-ary instructions:
 * b = PYAD_NARY_BIT and a indexes nary[], whose entry
 * lists its operands in side[first .. first + count) (dot: w0, x0, w1, x1, ...). A softmax is
 * `count` consecutive instructions sharing one operand list, output j having index j: the
 * forward pass computes all outputs at index 0, the reverse pass sweeps all at the last. A
 * matvec is its `rows` instructions likewise, sharing x's list and the matrix, held once in
 * mat[] (rows x count doubles, row-major).
 */
#ifndef PYAD_PROGRAM_H
#define PYAD_PROGRAM_H

#include "internal.h"

/* An n-ary instruction's operands: side[first .. first + count); of a group's (softmax,
   matvec) `rows` instructions, it is the one of the given index (others: rows 1, index 0). A
   matvec's row `index` of its matrix is mat[mat + index * count ...]. */
typedef struct pyad_nary_ref {
    uint32_t first, count, index, rows;
    uint64_t mat;
} pyad_nary_ref;

enum pyad_cmp { PYAD_CMP_LT = 0, PYAD_CMP_LE = 1, PYAD_CMP_GT = 2, PYAD_CMP_GE = 3 };
#define PYAD_CMP_HELD 4

/* One instruction. kind is op | form << PYAD_OP_BITS as on the tape, plus the class of its
   partials, which says what the forward pass stores for the reverse one:
   - PYAD_STATIC_BIT: partials that do not depend on the operands' values (add, sub, neg,
     multiplying by a constant) are kept in the program, cpart[2 part] and cpart[2 part + 1];
   - PYAD_OPERAND_BIT: a product's partials are its operands' values, read back from val;
   - neither: the forward pass stores them in the work buffer's pairs, number `part`.
   The two bits together are PYAD_VALUE_ONLY: the forward pass writes the value alone. */
typedef struct pyad_instr {
    uint32_t a, b, kind, part;
} pyad_instr;
#define PYAD_KIND_MASK 0xffu
#define PYAD_STATIC_BIT 0x100u
#define PYAD_OPERAND_BIT 0x200u
#define PYAD_VALUE_ONLY (PYAD_STATIC_BIT | PYAD_OPERAND_BIT)
/* First touches: the reverse pass's first write to an adjoint sets it (to 0 + the term, or 0
   where the term is skipped) instead of adding to it, so the adjoints need no clearing before
   a sweep. FIRST_A/B flag an instruction's operands; side_first the n-ary operand entries
   (a softmax's, for its last output); `zero` lists the slots no instruction writes first. */
#define PYAD_FIRST_A 0x400u
#define PYAD_FIRST_B 0x800u
#define PYAD_SWITCH_MASK (PYAD_KIND_MASK | PYAD_VALUE_ONLY)

typedef struct pyad_guard {
    uint32_t lhs, rhs, kind; /* kind: enum pyad_cmp | PYAD_CMP_HELD if it held */
} pyad_guard;

struct pyad_program {
    uint32_t nin, nrec, nconst, nout, nguard, nnary, nside;
    uint32_t maxn; /* most operands of one n-ary instruction */
    pyad_instr *ins;
    double *cpart;   /* 2 * nstatic: da, db of static instructions */
    uint32_t nstatic, nstored; /* instructions whose partials the program, the forward pass keep */
    pyad_nary_ref *nary;
    uint32_t *side;
    double *mat; /* the matvec matrices, nmat doubles */
    uint64_t nmat;
    uint8_t *side_first;
    uint32_t *zero, nzero; /* slots to clear before a sweep: outputs and untouched ones */
    double *consts;
    uint32_t *out;
    pyad_guard *guard;
    size_t nbytes;
};

static inline uint32_t pyad__nslots(const pyad_program *p)
{
    return p->nin + p->nrec + p->nconst;
}

static inline int pyad__is_nary(unsigned kind)
{
    return pyad__arity[kind & PYAD_OP_MASK] == PYAD_NARY;
}

/* program.c: the steps that building from a tape (pyad_program_new) and loading a saved
   program (saved.c) share, so that a loaded program's derived fields are computed by the same
   code: allocate, classify each unary and binary instruction in order, then finish. */
PYAD_INTERNAL int pyad__program_alloc(pyad_program *p);
PYAD_INTERNAL void pyad__program_classify(pyad_program *p, uint32_t i, double c);
PYAD_INTERNAL int pyad__program_finish(pyad_program *p);

#endif /* PYAD_PROGRAM_H */
