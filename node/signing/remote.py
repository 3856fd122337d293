"""The validator's side of a remote signer: keys whose signatures a ``somnode signer`` process makes.

A thread of its own keeps one link to the signer up: it dials with backoff
and jitter whenever the link is down, and pings an idle link so that a signer
that went away is noticed before the next vote needs it.  ``sign`` uses the
link if it is up and answers within ``timeout_s``; otherwise it raises
``SigningUnavailable`` at once, consensus counts the message as lost, and the
validator carries on (it never halts for want of its signer).  The
signature the signer returns is checked before use.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Sequence

from consensus.crypto import SigningUnavailable
from node.core.address import encode_address
from node.core.fields import Endpoint
from node.core.keys import KeyPair, verify_signature
from node.p2p.backoff import Backoff
from node.signing.link import (
    Cipher,
    ClientHello,
    LinkError,
    Request,
    Role,
    ServerHello,
    Status,
    decode_answer,
    decode_auth,
    ephemeral_keypair,
    frame,
    frame_length,
    transcript,
)

log = logging.getLogger(__name__)

PING_S = 1.0
BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 5.0


class RemoteSigner:
    """The link to one signer, shared by the validator's keys there (its key and the one it rotates to)."""

    def __init__(self, endpoint: Endpoint, chain_id: str, link_key: KeyPair, keys: Sequence[bytes],
                 timeout_s: float, rng: random.Random | None = None) -> None:
        self.endpoint = endpoint
        self._chain_id = chain_id
        self._link_key = link_key
        self._keys = tuple(keys)
        self._timeout_s = timeout_s
        self._backoff = Backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S, rng or random.Random())
        self._lock = threading.Lock()  # one request at a time on the link
        self._socket: socket.socket | None = None
        self._cipher: Cipher | None = None
        self._next_id = 0
        self._outage_logged = False
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._keep_linked, name="remote-signer", daemon=True)

    def start(self) -> None:
        """Start linking, in the background (after logging is set up: the first dial may fail at once)."""
        self._thread.start()

    def keys(self) -> tuple[RemoteKey, ...]:
        return tuple(RemoteKey(self, index, key) for index, key in enumerate(self._keys))

    @property
    def linked(self) -> bool:
        return self._socket is not None

    def close(self) -> None:
        self._stop.set()
        self._lost.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            self._drop()

    # ---- signing

    def sign(self, index: int, message: bytes) -> bytes:
        if not self._lock.acquire(timeout=self._timeout_s):
            raise self._unavailable("busy")
        try:
            if self._socket is None:
                raise self._unavailable("not_linked")
            try:
                status, value = self._ask([Request.SIGN, index, message])
            except (OSError, LinkError) as exc:
                self._lose(exc)
                raise self._unavailable("link_lost") from None
        finally:
            self._lock.release()
        if status is Status.OK:
            if type(value) is bytes and verify_signature(self._keys[index], message, value):
                return value
            log.error("remote_signer.bad_signature address=%s", self.endpoint)
            raise SigningUnavailable("the signer answered with a signature that does not verify")
        reason = value if isinstance(value, str) else ""
        if status is Status.REFUSED:
            log.warning("remote_signer.refused reason=double_sign_guard detail=%s", _field(reason))
        else:
            log.warning("remote_signer.unavailable reason=%s detail=%s", status.name.lower(), _field(reason))
        raise SigningUnavailable(f"the signer said {status.name.lower()}: {reason}")

    def _unavailable(self, reason: str) -> SigningUnavailable:
        if not self._outage_logged:
            self._outage_logged = True
            log.warning("remote_signer.unavailable reason=%s address=%s", reason, self.endpoint)
        return SigningUnavailable(f"the remote signer at {self.endpoint} is {reason.replace('_', ' ')}")

    def _ask(self, request: list[object]) -> tuple[Status, object]:
        """One request and its answer, under the lock, within the timeout."""
        sock, cipher = self._socket, self._cipher
        assert sock is not None and cipher is not None, "asked only while linked"
        request_id = self._next_id
        self._next_id = (self._next_id + 1) % 2**32
        sock.settimeout(self._timeout_s)
        sock.sendall(cipher.seal([request_id, *request]))
        return decode_answer(cipher.open(_receive(sock)), request_id)

    # ---- the link

    def _keep_linked(self) -> None:
        while not self._stop.is_set():
            if self._socket is None:
                try:
                    sock, cipher = self._connect()
                except (OSError, LinkError) as exc:
                    log.debug("remote_signer.link_failed address=%s reason=%s", self.endpoint, _reason(exc))
                    if not self._outage_logged:
                        self._outage_logged = True
                        log.warning("remote_signer.unavailable reason=unreachable address=%s detail=%s",
                                    self.endpoint, _reason(exc))
                    self._stop.wait(self._backoff.next_delay())
                    continue
                with self._lock:
                    self._socket, self._cipher = sock, cipher
                    self._lost.clear()
                self._backoff.reset()
                self._outage_logged = False
                log.info("remote_signer.linked address=%s keys=%s", self.endpoint,
                         ",".join(encode_address(key) for key in self._keys))
                continue
            if self._lost.wait(PING_S):
                continue
            with self._lock:
                if self._socket is None:
                    continue
                try:
                    self._ask([Request.PING])
                except (OSError, LinkError) as exc:
                    self._lose(exc)

    def _connect(self) -> tuple[socket.socket, Cipher]:
        sock = socket.create_connection((self.endpoint.host, self.endpoint.port), timeout=self._timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            public, secret = ephemeral_keypair()
            hello = ClientHello(self._chain_id, self._link_key.public_key, public)
            sock.sendall(frame(hello.encode()))
            server = ServerHello.decode(_receive(sock))
            if server.chain_id != self._chain_id:
                raise LinkError(f"the signer is for chain {server.chain_id!r}")
            if server.keys != self._keys:
                raise LinkError("the signer holds " + ",".join(map(encode_address, server.keys))
                                + ", not the keys this validator's config names")
            cipher = Cipher.for_client(public, secret, server.ephemeral)
            sock.sendall(cipher.seal([self._link_key.sign(transcript(hello, server, Role.CLIENT))]))
            signature = decode_auth(cipher.open(_receive(sock)))
            if not verify_signature(server.keys[0], transcript(hello, server, Role.SERVER), signature):
                raise LinkError("the signer could not prove it holds the validator's key")
            return sock, cipher
        except BaseException:
            sock.close()
            raise

    def _lose(self, exc: BaseException) -> None:
        """The link broke (under the lock): drop it and let the thread dial again."""
        log.warning("remote_signer.unlinked address=%s reason=%s", self.endpoint, _reason(exc))
        self._drop()
        self._lost.set()

    def _drop(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket, self._cipher = None, None


class RemoteKey:
    """One of the validator's keys at its remote signer; the node's signer interface."""

    def __init__(self, signer: RemoteSigner, index: int, public_key: bytes) -> None:
        self._signer = signer
        self._index = index
        self.public_key = public_key

    @property
    def address(self) -> str:
        return encode_address(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(self._index, message)


def _receive(sock: socket.socket) -> bytes:
    return _exactly(sock, frame_length(_exactly(sock, 4)))


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise LinkError("the signer closed the link")
        data += chunk
    return bytes(data)


def _reason(exc: BaseException) -> str:
    return _field(str(exc) or type(exc).__name__)


def _field(text: str) -> str:
    return "_".join(text.split()) or "-"
