"""Where a validator's signatures are made: a key file, a PKCS#11 token, or a remote signer.

Every signature the node makes (proposals, votes, peer handshakes) goes
through one interface, ``consensus.crypto.Signer``: a public key and
``sign(message) -> signature``, raising ``SigningUnavailable`` when the key
is out of reach just now.  ``keyring.open_keyring`` builds a validator's keys
from its config; ``server`` is the ``somnode signer`` process with its
double-sign guard (``guard``), reached over an authenticated link (``link``)
by the validator's client (``remote``).
"""
