/* The compiled ETF encoder: term_to_binary/1 (erts_term_to_binary in erts/emulator/beam/external.c).
 *
 * Writes straight into one growing bytes object. Containers are walked with an
 * explicit stack, so any nesting depth encodes. Exact types are encoded here;
 * anything else (subclasses, buffers) goes through the Python helper `coerce`
 * once, and the rare forms (bignums, atoms not yet encoded, errors) through the
 * pure encoder's own functions, so both encoders give the same bytes and errors.
 */
#include "_etf_core.h"
#include <math.h>
#include <string.h>

typedef struct {
    PyObject *bytes;
    unsigned char *p;
    Py_ssize_t len, cap;
} Out;

enum { E_TUPLE, E_LIST, E_IMPROPER, E_DICT, E_PAIRS };

typedef struct {
    int kind;
    PyObject *obj;      /* the container (a list of pairs for E_PAIRS) */
    Py_ssize_t i, n;
    Py_ssize_t dict_pos;
    PyObject *pending;  /* E_DICT: the value of the key just written */
    PyObject *tail;     /* E_IMPROPER: the tail, until written */
} EFrame;

static int out_grow(Out *o, Py_ssize_t need)
{
    Py_ssize_t cap = o->cap * 2;
    if (cap - o->len < need)
        cap = o->len + need + 64;
    if (_PyBytes_Resize(&o->bytes, cap) < 0)
        return -1;
    o->p = (unsigned char *)PyBytes_AS_STRING(o->bytes);
    o->cap = cap;
    return 0;
}

#define RESERVE(k) \
    do { if (o->cap - o->len < (Py_ssize_t)(k) && out_grow(o, (k)) < 0) return -1; } while (0)

static inline void put8(Out *o, unsigned v) { o->p[o->len++] = (unsigned char)v; }
static inline void put16(Out *o, unsigned v)
{
    o->p[o->len++] = (unsigned char)(v >> 8);
    o->p[o->len++] = (unsigned char)v;
}
static inline void put32(Out *o, uint32_t v)
{
    unsigned char *p = o->p + o->len;
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    o->len += 4;
}

static int put_raw(Out *o, const void *data, Py_ssize_t n)
{
    RESERVE(n);
    memcpy(o->p + o->len, data, n);
    o->len += n;
    return 0;
}

static int put_bytes_obj(Out *o, PyObject *b)
{
    return put_raw(o, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
}

static int out_of_range(const char *what)
{
    PyErr_Format(PyExc_ValueError, "a value is out of range for its Erlang form (%s)", what);
    return -1;
}

/* The unsigned 32-bit value of an int field of a pid, port or reference. */
static int u32_of(PyObject *v, uint32_t *out)
{
    if (v == NULL || !PyLong_Check(v))
        return out_of_range("required argument is not an integer");
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return out_of_range("argument out of range");
    }
    if (x > 0xFFFFFFFFull)
        return out_of_range("argument out of range");
    *out = (uint32_t)x;
    return 0;
}

/* An Atom's encoded form (borrowed); the pure encoder fills it in when not yet cached. */
static PyObject *atom_ext(CoreState *st, PyObject *atom)
{
    PyObject *ext = SLOT(atom, st->atom_ext_off);
    if (ext != NULL && PyBytes_CheckExact(ext))
        return ext;
    ext = PyObject_CallOneArg(st->atom_ext, atom);
    if (ext == NULL)
        return NULL;
    Py_DECREF(ext); /* now held by the atom's _ext slot */
    ext = SLOT(atom, st->atom_ext_off);
    if (ext == NULL || !PyBytes_CheckExact(ext)) {
        PyErr_SetString(PyExc_SystemError, "Atom._ext was not filled in");
        return NULL;
    }
    return ext;
}

static int put_node(CoreState *st, Out *o, PyObject *node)
{
    if (node == NULL || Py_TYPE(node) != (PyTypeObject *)st->atom_type) {
        PyErr_Format(PyExc_TypeError, "expected an Atom, got %s",
                     node ? Py_TYPE(node)->tp_name : "nothing");
        return -1;
    }
    PyObject *ext = atom_ext(st, node);
    return ext ? put_bytes_obj(o, ext) : -1;
}

static int put_int(CoreState *st, Out *o, PyObject *x)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (overflow) {
        PyObject *ext = PyObject_CallOneArg(st->big_ext, x);
        if (ext == NULL)
            return -1;
        int r = put_bytes_obj(o, ext);
        Py_DECREF(ext);
        return r;
    }
    if (v == -1 && PyErr_Occurred())
        return -1;
    RESERVE(11);
    if (v >= 0 && v <= 255) {
        put8(o, 97);
        put8(o, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put8(o, 98);
        put32(o, (uint32_t)(int32_t)v);
    } else {
        unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        unsigned n = 0;
        for (unsigned long long m = mag; m; m >>= 8)
            n++;
        put8(o, 110);
        put8(o, n);
        put8(o, v < 0);
        for (unsigned i = 0; i < n; i++)
            put8(o, (unsigned)(mag >> (8 * i)) & 255);
    }
    return 0;
}

static int put_binary(Out *o, const char *data, Py_ssize_t n)
{
    if ((unsigned long long)n > 0xFFFFFFFFull)
        return out_of_range("argument out of range");
    RESERVE(5 + n);
    put8(o, 109);
    put32(o, (uint32_t)n);
    memcpy(o->p + o->len, data, n);
    o->len += n;
    return 0;
}

/* 1 and STRING_EXT written when `list` is 1..65535 integers 0..255 (as BEAM encodes it). */
static int put_string(CoreState *st, Out *o, PyObject *list)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (n > 65535)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PyList_GET_ITEM(list, i);
        if (PyLong_CheckExact(x)) {
            int overflow;
            long v = PyLong_AsLongAndOverflow(x, &overflow);
            if (overflow || v < 0 || v > 255)
                return 0;
        } else if (i == 0 || PyBool_Check(x)) {
            return 0;
        } else { /* an int-like object: let the pure rule decide */
            PyObject *s = PyObject_CallOneArg(st->as_string, list);
            if (s == NULL)
                return -1;
            int r = 0;
            if (PyBytes_CheckExact(s)) {
                RESERVE(3 + PyBytes_GET_SIZE(s));
                put8(o, 107);
                put16(o, (unsigned)PyBytes_GET_SIZE(s));
                r = put_bytes_obj(o, s) < 0 ? -1 : 1;
            }
            Py_DECREF(s);
            return r;
        }
    }
    RESERVE(3 + n);
    put8(o, 107);
    put16(o, (unsigned)n);
    for (Py_ssize_t i = 0; i < n; i++)
        put8(o, (unsigned)PyLong_AsLong(PyList_GET_ITEM(list, i)));
    return 1;
}

static int put_record(CoreState *st, Out *o, PyObject *x, PyTypeObject *t)
{
    uint32_t a, b, c;
    if (t == (PyTypeObject *)st->pid_type) {
        RESERVE(1);
        put8(o, 88);
        if (put_node(st, o, SLOT(x, st->pid_node)) < 0 || u32_of(SLOT(x, st->pid_id), &a) < 0
            || u32_of(SLOT(x, st->pid_serial), &b) < 0 || u32_of(SLOT(x, st->pid_creation), &c) < 0)
            return -1;
        RESERVE(12);
        put32(o, a);
        put32(o, b);
        put32(o, c);
        return 0;
    }
    if (t == (PyTypeObject *)st->ref_type) {
        PyObject *ids = SLOT(x, st->ref_ids);
        Py_ssize_t n = ids && PyTuple_Check(ids) ? PyTuple_GET_SIZE(ids) : 0;
        if (n < 1 || n > 5) {
            PyErr_Format(PyExc_ValueError, "a reference has 1..5 ID words, not %zd", n);
            return -1;
        }
        RESERVE(3);
        put8(o, 90);
        put16(o, (unsigned)n);
        if (put_node(st, o, SLOT(x, st->ref_node)) < 0 || u32_of(SLOT(x, st->ref_creation), &a) < 0)
            return -1;
        RESERVE(4 + 4 * n);
        put32(o, a);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (u32_of(PyTuple_GET_ITEM(ids, i), &b) < 0)
                return -1;
            put32(o, b);
        }
        return 0;
    }
    if (t == (PyTypeObject *)st->port_type) {
        PyObject *id = SLOT(x, st->port_id);
        unsigned long long v = id && PyLong_Check(id) ? PyLong_AsUnsignedLongLong(id) : 0;
        if (id == NULL || !PyLong_Check(id) || (v == (unsigned long long)-1 && PyErr_Occurred())) {
            PyErr_Clear();
            return out_of_range("argument out of range");
        }
        RESERVE(1);
        put8(o, v <= 0xFFFFFFFFull ? 89 : 120);
        if (put_node(st, o, SLOT(x, st->port_node)) < 0
            || u32_of(SLOT(x, st->port_creation), &a) < 0)
            return -1;
        RESERVE(12);
        if (v > 0xFFFFFFFFull) {
            put32(o, (uint32_t)(v >> 32));
        }
        put32(o, (uint32_t)v);
        put32(o, a);
        return 0;
    }
    if (t == (PyTypeObject *)st->export_type) {
        PyObject *ar = SLOT(x, st->export_arity);
        long arity = ar && PyLong_Check(ar) ? PyLong_AsLong(ar) : -1;
        if (arity < 0 || arity > 255) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "fun arity must be 0..255, not %R", ar ? ar : Py_None);
            return -1;
        }
        RESERVE(1);
        put8(o, 113);
        if (put_node(st, o, SLOT(x, st->export_module)) < 0
            || put_node(st, o, SLOT(x, st->export_function)) < 0)
            return -1;
        RESERVE(2);
        put8(o, 97);
        put8(o, (unsigned)arity);
        return 0;
    }
    if (t == (PyTypeObject *)st->bits_type) {
        PyObject *data = SLOT(x, st->bits_data), *bits = SLOT(x, st->bits_bits);
        if (data == NULL || !PyBytes_CheckExact(data) || bits == NULL || !PyLong_Check(bits))
            return out_of_range("malformed BitString");
        long nb = PyLong_AsLong(bits);
        if (nb == 8)
            return put_binary(o, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
        if (nb < 0 || nb > 255 || (unsigned long long)PyBytes_GET_SIZE(data) > 0xFFFFFFFFull) {
            PyErr_Clear();
            return out_of_range("argument out of range");
        }
        RESERVE(6);
        put8(o, 77);
        put32(o, (uint32_t)PyBytes_GET_SIZE(data));
        put8(o, (unsigned)nb);
        return put_bytes_obj(o, data);
    }
    if (t == (PyTypeObject *)st->fun_type) {
        PyObject *data = SLOT(x, st->fun_data);
        if (data == NULL || !PyBytes_CheckExact(data))
            return out_of_range("malformed Fun");
        return put_bytes_obj(o, data);
    }
    return 1; /* not a record type */
}

static int push(EFrame **stack, Py_ssize_t *sp, Py_ssize_t *cap, int kind, PyObject *obj,
                Py_ssize_t n, PyObject *tail)
{
    if (*sp == *cap) {
        Py_ssize_t ncap = *cap * 2;
        EFrame *grown = PyMem_Realloc(*stack, ncap * sizeof(EFrame));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        *stack = grown;
        *cap = ncap;
    }
    EFrame *f = &(*stack)[(*sp)++];
    f->kind = kind;
    Py_INCREF(obj);
    f->obj = obj;
    f->i = 0;
    f->n = n;
    f->dict_pos = 0;
    f->pending = NULL;
    Py_XINCREF(tail);
    f->tail = tail;
    return 0;
}

static void frame_clear(EFrame *f)
{
    Py_CLEAR(f->obj);
    Py_CLEAR(f->pending);
    Py_CLEAR(f->tail);
}

typedef struct {
    EFrame *stack;
    Py_ssize_t sp, cap;
} EStack;

/* Write `x`; a container writes its head and is pushed for its elements. */
static int encode_one(CoreState *st, Out *o, EStack *s, PyObject *x, int coerced)
{
    PyTypeObject *t = Py_TYPE(x);
    if (t == (PyTypeObject *)st->atom_type) {
        PyObject *ext = atom_ext(st, x);
        return ext ? put_bytes_obj(o, ext) : -1;
    }
    if (t == &PyLong_Type)
        return put_int(st, o, x);
    if (t == &PyTuple_Type) {
        Py_ssize_t n = PyTuple_GET_SIZE(x);
        RESERVE(5);
        if (n < 256) {
            put8(o, 104);
            put8(o, (unsigned)n);
        } else {
            put8(o, 105);
            put32(o, (uint32_t)n);
        }
        return n ? push(&s->stack, &s->sp, &s->cap, E_TUPLE, x, n, NULL) : 0;
    }
    if (t == &PyBytes_Type)
        return put_binary(o, PyBytes_AS_STRING(x), PyBytes_GET_SIZE(x));
    if (t == &PyList_Type) {
        Py_ssize_t n = PyList_GET_SIZE(x);
        if (n == 0) {
            RESERVE(1);
            put8(o, 106);
            return 0;
        }
        int r = put_string(st, o, x);
        if (r != 0)
            return r < 0 ? -1 : 0;
        RESERVE(5);
        put8(o, 108);
        put32(o, (uint32_t)n);
        return push(&s->stack, &s->sp, &s->cap, E_LIST, x, n, NULL);
    }
    if (t == &PyDict_Type) {
        Py_ssize_t n = PyDict_GET_SIZE(x);
        RESERVE(5);
        put8(o, 116);
        put32(o, (uint32_t)n);
        return n ? push(&s->stack, &s->sp, &s->cap, E_DICT, x, n, NULL) : 0;
    }
    if (x == Py_True)
        return put_raw(o, "w\x04true", 6);
    if (x == Py_False)
        return put_raw(o, "w\x05" "false", 7);
    if (x == Py_None)
        return put_raw(o, "w\x09undefined", 11);
    if (t == &PyFloat_Type) {
        double v = PyFloat_AS_DOUBLE(x);
        if (!isfinite(v)) {
            PyObject *r = PyObject_CallOneArg(st->float_ext, x); /* raises the pure error */
            Py_XDECREF(r);
            if (r != NULL)
                PyErr_SetString(PyExc_SystemError, "non-finite float was encoded");
            return -1;
        }
        uint64_t bits;
        memcpy(&bits, &v, 8);
        RESERVE(9);
        put8(o, 70);
        put32(o, (uint32_t)(bits >> 32));
        put32(o, (uint32_t)bits);
        return 0;
    }
    if (t == &PyUnicode_Type) {
        Py_ssize_t n;
        const char *raw = PyUnicode_AsUTF8AndSize(x, &n);
        return raw ? put_binary(o, raw, n) : -1;
    }
    if (t == (PyTypeObject *)st->termmap_type) {
        PyObject *pairs = PyObject_CallMethod(x, "items", NULL);
        if (pairs == NULL)
            return -1;
        if (!PyList_CheckExact(pairs)) {
            Py_SETREF(pairs, PySequence_List(pairs));
            if (pairs == NULL)
                return -1;
        }
        Py_ssize_t n = PyList_GET_SIZE(pairs);
        int r = 0;
        if (o->cap - o->len < 5 && out_grow(o, 5) < 0)
            r = -1;
        else {
            put8(o, 116);
            put32(o, (uint32_t)n);
            if (n)
                r = push(&s->stack, &s->sp, &s->cap, E_PAIRS, pairs, 2 * n, NULL);
        }
        Py_DECREF(pairs);
        return r;
    }
    if (t == (PyTypeObject *)st->improper_type) {
        PyObject *items = SLOT(x, st->improper_items), *tail = SLOT(x, st->improper_tail);
        if (items == NULL || !PyTuple_CheckExact(items) || tail == NULL)
            return out_of_range("malformed ImproperList");
        RESERVE(5);
        put8(o, 108);
        put32(o, (uint32_t)PyTuple_GET_SIZE(items));
        return push(&s->stack, &s->sp, &s->cap, E_IMPROPER, items, PyTuple_GET_SIZE(items), tail);
    }
    int r = put_record(st, o, x, t);
    if (r <= 0)
        return r;
    if (coerced) { /* the helper returned a type it should not have */
        PyObject *exc = PyObject_CallOneArg(st->unsupported, x);
        if (exc != NULL) {
            PyErr_SetObject(st->unsupported, exc);
            Py_DECREF(exc);
        }
        return -1;
    }
    PyObject *plain = PyObject_CallOneArg(st->coerce, x); /* raises _Unsupported(x) */
    if (plain == NULL)
        return -1;
    r = encode_one(st, o, s, plain, 1);
    Py_DECREF(plain);
    return r;
}

/* The next element of the innermost open container (new reference), or NULL when all are done. */
static PyObject *next_item(Out *o, EStack *s, int *err)
{
    while (s->sp > 0) {
        EFrame *f = &s->stack[s->sp - 1];
        PyObject *x;
        switch (f->kind) {
        case E_TUPLE:
            if (f->i < f->n) {
                x = PyTuple_GET_ITEM(f->obj, f->i++);
                Py_INCREF(x);
                return x;
            }
            break;
        case E_LIST:
            if (f->i < f->n) {
                if (f->i >= PyList_GET_SIZE(f->obj)) {
                    PyErr_SetString(PyExc_RuntimeError, "list changed size during encoding");
                    *err = 1;
                    return NULL;
                }
                x = PyList_GET_ITEM(f->obj, f->i++);
                Py_INCREF(x);
                return x;
            }
            if (o->cap - o->len < 1 && out_grow(o, 1) < 0) {
                *err = 1;
                return NULL;
            }
            put8(o, 106);
            break;
        case E_IMPROPER:
            if (f->i < f->n) {
                x = PyTuple_GET_ITEM(f->obj, f->i++);
                Py_INCREF(x);
                return x;
            }
            if (f->tail != NULL) {
                x = f->tail;
                f->tail = NULL;
                return x;
            }
            break;
        case E_DICT: {
            if (f->pending != NULL) {
                x = f->pending;
                f->pending = NULL;
                return x;
            }
            PyObject *k, *v;
            if (PyDict_Next(f->obj, &f->dict_pos, &k, &v)) {
                if (++f->i > f->n) {
                    PyErr_SetString(PyExc_RuntimeError, "dict changed size during encoding");
                    *err = 1;
                    return NULL;
                }
                Py_INCREF(v);
                f->pending = v;
                Py_INCREF(k);
                return k;
            }
            if (f->i != f->n) {
                PyErr_SetString(PyExc_RuntimeError, "dict changed size during encoding");
                *err = 1;
                return NULL;
            }
            break;
        }
        default: /* E_PAIRS: a list of (key, value) tuples */
            if (f->i < f->n) {
                PyObject *pair = PyList_GET_ITEM(f->obj, f->i / 2);
                if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                    PyErr_SetString(PyExc_TypeError, "TermMap.items() must give (key, value) pairs");
                    *err = 1;
                    return NULL;
                }
                x = PyTuple_GET_ITEM(pair, f->i % 2);
                f->i++;
                Py_INCREF(x);
                return x;
            }
            break;
        }
        frame_clear(f);
        s->sp--;
    }
    return NULL;
}

/* term_to_binary(term) (with the version byte 131 when `versioned`). */
PyObject *core_encode(CoreState *st, PyObject *term, int versioned)
{
    Out out;
    Out *o = &out;
    out.cap = 64;
    out.len = 0;
    out.bytes = PyBytes_FromStringAndSize(NULL, out.cap);
    if (out.bytes == NULL)
        return NULL;
    out.p = (unsigned char *)PyBytes_AS_STRING(out.bytes);
    if (versioned)
        put8(o, 131);
    EStack s;
    s.sp = 0;
    s.cap = 16;
    s.stack = PyMem_Malloc(s.cap * sizeof(EFrame));
    if (s.stack == NULL) {
        Py_DECREF(out.bytes);
        return PyErr_NoMemory();
    }
    Py_INCREF(term);
    PyObject *x = term;
    int err = 0;
    while (x != NULL) {
        int r = encode_one(st, o, &s, x, 0);
        Py_DECREF(x);
        if (r < 0) {
            err = 1;
            break;
        }
        x = next_item(o, &s, &err);
    }
    while (s.sp > 0)
        frame_clear(&s.stack[--s.sp]);
    PyMem_Free(s.stack);
    if (err) {
        Py_DECREF(out.bytes);
        return NULL;
    }
    if (_PyBytes_Resize(&out.bytes, out.len) < 0)
        return NULL;
    return out.bytes;
}
