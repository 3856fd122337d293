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

static EVP_MD *sha256_md;

typedef struct {
    unsigned char entry[ENTRY_SIZE]; /* key hash, then value hash (unused for a deletion) */
    const char *key, *value;         /* borrowed from the records for the hashing pass */
    Py_ssize_t key_size, value_size; /* value_size < 0: the record is deleted */
} Update;

typedef struct {
    const char *data;
    Py_ssize_t size;
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
merged_bucket(PyObject *stored, const Update *updates, Py_ssize_t count)
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
        if (i < old_count && memcmp(old + i * ENTRY_SIZE, updates[j].entry, HASH_SIZE) == 0)
            i++; /* the record's old entry gives way to its new one, or to nothing */
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
    PyObject *changed = NULL;
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
    if (changed == NULL)
        goto done;
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
        PyObject *bucket = merged_bucket(stored, updates + first, last - first);
        Py_DECREF(stored);
        PyObject *index = bucket == NULL ? NULL : PyLong_FromLong(position);
        int stored_ok = index != NULL && PyDict_SetItem(changed, index, bucket) == 0;
        Py_XDECREF(index);
        Py_XDECREF(bucket);
        if (!stored_ok)
            goto fail;
        first = last;
    }
    goto done;
fail:
    Py_CLEAR(changed);
done:
    EVP_MD_CTX_free(ctx);
    PyMem_RawFree(updates);
    Py_DECREF(held);
    return changed;
}

/* A copy of a level, checked to hold ``size`` 32-byte hashes in the same pass that copies them. */
static PyObject *
copied_level(PyObject *level, Py_ssize_t size)
{
    if (!PyList_Check(level) || PyList_GET_SIZE(level) != size) {
        PyErr_SetString(PyExc_ValueError, "a level of the tree has 16 to the power of its depth hashes");
        return NULL;
    }
    PyObject *copy = PyList_New(size);
    if (copy == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *hash = PyList_GET_ITEM(level, i);
        if (!PyBytes_Check(hash) || PyBytes_GET_SIZE(hash) != HASH_SIZE) {
            PyErr_SetString(PyExc_ValueError, "a level of the tree holds 32-byte hashes");
            Py_DECREF(copy);
            return NULL;
        }
        Py_INCREF(hash);
        PyList_SET_ITEM(copy, i, hash);
    }
    return copy;
}

static PyObject *
rehash(PyObject *module, PyObject *args)
{
    PyObject *levels, *changed;
    if (!PyArg_ParseTuple(args, "O!O!:rehash", &PyTuple_Type, &levels, &PyDict_Type, &changed))
        return NULL;
    if (PyTuple_GET_SIZE(levels) != LEVELS + 1) {
        PyErr_SetString(PyExc_ValueError, "a tree has five levels, the root's to the buckets'");
        return NULL;
    }
    Py_ssize_t count = PyDict_GET_SIZE(changed), size = 1;
    PyObject *result = PyTuple_New(LEVELS + 1), *held = PyList_New(0);
    Hashing *hashing = PyMem_RawCalloc(count ? count : 1, sizeof(Hashing));
    int *positions = PyMem_RawCalloc(count ? count : 1, sizeof(int));
    unsigned char *dirty = PyMem_RawCalloc(BUCKETS, 1);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (result == NULL || held == NULL || hashing == NULL || positions == NULL || dirty == NULL || ctx == NULL) {
        if (result != NULL && held != NULL)
            PyErr_NoMemory();
        goto fail;
    }
    for (int depth = 0; depth <= LEVELS; depth++, size *= FANOUT) {
        PyObject *copy = copied_level(PyTuple_GET_ITEM(levels, depth), size);
        if (copy == NULL)
            goto fail;
        PyTuple_SET_ITEM(result, depth, copy);
    }
    /* The changed buckets, hashed with the GIL released: ``held`` keeps each alive, and bytes never change. */
    PyObject *index, *bucket;
    Py_ssize_t at = 0, n = 0;
    while (PyDict_Next(changed, &at, &index, &bucket)) {
        long position = PyLong_Check(index) ? PyLong_AsLong(index) : -1;
        if (position < 0 || position >= BUCKETS) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "a changed bucket's index is 0 to 65,535");
            goto fail;
        }
        if (!check_bucket(bucket))
            goto fail;
        if (PyList_Append(held, bucket) < 0)
            goto fail;
        positions[n] = (int)position;
        hashing[n].data = PyBytes_AS_STRING(bucket);
        hashing[n].size = PyBytes_GET_SIZE(bucket);
        n++;
    }
    int hashed;
    Py_BEGIN_ALLOW_THREADS
    hashed = hash_all(ctx, hashing, count);
    Py_END_ALLOW_THREADS
    if (!hashed) {
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
        goto fail;
    }
    PyObject *below = PyTuple_GET_ITEM(result, LEVELS);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *hash = PyBytes_FromStringAndSize((const char *)hashing[i].hash, HASH_SIZE);
        if (hash == NULL)
            goto fail;
        PyList_SetItem(below, positions[i], hash);
        dirty[positions[i]] = 1;
    }
    /* Each level up: a node is hashed again if any of its 16 children changed. */
    unsigned char node[1 + FANOUT * HASH_SIZE], digest[HASH_SIZE];
    node[0] = NODE_TAG;
    for (int depth = LEVELS - 1, width = BUCKETS / FANOUT; depth >= 0; depth--, width /= FANOUT) {
        PyObject *here = PyTuple_GET_ITEM(result, depth);
        below = PyTuple_GET_ITEM(result, depth + 1);
        for (int parent = 0; parent < width; parent++) {
            int any = 0;
            for (int child = 0; child < FANOUT; child++)
                any |= dirty[parent * FANOUT + child];
            dirty[parent] = (unsigned char)any; /* parent <= its first child: read before written */
            if (!any)
                continue;
            for (int child = 0; child < FANOUT; child++)
                memcpy(node + 1 + child * HASH_SIZE, PyBytes_AS_STRING(PyList_GET_ITEM(below, parent * FANOUT + child)),
                       HASH_SIZE);
            PyObject *hash = NULL;
            if (EVP_DigestInit_ex(ctx, sha256_md, NULL) && EVP_DigestUpdate(ctx, node, sizeof node)
                && EVP_DigestFinal_ex(ctx, digest, NULL))
                hash = PyBytes_FromStringAndSize((const char *)digest, HASH_SIZE);
            else
                PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
            if (hash == NULL)
                goto fail;
            PyList_SetItem(here, parent, hash);
        }
    }
    EVP_MD_CTX_free(ctx);
    Py_DECREF(held);
    PyMem_RawFree(dirty);
    PyMem_RawFree(positions);
    PyMem_RawFree(hashing);
    return result;
fail:
    EVP_MD_CTX_free(ctx);
    Py_XDECREF(held);
    Py_XDECREF(result);
    PyMem_RawFree(dirty);
    PyMem_RawFree(positions);
    PyMem_RawFree(hashing);
    return NULL;
}

static PyMethodDef methods[] = {
    {"merge", merge, METH_VARARGS,
     "merge(buckets, records) -> {bucket index: bucket}: the buckets a block's records change, as they become."},
    {"rehash", rehash, METH_VARARGS,
     "rehash(levels, changed) -> levels: every level's hashes once the changed buckets replace theirs."},
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
