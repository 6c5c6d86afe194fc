/* The compiled ETF decoder: binary_to_term/1 (erts_binary_to_term in erts/emulator/beam/external.c).
 *
 * One loop with an explicit stack of open containers, so nesting depth never
 * touches the C stack. Every read is bounds-checked; every length field is
 * checked against the bytes left before anything is allocated. Errors are
 * DecodeError with the same reason and offset as dist_proto.etf_decode.
 */
#include "_etf_core.h"
#include <math.h>
#include <string.h>

typedef struct {
    CoreState *st;
    const unsigned char *buf;
    Py_ssize_t len;
    PyObject *data;   /* the bytes being decoded */
    PyObject *view;   /* memoryview of data (zero-copy binaries), or NULL */
    DecodeContext *ctx; /* atom cache, or NULL */
    Py_ssize_t max_depth;
    int strings;        /* binaries that are valid UTF-8 decode as str */
    int charlists;      /* STRING_EXT decodes as Charlist */
    PyObject *struct_hook; /* hook(map, offset) for maps with __struct__ (borrowed), or NULL */
} Dec;

typedef struct {
    uint32_t size, index, num_free;
    unsigned char arity;
    unsigned char uniq[16];
    PyObject *module, *creator;
    Py_ssize_t ints_start, ints_end;
} FunHead;

enum { F_TUPLE, F_LIST, F_MAP, F_FUN };

typedef struct {
    int kind;
    Py_ssize_t n, i, start;
    PyObject *obj;
    FunHead *fun;
} Frame;

/* ------------------------------------------------------------------ errors */

static PyObject *fail_at(Dec *d, Py_ssize_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg == NULL)
        return NULL;
    PyObject *exc = PyObject_CallFunction(d->st->decode_error, "On", msg, pos);
    Py_DECREF(msg);
    if (exc != NULL) {
        PyErr_SetObject(d->st->decode_error, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *fail_eof(Dec *d) { return fail_at(d, d->len, "unexpected end of data"); }

/* `what` claims n bytes at start: an error unless they are there (checked before allocating). */
static int check_len(Dec *d, Py_ssize_t start, int64_t n, const char *what, Py_ssize_t pos)
{
    int64_t left = (int64_t)d->len - (int64_t)start;
    if (n > left) {
        fail_at(d, pos, "%s claims %lld bytes, only %lld left", what, (long long)n,
                (long long)(left > 0 ? left : 0));
        return -1;
    }
    return 0;
}

#define NEED(p, k) \
    do { if (d->len - (p) < (Py_ssize_t)(k)) { fail_eof(d); goto error; } } while (0)

static inline uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint64_t be64(const unsigned char *p)
{
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
}

/* ------------------------------------------------------------------ atoms */

/* Atoms, pids, ports, references and export funs hold only strings, numbers, bytes,
 * tuples of ints and atoms: they can never be part of a reference cycle, so they are
 * untracked by the cyclic GC as soon as they are made. Containers of them (a message
 * such as {seq, 1}) can then be untracked too, and a mailbox full of messages costs
 * the collector nothing. */
static PyObject *untracked(PyObject *obj)
{
    if (obj != NULL && PyObject_IS_GC(obj))
        PyObject_GC_UnTrack(obj);
    return obj;
}

/* A new Atom named `name` (a str), built as Atom.__init__ would, with its encoded form cached. */
PyObject *core_new_atom(CoreState *st, PyObject *name)
{
    Py_ssize_t n;
    const char *raw = PyUnicode_AsUTF8AndSize(name, &n);
    if (raw == NULL)
        return NULL;
    Py_hash_t h = PyObject_Hash(name);
    if (h == -1 && PyErr_Occurred())
        return NULL;
    PyObject *ext = PyBytes_FromStringAndSize(NULL, n + (n < 256 ? 2 : 3));
    if (ext == NULL)
        return NULL;
    unsigned char *e = (unsigned char *)PyBytes_AS_STRING(ext);
    if (n < 256) {
        e[0] = 119;
        e[1] = (unsigned char)n;
        memcpy(e + 2, raw, n);
    } else {
        e[0] = 118;
        e[1] = (unsigned char)(n >> 8);
        e[2] = (unsigned char)n;
        memcpy(e + 3, raw, n);
    }
    PyObject *hash = PyLong_FromSsize_t((Py_ssize_t)h ^ st->atom_salt);
    PyTypeObject *tp = (PyTypeObject *)st->atom_type;
    PyObject *atom = hash ? untracked(tp->tp_alloc(tp, 0)) : NULL;
    if (atom == NULL) {
        Py_DECREF(ext);
        Py_XDECREF(hash);
        return NULL;
    }
    Py_INCREF(name);
    SLOT(atom, st->atom_name) = name;
    SLOT(atom, st->atom_hash) = hash;
    SLOT(atom, st->atom_ext_off) = ext;
    return atom;
}

static PyObject *special_atom(PyObject *name)
{
    if (PyUnicode_GET_LENGTH(name) > 9)
        return NULL;
    if (PyUnicode_CompareWithASCIIString(name, "true") == 0)
        Py_RETURN_TRUE;
    if (PyUnicode_CompareWithASCIIString(name, "false") == 0)
        Py_RETURN_FALSE;
    if (PyUnicode_CompareWithASCIIString(name, "undefined") == 0)
        Py_RETURN_NONE;
    return NULL;
}

/* The value of the atom text s[0:n] (new reference), from the cache when seen before. */
static PyObject *atom_value(Dec *d, const unsigned char *s, Py_ssize_t n, int latin1,
                            Py_ssize_t tag_pos)
{
    CoreState *st = d->st;
    uint32_t h = 2166136261u ^ (uint32_t)latin1;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    AtomSlot *slot = &st->atoms[h & (ATOM_CACHE_SLOTS - 1)];
    if (slot->raw != NULL && slot->latin1 == latin1 && PyBytes_GET_SIZE(slot->raw) == n
        && memcmp(PyBytes_AS_STRING(slot->raw), s, n) == 0) {
        Py_INCREF(slot->value);
        return slot->value;
    }
    PyObject *name;
    if (latin1) {
        if (n > 255)
            return fail_at(d, tag_pos, "atom of %zd characters (limit 255)", n);
        name = PyUnicode_DecodeLatin1((const char *)s, n, NULL);
        if (name == NULL)
            return NULL;
    } else {
        name = PyUnicode_DecodeUTF8((const char *)s, n, NULL);
        if (name == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
                return NULL;
            PyErr_Clear();
            return fail_at(d, tag_pos, "atom text is not valid UTF-8");
        }
        if (PyUnicode_GET_LENGTH(name) > 255) {
            Py_ssize_t chars = PyUnicode_GET_LENGTH(name);
            Py_DECREF(name);
            return fail_at(d, tag_pos, "atom of %zd characters (limit 255)", chars);
        }
    }
    PyObject *value = special_atom(name);
    if (value == NULL)
        value = core_new_atom(st, name);
    Py_DECREF(name);
    if (value == NULL)
        return NULL;
    PyObject *raw = PyBytes_FromStringAndSize((const char *)s, n);
    if (raw == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    Py_XSETREF(slot->raw, raw);
    Py_INCREF(value);
    Py_XSETREF(slot->value, value);
    slot->latin1 = latin1;
    return value;
}

static PyObject *cache_ref(Dec *d, unsigned index, Py_ssize_t pos)
{
    DecodeContext *ctx = d->ctx;
    if (ctx == NULL || ctx->size < 0)
        return fail_at(d, pos, "ATOM_CACHE_REF outside a distribution header");
    if ((Py_ssize_t)index >= ctx->size)
        return fail_at(d, pos, "ATOM_CACHE_REF %u but the header has %zd refs", index, ctx->size);
    PyObject *v = ctx->resolved[index];
    if (v == NULL)
        return fail_at(d, pos, "atom cache entry %u is not an Atom", index);
    Py_INCREF(v);
    return v;
}

/* An atom of any atom tag at *pos (advanced past it); `node` keeps it an Atom (a node, a module). */
static PyObject *any_atom(Dec *d, Py_ssize_t *ppos, int node)
{
    Py_ssize_t pos = *ppos, n, start;
    PyObject *v;
    NEED(pos, 1);
    unsigned char tag = d->buf[pos];
    if (tag == 119 || tag == 115) {
        NEED(pos, 2);
        n = d->buf[pos + 1];
        start = pos + 2;
    } else if (tag == 118 || tag == 100) {
        NEED(pos, 3);
        n = be16(d->buf + pos + 1);
        start = pos + 3;
    } else if (tag == 82) {
        NEED(pos, 2);
        v = cache_ref(d, d->buf[pos + 1], pos);
        start = pos + 2;
        n = 0;
        goto got;
    } else {
        return fail_at(d, pos, "expected an atom, found tag %d", tag);
    }
    if (n > d->len - start)
        return fail_at(d, pos, "atom text of %zd bytes runs past the end", n);
    v = atom_value(d, d->buf + start, n, tag < 118, pos);
got:
    if (v == NULL)
        return NULL;
    *ppos = start + n;
    if (node && Py_TYPE(v) != (PyTypeObject *)d->st->atom_type) {
        const char *name = v == Py_None ? "undefined" : v == Py_True ? "true" : "false";
        Py_DECREF(v);
        PyObject *s = PyUnicode_FromString(name);
        if (s == NULL)
            return NULL;
        v = core_new_atom(d->st, s);
        Py_DECREF(s);
    }
    return v;
error:
    return NULL;
}

/* ------------------------------------------------------------------ scalars */

/* Whether `x` can never lead back to a container: a value the collector does not track
 * by type (numbers, strings, bytes, None, booleans), one of the identifier classes above
 * (whatever their tracking: an Atom made in Python is tracked but holds only a string),
 * or a tuple already found cycle-free. A dict or list never is, even one CPython untracked
 * for now: it is re-tracked when something is put in it. */
static int cycle_free(CoreState *st, PyObject *x)
{
    if (!PyObject_IS_GC(x))
        return 1;
    PyTypeObject *t = Py_TYPE(x);
    if (t == &PyTuple_Type)
        return !PyObject_GC_IsTracked(x);
    return t == (PyTypeObject *)st->atom_type || t == (PyTypeObject *)st->pid_type
           || t == (PyTypeObject *)st->ref_type || t == (PyTypeObject *)st->port_type
           || t == (PyTypeObject *)st->export_type;
}

/* A decoded tuple of cycle-free values ({seq, 1}, {ok, Pid}, a control tuple) is left
 * out of the collector, as CPython's own collector would only do for tuples of
 * untracked values after a collection has walked it. */
static void untrack_if_cycle_free(CoreState *st, PyObject *tuple)
{
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    if (n == 0 || !PyObject_GC_IsTracked(tuple))
        return;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!cycle_free(st, PyTuple_GET_ITEM(tuple, i)))
            return;
    PyObject_GC_UnTrack(tuple);
}

static PyObject *new_record(PyObject *type)
{
    PyTypeObject *tp = (PyTypeObject *)type;
    return untracked(tp->tp_alloc(tp, 0));
}

/* Store `v` (a new reference) in a record slot; on NULL the record is released. */
static int set_slot(PyObject *rec, Py_ssize_t off, PyObject *v)
{
    if (v == NULL)
        return -1;
    SLOT(rec, off) = v;
    return 0;
}

/* NEW_PID_EXT (88) or PID_EXT (103) at *ppos. */
static PyObject *dec_pid(Dec *d, Py_ssize_t *ppos)
{
    Py_ssize_t p = *ppos + 1;
    int old = d->buf[*ppos] == 103;
    PyObject *node = any_atom(d, &p, 1);
    if (node == NULL)
        return NULL;
    if (d->len - p < (old ? 9 : 12)) {
        Py_DECREF(node);
        return fail_eof(d);
    }
    CoreState *st = d->st;
    PyObject *pid = new_record(st->pid_type);
    if (pid == NULL) {
        Py_DECREF(node);
        return NULL;
    }
    SLOT(pid, st->pid_node) = node;
    const unsigned char *b = d->buf + p;
    if (set_slot(pid, st->pid_id, PyLong_FromUnsignedLong(be32(b))) < 0
        || set_slot(pid, st->pid_serial, PyLong_FromUnsignedLong(be32(b + 4))) < 0
        || set_slot(pid, st->pid_creation,
                    PyLong_FromUnsignedLong(old ? b[8] : be32(b + 8))) < 0) {
        Py_DECREF(pid);
        return NULL;
    }
    *ppos = p + (old ? 9 : 12);
    return pid;
}

/* NEW_PORT_EXT (89), V4_PORT_EXT (120), PORT_EXT (102). */
static PyObject *dec_port(Dec *d, Py_ssize_t *ppos)
{
    unsigned char tag = d->buf[*ppos];
    Py_ssize_t p = *ppos + 1;
    Py_ssize_t size = tag == 89 ? 8 : tag == 120 ? 12 : 5;
    PyObject *node = any_atom(d, &p, 1);
    if (node == NULL)
        return NULL;
    if (d->len - p < size) {
        Py_DECREF(node);
        return fail_eof(d);
    }
    CoreState *st = d->st;
    PyObject *port = new_record(st->port_type);
    if (port == NULL) {
        Py_DECREF(node);
        return NULL;
    }
    SLOT(port, st->port_node) = node;
    const unsigned char *b = d->buf + p;
    PyObject *id = tag == 120 ? PyLong_FromUnsignedLongLong(be64(b))
                              : PyLong_FromUnsignedLong(be32(b));
    PyObject *cr = PyLong_FromUnsignedLong(tag == 89 ? be32(b + 4) : tag == 120 ? be32(b + 8) : b[4]);
    if (set_slot(port, st->port_id, id) < 0 || set_slot(port, st->port_creation, cr) < 0) {
        Py_XDECREF(cr);
        Py_DECREF(port);
        return NULL;
    }
    *ppos = p + size;
    return port;
}

/* NEWER_REFERENCE_EXT (90), NEW_REFERENCE_EXT (114), REFERENCE_EXT (101). */
static PyObject *dec_ref(Dec *d, Py_ssize_t *ppos)
{
    Py_ssize_t pos = *ppos, p, n;
    unsigned char tag = d->buf[pos];
    if (tag == 101) {
        n = 1;
        p = pos + 1;
    } else {
        NEED(pos, 3);
        n = be16(d->buf + pos + 1);
        if (n < 1 || n > 5)
            return fail_at(d, pos, "reference with %zd ID words (must be 1..5)", n);
        p = pos + 3;
    }
    PyObject *node = any_atom(d, &p, 1);
    if (node == NULL)
        return NULL;
    Py_ssize_t cw = tag == 90 ? 4 : 1;
    if (d->len - p < cw + 4 * n) {
        Py_DECREF(node);
        return fail_eof(d);
    }
    const unsigned char *b = d->buf + p;
    uint32_t creation;
    if (tag == 101) {
        creation = b[4];
    } else {
        creation = tag == 90 ? be32(b) : b[0];
        b += cw;
    }
    CoreState *st = d->st;
    PyObject *ids = untracked(PyTuple_New(n)); /* ints only */
    PyObject *ref = ids ? new_record(st->ref_type) : NULL;
    if (ref == NULL) {
        Py_DECREF(node);
        Py_XDECREF(ids);
        return NULL;
    }
    SLOT(ref, st->ref_node) = node;
    SLOT(ref, st->ref_ids) = ids;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *w = PyLong_FromUnsignedLong(be32(b + 4 * i));
        if (w == NULL) {
            Py_DECREF(ref);
            return NULL;
        }
        PyTuple_SET_ITEM(ids, i, w);
    }
    if (set_slot(ref, st->ref_creation, PyLong_FromUnsignedLong(creation)) < 0) {
        Py_DECREF(ref);
        return NULL;
    }
    *ppos = p + cw + 4 * n;
    return ref;
error:
    return NULL;
}

/* EXPORT_EXT (113): fun Module:Function/Arity. */
static PyObject *dec_export(Dec *d, Py_ssize_t *ppos)
{
    Py_ssize_t p = *ppos + 1;
    CoreState *st = d->st;
    PyObject *module = any_atom(d, &p, 1), *function = NULL, *fun = NULL;
    if (module == NULL)
        return NULL;
    function = any_atom(d, &p, 1);
    if (function == NULL)
        goto error;
    NEED(p, 1);
    if (d->buf[p] != 97) {
        fail_at(d, p, "EXPORT_EXT arity is not a SMALL_INTEGER_EXT");
        goto error;
    }
    NEED(p, 2);
    fun = new_record(st->export_type);
    if (fun == NULL)
        goto error;
    SLOT(fun, st->export_module) = module;
    SLOT(fun, st->export_function) = function;
    SLOT(fun, st->export_arity) = PyLong_FromLong(d->buf[p + 1]);
    *ppos = p + 2;
    return fun;
error:
    Py_XDECREF(module);
    Py_XDECREF(function);
    return NULL;
}

static PyObject *dec_big(Dec *d, Py_ssize_t pos, Py_ssize_t start, int64_t n, Py_ssize_t *end)
{
    if (check_len(d, start + 1, n, "bignum", pos) < 0)
        return NULL;
    unsigned char sign = d->buf[start];
    if (sign > 1)
        return fail_at(d, pos, "bignum sign byte %d (must be 0 or 1)", sign);
    const unsigned char *digits = d->buf + start + 1;
    PyObject *mag;
    if (n <= 8) {
        unsigned long long v = 0;
        for (int64_t i = n - 1; i >= 0; i--)
            v = (v << 8) | digits[i];
        mag = PyLong_FromUnsignedLongLong(v);
    } else {
        mag = PyObject_CallMethod((PyObject *)&PyLong_Type, "from_bytes", "y#s",
                                  (const char *)digits, (Py_ssize_t)n, "little");
    }
    if (mag != NULL && sign)
        Py_SETREF(mag, PyNumber_Negative(mag));
    *end = start + 1 + (Py_ssize_t)n;
    return mag;
}

/* FLOAT_EXT (99): 31 bytes of text, as float() reads it. */
static PyObject *dec_float_text(Dec *d, Py_ssize_t pos)
{
    const unsigned char *s = d->buf + pos + 1;
    Py_ssize_t n = 0;
    while (n < 31 && s[n] != 0)
        n++;
    Py_ssize_t a = 0, b = n;
    while (a < b && (s[a] == ' ' || (s[a] >= 9 && s[a] <= 13)))
        a++;
    while (b > a && (s[b - 1] == ' ' || (s[b - 1] >= 9 && s[b - 1] <= 13)))
        b--;
    int underscore = 0;
    for (Py_ssize_t i = a; i < b; i++) {
        if (s[i] >= 128)
            return fail_at(d, pos, "FLOAT_EXT text is not a number");
        underscore |= s[i] == '_';
    }
    PyObject *text = PyUnicode_DecodeASCII((const char *)s + a, b - a, NULL);
    if (text == NULL)
        return NULL;
    PyObject *v = PyFloat_FromString(text);
    Py_DECREF(text);
    if (v == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL;
        PyErr_Clear();
        return fail_at(d, pos, "FLOAT_EXT text is not a number");
    }
    double x = PyFloat_AS_DOUBLE(v);
    if (!isfinite(x) || underscore) {
        Py_DECREF(v);
        return fail_at(d, pos, "FLOAT_EXT is not a finite float");
    }
    return v;
}

/* Whether the characters of s[0..n) that start before `limit` are well-formed UTF-8 as
 * CPython's strict decoder sees them (Unicode Table 3-7: no overlong forms, no surrogates,
 * nothing above U+10FFFF); with limit == n, whether all of s is. */
static int utf8_prefix_ok(const unsigned char *s, Py_ssize_t n, Py_ssize_t limit)
{
    Py_ssize_t i = 0;
    while (i < limit) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            while (i + 8 <= limit) { /* a run of ASCII: eight bytes at a time */
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            continue;
        }
        Py_ssize_t len;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else
            return 0;
        if (n - i < len)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (Py_ssize_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* How many leading bytes utf8_prefix_ok checks before the decoder runs: a binary that is
 * not text almost always shows it there, and then costs no UnicodeDecodeError (whose
 * creation copies the whole binary); a short binary is checked whole. */
#define UTF8_PRECHECK 256

static PyObject *binary_at(Dec *d, Py_ssize_t start, Py_ssize_t n)
{
    if (d->strings && utf8_prefix_ok(d->buf + start, n, n < UTF8_PRECHECK ? n : UTF8_PRECHECK)) {
        PyObject *s = PyUnicode_DecodeUTF8((const char *)d->buf + start, n, "strict");
        if (s != NULL)
            return s;
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            return NULL;
        PyErr_Clear(); /* not text after all: the binary stays bytes */
    }
    if (d->view != NULL)
        return PySequence_GetSlice(d->view, start, start + n);
    return PyBytes_FromStringAndSize((const char *)d->buf + start, n);
}

static PyObject *dec_bits(Dec *d, Py_ssize_t pos, Py_ssize_t *end)
{
    uint32_t n = be32(d->buf + pos + 1);
    unsigned bits = d->buf[pos + 5];
    if (check_len(d, pos + 6, n, "BIT_BINARY_EXT", pos) < 0)
        return NULL;
    if (bits < 1 || bits > 8)
        return fail_at(d, pos, "BIT_BINARY_EXT with %u bits in its last byte (must be 1..8)",
                       bits);
    if (n == 0)
        return fail_at(d, pos, "BIT_BINARY_EXT with no bytes");
    *end = pos + 6 + n;
    if (bits == 8)
        return binary_at(d, pos + 6, n);
    PyObject *data = PyBytes_FromStringAndSize((const char *)d->buf + pos + 6, n);
    if (data == NULL)
        return NULL;
    PyObject *v = PyObject_CallFunction(d->st->bits_type, "Nk", data, (unsigned long)bits);
    return v;
}

/* ------------------------------------------------------------------ funs */

static void fun_free(FunHead *f)
{
    if (f != NULL) {
        Py_XDECREF(f->module);
        Py_XDECREF(f->creator);
        PyMem_Free(f);
    }
}

/* Parse a NEW_FUN_EXT (112) up to its free variables; *ppos becomes their offset. */
static FunHead *fun_header(Dec *d, Py_ssize_t pos, Py_ssize_t *ppos)
{
    NEED(pos, 30);
    const unsigned char *b = d->buf + pos + 1;
    FunHead *f = PyMem_Calloc(1, sizeof(FunHead));
    if (f == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    f->size = be32(b);
    f->arity = b[4];
    memcpy(f->uniq, b + 5, 16);
    f->index = be32(b + 21);
    f->num_free = be32(b + 25);
    if (check_len(d, pos + 1, f->size, "NEW_FUN_EXT", pos) < 0)
        goto fail;
    if (f->num_free > f->size) {
        fail_at(d, pos, "NEW_FUN_EXT claims %lu free variables in %lu bytes",
                (unsigned long)f->num_free, (unsigned long)f->size);
        goto fail;
    }
    Py_ssize_t p = pos + 30;
    f->module = any_atom(d, &p, 1);
    if (f->module == NULL)
        goto fail;
    f->ints_start = p;
    static const char *what[2] = {"old index", "old uniq"};
    for (int k = 0; k < 2; k++) {
        if (p >= d->len) {
            fail_eof(d);
            goto fail;
        }
        if (d->buf[p] == 97)
            p += 2;
        else if (d->buf[p] == 98)
            p += 5;
        else {
            fail_at(d, p, "NEW_FUN_EXT %s is not an integer", what[k]);
            goto fail;
        }
    }
    f->ints_end = p;
    if (p >= d->len) {
        fail_eof(d);
        goto fail;
    }
    if (d->buf[p] != 88 && d->buf[p] != 103) {
        fail_at(d, p, "NEW_FUN_EXT creator is not a pid");
        goto fail;
    }
    f->creator = dec_pid(d, &p);
    if (f->creator == NULL)
        goto fail;
    *ppos = p;
    return f;
fail:
    fun_free(f);
    return NULL;
error:
    return NULL;
}

static PyObject *make_fun(Dec *d, Py_ssize_t pos, Py_ssize_t end, FunHead *f, PyObject *free)
{
    CoreState *st = d->st;
    if (end - pos - 1 != (Py_ssize_t)f->size)
        return fail_at(d, pos, "NEW_FUN_EXT size field %lu but its fields took %zd",
                       (unsigned long)f->size, end - pos - 1);
    PyObject *raw;
    if (d->ctx == NULL || d->ctx->size < 0)
        raw = PyBytes_FromStringAndSize((const char *)d->buf + pos, end - pos);
    else  /* cache refs mean nothing outside this message: rebuild from the fields */
        raw = PyObject_CallFunction(
            st->rebuild_fun, "ky#kkOy#OO", (unsigned long)f->arity, (const char *)f->uniq,
            (Py_ssize_t)16, (unsigned long)f->index, (unsigned long)f->num_free, f->module,
            (const char *)d->buf + f->ints_start, f->ints_end - f->ints_start, f->creator, free);
    if (raw == NULL)
        return NULL;
    PyObject *uniq = PyBytes_FromStringAndSize((const char *)f->uniq, 16);
    if (uniq == NULL) {
        Py_DECREF(raw);
        return NULL;
    }
    return PyObject_CallFunction(st->fun_type, "NOkkNO", raw, f->module, (unsigned long)f->arity,
                                 (unsigned long)f->index, uniq, free);
}

/* ------------------------------------------------------------------ containers */

/* items[0:n] then tail: a list, or an ImproperList (as etf_decode._finish_list). */
static PyObject *finish_list(CoreState *st, PyObject *items, PyObject *tail)
{
    if (PyList_CheckExact(tail)) {
        if (PyList_GET_SIZE(tail) && PyList_SetSlice(items, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, tail) < 0)
            goto error;
        Py_DECREF(tail);
        return items;
    }
    if (PyList_GET_SIZE(items) == 0) {
        Py_DECREF(items);
        return tail;
    }
    PyObject *rest = tail;
    if (Py_TYPE(tail) == (PyTypeObject *)st->improper_type) {
        if (PyList_SetSlice(items, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX,
                            SLOT(tail, st->improper_items)) < 0)
            goto error;
        rest = SLOT(tail, st->improper_tail);
    }
    PyObject *v = PyObject_CallFunction(st->improper_type, "OO", items, rest);
    Py_DECREF(items);
    Py_DECREF(tail);
    return v;
error:
    Py_DECREF(items);
    Py_DECREF(tail);
    return NULL;
}

/* kv holds k0, v0, k1, v1, ...: a dict, or a TermMap when Python would merge or cannot hash keys. */
static PyObject *finish_map(Dec *d, PyObject *kv, Py_ssize_t n, Py_ssize_t start)
{
#if PY_VERSION_HEX < 0x030D0000
    PyObject *dict = _PyDict_NewPresized(n);
#else
    PyObject *dict = PyDict_New();
#endif
    if (dict == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyDict_SetItem(dict, PyTuple_GET_ITEM(kv, 2 * i), PyTuple_GET_ITEM(kv, 2 * i + 1)) < 0) {
            Py_DECREF(dict);
            if (!PyErr_ExceptionMatches(PyExc_TypeError))
                return NULL;
            PyErr_Clear();
            goto term_map;
        }
    }
    if (PyDict_GET_SIZE(dict) == n)
        return dict;
    Py_DECREF(dict);
term_map:;
    PyObject *pairs = PyList_New(n);
    if (pairs == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(kv, 2 * i), PyTuple_GET_ITEM(kv, 2 * i + 1));
        if (pair == NULL) {
            Py_DECREF(pairs);
            return NULL;
        }
        PyList_SET_ITEM(pairs, i, pair);
    }
    PyObject *m = PyObject_CallOneArg(d->st->termmap_type, pairs);
    Py_DECREF(pairs);
    if (m == NULL)
        return NULL;
    Py_ssize_t size = PyObject_Size(m);
    if (size != n) {
        Py_DECREF(m);
        if (size < 0)
            return NULL;
        return fail_at(d, start, "map has duplicate keys");
    }
    return m;
}

/* ------------------------------------------------------------------ the loop */

static int push(Dec *d, Frame **stack, Py_ssize_t *sp, Py_ssize_t *cap, int kind, Py_ssize_t n,
                Py_ssize_t start, PyObject *obj, FunHead *fun)
{
    if (*sp >= d->max_depth) {
        Py_XDECREF(obj);
        fun_free(fun);
        fail_at(d, start, "term nested deeper than %zd", d->max_depth);
        return -1;
    }
    if (obj == NULL) {
        fun_free(fun);
        return -1;
    }
    if (*sp == *cap) {
        Py_ssize_t ncap = *cap * 2;
        Frame *grown = PyMem_Realloc(*stack, ncap * sizeof(Frame));
        if (grown == NULL) {
            Py_DECREF(obj);
            fun_free(fun);
            PyErr_NoMemory();
            return -1;
        }
        *stack = grown;
        *cap = ncap;
    }
    Frame *f = &(*stack)[(*sp)++];
    f->kind = kind;
    f->n = n;
    f->i = 0;
    f->start = start;
    f->obj = obj;
    f->fun = fun;
    return 0;
}

#define PUSH(kind, n, start, obj, fun) \
    do { if (push(d, &stack, &sp, &cap, kind, n, start, obj, fun) < 0) goto error; } while (0)

static PyObject *decode_loop(Dec *d, Py_ssize_t pos, Py_ssize_t *end)
{
    const unsigned char *buf = d->buf;
    Frame *stack = NULL;
    Py_ssize_t sp = 0, cap = 32;
    PyObject *v = NULL;
    stack = PyMem_Malloc(cap * sizeof(Frame));
    if (stack == NULL)
        return PyErr_NoMemory();
    for (;;) {
        Py_ssize_t start = pos, n;
        NEED(pos, 1);
        switch (buf[pos]) {
        case 97: /* SMALL_INTEGER_EXT */
            NEED(pos, 2);
            v = PyLong_FromLong(buf[pos + 1]);
            pos += 2;
            break;
        case 98: /* INTEGER_EXT */
            NEED(pos, 5);
            v = PyLong_FromLong((int32_t)be32(buf + pos + 1));
            pos += 5;
            break;
        case 119: case 115: case 118: case 100: case 82: /* atoms */
            v = any_atom(d, &pos, 0);
            break;
        case 104: /* SMALL_TUPLE_EXT */
        case 105: /* LARGE_TUPLE_EXT */
            if (buf[pos] == 104) {
                NEED(pos, 2);
                n = buf[pos + 1];
                pos += 2;
            } else {
                NEED(pos, 5);
                n = be32(buf + pos + 1);
                if (check_len(d, pos + 5, n, "LARGE_TUPLE_EXT", pos) < 0)
                    goto error;
                pos += 5;
            }
            if (n == 0) {
                v = PyTuple_New(0);
                break;
            }
            PUSH(F_TUPLE, n, start, PyTuple_New(n), NULL);
            continue;
        case 106: /* NIL_EXT */
            v = PyList_New(0);
            pos += 1;
            break;
        case 108: /* LIST_EXT */
            NEED(pos, 5);
            n = be32(buf + pos + 1);
            if (check_len(d, pos + 5, n, "LIST_EXT", pos) < 0)
                goto error;
            pos += 5;
            PUSH(F_LIST, n, start, PyList_New(n), NULL);
            if (n == 0 && pos < d->len && buf[pos] == 106) {
                pos++;
                v = stack[--sp].obj;
                break;
            }
            continue;
        case 107: /* STRING_EXT */
            NEED(pos, 3);
            n = be16(buf + pos + 1);
            if (check_len(d, pos + 3, n, "STRING_EXT", pos) < 0)
                goto error;
            if (d->charlists) {
                PyObject *text = PyUnicode_DecodeLatin1((const char *)buf + pos + 3, n, NULL);
                v = text == NULL ? NULL : PyObject_CallOneArg(d->st->charlist_type, text);
                Py_XDECREF(text);
                pos += 3 + n;
                break;
            }
            v = PyList_New(n);
            if (v != NULL)
                for (Py_ssize_t i = 0; i < n; i++)
                    PyList_SET_ITEM(v, i, PyLong_FromLong(buf[pos + 3 + i]));
            pos += 3 + n;
            break;
        case 109: /* BINARY_EXT */
            NEED(pos, 5);
            n = be32(buf + pos + 1);
            if (check_len(d, pos + 5, n, "BINARY_EXT", pos) < 0)
                goto error;
            v = binary_at(d, pos + 5, n);
            pos += 5 + n;
            break;
        case 116: /* MAP_EXT */
            NEED(pos, 5);
            n = be32(buf + pos + 1);
            if (check_len(d, pos + 5, 2 * (int64_t)n, "MAP_EXT", pos) < 0)
                goto error;
            pos += 5;
            if (n == 0) {
                v = PyDict_New();
                break;
            }
            PUSH(F_MAP, 2 * n, start, PyTuple_New(2 * n), NULL);
            continue;
        case 70: /* NEW_FLOAT_EXT */ {
            NEED(pos, 9);
            uint64_t bits = be64(buf + pos + 1);
            double x;
            memcpy(&x, &bits, 8);
            if (!isfinite(x)) {
                fail_at(d, pos, "NEW_FLOAT_EXT is not a finite float");
                goto error;
            }
            v = PyFloat_FromDouble(x);
            pos += 9;
            break;
        }
        case 99: /* FLOAT_EXT */
            NEED(pos, 32);
            v = dec_float_text(d, pos);
            pos += 32;
            break;
        case 88: case 103:
            v = dec_pid(d, &pos);
            break;
        case 90: case 114: case 101:
            v = dec_ref(d, &pos);
            break;
        case 89: case 120: case 102:
            v = dec_port(d, &pos);
            break;
        case 113:
            v = dec_export(d, &pos);
            break;
        case 110: /* SMALL_BIG_EXT */
            NEED(pos, 2);
            v = dec_big(d, pos, pos + 2, buf[pos + 1], &pos);
            break;
        case 111: /* LARGE_BIG_EXT */
            NEED(pos, 5);
            v = dec_big(d, pos, pos + 5, be32(buf + pos + 1), &pos);
            break;
        case 77: /* BIT_BINARY_EXT */
            NEED(pos, 6);
            v = dec_bits(d, pos, &pos);
            break;
        case 112: { /* NEW_FUN_EXT */
            FunHead *f = fun_header(d, pos, &pos);
            if (f == NULL)
                goto error;
            if (f->num_free) {
                PUSH(F_FUN, f->num_free, start, PyTuple_New(f->num_free), f);
                continue;
            }
            PyObject *empty = PyTuple_New(0);
            v = empty ? make_fun(d, start, pos, f, empty) : NULL;
            Py_XDECREF(empty);
            fun_free(f);
            break;
        }
        case 121:
            fail_at(d, pos, "LOCAL_EXT (121) is node-local: it can only be decoded by the node that made it");
            goto error;
        case 117:
            fail_at(d, pos, "FUN_EXT (117) is obsolete and not decoded since OTP 23");
            goto error;
        case 80:
            fail_at(d, pos, "COMPRESSED (80) is only allowed right after the version byte");
            goto error;
        default:
            fail_at(d, pos, "unknown or internal tag %d", buf[pos]);
            goto error;
        }
        if (v == NULL)
            goto error;
        /* hand the value to the open containers, closing those it completes */
        while (sp > 0) {
            Frame *f = &stack[sp - 1];
            switch (f->kind) {
            case F_TUPLE:
                PyTuple_SET_ITEM(f->obj, f->i++, v);
                v = NULL;
                if (f->i < f->n)
                    goto next;
                v = f->obj;
                untrack_if_cycle_free(d->st, v);
                break;
            case F_LIST:
                if (f->i < f->n) {
                    PyList_SET_ITEM(f->obj, f->i++, v);
                    v = NULL;
                    if (f->i < f->n)
                        goto next;
                    if (pos < d->len && buf[pos] == 106) {
                        pos++;
                        v = f->obj;
                        break;
                    }
                    goto next; /* the tail comes next */
                }
                v = finish_list(d->st, f->obj, v);
                break;
            case F_MAP:
                PyTuple_SET_ITEM(f->obj, f->i++, v);
                v = NULL;
                if (f->i < f->n)
                    goto next;
                v = finish_map(d, f->obj, f->n / 2, f->start);
                Py_DECREF(f->obj);
                if (v != NULL && d->struct_hook != NULL && PyDict_CheckExact(v)) {
                    PyObject *mod = PyDict_GetItemWithError(v, d->st->struct_key);
                    if (mod != NULL)
                        Py_SETREF(v, PyObject_CallFunction(d->struct_hook, "On", v, f->start));
                    else if (PyErr_Occurred())
                        Py_CLEAR(v);
                }
                break;
            default: /* F_FUN */
                PyTuple_SET_ITEM(f->obj, f->i++, v);
                v = NULL;
                if (f->i < f->n)
                    goto next;
                v = make_fun(d, f->start, pos, f->fun, f->obj);
                Py_DECREF(f->obj);
                fun_free(f->fun);
                break;
            }
            sp--;
            if (v == NULL)
                goto error;
        }
        PyMem_Free(stack);
        *end = pos;
        return v;
    next:;
    }
error:
    Py_XDECREF(v);
    while (sp > 0) {
        sp--;
        Py_XDECREF(stack[sp].obj);
        if (stack[sp].kind == F_FUN)
            fun_free(stack[sp].fun);
    }
    PyMem_Free(stack);
    return NULL;
}

/* Decode the term at `pos` of the bytes `data`; *end is the offset after it. */
PyObject *core_decode_at(CoreState *st, PyObject *data, Py_ssize_t pos, DecodeContext *ctx,
                         Py_ssize_t max_depth, int zero_copy, Py_ssize_t *end)
{
    Dec d;
    d.st = st;
    d.data = data;
    d.buf = (const unsigned char *)PyBytes_AS_STRING(data);
    d.len = PyBytes_GET_SIZE(data);
    d.ctx = ctx;
    d.max_depth = max_depth;
    d.strings = ctx != NULL && ctx->strings;
    d.charlists = ctx != NULL && ctx->charlists;
    d.struct_hook = ctx != NULL ? ctx->struct_hook : NULL;
    d.view = NULL;
    if (zero_copy) {
        d.view = PyMemoryView_FromObject(data);
        if (d.view == NULL)
            return NULL;
    }
    PyObject *v = decode_loop(&d, pos, end);
    Py_XDECREF(d.view);
    return v;
}
