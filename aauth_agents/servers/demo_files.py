"""The demo resource's files: a folder of small text files per person (``(iss, sub)``),
seeded with ``welcome.txt``.

* :class:`DemoFiles` -- in this process's memory (one process: ``serve resource`` without
  ``--redis``, ``aauth-agents demo``, tests).
* :class:`RedisDemoFiles` -- in Redis, shared by every worker and every process serving the
  identifier (``serve resource --workers N --redis URL``): a file written through one is
  read through any other.

Both refuse the same names and sizes (:class:`DemoFileError`) and have ``a``-prefixed async
twins, which the resource's routes and tools use.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..stores.redis import RedisConnection

WELCOME = {"welcome.txt": "Hello from the aauth-agents demo resource.\n"}

#: A folder's listing: ``[{"name", "size"}]``, by name.
Listing = list[dict[str, Any]]

_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class DemoFileError(ValueError):
    """A file name or content the demo store refuses (the message says why)."""


def _checked(name: Any, content: Any, max_bytes: int) -> int:
    """The size of ``content`` in bytes, or :class:`DemoFileError`."""
    if not isinstance(name, str) or not _FILE_NAME.fullmatch(name):
        raise DemoFileError(
            "a file name is 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    if not isinstance(content, str):
        raise DemoFileError("content is text")
    size = len(content.encode())
    if size > max_bytes:
        raise DemoFileError(f"a file holds at most {max_bytes} bytes")
    return size


def _full(max_files: int) -> DemoFileError:
    return DemoFileError(f"a folder holds at most {max_files} files")


class DemoFiles:
    """The in-memory file store: a folder of text files per person, seeded with ``seed``.

    Bounded: ``max_files`` per person, ``max_bytes`` per file, ``max_people`` folders (the
    least recently used folder is dropped past that). Thread-safe."""

    def __init__(
        self,
        seed: Mapping[str, str] | None = None,
        *,
        max_files: int = 100,
        max_bytes: int = 64 * 1024,
        max_people: int = 10_000,
    ) -> None:
        self.seed = dict(WELCOME if seed is None else seed)
        self.max_files, self.max_bytes, self.max_people = max_files, max_bytes, max_people
        self._folders: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def _folder(self, person: tuple[str, str]) -> dict[str, str]:
        folder = self._folders.get(person)
        if folder is None:
            folder = self._folders[person] = dict(self.seed)
            while len(self._folders) > self.max_people:
                self._folders.popitem(last=False)
        self._folders.move_to_end(person)
        return folder

    def _view(self, person: tuple[str, str]) -> Mapping[str, str]:
        """A person's files without creating a folder (reading writes nothing)."""
        folder = self._folders.get(person)
        if folder is None:
            return self.seed
        self._folders.move_to_end(person)
        return folder

    def list(self, person: tuple[str, str]) -> Listing:
        """``[{"name", "size"}]``, by name."""
        with self._lock:
            folder = self._view(person)
            return [{"name": name, "size": len(folder[name].encode())} for name in sorted(folder)]

    def read(self, person: tuple[str, str], name: str) -> str | None:
        with self._lock:
            return self._view(person).get(name)

    def delete(self, person: tuple[str, str], name: str) -> bool:
        """Delete ``name``; False when there is no such file."""
        with self._lock:
            folder = self._folder(person)
            return folder.pop(name, None) is not None

    def write(self, person: tuple[str, str], name: str, content: str) -> dict[str, Any]:
        """Create or replace ``name``: ``{"name", "size", "created"}``; :class:`DemoFileError`
        for a bad name, oversized content or a full folder (nothing is written then)."""
        size = _checked(name, content, self.max_bytes)
        with self._lock:
            folder = self._folder(person)
            created = name not in folder
            if created and len(folder) >= self.max_files:
                raise _full(self.max_files)
            folder[name] = content
        return {"name": name, "size": size, "created": created}

    async def alist(self, person: tuple[str, str]) -> Listing:
        return self.list(person)

    async def aread(self, person: tuple[str, str], name: str) -> str | None:
        return self.read(person, name)

    async def adelete(self, person: tuple[str, str], name: str) -> bool:
        return self.delete(person, name)

    async def awrite(self, person: tuple[str, str], name: str, content: str) -> dict[str, Any]:
        return self.write(person, name, content)


# A folder's hash has a field "." (no file name starts with a dot) marking it made, so
# that a folder emptied by its person is not seeded again.
#: The changing scripts make the folder KEYS[1] first unless it exists (the marker, and the
#: seed's name/content pairs from ARGV[s]), and keep it ARGV[1] ms from now.
#: Write: ARGV[2] name, ARGV[3] max_files, the seed from ARGV[4], the content last; 1
#: created, 0 replaced, -1 the folder is full (nothing written).
_WRITE = """
local content = table.remove(ARGV)
local name, max_files = ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], '.', '1')
  for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local created = redis.call('HEXISTS', KEYS[1], name) == 0
if created and redis.call('HLEN', KEYS[1]) - 1 >= max_files then return -1 end
redis.call('HSET', KEYS[1], name, content)
if created then return 1 end
return 0
"""
#: Delete: ARGV[2] name, the seed from ARGV[3]; 1 deleted, 0 no such file.
_DELETE = """
local name = ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], '.', '1')
  for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HDEL', KEYS[1], name)
"""
#: The folder's files as name/size pairs (sizes in bytes), or {} with 0 when none is made.
_LIST = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, {}} end
local out = {}
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if name ~= '.' then
    table.insert(out, name)
    table.insert(out, redis.call('HSTRLEN', KEYS[1], name))
  end
end
return {1, out}
"""
#: File ARGV[1]: {made, content or false}.
_READ = """
return {redis.call('EXISTS', KEYS[1]), redis.call('HGET', KEYS[1], ARGV[1])}
"""


class RedisDemoFiles:
    """:class:`DemoFiles` in the Redis of ``conn``: one hash per person
    (``<prefix>demo-files:<digest of (iss, sub)>``, a file per field), each operation one
    script (a write checks the folder's size and writes atomically). A folder lives
    ``lifetime`` seconds after its last change, which bounds the folders kept as
    ``max_people`` does in memory. Unreachable Redis:
    :class:`~aauth_agents.stores.StoreUnavailableError` (503)."""

    def __init__(
        self,
        conn: RedisConnection,
        seed: Mapping[str, str] | None = None,
        *,
        max_files: int = 100,
        max_bytes: int = 64 * 1024,
        lifetime: float = 30 * 86400,
    ) -> None:
        self.conn = conn
        self.seed = dict(WELCOME if seed is None else seed)
        self.max_files, self.max_bytes = max_files, max_bytes
        self.lifetime = lifetime

    def _key(self, person: tuple[str, str]) -> str:
        digest = hashlib.sha256(json.dumps(list(person)).encode()).hexdigest()
        return self.conn.key("demo-files:", digest)

    def _seeded(self, *args: Any) -> list[Any]:
        """ARGV of a changing script: the lifetime, ``args``, then the seed's pairs."""
        pairs = [item for pair in self.seed.items() for item in pair]
        return [int(self.lifetime * 1000), *args, *pairs]

    def _listed(self, reply: Any) -> Listing:
        made, items = reply
        if not int(made):
            return [{"name": n, "size": len(c.encode())} for n, c in sorted(self.seed.items())]
        sizes = dict(zip(items[::2], items[1::2], strict=True))
        return [{"name": name, "size": int(sizes[name])} for name in sorted(sizes)]

    def _read(self, reply: Any, name: str) -> str | None:
        made, content = reply
        if not int(made):
            return self.seed.get(name)
        return content if isinstance(content, str) else None

    def _write_args(self, person: tuple[str, str], name: str, content: str) -> list[Any]:
        _checked(name, content, self.max_bytes)
        return ["EVAL", _WRITE, 1, self._key(person), *self._seeded(name, self.max_files), content]

    def _written(self, reply: Any, name: str, content: str) -> dict[str, Any]:
        if int(reply) < 0:
            raise _full(self.max_files)
        return {"name": name, "size": len(content.encode()), "created": int(reply) == 1}

    def list(self, person: tuple[str, str]) -> Listing:
        """``[{"name", "size"}]``, by name."""
        return self._listed(self.conn.call("EVAL", _LIST, 1, self._key(person)))

    def read(self, person: tuple[str, str], name: str) -> str | None:
        return self._read(self.conn.call("EVAL", _READ, 1, self._key(person), name), name)

    def delete(self, person: tuple[str, str], name: str) -> bool:
        """Delete ``name``; False when there is no such file."""
        args = self._seeded(name)
        return int(self.conn.call("EVAL", _DELETE, 1, self._key(person), *args)) == 1

    def write(self, person: tuple[str, str], name: str, content: str) -> dict[str, Any]:
        """As :meth:`DemoFiles.write`."""
        return self._written(
            self.conn.call(*self._write_args(person, name, content)), name, content
        )

    async def alist(self, person: tuple[str, str]) -> Listing:
        return self._listed(await self.conn.acall("EVAL", _LIST, 1, self._key(person)))

    async def aread(self, person: tuple[str, str], name: str) -> str | None:
        reply = await self.conn.acall("EVAL", _READ, 1, self._key(person), name)
        return self._read(reply, name)

    async def adelete(self, person: tuple[str, str], name: str) -> bool:
        args = self._seeded(name)
        return int(await self.conn.acall("EVAL", _DELETE, 1, self._key(person), *args)) == 1

    async def awrite(self, person: tuple[str, str], name: str, content: str) -> dict[str, Any]:
        reply = await self.conn.acall(*self._write_args(person, name, content))
        return self._written(reply, name, content)


__all__ = ["WELCOME", "DemoFileError", "DemoFiles", "RedisDemoFiles"]
