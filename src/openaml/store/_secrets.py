"""Secrets at rest: values encrypted with a key kept in an owner-only file of the workspace.

Endpoint keys, endpoint token secrets, the workspace's job-token signing secret and datastore
credentials must stay retrievable (``online-endpoint get-credentials`` shows keys again), so they
are encrypted, not hashed: Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under a key in
``<workspace>/secret.key`` (mode 0600). A copy of the database alone reveals none of them.

An encrypted value is the string ``enc:v1:<fernet token>``; any other string is a plain value
written before encryption existed, returned as is and encrypted by :meth:`SecretBox.seal` on its
next write (the server also re-seals every stored secret at start, see ``UserService.seal_existing``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["SecretBox", "PREFIX"]

PREFIX = "enc:v1:"


class SecretBox:
    """Encrypt and decrypt strings with the workspace's key file (created 0600 when absent).

    Raises:
        ValueError: the key file exists but does not hold a Fernet key (names the file).
    """

    def __init__(self, key_file: Path) -> None:
        from cryptography.fernet import Fernet

        self.key_file = key_file
        if not key_file.exists():
            key = Fernet.generate_key()
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, key)
            finally:
                os.close(fd)
        key_file.chmod(0o600)
        raw = key_file.read_bytes().strip()
        try:
            self._fernet = Fernet(raw)
        except ValueError:
            raise ValueError(f"{key_file} does not hold a valid key (44 url-safe base64 characters); restore it "
                             "from a backup: without it the workspace's stored secrets cannot be read") from None

    @staticmethod
    def is_sealed(value: Any) -> bool:
        return isinstance(value, str) and value.startswith(PREFIX)

    def seal(self, value: str) -> str:
        """``value`` encrypted (an already sealed value is returned unchanged)."""
        if self.is_sealed(value):
            return value
        return PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, value: Any) -> Any:
        """The plain value of a sealed string; anything else unchanged."""
        if not self.is_sealed(value):
            return value
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ValueError(f"a stored secret cannot be decrypted with {self.key_file} (was the key file "
                             "replaced?)") from None

    def seal_tree(self, data: Any) -> Any:
        """Every string inside ``data`` (dicts and lists, recursively) sealed."""
        if isinstance(data, dict):
            return {k: self.seal_tree(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.seal_tree(v) for v in data]
        if isinstance(data, str):
            return self.seal(data)
        return data

    def open_tree(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: self.open_tree(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.open_tree(v) for v in data]
        return self.open(data)
