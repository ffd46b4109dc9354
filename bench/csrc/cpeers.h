/* The C peers of pyad's replay benchmark (bench/cpeers.py builds and loads them).
 *
 * Two baselines that pyad.compile's replay is measured against:
 *
 *   rz_*  our re-creation of the C tape design of A. Rogozhnikov's "Fastest Autograd in the
 *         West" (2023): one op struct with up to 8 input node indices, values and adjoints in
 *         two arrays, a switch-based forward pass and a switch-based reverse pass that
 *         recomputes every local partial from the stored values;
 *   hw_*  value and gradient of workloads W1, W2 and W5 written by hand in plain loops: the
 *         floor that no tape can beat.
 *
 * Every entry point returns a status (RZ_OK or one of the codes below) and delivers results
 * through out-pointers; nothing here prints, aborts or asserts on caller input. A failed call
 * leaves the tape as it was.
 *
 * The lines between the CDEF markers are read verbatim by bench/cpeers.py as the cffi cdef, so
 * they hold declarations only: no preprocessor lines, no inline code.
 */
#ifndef PYAD_BENCH_CPEERS_H
#define PYAD_BENCH_CPEERS_H

/* CDEF BEGIN */
/* Status codes (0 is success). */
enum {
    RZ_OK = 0,
    RZ_NOMEM = 1,     /* an allocation failed */
    RZ_BADARG = 2,    /* NULL handle, unknown op, wrong arity or wrong input count */
    RZ_BADINDEX = 3,  /* a node index outside the tape */
    RZ_TOOBIG = 4     /* the tape would exceed INT_MAX nodes or ops */
};

/* Op types of the Rogozhnikov tape. Leaves (inputs, constants) are nodes without an op. */
enum {
    RZ_ADD = 0,      /* a + b */
    RZ_SUB = 1,      /* a - b */
    RZ_MUL = 2,      /* a * b (multiplying by a constant uses a constant node) */
    RZ_LOG = 3,      /* log(a) */
    RZ_SIN = 4,      /* sin(a) */
    RZ_EXP = 5,      /* exp(a) */
    RZ_SOFTPLUS = 6, /* max(a, 0) + log1p(exp(-|a|)) */
    RZ_SUM = 7,      /* 0 + a0 + a1 + ... (1 to 8 inputs, left to right) */
    RZ_SOFTMAX = 8,  /* exp(a_i - max) / sum: 1 to 8 inputs, as many consecutive outputs */
    RZ_N_OPTYPES = 9
};

/* The most inputs one op can have (the size of the struct's ins[] array). */
enum { RZ_MAX_INS = 8 };

typedef struct rz_tape rz_tape;

const char *rz_strstatus(int status);

rz_tape *rz_tape_new(void);
void rz_tape_free(rz_tape *t);

/* Leaves: an input (its value is replaced by rz_tape_set_inputs / rz_tape_replay, in the order
 * the inputs were created) or a constant. *node receives the new node's index. */
int rz_tape_input(rz_tape *t, double value, int *node);
int rz_tape_const(rz_tape *t, double value, int *node);

/* Append one op on the nodes ins[0..n_in-1] and evaluate it at once. *out receives its output
 * node (the first of n_in consecutive outputs for RZ_SOFTMAX). The last output appended is the
 * tape's output until rz_tape_set_output says otherwise. */
int rz_tape_append(rz_tape *t, int type, const int *ins, int n_in, int *out);
int rz_tape_set_output(rz_tape *t, int node);

int rz_tape_n_ops(const rz_tape *t);
int rz_tape_n_nodes(const rz_tape *t);
int rz_tape_n_inputs(const rz_tape *t);

/* n must equal the number of inputs. */
int rz_tape_set_inputs(rz_tape *t, const double *x, int n);
/* Recompute every op's output from its inputs, in recording order. */
int rz_tape_forward(rz_tape *t);
/* Zero all adjoints, seed out_node's with 1, sweep the ops in reverse. */
int rz_tape_backward(rz_tape *t, int out_node);
/* One evaluation: set inputs, forward, backward from the output node, then write the inputs'
 * adjoints to grad_out[0..n-1] and the output's value to *value_out. */
int rz_tape_replay(rz_tape *t, const double *x, int n, double *grad_out, double *value_out);

/* Copy the values (or adjoints) of nodes 0..n-1 out; n may not exceed the node count. */
int rz_tape_values(const rz_tape *t, double *out, int n);
int rz_tape_grads(const rz_tape *t, double *out, int n);

/* Hand-written value and gradient. W1 and W2: n parameters x[0..n-1], n >= 1. */
int hw_w1(const double *x, int n, double *grad_out, double *value_out);
int hw_w2(const double *x, int n, double *grad_out, double *value_out);

/* W5: the number of nodes (100 inputs plus every op's outputs) for n_ops ops, or -1 if that
 * does not fit in an int. */
int hw_w5_n_nodes(int n_ops);
/* W5 on x[0..99]: vals and adj are caller-owned work arrays of n_nodes = hw_w5_n_nodes(n_ops)
 * doubles (left holding every node's value and adjoint, node order as in WORKLOADS.md); the
 * adjoints of the 100 inputs go to grad_out[0..99] and the last node's value to *value_out. */
int hw_w5(const double *x, int n_x, int n_ops, double *vals, double *adj, int n_nodes,
          double *grad_out, double *value_out);
/* CDEF END */

#endif
