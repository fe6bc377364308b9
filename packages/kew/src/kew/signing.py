"""Signed payloads: an HMAC-SHA256 on every function, argument and result blob kew writes.

Whoever can write to the Redis can make a pickle run code in every worker. With signing keys
configured (``TaskQueueManager(signing_key=...)``), each blob is stored as ``b"s"`` + 32-byte
HMAC + blob, and a blob whose HMAC is missing or wrong is refused *before* anything is
unpickled: the task fails for good with a clear error (design.md §6). Key rotation: the first
key signs, every key verifies. Without keys, blobs are stored as they are, and signed blobs
written by a signing manager are read without checking.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from .exceptions import InvalidArgumentError, SerializationError

__all__ = ["NO_SIGNING", "SignatureError", "Signer", "signer_from"]

_TAG = b"s"
_MAC = 32


class SignatureError(SerializationError):
    """A stored payload or result is unsigned or its signature does not match any key."""


class Signer:
    """Signs and verifies stored blobs.

    Args:
        keys: signing keys (bytes, at least 16 bytes each); the first signs, all verify.
            Empty: no signing.
    """

    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        self.keys = tuple(keys)

    @property
    def enabled(self) -> bool:
        """True when keys are configured."""
        return bool(self.keys)

    @staticmethod
    def _mac(key: bytes, context: bytes, body: bytes) -> bytes:
        return hmac.new(key, context + b"\x00" + body, hashlib.sha256).digest()

    def sign(self, data: bytes, context: bytes = b"") -> bytes:
        """Return ``data`` with its HMAC (unchanged when signing is off).

        Args:
            data: the blob.
            context: what the blob is for (kew passes ``b"<field>:<task id>"``): the HMAC covers
                it, so a signed blob copied into another task or another field is refused.
        """
        if not self.keys:
            return data
        return _TAG + self._mac(self.keys[0], context, data) + data

    def verify(self, data: bytes, what: str = "payload", context: bytes = b"") -> bytes:
        """Return the blob inside ``data`` after checking its HMAC for ``context``.

        Raises:
            SignatureError: keys are configured and ``data`` is unsigned, or its HMAC matches
                none of them for this context (forged, or copied from another task or field).
        """
        signed = data[:1] == _TAG and len(data) >= 1 + _MAC
        if not self.keys:
            return data[1 + _MAC :] if signed else data
        if not signed:
            raise SignatureError(f"task {what} is not signed: refused without unpickling it")
        mac, body = data[1 : 1 + _MAC], data[1 + _MAC :]
        for key in self.keys:
            if hmac.compare_digest(mac, self._mac(key, context, body)):
                return body
        raise SignatureError(f"task {what} signature does not match: refused without unpickling it")


NO_SIGNING = Signer(())


def signer_from(signing_key: object) -> Signer:
    """Build a Signer from ``TaskQueueManager(signing_key=...)``.

    Args:
        signing_key: None (no signing), a key (str or bytes, >= 16 bytes), or a list of keys
            (the first signs, all verify: rotation).

    Raises:
        InvalidArgumentError: a key of the wrong type or shorter than 16 bytes.
    """
    if signing_key is None:
        return NO_SIGNING
    raw = [signing_key] if isinstance(signing_key, str | bytes) else signing_key
    if not isinstance(raw, Sequence) or not raw:
        raise InvalidArgumentError("signing_key must be a str, bytes, or a non-empty list of them")
    keys: list[bytes] = []
    for k in raw:
        if not isinstance(k, str | bytes):
            raise InvalidArgumentError(
                f"a signing key must be str or bytes, got {type(k).__name__}"
            )
        b = k.encode() if isinstance(k, str) else bytes(k)
        if len(b) < 16:
            raise InvalidArgumentError("a signing key must be at least 16 bytes")
        keys.append(b)
    return Signer(keys)
