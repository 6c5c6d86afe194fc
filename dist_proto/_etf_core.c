/* dist_proto._etf_core: the optional compiled core of the ETF codec.
 *
 * Entry points mirror dist_proto.etf_decode / dist_proto.etf_encode:
 *   decode(data, *, ...)          binary_to_term/1 (the common case here, the rest in Python)
 *   decode_at(data, pos, ctx, max_depth, zero_copy) -> (term, end)
 *   decode_dist(data, offset, ctx) -> (term, end)    a term inside a distribution message
 *   dist_context(atom_cache, mapping=None)           one per distribution header; carries
 *                                                    the codec options (dist_proto.mapping)
 *   encode(term, compressed=False), encode_body(term) term_to_binary/1,2 (with a mapping:
 *                                                    through Python, see etf_core.py)
 *   scan_frames(data, pos, cache, max_frame, no_payload) -> (events, pos)
 *                                                    the common distribution frames of a read
 *   configure(**classes_and_helpers)                  called once by dist_proto.etf_core
 * The selection between this core and the pure codec is in dist_proto/etf.py.
 */
#include "_etf_core.h"
#include "structmember.h"

static CoreState *state_of(PyObject *module)
{
    CoreState *st = PyModule_GetState(module);
    if (!st->configured) {
        PyErr_SetString(PyExc_RuntimeError, "dist_proto._etf_core is not configured");
        return NULL;
    }
    return st;
}

/* ------------------------------------------------------------------ DecodeContext */

static void context_dealloc(DecodeContext *self)
{
    for (int i = 0; i < 256; i++)
        Py_XDECREF(self->resolved[i]);
    Py_XDECREF(self->struct_hook);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyTypeObject DecodeContext_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dist_proto._etf_core.DecodeContext",
    .tp_basicsize = sizeof(DecodeContext),
    .tp_dealloc = (destructor)context_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The atom cache of one distribution header, resolved once (see dist_context).",
};

static PyObject *special_value(PyObject *atom, CoreState *st)
{
    PyObject *name = SLOT(atom, st->atom_name);
    if (name != NULL && PyUnicode_Check(name)) {
        if (PyUnicode_CompareWithASCIIString(name, "true") == 0)
            Py_RETURN_TRUE;
        if (PyUnicode_CompareWithASCIIString(name, "false") == 0)
            Py_RETURN_FALSE;
        if (PyUnicode_CompareWithASCIIString(name, "undefined") == 0)
            Py_RETURN_NONE;
    }
    Py_INCREF(atom);
    return atom;
}

/* Read the options of a dist_proto.mapping.Mapping (None: the default) into ctx. */
static int context_options(CoreState *st, DecodeContext *ctx, PyObject *mapping)
{
    if (mapping == NULL || mapping == Py_None)
        return 0;
    int ok = PyObject_IsInstance(mapping, st->mapping_type);
    if (ok <= 0) {
        if (ok == 0)
            PyErr_Format(PyExc_TypeError, "mapping must be a dist_proto.mapping.Mapping, not %s",
                         Py_TYPE(mapping)->tp_name);
        return -1;
    }
    PyObject *v = PyObject_GetAttrString(mapping, "strings");
    if (v == NULL || (ctx->strings = PyObject_IsTrue(v)) < 0) {
        Py_XDECREF(v);
        return -1;
    }
    Py_DECREF(v);
    v = PyObject_GetAttrString(mapping, "charlists");
    if (v == NULL || (ctx->charlists = PyObject_IsTrue(v)) < 0) {
        Py_XDECREF(v);
        return -1;
    }
    Py_DECREF(v);
    v = PyObject_GetAttrString(mapping, "struct_hook");
    if (v == NULL)
        return -1;
    if (v == Py_None)
        Py_DECREF(v);
    else
        ctx->struct_hook = v;
    return 0;
}

/* A context with no atom cache (size -1) and the default codec options. */
static DecodeContext *new_context(void)
{
    DecodeContext *ctx = PyObject_New(DecodeContext, &DecodeContext_Type);
    if (ctx == NULL)
        return NULL;
    memset(ctx->resolved, 0, sizeof(ctx->resolved));
    ctx->size = -1;
    ctx->strings = ctx->charlists = 0;
    ctx->struct_hook = NULL;
    return ctx;
}

static DecodeContext *make_context(CoreState *st, PyObject *atom_cache, PyObject *mapping)
{
    DecodeContext *ctx = new_context();
    if (ctx == NULL)
        return NULL;
    if (context_options(st, ctx, mapping) < 0) {
        Py_DECREF(ctx);
        return NULL;
    }
    if (atom_cache == Py_None)
        return ctx;
    PyObject *seq = PySequence_Fast(atom_cache, "atom_cache must be a sequence of Atom");
    if (seq == NULL) {
        Py_DECREF(ctx);
        return NULL;
    }
    ctx->size = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < ctx->size && i < 256; i++) {
        PyObject *a = PySequence_Fast_GET_ITEM(seq, i);
        if (Py_TYPE(a) == (PyTypeObject *)st->atom_type)
            ctx->resolved[i] = special_value(a, st);
    }
    Py_DECREF(seq);
    return ctx;
}

static PyObject *mod_dist_context(PyObject *module, PyObject *args, PyObject *kw)
{
    static char *names[] = {"atom_cache", "mapping", NULL};
    PyObject *atom_cache, *mapping = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:dist_context", names, &atom_cache, &mapping))
        return NULL;
    CoreState *st = state_of(module);
    return st ? (PyObject *)make_context(st, atom_cache, mapping) : NULL;
}

/* ------------------------------------------------------------------ decoding */

static PyObject *raise_decode_error(CoreState *st, const char *msg, Py_ssize_t offset)
{
    PyObject *exc = PyObject_CallFunction(st->decode_error, "sn", msg, offset);
    if (exc != NULL) {
        PyErr_SetObject(st->decode_error, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *mod_decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    CoreState *st = state_of(module);
    if (st == NULL)
        return NULL;
    PyObject *data = nargs == 1 ? args[0] : NULL;
    /* decode(data) and decode(data, mapping=M) here; anything else in etf_core.py */
    PyObject *mapping = NULL;
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) == 1
        && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "mapping") == 0)
        mapping = args[nargs];
    if ((kwnames != NULL && mapping == NULL) || data == NULL || !PyBytes_CheckExact(data)
        || PyBytes_GET_SIZE(data) < 2
        || (unsigned char)PyBytes_AS_STRING(data)[0] != 131
        || (unsigned char)PyBytes_AS_STRING(data)[1] == 80)
        return PyObject_Vectorcall(st->decode_slow, args, nargs, kwnames);
    DecodeContext *ctx = NULL;
    if (mapping != NULL && mapping != Py_None) {
        ctx = make_context(st, Py_None, mapping);
        if (ctx == NULL)
            return NULL;
    }
    Py_ssize_t end;
    PyObject *term = core_decode_at(st, data, 1, ctx, st->default_max_depth, 0, &end);
    Py_XDECREF(ctx);
    if (term == NULL)
        return NULL;
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    if (end != n) {
        Py_DECREF(term);
        PyObject *msg = PyUnicode_FromFormat("%zd bytes after the term", n - end);
        if (msg == NULL)
            return NULL;
        PyObject *exc = PyObject_CallFunction(st->decode_error, "On", msg, end);
        Py_DECREF(msg);
        if (exc != NULL) {
            PyErr_SetObject(st->decode_error, exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    return term;
}

static PyObject *mod_decode_at(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    CoreState *st = state_of(module);
    if (st == NULL)
        return NULL;
    if (nargs != 5 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "decode_at(data: bytes, pos, ctx, max_depth, zero_copy)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_depth = PyLong_AsSsize_t(args[3]);
    int zero_copy = PyObject_IsTrue(args[4]);
    if ((pos == -1 || max_depth == -1 || zero_copy < 0) && PyErr_Occurred())
        return NULL;
    if (pos < 0 || pos >= PyBytes_GET_SIZE(args[0])) {
        PyErr_SetString(PyExc_ValueError, "decode_at: pos outside the data");
        return NULL;
    }
    DecodeContext *ctx = NULL;
    if (args[2] != Py_None) {
        if (Py_TYPE(args[2]) != &DecodeContext_Type) {
            PyErr_SetString(PyExc_TypeError, "ctx must come from dist_context()");
            return NULL;
        }
        ctx = (DecodeContext *)args[2];
    }
    Py_ssize_t end;
    PyObject *term = core_decode_at(st, args[0], pos, ctx, max_depth, zero_copy, &end);
    if (term == NULL)
        return NULL;
    return Py_BuildValue("Nn", term, end);
}

static PyObject *mod_decode_dist(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    CoreState *st = state_of(module);
    if (st == NULL)
        return NULL;
    if (nargs != 3 || !PyBytes_Check(args[0]) || Py_TYPE(args[2]) != &DecodeContext_Type) {
        PyErr_SetString(PyExc_TypeError, "decode_dist(data: bytes, offset: int, ctx: DecodeContext)");
        return NULL;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(args[1]);
    if (offset == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (offset < 0 || offset > n)
        return PyErr_Format(PyExc_ValueError, "offset %zd is outside the data (%zd bytes)", offset, n);
    if (offset == n)
        return raise_decode_error(st, "no data (expected a term)", offset);
    Py_ssize_t end;
    PyObject *term = core_decode_at(st, args[0], offset, (DecodeContext *)args[2],
                                    st->default_max_depth, 0, &end);
    if (term == NULL)
        return NULL;
    return Py_BuildValue("Nn", term, end);
}

/* ------------------------------------------------------------------ framing */

/* A context for a distribution header whose N entries all refer to cached atoms. */
static DecodeContext *header_context(CoreState *st, PyObject *const *atoms, int n)
{
    DecodeContext *ctx = new_context();
    if (ctx == NULL)
        return NULL;
    ctx->size = n;
    for (int i = 0; i < n; i++)
        ctx->resolved[i] = special_value(atoms[i], st);
    return ctx;
}

/* An instance of the slotted dataclass `type` with its members at `offs` set to `vals`
 * (new references taken), built as dist_proto.framing._control does, without __init__. */
static PyObject *new_record(PyObject *type, int n, const Py_ssize_t *offs, PyObject *const *vals)
{
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *obj = tp->tp_alloc(tp, 0);
    if (obj == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        Py_INCREF(vals[i]);
        SLOT(obj, offs[i]) = vals[i];
    }
    return obj;
}

/* The control object of a send-family message (SEND, REG_SEND, SEND_SENDER, ALIAS_SEND
 * with the element types _control checks), or NULL without an error for any other. */
static PyObject *send_control(CoreState *st, PyObject *control, PyObject *payload)
{
    if (!PyTuple_CheckExact(control) || PyTuple_GET_SIZE(control) < 3)
        return NULL;
    PyObject *op = PyTuple_GET_ITEM(control, 0);
    if (!PyLong_CheckExact(op))
        return NULL;
    long code = PyLong_AsLong(op);
    if (code == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(control);
    PyObject *a = PyTuple_GET_ITEM(control, 1), *b = PyTuple_GET_ITEM(control, 2);
    PyTypeObject *pid = (PyTypeObject *)st->pid_type;
    if (code == 6 && n == 4 && Py_TYPE(a) == pid
        && Py_TYPE(PyTuple_GET_ITEM(control, 3)) == (PyTypeObject *)st->atom_type) {
        Py_ssize_t offs[3] = {st->rs_from, st->rs_to, st->rs_msg};
        PyObject *vals[3] = {a, PyTuple_GET_ITEM(control, 3), payload};
        return new_record(st->reg_send_type, 3, offs, vals);
    }
    if (n != 3)
        return NULL;
    if (code == 22 && Py_TYPE(a) == pid && Py_TYPE(b) == pid) {
        Py_ssize_t offs[3] = {st->ss_from, st->ss_to, st->ss_msg};
        PyObject *vals[3] = {a, b, payload};
        return new_record(st->send_sender_type, 3, offs, vals);
    }
    if (code == 2 && Py_TYPE(b) == pid) {
        Py_ssize_t offs[2] = {st->send_to, st->send_msg};
        PyObject *vals[2] = {b, payload};
        return new_record(st->send_type, 2, offs, vals);
    }
    if (code == 33 && Py_TYPE(a) == pid && Py_TYPE(b) == (PyTypeObject *)st->ref_type) {
        Py_ssize_t offs[3] = {st->as_from, st->as_alias, st->as_msg};
        PyObject *vals[3] = {a, b, payload};
        return new_record(st->alias_send_type, 3, offs, vals);
    }
    return NULL;
}

/* scan_frames(data, pos, cache, max_frame, no_payload) -> (events, pos)
 *
 * The hot half of DistConnection.next_event (dist_proto/framing.py), for the frames
 * BEAM sends in its steady state: walk the complete frames of `data` from `pos` and
 * decode each `131 68` frame whose distribution header only refers to atoms already
 * in `cache` (the connection's atom cache, a list). A send-family message becomes its
 * dist_proto.control object (Send, RegSend, SendSender, AliasSend, as framing._control
 * builds them); any other frame gives its control term then its payload (`no_payload`
 * when it has none), for the caller to build. `events` holds both kinds in order. It stops before the first frame it does not
 * take: an incomplete one, a tick, a frame over `max_frame`, pass-through, fragments,
 * a header that writes to the cache, or anything malformed. The caller handles that
 * frame on its own path, which raises the precise error; nothing is consumed here
 * that the caller would have treated differently. */
static PyObject *mod_scan_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    CoreState *st = state_of(module);
    if (st == NULL)
        return NULL;
    if (nargs != 5 || !PyBytes_CheckExact(args[0]) || !PyList_CheckExact(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "scan_frames(data: bytes, pos: int, cache: list, max_frame: int, no_payload)");
        return NULL;
    }
    PyObject *data = args[0], *cache = args[2], *no_payload = args[4];
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_frame = PyLong_AsSsize_t(args[3]);
    if ((pos == -1 || max_frame == -1) && PyErr_Occurred())
        return NULL;
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    if (pos < 0 || pos > size)
        return PyErr_Format(PyExc_ValueError, "pos %zd is outside the data (%zd bytes)", pos, size);
    Py_ssize_t cache_len = PyList_GET_SIZE(cache);
    PyObject *events = PyList_New(0);
    if (events == NULL)
        return NULL;
    DecodeContext *ctx = NULL;  /* the previous frame's, reused while its header repeats */
    const unsigned char *ctx_hdr = NULL;
    Py_ssize_t ctx_hdr_len = 0;
    PyObject *atoms[256];
    while (size - pos >= 4) {
        Py_ssize_t n = ((Py_ssize_t)buf[pos] << 24) | (buf[pos + 1] << 16) | (buf[pos + 2] << 8)
                       | buf[pos + 3];
        if (n == 0 || n > max_frame || size - pos - 4 < n || n < 4)
            break;
        Py_ssize_t start = pos + 4, end = start + n;
        if (buf[start] != 131 || buf[start + 1] != 68)
            break;
        int count = buf[start + 2];
        Py_ssize_t flag_len = count ? count / 2 + 1 : 0;
        Py_ssize_t off = start + 3 + flag_len + count;
        if (off >= end)
            break;
        const unsigned char *hdr = buf + start + 2;
        Py_ssize_t hdr_len = off - (start + 2);
        if (ctx == NULL || hdr_len != ctx_hdr_len || memcmp(hdr, ctx_hdr, (size_t)hdr_len) != 0) {
            const unsigned char *flags = buf + start + 3, *refs = flags + flag_len;
            int ok = 1;
            for (int i = 0; i < count && ok; i++) {
                int nib = (flags[i >> 1] >> (4 * (i & 1))) & 0xF;
                Py_ssize_t slot = ((Py_ssize_t)(nib & 7) << 8) | refs[i];
                if ((nib & 8) || slot >= cache_len)
                    ok = 0;
                else {
                    atoms[i] = PyList_GET_ITEM(cache, slot);
                    ok = Py_TYPE(atoms[i]) == (PyTypeObject *)st->atom_type;
                }
            }
            if (!ok)
                break;
            DecodeContext *fresh = header_context(st, atoms, count);
            if (fresh == NULL)
                goto error;
            Py_XDECREF(ctx);
            ctx = fresh;
            ctx_hdr = hdr;
            ctx_hdr_len = hdr_len;
        }
        Py_ssize_t cend, pend;
        PyObject *control = core_decode_at(st, data, off, ctx, st->default_max_depth, 0, &cend);
        if (control == NULL) {
            PyErr_Clear();
            break;
        }
        PyObject *payload = NULL;
        if (cend == end) {
            payload = no_payload;
            Py_INCREF(payload);
        } else if (cend < end) {
            payload = core_decode_at(st, data, cend, ctx, st->default_max_depth, 0, &pend);
            if (payload == NULL)
                PyErr_Clear();
            else if (pend != end)
                Py_CLEAR(payload);
        }
        if (payload == NULL) {
            Py_DECREF(control);
            break;
        }
        PyObject *built = payload == no_payload ? NULL : send_control(st, control, payload);
        int rc;
        if (built != NULL) {
            rc = PyList_Append(events, built);
            Py_DECREF(built);
        } else if (PyErr_Occurred()) {
            rc = -1;
        } else {
            rc = PyList_Append(events, control);
            if (rc == 0)
                rc = PyList_Append(events, payload);
        }
        Py_DECREF(control);
        Py_DECREF(payload);
        if (rc < 0)
            goto error;
        pos = end;
    }
    Py_XDECREF(ctx);
    return Py_BuildValue("Nn", events, pos);
error:
    Py_XDECREF(ctx);
    Py_DECREF(events);
    return NULL;
}

/* ------------------------------------------------------------------ encoding */

static PyObject *encode_common(CoreState *st, PyObject *term, int versioned)
{
    PyObject *r = core_encode(st, term, versioned);
    if (r == NULL && PyErr_ExceptionMatches(st->unsupported)) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyObject *res = PyObject_CallFunctionObjArgs(st->encode_failed, term, value, NULL);
        Py_XDECREF(res); /* encode_failed raises the TypeError that names the path */
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        if (res != NULL)
            PyErr_SetString(PyExc_SystemError, "encode_failed returned");
    }
    return r;
}

static PyObject *mod_encode(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    CoreState *st = state_of(module);
    if (st == NULL)
        return NULL;
    PyObject *compressed = nargs > 1 ? args[1] : NULL;
    if (kwnames != NULL || nargs < 1 || nargs > 2
        || (compressed != NULL && compressed != Py_False && compressed != Py_None))
        return PyObject_Vectorcall(st->encode_compressed, args, nargs, kwnames);
    return encode_common(st, args[0], 1);
}

static PyObject *mod_encode_body(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    CoreState *st = state_of(module);
    if (st == NULL)
        return NULL;
    if (kwnames != NULL || nargs != 1) /* a mapping: etf_core._encode_body_mapped */
        return PyObject_Vectorcall(st->encode_body_slow, args, nargs, kwnames);
    return encode_common(st, args[0], 0);
}

/* ------------------------------------------------------------------ configuration */

static int get_obj(PyObject *kw, const char *name, PyObject **dest)
{
    PyObject *v = PyDict_GetItemString(kw, name);
    if (v == NULL) {
        PyErr_Format(PyExc_TypeError, "configure() needs %s", name);
        return -1;
    }
    Py_INCREF(v);
    Py_XSETREF(*dest, v);
    return 0;
}

/* The byte offset of the __slots__ member `name` of `type`. */
static int slot_offset(PyObject *type, const char *name, Py_ssize_t *dest)
{
    PyObject *descr = PyObject_GetAttrString(type, name);
    if (descr == NULL)
        return -1;
    int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type)
             && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX;
    if (ok)
        *dest = ((PyMemberDescrObject *)descr)->d_member->offset;
    Py_DECREF(descr);
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%R.%s is not a __slots__ member", type, name);
        return -1;
    }
    return 0;
}

static PyObject *mod_configure(PyObject *module, PyObject *args, PyObject *kw)
{
    CoreState *st = PyModule_GetState(module);
    if (kw == NULL || PyTuple_GET_SIZE(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "configure() takes keyword arguments only");
        return NULL;
    }
    if (get_obj(kw, "Atom", &st->atom_type) < 0 || get_obj(kw, "Pid", &st->pid_type) < 0
        || get_obj(kw, "Port", &st->port_type) < 0 || get_obj(kw, "Reference", &st->ref_type) < 0
        || get_obj(kw, "ExportFun", &st->export_type) < 0 || get_obj(kw, "Fun", &st->fun_type) < 0
        || get_obj(kw, "BitString", &st->bits_type) < 0
        || get_obj(kw, "ImproperList", &st->improper_type) < 0
        || get_obj(kw, "TermMap", &st->termmap_type) < 0
        || get_obj(kw, "DecodeError", &st->decode_error) < 0
        || get_obj(kw, "Unsupported", &st->unsupported) < 0
        || get_obj(kw, "coerce", &st->coerce) < 0 || get_obj(kw, "as_string", &st->as_string) < 0
        || get_obj(kw, "atom_ext", &st->atom_ext) < 0 || get_obj(kw, "big_ext", &st->big_ext) < 0
        || get_obj(kw, "float_ext", &st->float_ext) < 0
        || get_obj(kw, "encode_failed", &st->encode_failed) < 0
        || get_obj(kw, "decode_slow", &st->decode_slow) < 0
        || get_obj(kw, "encode_compressed", &st->encode_compressed) < 0
        || get_obj(kw, "rebuild_fun", &st->rebuild_fun) < 0
        || get_obj(kw, "Mapping", &st->mapping_type) < 0
        || get_obj(kw, "Charlist", &st->charlist_type) < 0
        || get_obj(kw, "struct_key", &st->struct_key) < 0
        || get_obj(kw, "encode_body_slow", &st->encode_body_slow) < 0
        || get_obj(kw, "Send", &st->send_type) < 0 || get_obj(kw, "RegSend", &st->reg_send_type) < 0
        || get_obj(kw, "SendSender", &st->send_sender_type) < 0
        || get_obj(kw, "AliasSend", &st->alias_send_type) < 0)
        return NULL;
    PyObject *v = PyDict_GetItemString(kw, "atom_salt");
    PyObject *w = PyDict_GetItemString(kw, "default_max_depth");
    if (v == NULL || w == NULL) {
        PyErr_SetString(PyExc_TypeError, "configure() needs atom_salt and default_max_depth");
        return NULL;
    }
    st->atom_salt = PyLong_AsSsize_t(v);
    st->default_max_depth = PyLong_AsSsize_t(w);
    if (PyErr_Occurred())
        return NULL;
    if (slot_offset(st->atom_type, "name", &st->atom_name) < 0
        || slot_offset(st->atom_type, "_hash", &st->atom_hash) < 0
        || slot_offset(st->atom_type, "_ext", &st->atom_ext_off) < 0
        || slot_offset(st->pid_type, "node", &st->pid_node) < 0
        || slot_offset(st->pid_type, "id", &st->pid_id) < 0
        || slot_offset(st->pid_type, "serial", &st->pid_serial) < 0
        || slot_offset(st->pid_type, "creation", &st->pid_creation) < 0
        || slot_offset(st->port_type, "node", &st->port_node) < 0
        || slot_offset(st->port_type, "id", &st->port_id) < 0
        || slot_offset(st->port_type, "creation", &st->port_creation) < 0
        || slot_offset(st->ref_type, "node", &st->ref_node) < 0
        || slot_offset(st->ref_type, "creation", &st->ref_creation) < 0
        || slot_offset(st->ref_type, "ids", &st->ref_ids) < 0
        || slot_offset(st->export_type, "module", &st->export_module) < 0
        || slot_offset(st->export_type, "function", &st->export_function) < 0
        || slot_offset(st->export_type, "arity", &st->export_arity) < 0
        || slot_offset(st->fun_type, "data", &st->fun_data) < 0
        || slot_offset(st->bits_type, "data", &st->bits_data) < 0
        || slot_offset(st->bits_type, "bits", &st->bits_bits) < 0
        || slot_offset(st->improper_type, "items", &st->improper_items) < 0
        || slot_offset(st->improper_type, "tail", &st->improper_tail) < 0
        || slot_offset(st->send_type, "to_pid", &st->send_to) < 0
        || slot_offset(st->send_type, "message", &st->send_msg) < 0
        || slot_offset(st->reg_send_type, "from_pid", &st->rs_from) < 0
        || slot_offset(st->reg_send_type, "to_name", &st->rs_to) < 0
        || slot_offset(st->reg_send_type, "message", &st->rs_msg) < 0
        || slot_offset(st->send_sender_type, "from_pid", &st->ss_from) < 0
        || slot_offset(st->send_sender_type, "to_pid", &st->ss_to) < 0
        || slot_offset(st->send_sender_type, "message", &st->ss_msg) < 0
        || slot_offset(st->alias_send_type, "from_pid", &st->as_from) < 0
        || slot_offset(st->alias_send_type, "alias", &st->as_alias) < 0
        || slot_offset(st->alias_send_type, "message", &st->as_msg) < 0)
        return NULL;
    st->configured = 1;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ module */

#define STATE_OBJECTS(X) \
    X(atom_type) X(pid_type) X(port_type) X(ref_type) X(export_type) X(fun_type) X(bits_type) \
    X(improper_type) X(termmap_type) X(decode_error) X(unsupported) X(coerce) X(as_string) \
    X(atom_ext) X(big_ext) X(float_ext) X(encode_failed) X(decode_slow) X(encode_compressed) \
    X(rebuild_fun) X(mapping_type) X(charlist_type) X(struct_key) X(encode_body_slow) \
    X(send_type) X(reg_send_type) X(send_sender_type) X(alias_send_type)

static int mod_traverse(PyObject *module, visitproc visit, void *arg)
{
    CoreState *st = PyModule_GetState(module);
    if (st == NULL)
        return 0;
#define VISIT(name) Py_VISIT(st->name);
    STATE_OBJECTS(VISIT)
#undef VISIT
    for (int i = 0; i < ATOM_CACHE_SLOTS; i++)
        Py_VISIT(st->atoms[i].value);
    return 0;
}

static int mod_clear(PyObject *module)
{
    CoreState *st = PyModule_GetState(module);
    if (st == NULL)
        return 0;
#define CLEAR(name) Py_CLEAR(st->name);
    STATE_OBJECTS(CLEAR)
#undef CLEAR
    for (int i = 0; i < ATOM_CACHE_SLOTS; i++) {
        Py_CLEAR(st->atoms[i].raw);
        Py_CLEAR(st->atoms[i].value);
    }
    st->configured = 0;
    return 0;
}

static void mod_free(void *module) { mod_clear((PyObject *)module); }

static int mod_exec(PyObject *module)
{
    if (PyType_Ready(&DecodeContext_Type) < 0)
        return -1;
    Py_INCREF(&DecodeContext_Type);
    if (PyModule_AddObject(module, "DecodeContext", (PyObject *)&DecodeContext_Type) < 0) {
        Py_DECREF(&DecodeContext_Type);
        return -1;
    }
    return 0;
}

static PyMethodDef core_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))mod_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(**kw): the term classes and Python helpers (called by dist_proto.etf_core)."},
    {"decode", (PyCFunction)(void (*)(void))mod_decode, METH_FASTCALL | METH_KEYWORDS,
     "decode(data, *, max_depth, max_uncompressed_size, zero_copy): binary_to_term/1."},
    {"decode_at", (PyCFunction)(void (*)(void))mod_decode_at, METH_FASTCALL,
     "decode_at(data, pos, ctx, max_depth, zero_copy) -> (term, end)."},
    {"decode_dist", (PyCFunction)(void (*)(void))mod_decode_dist, METH_FASTCALL,
     "decode_dist(data, offset, ctx) -> (term, end): a term inside a distribution message."},
    {"dist_context", (PyCFunction)(void (*)(void))mod_dist_context, METH_VARARGS | METH_KEYWORDS,
     "dist_context(atom_cache, mapping=None) -> DecodeContext for decode_dist / decode_at."},
    {"scan_frames", (PyCFunction)(void (*)(void))mod_scan_frames, METH_FASTCALL,
     "scan_frames(data, pos, cache, max_frame, no_payload) -> (events, pos): the steady-state "
     "frames of a read, decoded (see DistConnection.drain)."},
    {"encode", (PyCFunction)(void (*)(void))mod_encode, METH_FASTCALL | METH_KEYWORDS,
     "encode(term, compressed=False): term_to_binary/1,2."},
    {"encode_body", (PyCFunction)(void (*)(void))mod_encode_body, METH_FASTCALL | METH_KEYWORDS,
     "encode_body(term, mapping=None): the encoded term without the version byte."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, mod_exec},
    {0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dist_proto._etf_core",
    .m_doc = "The compiled core of the ETF codec (optional; see dist_proto.etf).",
    .m_size = sizeof(CoreState),
    .m_methods = core_methods,
    .m_slots = core_slots,
    .m_traverse = mod_traverse,
    .m_clear = mod_clear,
    .m_free = mod_free,
};

PyMODINIT_FUNC PyInit__etf_core(void) { return PyModuleDef_Init(&core_module); }
