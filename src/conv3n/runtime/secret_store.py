"""`SecretStore`: stored secrets for one process — encrypted rows in storage, the decrypted
values the engine reads as `$secrets`, and the redactor that masks them everywhere.

Owned by the Runtime (`runtime.secrets`); the API and the `secrets` commands call it.
"""

from typing import Any

from conv3n.engine.redact import Redactor
from conv3n.runtime.settings import Settings
from conv3n.storage import Database, secrets


class SecretStore:
    """Secrets of one database, kept decrypted in `values` for the engine.

    Attributes:
        values: name -> value; the engine's `$secrets` (the same dict, updated in place).
        redactor: masks every value in stored results, records and logs.
    """

    def __init__(self, db: Database, settings: Settings):
        self._db = db
        self._settings = settings
        self._cipher: secrets.Cipher | None = None
        self.values: dict[str, str] = {}
        self.redactor = Redactor()

    def _cipher_for_use(self) -> secrets.Cipher:
        if self._cipher is None:
            if self._settings.secret_key:
                key = secrets.decode_key(self._settings.secret_key)
            else:
                key = secrets.load_or_create_key(self._settings.secret_key_file)
            self._cipher = secrets.Cipher(key)
        return self._cipher

    async def load(self) -> None:
        """Read and decrypt every secret (at start, and after each change)."""
        names = await secrets.names(self._db)
        values = await secrets.load_all(self._db, self._cipher_for_use()) if names else {}
        self.values.clear()
        self.values.update(values)
        self.redactor.update(values.values())

    async def set(self, name: str, value: str) -> bool:
        """Store a secret encrypted; True if it is new."""
        created = await secrets.put(self._db, self._cipher_for_use(), name, value)
        await self.load()
        return created

    async def delete(self, name: str) -> None:
        """Delete a secret (SecretNotFound if absent)."""
        await secrets.remove(self._db, name)
        await self.load()

    async def names(self) -> list[dict[str, Any]]:
        """Names and times of every secret, never values."""
        return await secrets.names(self._db)
