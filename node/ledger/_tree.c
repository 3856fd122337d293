/* The state tree's per-block work (node/ledger/tree.py), in C.
 *
 * A 10,000-transfer block rewrites some 20,000 records.  Each one costs two
 * SHA-256 of a few dozen bytes, a place in a sorted bucket and a share of a
 * bucket's hash: native work, but in Python every step of it is wrapped in
 * interpreter overhead that costs more than the work.  This module does the
 * same steps, with the same shape and hashes (node/core/state_proof.py), in
 * two calls: ``merge`` turns a block's records into its changed buckets and
 * ``rehash`` the levels above them.  SHA-256 is OpenSSL's, as hashlib's is;
 * the hashing runs with the GIL released, so the node's other threads (the
 * event loop, the verifier) go on meanwhile.
 *
 * Nothing here is stored or decides anything tree.py does not already
 * decide: the tests compare every root with a plain reference computation.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define HASH_SIZE 32
#define ENTRY_SIZE (2 * HASH_SIZE)
#define FANOUT 16
#define LEVELS 4
#define BUCKETS (FANOUT * FANOUT * FANOUT * FANOUT)
#define BUCKET_TAG 0x00
#define NODE_TAG 0x01
/* A record's undo: its key hash, 1 if the key was present before the block (0 if not), its value hash then. */
#define UNDO_SIZE (2 * HASH_SIZE + 1)

static EVP_MD *sha256_md;

typedef struct {
    unsigned char entry[ENTRY_SIZE]; /* key hash, then value hash (unused for a deletion) */
    const char *key, *value;         /* borrowed from the records for the hashing pass */
    Py_ssize_t key_size, value_size; /* value_size < 0: the record is deleted */
} Update;

typedef struct {
    const char *data;
    Py_ssize_t size;
    int position;
    unsigned char hash[HASH_SIZE];
} Hashing;

static int
compare_key_hashes(const void *a, const void *b)
{
    return memcmp(((const Update *)a)->entry, ((const Update *)b)->entry, HASH_SIZE);
}

/* Hashes every record's key and value; false only if OpenSSL fails. Runs without the GIL. */
static int
hash_records(EVP_MD_CTX *ctx, Update *updates, Py_ssize_t count)
{
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < count; i++) {
        Update *u = &updates[i];
        ok = EVP_DigestInit_ex(ctx, sha256_md, NULL) && EVP_DigestUpdate(ctx, u->key, u->key_size)
             && EVP_DigestFinal_ex(ctx, u->entry, NULL);
        if (ok && u->value_size >= 0)
            ok = EVP_DigestInit_ex(ctx, sha256_md, NULL) && EVP_DigestUpdate(ctx, u->value, u->value_size)
                 && EVP_DigestFinal_ex(ctx, u->entry + HASH_SIZE, NULL);
    }
    return ok;
}

/* Hashes each of ``count`` byte strings; false only if OpenSSL fails. Runs without the GIL. */
static int
hash_all(EVP_MD_CTX *ctx, Hashing *items, Py_ssize_t count)
{
    int ok = 1;
    for (Py_ssize_t i = 0; ok && i < count; i++)
        ok = EVP_DigestInit_ex(ctx, sha256_md, NULL) && EVP_DigestUpdate(ctx, items[i].data, items[i].size)
             && EVP_DigestFinal_ex(ctx, items[i].hash, NULL);
    return ok;
}

/* A stored bucket: the tag, then whole entries. Anything else is not a bucket of this tree. */
static int
check_bucket(PyObject *bucket)
{
    if (!PyBytes_Check(bucket) || PyBytes_GET_SIZE(bucket) < 1 || (PyBytes_GET_SIZE(bucket) - 1) % ENTRY_SIZE
        || PyBytes_AS_STRING(bucket)[0] != BUCKET_TAG) {
        PyErr_SetString(PyExc_ValueError, "a bucket is its tag followed by whole 64-byte entries");
        return 0;
    }
    return 1;
}

/* The bucket ``stored`` with ``updates`` (sorted, one bucket's) merged in: each replaces, inserts or deletes
 * its key's entry, and the entries stay in key-hash order.  Written straight into the new bytes object, made as
 * large as the bucket could grow and cut to size (a block mostly replaces entries: it stays the size it was). */
static PyObject *
merged_bucket(PyObject *stored, const Update *updates, Py_ssize_t count, unsigned char *undo)
{
    const unsigned char *old = (const unsigned char *)PyBytes_AS_STRING(stored) + 1;
    Py_ssize_t old_count = (PyBytes_GET_SIZE(stored) - 1) / ENTRY_SIZE, i = 0;
    PyObject *bucket = PyBytes_FromStringAndSize(NULL, 1 + (old_count + count) * ENTRY_SIZE);
    if (bucket == NULL)
        return NULL;
    unsigned char *start = (unsigned char *)PyBytes_AS_STRING(bucket), *out = start;
    *out++ = BUCKET_TAG;
    for (Py_ssize_t j = 0; j < count; j++) {
        Py_ssize_t run = i;
        while (run < old_count && memcmp(old + run * ENTRY_SIZE, updates[j].entry, HASH_SIZE) < 0)
            run++;
        memcpy(out, old + i * ENTRY_SIZE, (run - i) * ENTRY_SIZE); /* the entries before this record's */
        out += (run - i) * ENTRY_SIZE;
        i = run;
        unsigned char *was = undo + j * UNDO_SIZE;
        memcpy(was, updates[j].entry, HASH_SIZE);
        if (i < old_count && memcmp(old + i * ENTRY_SIZE, updates[j].entry, HASH_SIZE) == 0) {
            was[HASH_SIZE] = 1; /* the record's old entry, kept in the undo, gives way to its new one or to nothing */
            memcpy(was + HASH_SIZE + 1, old + i * ENTRY_SIZE + HASH_SIZE, HASH_SIZE);
            i++;
        } else {
            memset(was + HASH_SIZE, 0, 1 + HASH_SIZE);
        }
        if (updates[j].value_size >= 0) {
            memcpy(out, updates[j].entry, ENTRY_SIZE);
            out += ENTRY_SIZE;
        }
    }
    memcpy(out, old + i * ENTRY_SIZE, (old_count - i) * ENTRY_SIZE);
    out += (old_count - i) * ENTRY_SIZE;
    if (_PyBytes_Resize(&bucket, out - start) < 0)
        return NULL;
    return bucket;
}

static PyObject *
merge(PyObject *module, PyObject *args)
{
    PyObject *buckets, *records;
    if (!PyArg_ParseTuple(args, "O!O:merge", &PyList_Type, &buckets, &records))
        return NULL;
    if (PyList_GET_SIZE(buckets) != BUCKETS) {
        PyErr_SetString(PyExc_ValueError, "a tree has 65,536 buckets");
        return NULL;
    }
    /* A tuple of our own holds every record, and so its key and value, while the GIL is released. */
    PyObject *held = PySequence_Tuple(records);
    if (held == NULL)
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(held);
    Update *updates = PyMem_RawCalloc(count ? count : 1, sizeof(Update)); /* calloc checks the product */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    PyObject *changed = NULL, *undo = NULL, *result = NULL;
    if (updates == NULL || ctx == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t n = 0; n < count; n++) {
        PyObject *record = PyTuple_GET_ITEM(held, n);
        if (!PyTuple_Check(record) || PyTuple_GET_SIZE(record) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(record, 0))
            || !(PyBytes_Check(PyTuple_GET_ITEM(record, 1)) || PyTuple_GET_ITEM(record, 1) == Py_None)) {
            PyErr_SetString(PyExc_TypeError, "a record is a (key bytes, value bytes or None) pair");
            goto done;
        }
        PyObject *key = PyTuple_GET_ITEM(record, 0), *value = PyTuple_GET_ITEM(record, 1);
        updates[n].key = PyBytes_AS_STRING(key);
        updates[n].key_size = PyBytes_GET_SIZE(key);
        updates[n].value = value == Py_None ? NULL : PyBytes_AS_STRING(value);
        updates[n].value_size = value == Py_None ? -1 : PyBytes_GET_SIZE(value);
    }
    int hashed;
    Py_BEGIN_ALLOW_THREADS
    hashed = hash_records(ctx, updates, count);
    if (hashed)
        qsort(updates, count, sizeof(Update), compare_key_hashes);
    Py_END_ALLOW_THREADS
    if (!hashed) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
        goto done;
    }
    for (Py_ssize_t n = 1; n < count; n++)
        if (memcmp(updates[n - 1].entry, updates[n].entry, HASH_SIZE) == 0) {
            PyErr_SetString(PyExc_ValueError, "a key appears twice among a block's records");
            goto done;
        }
    changed = PyDict_New();
    undo = PyBytes_FromStringAndSize(NULL, count * UNDO_SIZE);
    if (changed == NULL || undo == NULL)
        goto fail;
    /* Taking the records may have run Python code (an iterator, a finalizer): the list is checked again
     * here, and nothing below runs any. */
    if (PyList_GET_SIZE(buckets) != BUCKETS) {
        PyErr_SetString(PyExc_ValueError, "the buckets changed while a block's records were taken");
        goto fail;
    }
    for (Py_ssize_t first = 0; first < count;) {
        int position = updates[first].entry[0] << 8 | updates[first].entry[1];
        Py_ssize_t last = first;
        while (last < count && (updates[last].entry[0] << 8 | updates[last].entry[1]) == position)
            last++;
        PyObject *stored = PyList_GET_ITEM(buckets, position);
        if (!check_bucket(stored))
            goto fail;
        Py_INCREF(stored);
        PyObject *bucket = merged_bucket(stored, updates + first, last - first,
                                         (unsigned char *)PyBytes_AS_STRING(undo) + first * UNDO_SIZE);
        Py_DECREF(stored);
        PyObject *index = bucket == NULL ? NULL : PyLong_FromLong(position);
        int stored_ok = index != NULL && PyDict_SetItem(changed, index, bucket) == 0;
        Py_XDECREF(index);
        Py_XDECREF(bucket);
        if (!stored_ok)
            goto fail;
        first = last;
    }
    result = PyTuple_Pack(2, changed, undo);
fail:
    Py_XDECREF(changed);
    Py_XDECREF(undo);
done:
    EVP_MD_CTX_free(ctx);
    PyMem_RawFree(updates);
    Py_DECREF(held);
    return result;
}

/* Level ``depth`` of ``levels``: a bytes-like of 16 ** depth hashes, its bytes borrowed from ``levels``. */
static unsigned char *
level_of(PyObject *levels, int depth, int writable)
{
    PyObject *level = PyTuple_GET_ITEM(levels, depth);
    Py_ssize_t size = HASH_SIZE;
    for (int d = 0; d < depth; d++)
        size *= FANOUT;
    if (!(PyByteArray_Check(level) || (!writable && PyBytes_Check(level)))) {
        PyErr_SetString(PyExc_TypeError, writable ? "a level of the tree is a bytearray"
                                                  : "a level of the tree is a bytes or bytearray");
        return NULL;
    }
    if ((PyByteArray_Check(level) ? PyByteArray_GET_SIZE(level) : PyBytes_GET_SIZE(level)) != size) {
        PyErr_SetString(PyExc_ValueError, "a level of the tree has 16 to the power of its depth 32-byte hashes");
        return NULL;
    }
    return (unsigned char *)(PyByteArray_Check(level) ? PyByteArray_AS_STRING(level) : PyBytes_AS_STRING(level));
}

static int
checked_levels(PyObject *levels, unsigned char **level, int writable)
{
    if (!PyTuple_Check(levels) || PyTuple_GET_SIZE(levels) != LEVELS + 1) {
        PyErr_SetString(PyExc_ValueError, "a tree has five levels, the root's to the buckets'");
        return 0;
    }
    for (int depth = 0; depth <= LEVELS; depth++)
        if ((level[depth] = level_of(levels, depth, writable)) == NULL)
            return 0;
    return 1;
}

static int
compare_positions(const void *a, const void *b)
{
    int x = ((const Hashing *)a)->position, y = ((const Hashing *)b)->position;
    return (x > y) - (x < y);
}

/* A level's changes: ``count`` positions, ascending, and each one's new hash. */
typedef struct {
    Py_ssize_t count;
    int *positions;
    unsigned char *hashes;
} Changes;

static PyObject *
rehash(PyObject *module, PyObject *args)
{
    PyObject *levels, *changed;
    if (!PyArg_ParseTuple(args, "OO!:rehash", &levels, &PyDict_Type, &changed))
        return NULL;
    unsigned char *level[LEVELS + 1];
    if (!checked_levels(levels, level, 0))
        return NULL;
    Py_ssize_t count = PyDict_GET_SIZE(changed);
    PyObject *result = NULL, *held = PyList_New(0), *parts = PyTuple_New(LEVELS + 1);
    Hashing *hashing = PyMem_RawCalloc(count ? count : 1, sizeof(Hashing));
    Changes changes[LEVELS + 1] = {{0}};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = held != NULL && parts != NULL && hashing != NULL && ctx != NULL;
    for (int depth = 0; ok && depth <= LEVELS; depth++) {
        changes[depth].positions = PyMem_RawCalloc(count ? count : 1, sizeof(int));
        changes[depth].hashes = PyMem_RawCalloc(count ? count : 1, HASH_SIZE);
        ok = changes[depth].positions != NULL && changes[depth].hashes != NULL;
    }
    if (!ok) {
        if (held != NULL && parts != NULL)
            PyErr_NoMemory();
        goto done;
    }
    /* The changed buckets, hashed with the GIL released: ``held`` keeps each alive, and bytes never change. */
    PyObject *index, *bucket;
    Py_ssize_t at = 0, n = 0;
    while (PyDict_Next(changed, &at, &index, &bucket)) {
        long position = PyLong_Check(index) ? PyLong_AsLong(index) : -1;
        if (position < 0 || position >= BUCKETS) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a changed bucket's index is 0 to 65,535");
            goto done;
        }
        if (!check_bucket(bucket) || PyList_Append(held, bucket) < 0)
            goto done;
        hashing[n].position = (int)position;
        hashing[n].data = PyBytes_AS_STRING(bucket);
        hashing[n].size = PyBytes_GET_SIZE(bucket);
        n++;
    }
    /* Each level up, a node is hashed again if any of its 16 children changed: from the children's new
     * hashes where they changed, from the level as it is where they did not.  Only the changed nodes are
     * touched, so the levels are read, never copied. */
    int hashed;
    Py_BEGIN_ALLOW_THREADS
    hashed = hash_all(ctx, hashing, count);
    qsort(hashing, count, sizeof(Hashing), compare_positions);
    for (Py_ssize_t i = 0; i < count; i++) {
        changes[LEVELS].positions[i] = hashing[i].position;
        memcpy(changes[LEVELS].hashes + i * HASH_SIZE, hashing[i].hash, HASH_SIZE);
    }
    changes[LEVELS].count = count;
    unsigned char node[1 + FANOUT * HASH_SIZE];
    node[0] = NODE_TAG;
    for (int depth = LEVELS - 1; hashed && depth >= 0; depth--) {
        const Changes *below = &changes[depth + 1];
        Changes *here = &changes[depth];
        for (Py_ssize_t i = 0; hashed && i < below->count;) {
            int parent = below->positions[i] / FANOUT;
            for (int child = 0; child < FANOUT; child++) {
                int position = parent * FANOUT + child;
                const unsigned char *hash = level[depth + 1] + (Py_ssize_t)position * HASH_SIZE;
                if (i < below->count && below->positions[i] == position)
                    hash = below->hashes + i++ * HASH_SIZE;
                memcpy(node + 1 + child * HASH_SIZE, hash, HASH_SIZE);
            }
            here->positions[here->count] = parent;
            hashed = EVP_DigestInit_ex(ctx, sha256_md, NULL) && EVP_DigestUpdate(ctx, node, sizeof node)
                     && EVP_DigestFinal_ex(ctx, here->hashes + here->count * HASH_SIZE, NULL);
            here->count++;
        }
    }
    Py_END_ALLOW_THREADS
    if (!hashed) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
        goto done;
    }
    for (int depth = 0; depth <= LEVELS; depth++) {
        PyObject *positions = PyBytes_FromStringAndSize((const char *)changes[depth].positions,
                                                        changes[depth].count * (Py_ssize_t)sizeof(int));
        PyObject *hashes = PyBytes_FromStringAndSize((const char *)changes[depth].hashes,
                                                     changes[depth].count * HASH_SIZE);
        PyObject *pair = positions != NULL && hashes != NULL ? PyTuple_Pack(2, positions, hashes) : NULL;
        Py_XDECREF(positions);
        Py_XDECREF(hashes);
        if (pair == NULL)
            goto done;
        PyTuple_SET_ITEM(parts, depth, pair);
    }
    /* No change at all (an empty block) leaves the root as it is. */
    result = Py_BuildValue("(y#O)", changes[0].count ? (const char *)changes[0].hashes : (const char *)level[0],
                           (Py_ssize_t)HASH_SIZE, parts);
done:
    EVP_MD_CTX_free(ctx);
    for (int depth = 0; depth <= LEVELS; depth++) {
        PyMem_RawFree(changes[depth].positions);
        PyMem_RawFree(changes[depth].hashes);
    }
    PyMem_RawFree(hashing);
    Py_XDECREF(parts);
    Py_XDECREF(held);
    return result;
}

static PyObject *
install(PyObject *module, PyObject *args)
{
    PyObject *levels, *parts;
    if (!PyArg_ParseTuple(args, "OO!:install", &levels, &PyTuple_Type, &parts))
        return NULL;
    unsigned char *level[LEVELS + 1];
    if (!checked_levels(levels, level, 1))
        return NULL;
    if (PyTuple_GET_SIZE(parts) != LEVELS + 1) {
        PyErr_SetString(PyExc_ValueError, "a tree's changes are one (positions, hashes) pair per level");
        return NULL;
    }
    /* Every pair is checked before any hash is written: a level is changed whole or not at all. */
    Py_ssize_t width = 1;
    for (int depth = 0; depth <= LEVELS; depth++, width *= FANOUT) {
        PyObject *pair = PyTuple_GET_ITEM(parts, depth);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 0))
            || !PyBytes_Check(PyTuple_GET_ITEM(pair, 1))
            || PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 0)) % sizeof(int)
            || PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 1)) / HASH_SIZE
                   != PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 0)) / (Py_ssize_t)sizeof(int)
            || PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 1)) % HASH_SIZE) {
            PyErr_SetString(PyExc_ValueError, "a level's changes are packed positions and as many 32-byte hashes");
            return NULL;
        }
        const int *positions = (const int *)PyBytes_AS_STRING(PyTuple_GET_ITEM(pair, 0));
        for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 0)) / (Py_ssize_t)sizeof(int); i++) {
            if (positions[i] < 0 || positions[i] >= width) {
                PyErr_SetString(PyExc_ValueError, "a changed position lies outside its level");
                return NULL;
            }
            if (i > 0 && positions[i] <= positions[i - 1]) {
                PyErr_SetString(PyExc_ValueError, "a level's changed positions ascend, each once");
                return NULL;
            }
        }
    }
    /* Everything that can fail (the old hashes' objects) is made before the first hash is written. */
    PyObject *old = PyTuple_New(LEVELS + 1);
    if (old == NULL)
        return NULL;
    for (int depth = 0; depth <= LEVELS; depth++) {
        PyObject *was = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(PyTuple_GET_ITEM(PyTuple_GET_ITEM(parts, depth), 1)));
        if (was == NULL) {
            Py_DECREF(old);
            return NULL;
        }
        PyTuple_SET_ITEM(old, depth, was);
    }
    for (int depth = 0; depth <= LEVELS; depth++) {
        PyObject *pair = PyTuple_GET_ITEM(parts, depth);
        const int *positions = (const int *)PyBytes_AS_STRING(PyTuple_GET_ITEM(pair, 0));
        const char *hashes = PyBytes_AS_STRING(PyTuple_GET_ITEM(pair, 1));
        Py_ssize_t count = PyBytes_GET_SIZE(PyTuple_GET_ITEM(pair, 1)) / HASH_SIZE;
        PyObject *was = PyTuple_GET_ITEM(old, depth);
        for (Py_ssize_t i = 0; i < count; i++) {
            unsigned char *at = level[depth] + (Py_ssize_t)positions[i] * HASH_SIZE;
            memcpy(PyBytes_AS_STRING(was) + i * HASH_SIZE, at, HASH_SIZE);
            memcpy(at, hashes + i * HASH_SIZE, HASH_SIZE);
        }
    }
    return old;
}

static PyMethodDef methods[] = {
    {"merge", merge, METH_VARARGS,
     "merge(buckets, records) -> {bucket index: bucket}: the buckets a block's records change, as they become."},
    {"rehash", rehash, METH_VARARGS,
     "rehash(levels, changed) -> (root, changes): per level, the positions and new hashes of the nodes the changed "
     "buckets change."},
    {"install", install, METH_VARARGS,
     "install(levels, changes) -> old: write rehash's changes into the levels, and return the hashes they replace."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "node.ledger._tree",
    .m_doc = "The state tree's per-block work in C (node/ledger/_tree.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__tree(void)
{
    if (sha256_md == NULL)
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL offers no SHA-256");
        return NULL;
    }
    return PyModule_Create(&module);
}
