/*
 * saved.c - a program's portable form (pyad_program_save) and loading it back
 * (pyad_program_load). The layout is documented in docs/FORMAT.md.
 *
 * Only what cannot be derived is written: the input count, the op table's names (so that a
 * file names its ops, and op codes may move between versions of ops.def: the loader maps
 * them by name), each instruction's op, form and
 * operand slots (n-ary ones with their operand lists, a softmax's outputs with their index),
 * the constants, outputs and guards, all in little-endian order whatever the machine, and an
 * FNV-1a 64 checksum of every byte before it. Loading trusts nothing in the buffer: it checks
 * the sizes and the checksum, then every instruction in one pass that allocates nothing,
 * then builds the program and checks each operand slot as it copies it, and finally derives
 * the partial classes, first touches and zero list with program.c's own code
 * (pyad__program_classify and pyad__program_finish), so a loaded program is the very
 * structure pyad_program_new built and replays bit for bit like it. Any failure frees all
 * it allocated and says why in the caller's buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "program.h"

static const uint8_t MAGIC[8] = {'P', 'Y', 'A', 'D', 'P', 'R', 'O', 'G'};
#define FORMAT_VERSION 1u
#define HEADER_BYTES 48u  /* magic, version and nine u32 counts */
#define MAX_OP_NAME 32u
#define CHECKSUM_BYTES 8u
#define GUARD_BYTES 9u    /* lhs, rhs (u32) and kind (u8) */
/* A tape holds at most 2^28 records, inputs included; and slots must stay clear of
   PYAD_NARY_BIT. Inputs are the one count that costs no bytes in the file, so its bound is
   what keeps a tiny hostile file from asking for gigabytes. */
#define MAX_INPUTS (1u << PYAD_SLOT_BITS)
#define MAX_SLOTS 0x7fffffffu

/* ---- bytes ---------------------------------------------------------------------------- */

static uint64_t fnv1a64(const uint8_t *b, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t le64(const uint8_t *b)
{
    return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
}

typedef struct writer {
    uint8_t *at;
} writer;

static void put_u8(writer *w, unsigned v)
{
    *w->at++ = (uint8_t)v;
}

static void put_u32(writer *w, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        *w->at++ = (uint8_t)(v >> (8 * k));
}

static void put_u64(writer *w, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        *w->at++ = (uint8_t)(v >> (8 * k));
}

/* Reads that fail, rather than overrun, at the end of their section. */
typedef struct reader {
    const uint8_t *at, *end;
} reader;

static int get_u8(reader *r, unsigned *v)
{
    if (r->at == r->end)
        return 0;
    *v = *r->at++;
    return 1;
}

static int get_u32(reader *r, uint32_t *v)
{
    if (r->end - r->at < 4)
        return 0;
    *v = le32(r->at);
    r->at += 4;
    return 1;
}

/* ---- saving --------------------------------------------------------------------------- */

static int is_unary(unsigned kind)
{
    return pyad__arity[kind & PYAD_OP_MASK] == 1;
}

/* Bytes of instruction i in the code section. */
static uint64_t code_bytes_of(const pyad_program *p, uint32_t i)
{
    const pyad_instr in = p->ins[i];
    if (!pyad__is_nary(in.kind))
        return is_unary(in.kind) ? 5 : 9;
    const pyad_nary_ref r = p->nary[in.a];
    const unsigned op = in.kind & PYAD_OP_MASK;
    if (op == PYAD_OP_MATVEC)
        return r.index == 0 ? 13 + 4 * (uint64_t)r.count + 8 * (uint64_t)r.rows * r.count : 5;
    if (op != PYAD_OP_SOFTMAX)
        return 5 + 4 * (uint64_t)r.count;
    return r.index == 0 ? 9 + 4 * (uint64_t)r.count : 5;
}

int pyad_program_save(const pyad_program *p, void *buf, int64_t cap, int64_t *size)
{
    if (p == NULL || size == NULL || (buf != NULL && cap < 0))
        return PYAD_MISUSE;
    uint64_t code = 0, table = 0;
    for (uint32_t i = 0; i < p->nrec; i++)
        code += code_bytes_of(p, i);
    if (code > UINT32_MAX)
        return PYAD_FULL;
    for (int op = 0; op < PYAD_OP_COUNT; op++)
        table += 1 + strlen(pyad_op_name(op));
    const uint64_t total = HEADER_BYTES + table + code + 8 * (uint64_t)p->nconst +
                           4 * (uint64_t)p->nout + GUARD_BYTES * (uint64_t)p->nguard +
                           CHECKSUM_BYTES;
    *size = (int64_t)total;
    if (buf == NULL)
        return PYAD_OK;
    if ((uint64_t)cap < total)
        return PYAD_MISUSE;
    writer w = {buf};
    memcpy(w.at, MAGIC, sizeof MAGIC);
    w.at += sizeof MAGIC;
    const uint32_t head[10] = {FORMAT_VERSION,  p->nin,        p->nrec,  p->nconst,
                               p->nout,         p->nguard,     p->nside, PYAD_OP_COUNT,
                               (uint32_t)table, (uint32_t)code};
    for (int k = 0; k < 10; k++)
        put_u32(&w, head[k]);
    for (int op = 0; op < PYAD_OP_COUNT; op++) {
        const char *name = pyad_op_name(op);
        const size_t n = strlen(name);
        put_u8(&w, (unsigned)n);
        memcpy(w.at, name, n);
        w.at += n;
    }
    for (uint32_t i = 0; i < p->nrec; i++) {
        const pyad_instr in = p->ins[i];
        put_u8(&w, in.kind & PYAD_KIND_MASK);
        if (!pyad__is_nary(in.kind)) {
            put_u32(&w, in.a);
            if (!is_unary(in.kind))
                put_u32(&w, in.b);
            continue;
        }
        const pyad_nary_ref r = p->nary[in.a];
        const unsigned op = in.kind & PYAD_OP_MASK;
        if (op == PYAD_OP_SOFTMAX || op == PYAD_OP_MATVEC) {
            put_u32(&w, r.index);
            if (r.index > 0)
                continue;
            if (op == PYAD_OP_MATVEC)
                put_u32(&w, r.rows);
        }
        put_u32(&w, r.count);
        for (uint32_t e = r.first; e < r.first + r.count; e++)
            put_u32(&w, p->side[e]);
        for (uint64_t e = 0; op == PYAD_OP_MATVEC && e < (uint64_t)r.rows * r.count; e++) {
            uint64_t bits;
            memcpy(&bits, &p->mat[r.mat + e], sizeof bits);
            put_u64(&w, bits);
        }
    }
    for (uint32_t j = 0; j < p->nconst; j++) {
        uint64_t bits;
        memcpy(&bits, &p->consts[j], sizeof bits);
        put_u64(&w, bits);
    }
    for (uint32_t j = 0; j < p->nout; j++)
        put_u32(&w, p->out[j]);
    for (uint32_t g = 0; g < p->nguard; g++) {
        put_u32(&w, p->guard[g].lhs);
        put_u32(&w, p->guard[g].rhs);
        put_u8(&w, p->guard[g].kind);
    }
    put_u64(&w, fnv1a64(buf, (size_t)(total - CHECKSUM_BYTES)));
    return PYAD_OK;
}

int pyad__saved_seal(void *buf, int64_t len)
{
    if (buf == NULL || len < (int64_t)CHECKSUM_BYTES)
        return PYAD_MISUSE;
    writer w = {(uint8_t *)buf + (len - CHECKSUM_BYTES)};
    put_u64(&w, fnv1a64(buf, (size_t)len - CHECKSUM_BYTES));
    return PYAD_OK;
}

/* ---- loading -------------------------------------------------------------------------- */

typedef struct loader {
    char *msg;
    size_t msgcap;
    uint32_t nin, nrec, nconst, nout, nguard, nside, nops, ntable, ncode;
    uint8_t opmap[1u << PYAD_OP_BITS]; /* the file's op code -> ours, or NO_OP */
    char opname[1u << PYAD_OP_BITS][MAX_OP_NAME + 1]; /* the file's names, for messages */
    reader code;                   /* the instruction section */
    const uint8_t *consts, *out, *guard;
    uint32_t nnary;                /* counted by the first pass */
    uint64_t nmat;                 /* ... and the matrix elements */
} loader;

static int bad(loader *ld, const char *fmt, ...) PYAD_PRINTF(2, 3);

static int bad(loader *ld, const char *fmt, ...)
{
    if (ld->msg != NULL && ld->msgcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->msg, ld->msgcap, fmt, ap);
        va_end(ap);
    }
    return PYAD_BADFORMAT;
}

#define NO_OP 0xffu

/* The file's op names, mapped to our op codes by name; a name we lack is an error only where
   an instruction uses it (scan_code). */
static int read_op_table(loader *ld, reader r)
{
    if (ld->nops == 0 || ld->nops > (1u << PYAD_OP_BITS))
        return bad(ld, "an op table of %u ops; op codes have %u bits", ld->nops, PYAD_OP_BITS);
    for (uint32_t k = 0; k < ld->nops; k++) {
        unsigned n;
        if (!get_u8(&r, &n) || n == 0 || n > MAX_OP_NAME || (size_t)(r.end - r.at) < n)
            return bad(ld, "op table entry %u is not a name of 1 to %u bytes within the table", k,
                       MAX_OP_NAME);
        for (unsigned j = 0; j < n; j++) {
            const uint8_t c = r.at[j];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                return bad(ld, "op table entry %u has the byte 0x%02x, not [a-z0-9_]", k, c);
            ld->opname[k][j] = (char)c;
        }
        ld->opname[k][n] = '\0';
        r.at += n;
        ld->opmap[k] = NO_OP;
        for (int op = 0; op < PYAD_OP_COUNT; op++)
            if (strcmp(ld->opname[k], pyad_op_name(op)) == 0)
                ld->opmap[k] = (uint8_t)op;
        for (uint32_t j = 0; j < k; j++)
            if (strcmp(ld->opname[j], ld->opname[k]) == 0)
                return bad(ld, "op table entries %u and %u are both %s", j, k, ld->opname[k]);
    }
    if (r.at != r.end)
        return bad(ld, "%lld bytes after the op table's last entry", (long long)(r.end - r.at));
    return PYAD_OK;
}

/* The header, the sizes and the checksum. */
static int check_frame(loader *ld, const uint8_t *b, int64_t len)
{
    const uint64_t least = HEADER_BYTES + CHECKSUM_BYTES;
    if (len < (int64_t)least)
        return bad(ld, "truncated: %lld bytes, a saved program has at least %llu", (long long)len,
                   (unsigned long long)least);
    if (memcmp(b, MAGIC, sizeof MAGIC) != 0)
        return bad(ld, "bad magic: not a saved pyad program");
    uint32_t head[10];
    for (int k = 0; k < 10; k++)
        head[k] = le32(b + sizeof MAGIC + 4 * k);
    if (head[0] != FORMAT_VERSION)
        return bad(ld, "format version %u, this pyad reads version %u", head[0], FORMAT_VERSION);
    ld->nin = head[1];
    ld->nrec = head[2];
    ld->nconst = head[3];
    ld->nout = head[4];
    ld->nguard = head[5];
    ld->nside = head[6];
    ld->nops = head[7];
    ld->ntable = head[8];
    ld->ncode = head[9];
    const uint64_t total = HEADER_BYTES + (uint64_t)ld->ntable + ld->ncode +
                           8 * (uint64_t)ld->nconst + 4 * (uint64_t)ld->nout +
                           GUARD_BYTES * (uint64_t)ld->nguard + CHECKSUM_BYTES;
    if (total != (uint64_t)len)
        return bad(ld, "%s: the header describes %llu bytes, the buffer has %lld",
                   total > (uint64_t)len ? "truncated" : "trailing bytes",
                   (unsigned long long)total, (long long)len);
    const uint64_t sum = le64(b + len - CHECKSUM_BYTES);
    if (fnv1a64(b, (size_t)len - CHECKSUM_BYTES) != sum)
        return bad(ld, "checksum mismatch: the data is corrupted");
    if (ld->nin > MAX_INPUTS)
        return bad(ld, "%u inputs, at most %u are possible", ld->nin, MAX_INPUTS);
    if ((uint64_t)ld->nin + ld->nrec + ld->nconst > MAX_SLOTS)
        return bad(ld, "%llu value slots, at most %u are possible",
                   (unsigned long long)ld->nin + ld->nrec + ld->nconst, MAX_SLOTS);
    if (ld->nconst == 0)
        return bad(ld, "no constants: constant 0 (the value 0.0) is always present");
    const uint8_t *code = b + HEADER_BYTES + ld->ntable;
    if (le64(code + ld->ncode) != 0)
        return bad(ld, "constant 0 is not 0.0");
    ld->code = (reader){code, code + ld->ncode};
    ld->consts = ld->code.end;
    ld->out = ld->consts + 8 * (size_t)ld->nconst;
    ld->guard = ld->out + 4 * (size_t)ld->nout;
    return read_op_table(ld, (reader){b + HEADER_BYTES, code});
}

static const char *op_name(unsigned op)
{
    return pyad_op_name((int)op);
}

/* Pass 1: every instruction's op, form and shape, and the n-ary lists' lengths; counts the
   n-ary instructions. Nothing is allocated yet, so a lying count costs nothing. */
static int scan_code(loader *ld)
{
    reader r = ld->code;
    uint64_t nside = 0;
    uint32_t group = 0, next = 0; /* an open group: its size and next index */
    unsigned group_op = 0;        /* ... and its op */
    ld->nnary = 0;
    ld->nmat = 0;
    for (uint32_t i = 0; i < ld->nrec; i++) {
        unsigned kind;
        if (!get_u8(&r, &kind))
            return bad(ld, "the code section ends before instruction %u of %u", i, ld->nrec);
        const unsigned code = kind & PYAD_OP_MASK, form = kind >> PYAD_OP_BITS;
        if (code >= ld->nops)
            return bad(ld, "instruction %u has op code %u, past the %u ops of the op table", i,
                       code, ld->nops);
        const unsigned op = ld->opmap[code];
        if (op == NO_OP)
            return bad(ld, "instruction %u uses the op %s, which this pyad does not have", i,
                       ld->opname[code]);
        const int arity = pyad__arity[op];
        if (group != next && op != group_op)
            return bad(ld, "instruction %u (%s) interrupts a %s of %u outputs at output %u", i,
                       op_name(op), op_name(group_op), group, next);
        if (arity == 0 || op == PYAD_OP_PRIMITIVE)
            return bad(ld, "instruction %u is a %s, which a program cannot hold", i, op_name(op));
        if (form > (arity == 2 ? (unsigned)PYAD_FORM_CV : (unsigned)PYAD_FORM_PLAIN))
            return bad(ld, "instruction %u (%s) has unknown form %u", i, op_name(op), form);
        uint32_t skip = arity == 1 ? 4 : 8, count = 0, rows = 0;
        if (arity == PYAD_NARY) {
            ld->nnary++;
            if (op == PYAD_OP_SOFTMAX || op == PYAD_OP_MATVEC) {
                uint32_t index;
                if (!get_u32(&r, &index))
                    return bad(ld, "the code section ends inside instruction %u", i);
                if (index != next)
                    return bad(ld,
                               "instruction %u is output %u of a %s where output %u was "
                               "due",
                               i, index, op_name(op), next);
                if (index > 0) {
                    next = next + 1 == group ? 0 : next + 1;
                    if (next == 0)
                        group = 0;
                    continue;
                }
            }
            if (op == PYAD_OP_MATVEC && !get_u32(&r, &rows))
                return bad(ld, "the code section ends inside instruction %u", i);
            if (op == PYAD_OP_MATVEC && rows == 0)
                return bad(ld, "instruction %u is a matvec of no rows", i);
            if (op == PYAD_OP_MATVEC && rows > ld->nrec - i)
                return bad(ld,
                           "instruction %u starts a matvec of %u outputs, past the last "
                           "instruction",
                           i, rows);
            if (!get_u32(&r, &count))
                return bad(ld, "the code section ends inside instruction %u", i);
            if ((op == PYAD_OP_LOGSUMEXP || op == PYAD_OP_SOFTMAX) && count == 0)
                return bad(ld, "instruction %u is a %s of no operands", i, op_name(op));
            if (op == PYAD_OP_DOT && count % 2 != 0)
                return bad(ld, "instruction %u is a dot of an odd number (%u) of operands", i,
                           count);
            if (count > (uint32_t)((r.end - r.at) / 4))
                return bad(ld, "instruction %u lists %u operands past the code section's end", i,
                           count);
            if (op == PYAD_OP_SOFTMAX && count > ld->nrec - i)
                return bad(ld,
                           "instruction %u starts a softmax of %u outputs, past the last "
                           "instruction",
                           i, count);
            const uint32_t outputs = op == PYAD_OP_SOFTMAX ? count : rows;
            if ((op == PYAD_OP_SOFTMAX || op == PYAD_OP_MATVEC) && outputs > 1) {
                group = outputs;
                next = 1;
                group_op = op;
            }
            nside += count;
            skip = 4 * count;
            if (op == PYAD_OP_MATVEC) {
                /* its matrix, rows x count doubles, within what remains of the section */
                const uint64_t m = (uint64_t)rows * count;
                if (m > (uint64_t)(r.end - r.at - skip) / 8)
                    return bad(ld,
                               "instruction %u holds a %u x %u matrix past the code section's "
                               "end",
                               i, rows, count);
                ld->nmat += m;
                r.at += skip + 8 * m;
                skip = 0;
            }
        }
        if ((size_t)(r.end - r.at) < skip)
            return bad(ld, "the code section ends inside instruction %u", i);
        r.at += skip;
    }
    if (group != next)
        return bad(ld, "the last %s ends at output %u of %u", op_name(group_op), next, group);
    if (r.at != r.end)
        return bad(ld, "%lld bytes of code after the last instruction", (long long)(r.end - r.at));
    if (nside != ld->nside)
        return bad(ld, "the header counts %u n-ary operand entries, the code has %llu", ld->nside,
                   (unsigned long long)nside);
    return PYAD_OK;
}

/* Where operand slot s of instruction i may point: an input, an earlier instruction's result
   or a constant; never the instruction itself or a later one. */
static int check_operand(loader *ld, uint32_t i, const char *which, uint32_t s)
{
    const uint64_t results = (uint64_t)ld->nin + ld->nrec, slots = results + ld->nconst;
    if (s < (uint64_t)ld->nin + i || (s >= results && s < slots))
        return PYAD_OK;
    if (s >= slots)
        return bad(ld, "instruction %u reads %s slot %u, past the %llu slots", i, which, s,
                   (unsigned long long)slots);
    return bad(ld, "instruction %u reads %s slot %u, not computed before it", i, which, s);
}

static int check_constant(loader *ld, uint32_t i, const char *which, uint32_t s)
{
    const uint64_t results = (uint64_t)ld->nin + ld->nrec;
    if (s >= results && s < results + ld->nconst)
        return PYAD_OK;
    return bad(ld, "instruction %u takes a constant as %s operand, but slot %u is not a constant",
               i, which, s);
}

/* Pass 2: copy the instructions into p, checking every operand slot, and classify the
   unary and binary ones in order (as pyad_program_new's emit does). */
static int fill_code(loader *ld, pyad_program *p)
{
    reader r = ld->code;
    const uint32_t zero_slot = p->nin + p->nrec; /* constant 0 */
    uint32_t nary_i = 0, side_i = 0, count = 0;
    uint64_t mat_i = 0;
    int st = PYAD_OK;
    for (uint32_t i = 0; i < p->nrec && st == PYAD_OK; i++) {
        unsigned kind = 0;
        uint32_t a = 0, b = 0, index = 0;
        get_u8(&r, &kind); /* shapes and op codes were checked by scan_code */
        const unsigned op = ld->opmap[kind & PYAD_OP_MASK], form = kind >> PYAD_OP_BITS;
        kind = op | form << PYAD_OP_BITS;
        pyad_instr *in = &p->ins[i];
        in->kind = kind;
        in->part = 0;
        if (pyad__arity[op] == PYAD_NARY) {
            in->a = nary_i;
            in->b = PYAD_NARY_BIT;
            if (op == PYAD_OP_SOFTMAX || op == PYAD_OP_MATVEC)
                get_u32(&r, &index);
            if (index > 0) { /* a group's later outputs share the operands of its first */
                p->nary[nary_i] = p->nary[nary_i - 1];
                p->nary[nary_i++].index = index;
                continue;
            }
            uint32_t rows = 1;
            if (op == PYAD_OP_MATVEC)
                get_u32(&r, &rows);
            get_u32(&r, &count);
            if (op == PYAD_OP_SOFTMAX)
                rows = count;
            p->nary[nary_i++] = (pyad_nary_ref){side_i, count, 0, rows, mat_i};
            for (uint32_t e = 0; e < count && st == PYAD_OK; e++) {
                get_u32(&r, &p->side[side_i]);
                st = check_operand(ld, i, "n-ary operand", p->side[side_i++]);
            }
            for (uint64_t e = 0; op == PYAD_OP_MATVEC && e < (uint64_t)rows * count; e++) {
                const uint64_t bits = le64(r.at);
                memcpy(&p->mat[mat_i++], &bits, sizeof bits);
                r.at += 8;
            }
            continue;
        }
        get_u32(&r, &a);
        if (pyad__arity[op] == 1) {
            b = zero_slot;
            st = check_operand(ld, i, "operand", a);
        } else {
            get_u32(&r, &b);
            st = form == PYAD_FORM_CV ? check_constant(ld, i, "its first", a)
                                      : check_operand(ld, i, "first operand", a);
            if (st == PYAD_OK)
                st = form == PYAD_FORM_VC ? check_constant(ld, i, "its second", b)
                                          : check_operand(ld, i, "second operand", b);
        }
        if (st != PYAD_OK)
            break;
        in->a = a;
        in->b = b;
        const double c = form == PYAD_FORM_VC   ? p->consts[b - zero_slot]
                         : form == PYAD_FORM_CV ? p->consts[a - zero_slot]
                                                : 0.0;
        pyad__program_classify(p, i, c);
    }
    return st;
}

static int fill_rest(loader *ld, pyad_program *p)
{
    const uint32_t slots = pyad__nslots(p);
    for (uint32_t j = 0; j < p->nconst; j++) {
        const uint64_t bits = le64(ld->consts + 8 * (size_t)j);
        memcpy(&p->consts[j], &bits, sizeof bits);
    }
    for (uint32_t j = 0; j < p->nout; j++) {
        p->out[j] = le32(ld->out + 4 * (size_t)j);
        if (p->out[j] >= slots)
            return bad(ld, "output %u is slot %u, past the %u slots", j, p->out[j], slots);
    }
    for (uint32_t g = 0; g < p->nguard; g++) {
        const uint8_t *at = ld->guard + GUARD_BYTES * (size_t)g;
        p->guard[g] = (pyad_guard){le32(at), le32(at + 4), at[8]};
        if (p->guard[g].lhs >= slots || p->guard[g].rhs >= slots)
            return bad(ld, "guard %u compares slots %u and %u, past the %u slots", g,
                       p->guard[g].lhs, p->guard[g].rhs, slots);
        if (p->guard[g].kind > (PYAD_CMP_HELD | 3u))
            return bad(ld, "guard %u has unknown kind %u", g, p->guard[g].kind);
    }
    return PYAD_OK;
}

static int build(loader *ld, pyad_program *p)
{
    p->nin = ld->nin;
    p->nrec = ld->nrec;
    p->nconst = ld->nconst;
    p->nout = ld->nout;
    p->nguard = ld->nguard;
    p->nnary = ld->nnary;
    p->nside = ld->nside;
    p->nmat = ld->nmat;
    p->out = pyad__malloc((p->nout ? p->nout : 1) * sizeof *p->out);
    p->guard = pyad__malloc((p->nguard ? p->nguard : 1) * sizeof *p->guard);
    p->consts = pyad__malloc(p->nconst * sizeof *p->consts);
    if (p->out == NULL || p->guard == NULL || p->consts == NULL)
        return PYAD_NOMEM;
    int st = pyad__program_alloc(p);
    if (st != PYAD_OK)
        return st;
    p->nbytes += p->nconst * sizeof *p->consts; /* as pyad_program_new counts it */
    if ((st = fill_rest(ld, p)) != PYAD_OK || (st = fill_code(ld, p)) != PYAD_OK)
        return st;
    return pyad__program_finish(p);
}

int pyad_program_load(const void *buf, int64_t len, pyad_program **out, char *msg, int64_t msgcap)
{
    loader ld = {.msg = msg, .msgcap = msg != NULL && msgcap > 0 ? (size_t)msgcap : 0};
    if (ld.msgcap > 0)
        msg[0] = '\0';
    if (out == NULL || (buf == NULL && len != 0) || len < 0)
        return PYAD_MISUSE;
    *out = NULL;
    int st = check_frame(&ld, buf, len);
    if (st == PYAD_OK)
        st = scan_code(&ld);
    if (st != PYAD_OK)
        return st;
    pyad_program *p = pyad__calloc(1, sizeof *p);
    st = p != NULL ? build(&ld, p) : PYAD_NOMEM;
    if (st != PYAD_OK) {
        pyad_program_free(p);
        if (st == PYAD_NOMEM && ld.msgcap > 0)
            snprintf(msg, ld.msgcap, "out of memory while loading a program");
        return st;
    }
    *out = p;
    return PYAD_OK;
}
