"""Where an agent's key material lives: in memory, in a private directory, or in the OS keychain.

A :class:`KeyStore` holds small text entries (JSON documents, private JWKs) under short names.
Three implementations:

* :class:`MemoryKeyStore` -- a dict; for tests and for agents whose keys live only as long as
  the process.
* :class:`DirectoryKeyStore` -- one file per entry in a directory the user alone can reach:
  the directory is created ``0700``, files are written ``0600`` through a temporary file and an
  atomic rename, and an existing file or directory that others can read or write is refused
  rather than used (as ``ssh`` refuses a world-readable private key).
* :class:`KeyringKeyStore` -- the OS keychain through the optional ``keyring`` package
  (``pip install 'aauth-agents[keyring]'``). A missing package, or a machine where keyring has
  no usable backend, is a :class:`KeyStoreUnavailableError` that says what to install.

:func:`write_private_key` / :func:`read_private_key` and :func:`write_json` / :func:`read_json`
put typed values in any store; everything read back is validated (the strict JSON parser, the
key layer's algorithm rules), so a corrupted or tampered entry is a typed error, never a
half-loaded key. Nothing here logs or ``repr``\\ s a secret.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..keys import PrivateKey
from ..protocol.encoding import loads_json_object
from ..protocol.errors import AAuthError

if TYPE_CHECKING:  # pragma: no cover
    from keyring.backend import KeyringBackend

log = logging.getLogger("aauth_agents.agent.storage")

#: Entry names: lowercase letters, digits, ``.``, ``_`` and ``-``; starting with a letter or
#: digit, at most 64 characters. Safe as a file name on every platform and as a keyring
#: user name; never a path.
_ENTRY_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class KeyStoreError(AAuthError):
    """A key store could not be read or written, or holds an entry that is not valid."""

    code = "key_store_error"
    status = 500


class KeyStoreUnavailableError(KeyStoreError):
    """The store cannot be used on this machine: the ``keyring`` package is not installed, or
    keyring has no usable backend (no OS keychain)."""

    code = "key_store_unavailable"


class InsecureKeyStoreError(KeyStoreError):
    """A key file or directory that other users can read or write, a key file owned by someone
    else, or a symbolic link where a key file should be: refused, never used."""

    code = "insecure_key_store"


def validate_entry_name(name: object) -> str:
    """Return ``name`` if it is a valid entry name, else raise :class:`KeyStoreError`."""
    if not isinstance(name, str) or not _ENTRY_NAME.fullmatch(name):
        raise KeyStoreError(
            f"invalid key store entry name {name!r}: use 1-64 of a-z 0-9 . _ - "
            "starting with a letter or digit"
        )
    return name


@runtime_checkable
class KeyStore(Protocol):
    """Text entries under names (see :func:`validate_entry_name`).

    ``read`` returns ``None`` for an entry that does not exist; ``delete`` of a missing entry
    is not an error. ``location`` says where the entries are, for messages.
    """

    @property
    def location(self) -> str: ...

    def read(self, name: str) -> str | None: ...

    def write(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


class MemoryKeyStore:
    """Entries in a dict owned by this object."""

    def __init__(self, entries: Mapping[str, str] | None = None) -> None:
        self._entries: dict[str, str] = {}
        self._lock = threading.Lock()
        for name, value in (entries or {}).items():
            self.write(name, value)

    @property
    def location(self) -> str:
        return "memory"

    def __repr__(self) -> str:
        return f"MemoryKeyStore(names={sorted(self._entries)})"

    def read(self, name: str) -> str | None:
        validate_entry_name(name)
        with self._lock:
            return self._entries.get(name)

    def write(self, name: str, value: str) -> None:
        validate_entry_name(name)
        if not isinstance(value, str):
            raise KeyStoreError("key store entries are text")
        with self._lock:
            self._entries[name] = value

    def delete(self, name: str) -> None:
        validate_entry_name(name)
        with self._lock:
            self._entries.pop(name, None)


_POSIX = os.name == "posix"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class DirectoryKeyStore:
    """One ``0600`` file per entry in a ``0700`` directory.

    The directory is created (with its parents) on the first write. On POSIX systems every
    read checks that the entry is a regular file -- not a symbolic link -- owned by the current
    user and unreadable by anyone else, and every read and write checks that the directory is
    owned by the current user and not writable by anyone else; otherwise
    :class:`InsecureKeyStoreError` says what to ``chmod``. Writes go to a temporary file in the
    same directory that is flushed, ``fsync``\\ ed and renamed over the entry, so a reader sees
    the old value or the new one, never a torn file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def location(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"DirectoryKeyStore({str(self.path)!r})"

    # -- checks ----------------------------------------------------------------------------

    def _check_directory(self) -> bool:
        """True when the directory exists (and is safe); False when it does not exist."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise KeyStoreError(f"cannot use {self.path}: {exc.strerror}") from exc
        if not stat.S_ISDIR(info.st_mode):
            raise KeyStoreError(f"{self.path} is not a directory")
        if _POSIX:
            if info.st_uid != os.geteuid():
                raise InsecureKeyStoreError(f"{self.path} is owned by another user")
            if info.st_mode & 0o022:
                raise InsecureKeyStoreError(
                    f"{self.path} is writable by other users "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 700 {self.path}"
                )
        return True

    def _check_file(self, path: Path, info: os.stat_result) -> None:
        if not stat.S_ISREG(info.st_mode):
            raise InsecureKeyStoreError(f"{path} is not a regular file")
        if _POSIX:
            if info.st_uid != os.geteuid():
                raise InsecureKeyStoreError(f"{path} is owned by another user")
            if info.st_mode & 0o077:
                raise InsecureKeyStoreError(
                    f"{path} is accessible by other users "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
                )

    def _ensure_directory(self) -> None:
        if self._check_directory():
            return
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _POSIX:
                os.chmod(self.path, 0o700)  # mkdir's mode is filtered by the umask
        except OSError as exc:
            raise KeyStoreError(f"cannot create {self.path}: {exc.strerror}") from exc
        self._check_directory()

    # -- the KeyStore protocol ---------------------------------------------------------------

    def read(self, name: str) -> str | None:
        path = self.path / validate_entry_name(name)
        if not self._check_directory():
            return None
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
                raise InsecureKeyStoreError(f"{path} is a symbolic link") from exc
            raise KeyStoreError(f"cannot read {path}: {exc.strerror}") from exc
        with os.fdopen(fd, "rb") as handle:
            self._check_file(path, os.fstat(handle.fileno()))
            data = handle.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise KeyStoreError(f"{path} is not UTF-8 text") from exc

    def write(self, name: str, value: str) -> None:
        path = self.path / validate_entry_name(name)
        if not isinstance(value, str):
            raise KeyStoreError("key store entries are text")
        self._ensure_directory()
        temp = self.path / f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
        except OSError as exc:
            raise KeyStoreError(f"cannot write {path}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(value.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise KeyStoreError(f"cannot write {path}: {exc.strerror}") from exc
        self._sync_directory()
        log.debug("wrote %s", path)

    def delete(self, name: str) -> None:
        path = self.path / validate_entry_name(name)
        if not self._check_directory():
            return
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise KeyStoreError(f"cannot delete {path}: {exc.strerror}") from exc
        self._sync_directory()

    def _sync_directory(self) -> None:
        if not _POSIX:  # pragma: no cover - directories cannot be opened on Windows
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | _CLOEXEC)
        except OSError:  # pragma: no cover
            return
        try:
            os.fsync(fd)
        except OSError:  # pragma: no cover - some file systems refuse fsync on directories
            pass
        finally:
            os.close(fd)


KEYRING_INSTALL_HINT = "pip install 'aauth-agents[keyring]'"


class KeyringKeyStore:
    """Entries in the OS keychain (macOS Keychain, Windows Credential Locker, the Secret
    Service on Linux) through the ``keyring`` package: entry ``name`` is the password stored
    for user ``name`` under ``service``.

    ``backend`` is a ``keyring.backend.KeyringBackend`` to use instead of keyring's choice.
    Without one, keyring's configured or detected backend is used, provided it is one keyring
    itself recommends (priority >= 1): a detected backend that keyring does not recommend --
    such as ``keyrings.alt``'s plaintext file -- is refused unless
    ``allow_insecure_backend=True``, because a user who asked for the OS keychain should not
    get a plaintext file silently. No backend at all, or no ``keyring`` package, is a
    :class:`KeyStoreUnavailableError`.
    """

    def __init__(
        self,
        service: str = "aauth-agents",
        *,
        backend: KeyringBackend | None = None,
        allow_insecure_backend: bool = False,
    ) -> None:
        if not isinstance(service, str) or not service:
            raise KeyStoreError("the keyring service name must be a non-empty string")
        try:
            import keyring
            import keyring.backends.fail
        except ImportError as exc:
            raise KeyStoreUnavailableError(
                f"the OS keychain needs the keyring package: {KEYRING_INSTALL_HINT}"
            ) from exc
        self.service = service
        if backend is None:
            try:
                backend = keyring.get_keyring()
            except Exception as exc:  # keyring raises RuntimeError for a broken configuration
                raise KeyStoreUnavailableError(f"keyring could not load a backend: {exc}") from exc
            if not allow_insecure_backend and _priority(backend) < 1:
                raise KeyStoreUnavailableError(
                    _no_backend(backend)
                    if isinstance(backend, keyring.backends.fail.Keyring)
                    else f"keyring's backend here is {type(backend).__name__}, which keyring "
                    "does not recommend (it is not an OS keychain); install a keychain backend "
                    "(e.g. SecretStorage with a running Secret Service), configure one "
                    "explicitly, or use a key directory instead"
                )
        if isinstance(backend, keyring.backends.fail.Keyring):
            raise KeyStoreUnavailableError(_no_backend(backend))
        self.backend = backend

    @property
    def location(self) -> str:
        return f"keyring {type(self.backend).__name__} service {self.service!r}"

    def __repr__(self) -> str:
        return f"KeyringKeyStore({self.service!r}, backend={type(self.backend).__name__})"

    def _call(self, what: str, name: str, *args: str) -> Any:
        from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError

        method = getattr(self.backend, f"{what}_password")
        try:
            return method(self.service, name, *args)
        except NoKeyringError as exc:
            raise KeyStoreUnavailableError(_no_backend(self.backend)) from exc
        except PasswordDeleteError:
            raise
        except (KeyringError, OSError, RuntimeError) as exc:
            raise KeyStoreError(
                f"{self.location}: cannot {what} {name!r}: {type(exc).__name__}"
            ) from exc

    def read(self, name: str) -> str | None:
        value = self._call("get", validate_entry_name(name))
        if value is not None and not isinstance(value, str):
            raise KeyStoreError(f"{self.location}: entry {name!r} is not text")
        return value

    def write(self, name: str, value: str) -> None:
        validate_entry_name(name)
        if not isinstance(value, str):
            raise KeyStoreError("key store entries are text")
        self._call("set", name, value)

    def delete(self, name: str) -> None:
        from keyring.errors import PasswordDeleteError

        validate_entry_name(name)
        try:
            self._call("delete", name)
        except PasswordDeleteError:
            return  # not there: deleting it is done


def _priority(backend: Any) -> float:
    try:
        return float(backend.priority)
    except Exception:  # a backend whose viability check fails is not usable
        return 0.0


def _no_backend(backend: Any) -> str:
    return (
        f"keyring has no usable backend on this machine ({type(backend).__name__}): there is "
        "no OS keychain to store keys in; install one (e.g. SecretStorage with a running "
        "Secret Service), or use a key directory instead"
    )


# -- typed entries ---------------------------------------------------------------------------


def write_json(store: KeyStore, name: str, document: Mapping[str, Any]) -> None:
    """Store a JSON object."""
    store.write(name, json.dumps(dict(document), indent=2, sort_keys=True) + "\n")


def read_json(store: KeyStore, name: str) -> dict[str, Any] | None:
    """A stored JSON object, ``None`` when absent; :class:`KeyStoreError` when it is not a
    JSON object (parsed strictly: duplicate members, NaN and deep nesting are refused)."""
    text = store.read(name)
    if text is None:
        return None
    try:
        return loads_json_object(text)
    except ValueError as exc:
        raise KeyStoreError(f"{store.location}: entry {name!r} is {exc}") from exc


def write_private_key(store: KeyStore, name: str, key: PrivateKey) -> None:
    """Store ``key`` as a private JWK (with ``alg`` and ``kid``)."""
    if not isinstance(key, PrivateKey):
        raise KeyStoreError("write_private_key stores a PrivateKey")
    write_json(store, name, key.to_jwk(private=True))


def read_private_key(store: KeyStore, name: str) -> PrivateKey | None:
    """The private key stored under ``name``, ``None`` when absent; :class:`KeyStoreError`
    when the entry is not a valid private JWK of a supported algorithm."""
    jwk = read_json(store, name)
    if jwk is None:
        return None
    try:
        return PrivateKey.from_jwk(jwk)
    except (AAuthError, ValueError, TypeError, KeyError) as exc:
        raise KeyStoreError(
            f"{store.location}: entry {name!r} is not a usable private key "
            f"({getattr(exc, 'code', type(exc).__name__)})"
        ) from exc


__all__ = [
    "KEYRING_INSTALL_HINT",
    "DirectoryKeyStore",
    "InsecureKeyStoreError",
    "KeyStore",
    "KeyStoreError",
    "KeyStoreUnavailableError",
    "KeyringKeyStore",
    "MemoryKeyStore",
    "read_json",
    "read_private_key",
    "validate_entry_name",
    "write_json",
    "write_private_key",
]
