"""Keys and ciphers of the watchlist: AES-256-GCM at rest, Ed25519 signatures on bundles.

Why these choices: the database may be copied (backups, a stolen box), so every biometric
and every word about a person is encrypted with a key that lives outside it (a 0600 file or
an environment variable). GCM authenticates too, and each ciphertext is bound to its row and
column (associated data), so a value cannot be moved to another person's row unnoticed.
Bundles are signed with the sending store's Ed25519 key so a receiving store can check who
made an entry before it believes it.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12
KEY_ENV = "GEMWATCH_WATCHLIST_KEY"
SHARE_KEY_ENV = "GEMWATCH_WATCHLIST_SHARE_KEY"


class WatchlistKeyError(RuntimeError):
    """A key is missing, unreadable or malformed; the message says which file and what to do."""


class DecryptError(RuntimeError):
    """A ciphertext does not open with this key (wrong key, tampered, moved to another row)."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_or_create_key(path: Path, env: str | None = None, *, create: bool = True) -> bytes:
    """A 32-byte symmetric key: from ``$env`` (base64) if set, else ``path`` (created 0600 once)."""
    if env and os.environ.get(env):
        try:
            key = unb64(os.environ[env].strip())
        except ValueError:
            raise WatchlistKeyError(f"${env} is not base64") from None
        if len(key) != 32:
            raise WatchlistKeyError(f"${env} must hold 32 bytes (base64 of 32 random bytes)")
        return key
    if path.is_file():
        try:
            key = unb64(path.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            raise WatchlistKeyError(f"cannot read the key {path}: {exc}") from None
        if len(key) != 32:
            raise WatchlistKeyError(f"{path} must hold base64 of 32 bytes")
        return key
    if not create:
        raise WatchlistKeyError(f"the key {path} does not exist (copy it from the store that made it)")
    key = secrets.token_bytes(32)
    _write_secret(path, (b64(key) + "\n").encode("ascii"))
    return key


class Sealer:
    """AES-256-GCM with per-value random nonces; ``aad`` binds a value to where it belongs."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise WatchlistKeyError("an AES-256 key is 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, data: bytes, aad: str) -> bytes:
        nonce = secrets.token_bytes(NONCE)
        return nonce + self._aead.encrypt(nonce, data, aad.encode("utf-8"))

    def open(self, blob: bytes, aad: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:NONCE], blob[NONCE:], aad.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise DecryptError(f"cannot decrypt {aad} (wrong key or tampered data)") from None

    def seal_text(self, text: str | None, aad: str) -> bytes | None:
        return None if text is None else self.seal(text.encode("utf-8"), aad)

    def open_text(self, blob: bytes | None, aad: str) -> str | None:
        return None if blob is None else self.open(blob, aad).decode("utf-8")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """This store's Ed25519 identity for signing bundles."""

    private: Ed25519PrivateKey

    @property
    def public_b64(self) -> str:
        raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return b64(raw)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def load_or_create_signing_key(path: Path, *, create: bool = True) -> SigningKey:
    if path.is_file():
        try:
            raw = unb64(path.read_text(encoding="ascii").strip())
            return SigningKey(Ed25519PrivateKey.from_private_bytes(raw))
        except (OSError, ValueError) as exc:
            raise WatchlistKeyError(f"cannot read the signing key {path}: {exc}") from None
    if not create:
        raise WatchlistKeyError(f"the signing key {path} does not exist")
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    _write_secret(path, (b64(raw) + "\n").encode("ascii"))
    return SigningKey(key)


def verify_signature(public_b64: str, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(unb64(public_b64)).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
