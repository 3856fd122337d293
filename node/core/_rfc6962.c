/* The RFC 6962 Merkle Tree Hash (node/core/rfc6962.py), in C.
 *
 * Every validator computes two such roots for every block: the header's root
 * of its transactions and the root of its results.  For a 10,000-transaction
 * block that is some 20,000 SHA-256 of a few dozen bytes each, which Python
 * wraps in more interpreter overhead than the hashing costs.  This computes
 * the same root, level by level as rfc6962.py describes it, with OpenSSL's
 * SHA-256 (as hashlib's is) and the GIL released while hashing.
 *
 * tests/test_rfc6962.py compares it with RFC 6962's recursive definition.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/evp.h>
#include <string.h>

#define HASH_SIZE 32
#define LEAF_TAG 0x00
#define NODE_TAG 0x01

static EVP_MD *sha256_md;

/* SHA-256(tag || data): false only if OpenSSL fails. */
static int
tagged_hash(EVP_MD_CTX *ctx, unsigned char tag, const void *data, size_t size, unsigned char *out)
{
    return EVP_DigestInit_ex(ctx, sha256_md, NULL) && EVP_DigestUpdate(ctx, &tag, 1)
           && EVP_DigestUpdate(ctx, data, size) && EVP_DigestFinal_ex(ctx, out, NULL);
}

/* The root over ``count`` leaves, hashed into ``level`` (count * HASH_SIZE bytes), which it overwrites:
 * each level's pairs are hashed into the front of the same array, an odd last node carried up unchanged. */
static int
tree_root(EVP_MD_CTX *ctx, const char *const *data, const Py_ssize_t *sizes, Py_ssize_t count, unsigned char *level)
{
    for (Py_ssize_t i = 0; i < count; i++)
        if (!tagged_hash(ctx, LEAF_TAG, data[i], (size_t)sizes[i], level + i * HASH_SIZE))
            return 0;
    for (Py_ssize_t width = count; width > 1; width = (width + 1) / 2) {
        for (Py_ssize_t pair = 0; pair < width / 2; pair++) /* writes node ``pair`` after reading 2 * pair, 2 * pair + 1 */
            if (!tagged_hash(ctx, NODE_TAG, level + 2 * pair * HASH_SIZE, 2 * HASH_SIZE, level + pair * HASH_SIZE))
                return 0;
        if (width % 2)
            memmove(level + (width / 2) * HASH_SIZE, level + (width - 1) * HASH_SIZE, HASH_SIZE);
    }
    return 1;
}

static PyObject *
root(PyObject *module, PyObject *leaves)
{
    /* A tuple of our own keeps every leaf alive, and unchanged, while the GIL is released. */
    PyObject *held = PySequence_Tuple(leaves);
    if (held == NULL)
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(held);
    const char **data = PyMem_RawCalloc(count ? count : 1, sizeof(char *)); /* calloc checks the products */
    Py_ssize_t *sizes = PyMem_RawCalloc(count ? count : 1, sizeof(Py_ssize_t));
    unsigned char *level = PyMem_RawCalloc(count ? count : 1, HASH_SIZE);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    PyObject *result = NULL;
    if (data == NULL || sizes == NULL || level == NULL || ctx == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *leaf = PyTuple_GET_ITEM(held, i);
        if (!PyBytes_Check(leaf)) {
            PyErr_Format(PyExc_TypeError, "a leaf is bytes, not %.100s", Py_TYPE(leaf)->tp_name);
            goto done;
        }
        data[i] = PyBytes_AS_STRING(leaf);
        sizes[i] = PyBytes_GET_SIZE(leaf);
    }
    int hashed;
    if (count == 0) {
        hashed = EVP_DigestInit_ex(ctx, sha256_md, NULL) && EVP_DigestFinal_ex(ctx, level, NULL);
    } else {
        Py_BEGIN_ALLOW_THREADS
        hashed = tree_root(ctx, data, sizes, count, level);
        Py_END_ALLOW_THREADS
    }
    if (hashed)
        result = PyBytes_FromStringAndSize((const char *)level, HASH_SIZE);
    else
        PyErr_SetString(PyExc_RuntimeError, "OpenSSL's SHA-256 failed");
done:
    EVP_MD_CTX_free(ctx);
    PyMem_RawFree(level);
    PyMem_RawFree(sizes);
    PyMem_RawFree(data);
    Py_DECREF(held);
    return result;
}

static PyMethodDef methods[] = {
    {"root", root, METH_O, "root(leaves) -> bytes: the RFC 6962 Merkle Tree Hash over a sequence of bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "node.core._rfc6962",
    .m_doc = "The RFC 6962 Merkle Tree Hash in C (node/core/_rfc6962.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__rfc6962(void)
{
    if (sha256_md == NULL)
        sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md == NULL) {
        PyErr_SetString(PyExc_ImportError, "OpenSSL offers no SHA-256");
        return NULL;
    }
    return PyModule_Create(&module);
}
