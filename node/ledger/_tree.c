/* The state tree's per-block work (node/ledger/tree.py), in C.
 *
 * A 10,000-transfer block rewrites some 20,000 records.  Each one costs two
 * SHA-256 of a few dozen bytes, a place in a sorted bucket and a share of a
 * bucket's hash: native work, but in Python every step of it is wrapped in
 * interpreter overhead that costs more than the work.  This module does the
 * same steps, with the same shape and hashes (node/core/state_proof.py):
 * ``update`` turns a block's records into its changed buckets and the
 * levels' new hashes above them, and ``install`` writes those hashes into the
 * newest version.  SHA-256 is OpenSSL's, as hashlib's is.
 *
 * A bucket is hashed as soon as it is merged, while its bytes are still in the
 * cache: at a million accounts the buckets are 64 MB, and a block's 17,000 of
 * them are cold when it starts.  The records are independent of each other and
 * so are the buckets, so both passes are split between this thread and
 * THREADS - 1 more, with the GIL released: the node's other threads (the event
 * loop, the verifier) go on meanwhile.
 *
 * Nothing here is stored or decides anything tree.py does not already
 * decide: the tests compare every root with a plain reference computation.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>
#include <pthread.h>
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

/* Threads a block's hashing is split between, this one included. */
#define THREADS 2
/* Below this many records or buckets, one thread does it all: starting another costs more. */
#define SPLIT_FROM 256

static EVP_MD *sha256_md;

typedef struct {
    unsigned char entry[ENTRY_SIZE]; /* key hash, then value hash (unused for a deletion) */
    const char *key, *value;         /* borrowed from the records for the hashing pass */
    Py_ssize_t key_size, value_size; /* value_size < 0: the record is deleted */
} Update;

/* One bucket a block changes: what it holds, the block's records in it, and what it becomes. */
typedef struct {
    int position;
    const Update *updates; /* this bucket's records, in key-hash order */
    Py_ssize_t count;
    PyObject *stored;           /* the bucket as it is (a reference of our own) */
    PyObject *bucket;           /* the bucket it becomes, made as large as it could grow */
    unsigned char *undo;        /* where its records' undo goes: ``count`` of them */
    Py_ssize_t size;            /* the merged bucket's size */
    unsigned char hash[HASH_SIZE];
} Merge;

/* A level's changes: ``count`` positions, ascending, and each one's new hash. */
typedef struct {
    Py_ssize_t count;
    int *positions;
    unsigned char *hashes;
} Changes;

static int
compare_key_hashes(const void *a, const void *b)
{
    return memcmp(((const Update *)a)->entry, ((const Update *)b)->entry, HASH_SIZE);
}

static int
sha256(EVP_MD_CTX *ctx, const void *data, size_t size, unsigned char *out)
{
    return EVP_DigestInit_ex(ctx, sha256_md, NULL) && EVP_DigestUpdate(ctx, data, size)
           && EVP_DigestFinal_ex(ctx, out, NULL);
}

/* A share of the work over items [from, to): false only if OpenSSL fails.  Runs without the GIL. */
typedef int (*Work)(EVP_MD_CTX *ctx, void *items, Py_ssize_t from, Py_ssize_t to);

typedef struct {
    Work work;
    void *items;
    Py_ssize_t from, to;
    int ok;
} Share;

static void *
run_share(void *argument)
{
    Share *share = argument;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    share->ok = ctx != NULL && share->work(ctx, share->items, share->from, share->to);
    EVP_MD_CTX_free(ctx);
    return NULL;
}

/* Does ``work`` over ``count`` items in THREADS shares, the first on this thread; a share whose thread
 * cannot be started is done here too.  False if any share failed. */
static int
in_parallel(Work work, void *items, Py_ssize_t count)
{
    int threads = count < SPLIT_FROM ? 1 : THREADS;
    Share shares[THREADS];
    pthread_t helpers[THREADS];
    int started[THREADS] = {0};
    for (int t = 0; t < threads; t++)
        shares[t] = (Share){work, items, count * t / threads, count * (t + 1) / threads, 0};
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&helpers[t], NULL, run_share, &shares[t]) == 0;
    run_share(&shares[0]);
    int ok = shares[0].ok;
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(helpers[t], NULL);
        else
            run_share(&shares[t]);
        ok = ok && shares[t].ok;
    }
    return ok;
}

/* Hashes records' keys and values. */
static int
hash_records(EVP_MD_CTX *ctx, void *items, Py_ssize_t from, Py_ssize_t to)
{
    Update *updates = items;
    int ok = 1;
    for (Py_ssize_t i = from; ok && i < to; i++) {
        Update *u = &updates[i];
        ok = sha256(ctx, u->key, u->key_size, u->entry)
             && (u->value_size < 0 || sha256(ctx, u->value, u->value_size, u->entry + HASH_SIZE));
    }
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

/* Each bucket with its records merged in, then hashed: each record replaces, inserts or deletes its key's
 * entry, the entries stay in key-hash order, and the undo notes each record as it was. */
static int
merge_buckets(EVP_MD_CTX *ctx, void *items, Py_ssize_t from, Py_ssize_t to)
{
    Merge *merges = items;
    int ok = 1;
    for (Py_ssize_t m = from; ok && m < to; m++) {
        Merge *merge = &merges[m];
        const unsigned char *old = (const unsigned char *)PyBytes_AS_STRING(merge->stored) + 1;
        Py_ssize_t old_count = (PyBytes_GET_SIZE(merge->stored) - 1) / ENTRY_SIZE, i = 0;
        unsigned char *start = (unsigned char *)PyBytes_AS_STRING(merge->bucket), *out = start;
        *out++ = BUCKET_TAG;
        for (Py_ssize_t j = 0; j < merge->count; j++) {
            const Update *record = &merge->updates[j];
            Py_ssize_t run = i;
            while (run < old_count && memcmp(old + run * ENTRY_SIZE, record->entry, HASH_SIZE) < 0)
                run++;
            memcpy(out, old + i * ENTRY_SIZE, (run - i) * ENTRY_SIZE); /* the entries before this record's */
            out += (run - i) * ENTRY_SIZE;
            i = run;
            unsigned char *was = merge->undo + j * UNDO_SIZE;
            memcpy(was, record->entry, HASH_SIZE);
            if (i < old_count && memcmp(old + i * ENTRY_SIZE, record->entry, HASH_SIZE) == 0) {
                was[HASH_SIZE] = 1; /* the old entry, kept in the undo, gives way to the new one or to nothing */
                memcpy(was + HASH_SIZE + 1, old + i * ENTRY_SIZE + HASH_SIZE, HASH_SIZE);
                i++;
            } else {
                memset(was + HASH_SIZE, 0, 1 + HASH_SIZE);
            }
            if (record->value_size >= 0) {
                memcpy(out, record->entry, ENTRY_SIZE);
                out += ENTRY_SIZE;
            }
        }
        memcpy(out, old + i * ENTRY_SIZE, (old_count - i) * ENTRY_SIZE);
        out += (old_count - i) * ENTRY_SIZE;
        merge->size = out - start;
        ok = sha256(ctx, start, merge->size, merge->hash);
    }
    return ok;
}

/* Each level up from the buckets', a node is hashed again if any of its 16 children changed: from the
 * children's new hashes where they changed, from the level as it is where they did not.  Only the changed
 * nodes are touched, so the levels are read, never copied. */
static int
hash_levels(EVP_MD_CTX *ctx, unsigned char *const *level, Changes *changes)
{
    unsigned char node[1 + FANOUT * HASH_SIZE];
    node[0] = NODE_TAG;
    int ok = 1;
    for (int depth = LEVELS - 1; ok && depth >= 0; depth--) {
        const Changes *below = &changes[depth + 1];
        Changes *here = &changes[depth];
        for (Py_ssize_t i = 0; ok && i < below->count;) {
            int parent = below->positions[i] / FANOUT;
            for (int child = 0; child < FANOUT; child++) {
                int position = parent * FANOUT + child;
                const unsigned char *hash = level[depth + 1] + (Py_ssize_t)position * HASH_SIZE;
                if (i < below->count && below->positions[i] == position)
                    hash = below->hashes + i++ * HASH_SIZE;
                memcpy(node + 1 + child * HASH_SIZE, hash, HASH_SIZE);
            }
            here->positions[here->count] = parent;
            ok = sha256(ctx, node, sizeof node, here->hashes + here->count * HASH_SIZE);
            here->count++;
        }
    }
    return ok;
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

/* The levels' bytes, held as buffers while ``update`` reads them: a bytearray cannot be resized while a
 * buffer of it is held, so no Python code (a finalizer, another thread while the GIL is released) can move
 * them.  False, with an exception set and nothing held, if a level is not the tree's. */
static int
hold_levels(PyObject *levels, Py_buffer *views, unsigned char **level)
{
    if (!checked_levels(levels, level, 0))
        return 0;
    for (int depth = 0; depth <= LEVELS; depth++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(levels, depth), &views[depth], PyBUF_SIMPLE) < 0) {
            while (depth-- > 0)
                PyBuffer_Release(&views[depth]);
            return 0;
        }
        level[depth] = views[depth].buf;
    }
    return 1;
}

/* The records as Updates, their keys and values borrowed from ``held``; NULL with an exception set. */
static Update *
taken_records(PyObject *held)
{
    Py_ssize_t count = PyTuple_GET_SIZE(held);
    Update *updates = PyMem_RawCalloc(count ? count : 1, sizeof(Update)); /* calloc checks the product */
    if (updates == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t n = 0; n < count; n++) {
        PyObject *record = PyTuple_GET_ITEM(held, n);
        if (!PyTuple_Check(record) || PyTuple_GET_SIZE(record) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(record, 0))
            || !(PyBytes_Check(PyTuple_GET_ITEM(record, 1)) || PyTuple_GET_ITEM(record, 1) == Py_None)) {
            PyErr_SetString(PyExc_TypeError, "a record is a (key bytes, value bytes or None) pair");
            PyMem_RawFree(updates);
            return NULL;
        }
        PyObject *key = PyTuple_GET_ITEM(record, 0), *value = PyTuple_GET_ITEM(record, 1);
        updates[n].key = PyBytes_AS_STRING(key);
        updates[n].key_size = PyBytes_GET_SIZE(key);
        updates[n].value = value == Py_None ? NULL : PyBytes_AS_STRING(value);
        updates[n].value_size = value == Py_None ? -1 : PyBytes_GET_SIZE(value);
    }
    return updates;
}

/* The per-level changes as (packed positions, hashes) pairs, root first. */
static PyObject *
level_parts(const Changes *changes)
{
    PyObject *parts = PyTuple_New(LEVELS + 1);
    for (int depth = 0; parts != NULL && depth <= LEVELS; depth++) {
        PyObject *positions = PyBytes_FromStringAndSize((const char *)changes[depth].positions,
                                                        changes[depth].count * (Py_ssize_t)sizeof(int));
        PyObject *hashes = PyBytes_FromStringAndSize((const char *)changes[depth].hashes,
                                                     changes[depth].count * HASH_SIZE);
        PyObject *pair = positions != NULL && hashes != NULL ? PyTuple_Pack(2, positions, hashes) : NULL;
        Py_XDECREF(positions);
        Py_XDECREF(hashes);
        if (pair == NULL)
            Py_CLEAR(parts);
        else
            PyTuple_SET_ITEM(parts, depth, pair);
    }
    return parts;
}

static PyObject *
update(PyObject *module, PyObject *args)
{
    PyObject *buckets, *levels, *records;
    if (!PyArg_ParseTuple(args, "O!OO:update", &PyList_Type, &buckets, &levels, &records))
        return NULL;
    unsigned char *level[LEVELS + 1];
    if (PyList_GET_SIZE(buckets) != BUCKETS) {
        PyErr_SetString(PyExc_ValueError, "a tree has 65,536 buckets");
        return NULL;
    }
    /* A tuple of our own holds every record, and so its key and value, while the GIL is released. */
    PyObject *held = PySequence_Tuple(records);
    if (held == NULL)
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(held), touched = 0;
    Update *updates = taken_records(held);
    Merge *merges = NULL;
    Changes changes[LEVELS + 1] = {{0}};
    Py_buffer views[LEVELS + 1];
    int holding = 0;
    PyObject *undo = NULL, *changed = NULL, *parts = NULL, *result = NULL;
    if (updates == NULL)
        goto done;
    int hashed;
    Py_BEGIN_ALLOW_THREADS
    hashed = in_parallel(hash_records, updates, count);
    if (hashed)
        qsort(updates, count, sizeof(Update), compare_key_hashes);
    Py_END_ALLOW_THREADS
    if (!hashed) {
        PyErr_SetString(PyExc_RuntimeError, "SHA-256 failed (OpenSSL, or memory for its context)");
        goto done;
    }
    touched = count > 0;
    for (Py_ssize_t n = 1; n < count; n++) {
        if (memcmp(updates[n - 1].entry, updates[n].entry, HASH_SIZE) == 0) {
            PyErr_SetString(PyExc_ValueError, "a key appears twice among a block's records");
            goto done;
        }
        touched += memcmp(updates[n - 1].entry, updates[n].entry, 2) != 0;
    }
    /* Taking the records may have run Python code (an iterator, a finalizer), and code may run again below
     * (a collection, other threads while the GIL is released): the buckets are checked again here, each one
     * read is held by a reference of our own, and the levels are held as buffers from here on. */
    if (PyList_GET_SIZE(buckets) != BUCKETS) {
        PyErr_SetString(PyExc_ValueError, "the buckets changed while a block's records were taken");
        goto done;
    }
    if (!(holding = hold_levels(levels, views, level)))
        goto done;
    merges = PyMem_RawCalloc(touched ? touched : 1, sizeof(Merge));
    undo = PyBytes_FromStringAndSize(NULL, count * UNDO_SIZE);
    int room = merges != NULL;
    for (int depth = 0; room && depth <= LEVELS; depth++) {
        changes[depth].positions = PyMem_RawCalloc(touched ? touched : 1, sizeof(int));
        changes[depth].hashes = PyMem_RawCalloc(touched ? touched : 1, HASH_SIZE);
        room = changes[depth].positions != NULL && changes[depth].hashes != NULL;
    }
    if (!room) {
        PyErr_NoMemory();
        goto done;
    }
    if (undo == NULL)
        goto done;
    /* Every object the merge writes into is made here, with the GIL held; the merging and hashing need none. */
    for (Py_ssize_t first = 0, m = 0; first < count; m++) {
        Merge *merge = &merges[m];
        merge->position = updates[first].entry[0] << 8 | updates[first].entry[1];
        Py_ssize_t last = first;
        while (last < count && (updates[last].entry[0] << 8 | updates[last].entry[1]) == merge->position)
            last++;
        merge->updates = updates + first;
        merge->count = last - first;
        merge->undo = (unsigned char *)PyBytes_AS_STRING(undo) + first * UNDO_SIZE;
        merge->stored = PyList_GET_ITEM(buckets, merge->position);
        Py_INCREF(merge->stored);
        if (!check_bucket(merge->stored))
            goto done;
        merge->bucket = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(merge->stored) + merge->count * ENTRY_SIZE);
        if (merge->bucket == NULL)
            goto done;
        first = last;
    }
    Py_BEGIN_ALLOW_THREADS
    hashed = in_parallel(merge_buckets, merges, touched);
    for (Py_ssize_t m = 0; hashed && m < touched; m++) {
        changes[LEVELS].positions[m] = merges[m].position;
        memcpy(changes[LEVELS].hashes + m * HASH_SIZE, merges[m].hash, HASH_SIZE);
    }
    changes[LEVELS].count = touched;
    if (hashed) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        hashed = ctx != NULL && hash_levels(ctx, level, changes);
        EVP_MD_CTX_free(ctx);
    }
    Py_END_ALLOW_THREADS
    if (!hashed) {
        PyErr_SetString(PyExc_RuntimeError, "SHA-256 failed (OpenSSL, or memory for its context)");
        goto done;
    }
    changed = PyDict_New();
    if (changed == NULL)
        goto done;
    for (Py_ssize_t m = 0; m < touched; m++) {
        Merge *merge = &merges[m];
        if (merge->size < PyBytes_GET_SIZE(merge->bucket) && _PyBytes_Resize(&merge->bucket, merge->size) < 0)
            goto done; /* _PyBytes_Resize freed the bucket and set it to NULL */
        PyObject *index = PyLong_FromLong(merge->position);
        int stored = index != NULL && PyDict_SetItem(changed, index, merge->bucket) == 0;
        Py_XDECREF(index);
        if (!stored)
            goto done;
    }
    parts = level_parts(changes);
    /* No change at all (an empty block) leaves the root as it is. */
    if (parts != NULL)
        result = Py_BuildValue("(y#OOO)", touched ? (const char *)changes[0].hashes : (const char *)level[0],
                               (Py_ssize_t)HASH_SIZE, changed, undo, parts);
done:
    for (Py_ssize_t m = 0; merges != NULL && m < touched; m++) { /* calloc'd: one not yet made is NULL */
        Py_XDECREF(merges[m].stored);
        Py_XDECREF(merges[m].bucket);
    }
    for (int depth = 0; depth <= LEVELS; depth++) {
        PyMem_RawFree(changes[depth].positions);
        PyMem_RawFree(changes[depth].hashes);
    }
    for (int depth = 0; holding && depth <= LEVELS; depth++)
        PyBuffer_Release(&views[depth]);
    PyMem_RawFree(merges);
    PyMem_RawFree(updates);
    Py_XDECREF(parts);
    Py_XDECREF(changed);
    Py_XDECREF(undo);
    Py_DECREF(held);
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
    {"update", update, METH_VARARGS,
     "update(buckets, levels, records) -> (root, changed, undo, changes): the buckets a block's records change, as "
     "they become; each record as it was; per level, the positions and new hashes of the nodes that change."},
    {"install", install, METH_VARARGS,
     "install(levels, changes) -> old: write update's changes into the levels, and return the hashes they replace."},
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
