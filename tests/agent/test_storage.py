"""Key stores: memory, a private directory (real files, real permissions) and the OS keychain
through keyring (a real backend: keyrings.alt's plaintext file)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backends.fail
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keyrings.alt.file import PlaintextKeyring

from aauth_agents.agent.storage import (
    DirectoryKeyStore,
    InsecureKeyStoreError,
    KeyringKeyStore,
    KeyStore,
    KeyStoreError,
    KeyStoreUnavailableError,
    MemoryKeyStore,
    read_json,
    read_private_key,
    validate_entry_name,
    write_json,
    write_private_key,
)
from aauth_agents.keys import ES256, PrivateKey

POSIX = os.name == "posix"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def plaintext_keyring(tmp_path: Path) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring" / "keyring_pass.cfg")  # type: ignore[misc]
    return backend


@pytest.fixture
def global_keyring() -> Iterator[None]:
    """Restore keyring's process-wide backend after a test that sets it."""
    previous = keyring.get_keyring()
    yield
    keyring.set_keyring(previous)


@pytest.fixture(params=["memory", "directory", "keyring"])
def store(request: pytest.FixtureRequest, tmp_path: Path, plaintext_keyring: Any) -> KeyStore:
    if request.param == "memory":
        return MemoryKeyStore()
    if request.param == "directory":
        return DirectoryKeyStore(tmp_path / "keys")
    return KeyringKeyStore("aauth-agents-test", backend=plaintext_keyring)


# -- every store --


def test_round_trip_overwrite_and_delete(store: KeyStore) -> None:
    assert isinstance(store, KeyStore)
    assert store.read("agent.json") is None
    store.write("agent.json", "first ✓")
    assert store.read("agent.json") == "first ✓"
    store.write("agent.json", "second")
    assert store.read("agent.json") == "second"
    store.delete("agent.json")
    assert store.read("agent.json") is None
    store.delete("agent.json")  # deleting what is not there is not an error


def test_typed_keys_round_trip(store: KeyStore) -> None:
    ed, ec = PrivateKey.generate(), PrivateKey.generate(ES256, kid="p256")
    write_private_key(store, "ed.jwk", ed)
    write_private_key(store, "ec.jwk", ec)
    loaded_ed, loaded_ec = read_private_key(store, "ed.jwk"), read_private_key(store, "ec.jwk")
    assert loaded_ed is not None and loaded_ec is not None
    assert loaded_ed.public_key.same_key(ed.public_key) and loaded_ed.kid == ed.kid
    assert loaded_ec.alg == ES256 and loaded_ec.kid == "p256"
    assert loaded_ec.public_key.same_key(ec.public_key)
    data = b"signed by the stored key"
    assert ed.public_key.verify(loaded_ed.sign(data), data)
    assert read_private_key(store, "absent.jwk") is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"a": 1, "a": 2}',  # duplicate members: the strict parser refuses them
        '{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "alg": "Ed25519"}',  # no private part
        "null",
    ],
)
def test_damaged_entries_are_typed_errors(store: KeyStore, text: str) -> None:
    store.write("bad.jwk", text)
    with pytest.raises(KeyStoreError):
        read_private_key(store, "bad.jwk")


def test_a_jwk_with_a_forbidden_alg_is_not_loaded(store: KeyStore) -> None:
    jwk = PrivateKey.generate().to_jwk()
    write_json(store, "eddsa.jwk", {**jwk, "alg": "EdDSA"})
    with pytest.raises(KeyStoreError, match="unsupported_algorithm"):
        read_private_key(store, "eddsa.jwk")
    key = PrivateKey.generate()
    other = PrivateKey.generate().to_jwk()
    write_json(store, "mixed.jwk", {**key.to_jwk(), "x": other["x"]})  # public half swapped
    with pytest.raises(KeyStoreError):
        read_private_key(store, "mixed.jwk")


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "Upper", "x" * 65, "a b"])
def test_bad_entry_names_are_refused(store: KeyStore, name: str) -> None:
    with pytest.raises(KeyStoreError):
        store.write(name, "value")
    with pytest.raises(KeyStoreError):
        store.read(name)


def test_json_entries(store: KeyStore) -> None:
    write_json(store, "settings.json", {"agent_id": "aauth:a@agent.example", "n": 1})
    assert read_json(store, "settings.json") == {"agent_id": "aauth:a@agent.example", "n": 1}
    assert read_json(store, "missing.json") is None


# -- entry names (a parser: property-based) --


@given(st.one_of(st.text(max_size=80), st.binary(max_size=10), st.integers(), st.none()))
def test_entry_name_is_valid_or_a_typed_error(value: object) -> None:
    try:
        name = validate_entry_name(value)
    except KeyStoreError:
        return
    assert name == value and isinstance(name, str)
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert 1 <= len(name) <= 64


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True), value=st.text())
def test_every_valid_name_stays_inside_the_directory(tmp_path: Path, name: str, value: str) -> None:
    store = DirectoryKeyStore(tmp_path / "names")
    store.write(name, value)
    assert (tmp_path / "names" / name).resolve().parent == (tmp_path / "names").resolve()
    assert store.read(name) == value


# -- the directory store: real files, real permissions --


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
def test_directory_and_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "keys"
    store = DirectoryKeyStore(root)
    assert store.read("agent.json") is None
    assert not root.exists()  # reading creates nothing
    previous = os.umask(0)
    try:
        write_private_key(store, "agent-key.jwk", PrivateKey.generate())
    finally:
        os.umask(previous)
    assert mode(root) == 0o700
    assert mode(root / "agent-key.jwk") == 0o600
    assert os.stat(root / "agent-key.jwk").st_uid == os.geteuid()
    assert sorted(os.listdir(root)) == ["agent-key.jwk"]  # no temporary file left behind


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, loose: int) -> None:
    store = DirectoryKeyStore(tmp_path / "keys")
    store.write("agent-key.jwk", "{}")
    os.chmod(tmp_path / "keys" / "agent-key.jwk", loose)
    with pytest.raises(InsecureKeyStoreError, match="chmod 600"):
        store.read("agent-key.jwk")
    # writing replaces the file with a private one
    store.write("agent-key.jwk", "{}")
    assert mode(tmp_path / "keys" / "agent-key.jwk") == 0o600
    assert store.read("agent-key.jwk") == "{}"


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
def test_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "keys"
    store = DirectoryKeyStore(root)
    store.write("agent.json", "{}")
    os.chmod(root, 0o777)
    with pytest.raises(InsecureKeyStoreError, match="chmod 700"):
        store.read("agent.json")
    with pytest.raises(InsecureKeyStoreError):
        store.write("agent.json", "{}")
    os.chmod(root, 0o755)  # readable by others is acceptable: the files themselves are 0600
    assert store.read("agent.json") == "{}"


@pytest.mark.skipif(not POSIX, reason="POSIX symbolic links")
def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "keys"
    store = DirectoryKeyStore(root)
    store.write("agent.json", "{}")
    target = tmp_path / "elsewhere.jwk"
    target.write_text("secret")
    os.chmod(target, 0o600)
    os.symlink(target, root / "agent-key.jwk")
    with pytest.raises(InsecureKeyStoreError, match="symbolic link"):
        store.read("agent-key.jwk")
    store.write("agent-key.jwk", "mine")  # replaces the link, never writes through it
    assert target.read_text() == "secret"
    assert not os.path.islink(root / "agent-key.jwk")


@pytest.mark.skipif(not POSIX or os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_key_file_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    store = DirectoryKeyStore(tmp_path / "keys")
    store.write("agent-key.jwk", "{}")
    os.chown(tmp_path / "keys" / "agent-key.jwk", 65534, 65534)
    with pytest.raises(InsecureKeyStoreError, match="another user"):
        store.read("agent-key.jwk")


def test_a_file_where_the_directory_should_be(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("not a directory")
    store = DirectoryKeyStore(tmp_path / "keys")
    with pytest.raises(KeyStoreError, match="not a directory"):
        store.read("agent.json")
    with pytest.raises(KeyStoreError):
        store.write("agent.json", "{}")


def test_non_utf8_file_is_a_typed_error(tmp_path: Path) -> None:
    store = DirectoryKeyStore(tmp_path / "keys")
    store.write("agent.json", "x")
    (tmp_path / "keys" / "agent.json").write_bytes(b"\xff\xfe")
    os.chmod(tmp_path / "keys" / "agent.json", 0o600)
    with pytest.raises(KeyStoreError, match="UTF-8"):
        store.read("agent.json")


def test_readers_never_see_a_torn_write(tmp_path: Path) -> None:
    store = DirectoryKeyStore(tmp_path / "keys")
    values = ["a" * 200_000, "b" * 300_000]
    store.write("big.json", values[0])
    stop = threading.Event()
    seen: list[str | None] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            store.write("big.json", values[i % 2])
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(200):
            seen.append(store.read("big.json"))
    finally:
        stop.set()
        thread.join()
    assert all(value in values for value in seen)
    assert [n for n in os.listdir(tmp_path / "keys") if n.startswith(".")] == []


# -- the keyring store --


def test_keyring_entries_are_per_service(plaintext_keyring: Any) -> None:
    one = KeyringKeyStore("aauth-agents-one", backend=plaintext_keyring)
    two = KeyringKeyStore("aauth-agents-two", backend=plaintext_keyring)
    one.write("agent.json", "1")
    assert two.read("agent.json") is None
    two.write("agent.json", "2")
    assert (one.read("agent.json"), two.read("agent.json")) == ("1", "2")
    # it really went through the backend: keyring itself reads the value back
    assert plaintext_keyring.get_password("aauth-agents-one", "agent.json") == "1"
    assert "aauth-agents-one" in one.location and "PlaintextKeyring" in one.location


def test_keyring_without_a_backend_is_a_clear_error(global_keyring: None) -> None:
    with pytest.raises(KeyStoreUnavailableError, match="no usable backend"):
        KeyringKeyStore(backend=keyring.backends.fail.Keyring())
    keyring.set_keyring(keyring.backends.fail.Keyring())
    with pytest.raises(KeyStoreUnavailableError, match="no OS keychain") as info:
        KeyringKeyStore()
    assert info.value.code == "key_store_unavailable"


def test_keyring_refuses_a_non_recommended_default_unless_allowed(
    global_keyring: None, plaintext_keyring: Any
) -> None:
    keyring.set_keyring(plaintext_keyring)
    with pytest.raises(KeyStoreUnavailableError, match="does not recommend"):
        KeyringKeyStore("aauth-agents-test")
    store = KeyringKeyStore("aauth-agents-test", allow_insecure_backend=True)
    store.write("agent.json", "{}")
    assert plaintext_keyring.get_password("aauth-agents-test", "agent.json") == "{}"


def test_keyring_package_missing_is_a_clear_error(tmp_path: Path) -> None:
    """A real interpreter in which ``import keyring`` fails."""
    script = (
        "import sys; sys.modules['keyring'] = None\n"
        "from aauth_agents.agent.storage import KeyringKeyStore, KeyStoreUnavailableError\n"
        "try:\n"
        "    KeyringKeyStore()\n"
        "except KeyStoreUnavailableError as exc:\n"
        "    print(exc.code, exc.detail)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    assert out.startswith("key_store_unavailable ")
    assert "pip install 'aauth-agents[keyring]'" in out


def test_memory_store_repr_shows_no_values() -> None:
    store = MemoryKeyStore({"agent-key.jwk": json.dumps(PrivateKey.generate().to_jwk())})
    assert '"d"' not in repr(store) and "agent-key.jwk" in repr(store)
