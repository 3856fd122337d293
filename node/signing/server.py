"""``somnode signer``: holds one validator's keys and signs for it alone, behind the double-sign guard.

It listens for exactly one validator, known by its link key.  A new
authenticated link replaces the previous one (a restarted validator's old
connection may not have been noticed as dead yet).  Requests are answered one
at a time, each consensus message checked against the high-water mark
(node/signing/guard.py), signed, and the mark made durable, before the
signature is sent.  Key operations (a token's C_Sign, the state file's fsync)
run in a worker thread so a slow token never stalls the link.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from consensus.crypto import Signer, SigningUnavailable
from node.core.address import encode_address
from node.core.fields import Endpoint
from node.core.keys import verify_signature
from node.signing.guard import ConsensusRequest, HighWaterMark, NotAllowed, Refused, classify, state_text
from node.signing.link import (
    Cipher,
    ClientHello,
    LinkError,
    Request,
    Role,
    ServerHello,
    Status,
    decode_auth,
    decode_request,
    ephemeral_keypair,
    frame,
    frame_length,
    transcript,
)

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 5.0
# A validator pings an idle link every second; one silent for this long is gone.
IDLE_TIMEOUT_S = 30.0


class SignerService:
    def __init__(self, *, listen: Endpoint, chain_id: str, validator: bytes, keys: Sequence[Signer],
                 state: HighWaterMark) -> None:
        assert 1 <= len(keys) <= 2, "a validator's key, and the one it rotates to"
        self._listen = listen
        self._chain_id = chain_id
        self._validator = validator
        self._keys = tuple(keys)
        self._state = state
        self._lock = asyncio.Lock()  # one signature at a time: the mark moves in order
        self._server: asyncio.Server | None = None
        self._session: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._listen.host, self._listen.port)
        log.info("signer.started listen=%s validator=%s keys=%s high_water=%s", self._listen,
                 encode_address(self._validator), ",".join(encode_address(k.public_key) for k in self._keys),
                 state_text(None if self._state.mark is None else self._state.mark.state))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._session is not None:
            self._session.cancel()
            await asyncio.gather(self._session, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        log.info("signer.stopped")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        remote = writer.get_extra_info("peername")
        try:
            try:
                cipher = await asyncio.wait_for(self._handshake(reader, writer), HANDSHAKE_TIMEOUT_S)
            except (LinkError, asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
                log.warning("signer.link_refused remote=%s reason=%s", _remote(remote), _reason(exc))
                return
            previous, self._session = self._session, asyncio.current_task()
            if previous is not None and not previous.done():
                previous.cancel()
                log.info("signer.superseded remote=%s", _remote(remote))
            log.info("signer.linked remote=%s", _remote(remote))
            try:
                while True:
                    body = await asyncio.wait_for(_receive(reader), IDLE_TIMEOUT_S)
                    request_id, kind, index, message = decode_request(cipher.open(body))
                    status, value = await self._answer(kind, index, message)
                    writer.write(cipher.seal([request_id, int(status), value]))
                    await writer.drain()
            except (LinkError, asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
                log.info("signer.unlinked remote=%s reason=%s", _remote(remote), _reason(exc))
            except asyncio.CancelledError:
                # Ended by stop() or a newer link. The stream server's callback reads this task's
                # exception, and a cancellation raised there would be logged as an error.
                log.info("signer.unlinked remote=%s reason=closed_by_signer", _remote(remote))
        finally:
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Cipher:
        hello = ClientHello.decode(await _receive(reader))
        if hello.chain_id != self._chain_id:
            raise LinkError(f"chain {hello.chain_id!r} is not this signer's")
        if hello.link_key != self._validator:
            raise LinkError(f"link key {encode_address(hello.link_key)} is not the validator this signer serves")
        public, secret = ephemeral_keypair()
        ours = ServerHello(self._chain_id, public, tuple(key.public_key for key in self._keys))
        writer.write(frame(ours.encode()))
        await writer.drain()
        cipher = Cipher.for_server(public, secret, hello.ephemeral)
        # The validator proves its link key before this signer signs anything for it.
        if not verify_signature(hello.link_key, transcript(hello, ours, Role.CLIENT),
                                decode_auth(cipher.open(await _receive(reader)))):
            raise LinkError("the validator could not prove its link key")
        try:
            proof = await asyncio.to_thread(self._keys[0].sign, transcript(hello, ours, Role.SERVER))
        except SigningUnavailable as exc:
            raise LinkError(f"this signer's key cannot sign just now: {exc}") from None
        writer.write(cipher.seal([proof]))
        await writer.drain()
        return cipher

    async def _answer(self, kind: Request, index: int, message: bytes) -> tuple[Status, object]:
        if kind is Request.PING:
            return Status.OK, None
        if index >= len(self._keys):
            return Status.NOT_ALLOWED, f"no key {index}"
        key = self._keys[index]
        async with self._lock:
            try:
                request = classify(message, self._chain_id, key.public_key)
            except NotAllowed as exc:
                log.warning("signer.not_allowed reason=%s", _reason(exc))
                return Status.NOT_ALLOWED, str(exc)
            if isinstance(request, ConsensusRequest):
                try:
                    made = self._state.check(request)
                except Refused as exc:
                    return _refused(exc)
                if made is not None:
                    log.info("signer.resent height=%d round=%d step=%s", request.state.height,
                             request.state.round, request.state.step.name.lower())
                    return Status.OK, made
            try:
                signature = await asyncio.to_thread(key.sign, message)
            except SigningUnavailable as exc:
                log.warning("signer.key_unavailable reason=%s", _reason(exc))
                return Status.UNAVAILABLE, str(exc)
            if isinstance(request, ConsensusRequest):
                try:
                    await asyncio.to_thread(self._state.advance, request, signature)
                except Refused as exc:
                    return _refused(exc)
                except OSError as exc:
                    # Not durable, so not sent: a signature the mark does not cover could be equivocated.
                    log.critical("signer.state_write_failed path=%s reason=%s", self._state.path, _reason(exc))
                    return Status.UNAVAILABLE, "the signer cannot write its high-water mark"
            return Status.OK, signature


def _refused(exc: Refused) -> tuple[Status, object]:
    log.warning("signer.refused height=%d round=%d step=%s high_water=%s",
                exc.asked.height, exc.asked.round, exc.asked.step.name.lower(), state_text(exc.mark))
    return Status.REFUSED, str(exc)


async def _receive(reader: asyncio.StreamReader) -> bytes:
    return await reader.readexactly(frame_length(await reader.readexactly(4)))


def _remote(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _reason(exc: BaseException) -> str:
    return "_".join((str(exc) or type(exc).__name__).split()) or "-"
