"""Secrets encrypted at rest with AES-256-GCM (`cryptography`); names are stored in clear.

The key comes from CONV3N_SECRET_KEY or a file generated in the data dir (mode 0600); the
runtime passes it in. Each value has its own random 96-bit nonce; the name is bound as
associated data, so a ciphertext copied to another name does not decrypt.
"""

import base64
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from conv3n.errors import InvalidInput, SecretNotFound
from conv3n.storage import tables
from conv3n.storage.database import Database

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_VALUE_BYTES = 64 * 1024
_S = tables.secrets


class Cipher:
    """AES-256-GCM with one key."""

    def __init__(self, key: bytes):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != 32:
            raise InvalidInput("the secret key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    def encrypt(self, name: str, value: str) -> tuple[str, str]:
        """(nonce, ciphertext) of a value, bound to its name, both base64."""
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), name.encode())
        return base64.b64encode(nonce).decode(), base64.b64encode(sealed).decode()

    def decrypt(self, name: str, nonce: str, ciphertext: str) -> str:
        """The value, or InvalidInput when the key is wrong or the data was tampered with."""
        from cryptography.exceptions import InvalidTag

        try:
            raw_nonce, sealed = base64.b64decode(nonce), base64.b64decode(ciphertext)
            return self._aead.decrypt(raw_nonce, sealed, name.encode()).decode()
        except (InvalidTag, ValueError):
            raise InvalidInput(
                f"secret {name!r} cannot be decrypted: wrong CONV3N_SECRET_KEY or tampered data"
            ) from None


def decode_key(text: str) -> bytes:
    """A key given as base64 (urlsafe or standard) of 32 bytes."""
    try:
        key = base64.urlsafe_b64decode(text.strip().replace("+", "-").replace("/", "_") + "==")
    except ValueError:
        raise InvalidInput("CONV3N_SECRET_KEY is not base64") from None
    if len(key) != 32:
        raise InvalidInput("CONV3N_SECRET_KEY must be base64 of 32 bytes")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key stored at `path`, created (mode 0600) with 32 random bytes on first use."""
    if path.exists():
        return decode_key(path.read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(base64.urlsafe_b64encode(key).decode() + "\n")
    return key


def check_name(name: str) -> str:
    """A valid secret name (usable as `$secrets.NAME`).

    Raises:
        InvalidInput: the name is not an identifier of at most 128 characters.
    """
    if not NAME_PATTERN.match(name):
        raise InvalidInput(f"secret name {name!r} must match [A-Za-z_][A-Za-z0-9_]* (≤ 128)")
    return name


async def put(db: Database, cipher: Cipher, name: str, value: str) -> bool:
    """Store (or replace) a secret; True if it was new."""
    check_name(name)
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput(f"a secret value may hold at most {MAX_VALUE_BYTES:,} bytes")
    nonce, ciphertext = cipher.encrypt(name, value)
    now = datetime.now(UTC)
    async with db.write() as conn:
        changed = await conn.execute(
            update(_S)
            .where(_S.c.name == name)
            .values(nonce=nonce, ciphertext=ciphertext, updated_at=now)
        )
        if changed.rowcount:
            return False
        await conn.execute(
            insert(_S).values(
                name=name, nonce=nonce, ciphertext=ciphertext, created_at=now, updated_at=now
            )
        )
    return True


async def names(db: Database) -> list[dict[str, object]]:
    """Every secret's name and times, never a value."""
    query = select(_S.c.name, _S.c.created_at, _S.c.updated_at).order_by(_S.c.name)
    async with db.read() as conn:
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def load_all(db: Database, cipher: Cipher) -> dict[str, str]:
    """Every secret decrypted (the engine's `$secrets`)."""
    async with db.read() as conn:
        rows = (await conn.execute(select(_S.c.name, _S.c.nonce, _S.c.ciphertext))).all()
    return {r.name: cipher.decrypt(r.name, r.nonce, r.ciphertext) for r in rows}


async def remove(db: Database, name: str) -> None:
    """Delete a secret.

    Raises:
        SecretNotFound: no secret has this name.
    """
    async with db.write() as conn:
        result = await conn.execute(delete(_S).where(_S.c.name == name))
    if result.rowcount == 0:
        raise SecretNotFound(f"no secret named {name!r}", details={"name": name})
