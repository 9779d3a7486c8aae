"""Protection of personal data (household ID-card numbers, bank accounts).

Plaintext is encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`);
a keyed HMAC "blind index" lets the service find duplicates without decrypting; responses show
only masked forms. The key comes from `ECOVALUE_DATA_KEY` (production) or a file under
`instance/` created on first start (development).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


class DataProtector:
    def __init__(self, key: bytes | str) -> None:
        key_bytes = key.encode() if isinstance(key, str) else key
        self._fernet = Fernet(key_bytes)
        self._index_key = hashlib.sha256(b"ecovalue-blind-index:" + key_bytes).digest()

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken as exc:  # wrong key: a configuration error, never user input
            raise RuntimeError("personal data cannot be decrypted with the configured key") from exc

    def blind_index(self, plaintext: str) -> str:
        """Deterministic keyed digest, for uniqueness checks and exact lookups."""
        return hmac.new(self._index_key, plaintext.encode(), hashlib.sha256).hexdigest()


_protector: DataProtector | None = None


def configure(key: bytes | str) -> None:
    global _protector
    _protector = DataProtector(key)


def protector() -> DataProtector:
    if _protector is None:
        raise RuntimeError("data protection key not configured (create_app does it)")
    return _protector


def new_key() -> str:
    return Fernet.generate_key().decode()


def mask_id_number(value: str | None) -> str | None:
    """Show the first 3 and last 4 characters of an ID-card number: 522***********123X."""
    if not value:
        return value
    return value[:3] + "*" * (len(value) - 7) + value[-4:] if len(value) > 7 else "*" * len(value)


def mask_account(value: str | None) -> str | None:
    """Show only the last 4 digits of a bank account: ************1234."""
    if not value:
        return value
    return "*" * max(len(value) - 4, 0) + value[-4:] if len(value) > 4 else "*" * len(value)
