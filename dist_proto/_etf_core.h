/* Shared declarations of the compiled ETF codec core (dist_proto._etf_core).
 *
 * The core mirrors dist_proto.etf_decode / dist_proto.etf_encode value for value
 * and error for error; see docs/codec.md. It knows the term classes of
 * dist_proto.terms only through CoreState, filled in by configure().
 */
#ifndef BEAM_BRIDGE_ETF_CORE_H
#define BEAM_BRIDGE_ETF_CORE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define ATOM_CACHE_SLOTS 4096 /* direct-mapped: bounded memory, a miss only costs a rebuild */

typedef struct {
    PyObject *raw;   /* the atom text as it appeared on the wire (bytes), or NULL */
    PyObject *value; /* Atom, or True/False/None for the three special atoms */
    int latin1;      /* 1 for ATOM_EXT/SMALL_ATOM_EXT text */
} AtomSlot;

/* Per-module state: the term classes, Python helpers and slot offsets. */
typedef struct {
    int configured;
    PyObject *atom_type, *pid_type, *port_type, *ref_type, *export_type, *fun_type;
    PyObject *bits_type, *improper_type, *termmap_type;
    PyObject *decode_error, *unsupported;
    /* Python helpers for rare paths (see dist_proto/etf_core.py) */
    PyObject *coerce, *as_string, *atom_ext, *big_ext, *float_ext, *encode_failed;
    PyObject *decode_slow, *encode_compressed, *rebuild_fun;
    /* codec options (dist_proto.mapping): the Mapping and Charlist classes, the
       __struct__ atom, and the Python encode_body for calls with a mapping */
    PyObject *mapping_type, *charlist_type, *struct_key, *encode_body_slow;
    /* the send-family control classes of dist_proto.control that scan_frames builds */
    PyObject *send_type, *reg_send_type, *send_sender_type, *alias_send_type;
    Py_ssize_t atom_salt;
    Py_ssize_t default_max_depth;
    /* byte offsets of __slots__ members inside instances */
    Py_ssize_t atom_name, atom_hash, atom_ext_off;
    Py_ssize_t pid_node, pid_id, pid_serial, pid_creation;
    Py_ssize_t port_node, port_id, port_creation;
    Py_ssize_t ref_node, ref_creation, ref_ids;
    Py_ssize_t export_module, export_function, export_arity;
    Py_ssize_t fun_data;
    Py_ssize_t bits_data, bits_bits;
    Py_ssize_t improper_items, improper_tail;
    Py_ssize_t send_to, send_msg, rs_from, rs_to, rs_msg, ss_from, ss_to, ss_msg;
    Py_ssize_t as_from, as_alias, as_msg;
    AtomSlot atoms[ATOM_CACHE_SLOTS];
} CoreState;

/* The value of an instance's __slots__ member at byte offset `off` (borrowed, may be NULL). */
#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* A distribution header's atom cache, resolved once (dist_context()). */
typedef struct {
    PyObject_HEAD
    Py_ssize_t size;         /* len(atom_cache), -1 when there is none */
    int strings, charlists;  /* codec options of the Mapping given to dist_context() */
    PyObject *struct_hook;   /* Mapping.struct_hook: hook(map, offset), or NULL */
    PyObject *resolved[256]; /* value of ATOM_CACHE_REF i; NULL when the entry is not an Atom */
} DecodeContext;

extern PyTypeObject DecodeContext_Type;

/* decode.c */
PyObject *core_decode_at(CoreState *st, PyObject *data, Py_ssize_t pos, DecodeContext *ctx,
                         Py_ssize_t max_depth, int zero_copy, Py_ssize_t *end);
PyObject *core_new_atom(CoreState *st, PyObject *name);

/* encode.c */
PyObject *core_encode(CoreState *st, PyObject *term, int versioned);

#endif
