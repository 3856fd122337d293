"""Reading a served document's fields, each failure naming its field, and the one signature check that
certificates are verified with: shared by the state and transaction proofs and the header follower."""

from __future__ import annotations

from collections.abc import Mapping

from node.core.keys import verify_signature


def integer(document: Mapping[str, object], field: str, error: type[ValueError]) -> int:
    value = document.get(field)
    if type(value) is not int or value < 0:
        raise error(f"{field}: must be a non-negative integer")
    return value


def hex_field(document: Mapping[str, object], field: str, error: type[ValueError]) -> bytes:
    return from_hex(document.get(field), field, error)


def from_hex(value: object, field: str, error: type[ValueError]) -> bytes:
    if not isinstance(value, str):
        raise error(f"{field}: must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise error(f"{field}: is not hex") from None


class Ed25519:
    """The signature check ``verify_certificate`` asks for, in the caller's thread."""

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return verify_signature(public_key, message, signature)
