"""The Lua scripts of the Redis stores (:mod:`aauth_agents.stores.redis`): each runs as one
``EVALSHA``, atomically (no other command runs in between), in one round trip.

Keys come in ``KEYS``; the pending scripts also derive a record's key, its interaction key
and its owner index from the ``prefix`` passed in ``ARGV`` (standalone Redis only). Times are
decimal strings of Unix seconds; TTLs are milliseconds.
"""

from __future__ import annotations

#: Shared by the scripts: extend a key's TTL to ``ttl`` ms (never shorten it), and drop a
#: pending record from the interaction and owner indexes.
HELPERS = """
local function extend(key, ttl)
  if redis.call('PTTL', key) < tonumber(ttl) then redis.call('PEXPIRE', key, ttl) end
end
local function unindex(prefix, id, iid, owner)
  if iid then
    local ikey = prefix .. 'pending-interaction:' .. iid
    if redis.call('GET', ikey) == id then redis.call('DEL', ikey) end
  end
  if owner then redis.call('ZREM', prefix .. 'pending-owner:' .. owner, id) end
end
"""

SCRIPTS: dict[str, str] = {
    # KEYS record, purge index, interaction key, owner index. ARGV ttl, purge_at, created_at,
    # id, prune_before, has_interaction, open_with_owner, then the field/value pairs.
    "create": """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[3]) == 1 then return 2 end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if ARGV[6] == '1' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[1]) end
if ARGV[7] == '1' then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
  extend(KEYS[4], ARGV[1])
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
extend(KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
return 0
""",
    # KEYS record, purge index. ARGV version, ttl, prefix, prune_before, id, created_at,
    # purge_at, open, proposed owner ('' none), then the field/value pairs. Returns false
    # (lost) or {owner, interaction_id}.
    "replace": """
local cur = redis.call('HMGET', KEYS[1], 'version', 'owner', 'interaction_id')
if cur[1] ~= ARGV[1] then return false end
local owner = cur[2]
if not owner and ARGV[9] ~= '' then owner = string.sub(ARGV[9], 2) end
redis.call('HDEL', KEYS[1], 'code')
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if owner then
  redis.call('HSET', KEYS[1], 'owner', owner)
  local okey = ARGV[3] .. 'pending-owner:' .. owner
  if ARGV[8] == '1' then
    redis.call('ZADD', okey, ARGV[6], ARGV[5])
    extend(okey, ARGV[2])
  else
    redis.call('ZREM', okey, ARGV[5])
  end
end
if cur[3] then redis.call('PEXPIRE', ARGV[3] .. 'pending-interaction:' .. cur[3], ARGV[2]) end
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[5])
extend(KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
return {owner or false, cur[3] or false}
""",
    # KEYS interaction key. ARGV prefix.
    "by_interaction": """
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('HGETALL', ARGV[1] .. 'pending:' .. id)
""",
    # KEYS record, purge index. ARGV prefix, id.
    "delete": """
local f = redis.call('HMGET', KEYS[1], 'interaction_id', 'owner')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
unindex(ARGV[1], ARGV[2], f[1], f[2])
return 0
""",
    # KEYS owner index. ARGV prefix, owner, now, offset, limit (-1: count), open states...
    # Walks the owner's index in (created_at, id) order; drops entries of records gone or
    # no longer the owner's open ones.
    "owner_open": """
local open = {}
for i = 6, #ARGV do open[ARGV[i]] = true end
local now, skip, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local found, count, stale, start = {}, 0, {}, 0
while limit ~= 0 do
  local ids = redis.call('ZRANGE', KEYS[1], start, start + 99)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local key = ARGV[1] .. 'pending:' .. id
    local f = redis.call('HMGET', key, 'state', 'expires_at', 'owner')
    if not f[1] or f[3] ~= ARGV[2] or not open[f[1]] then
      table.insert(stale, id)
    elseif tonumber(f[2]) > now then
      count = count + 1
      if limit > 0 and count > skip then table.insert(found, redis.call('HGETALL', key)) end
    end
    if limit > 0 and #found >= limit then break end
  end
  if limit > 0 and #found >= limit then break end
  start = start + 100
end
for _, id in ipairs(stale) do redis.call('ZREM', KEYS[1], id) end
if limit < 0 then return count end
return found
""",
    # KEYS purge index. ARGV prefix, now, batch. Returns {forgotten, examined}.
    "pending_purge": """
local now = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local n = 0
for _, id in ipairs(ids) do
  local key = ARGV[1] .. 'pending:' .. id
  local f = redis.call('HMGET', key, 'purge_at', 'interaction_id', 'owner')
  if f[1] and tonumber(f[1]) > now then
    redis.call('ZADD', KEYS[1], f[1], id)
  else
    if f[1] then
      redis.call('DEL', key)
      unindex(ARGV[1], id, f[2], f[3])
      n = n + 1
    end
    redis.call('ZREM', KEYS[1], id)
  end
end
return {n, #ids}
""",
    # KEYS index. ARGV prefix, now, batch, hash field ('': the key's string value).
    "index_purge": """
local now = tonumber(ARGV[2])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local n = 0
for _, m in ipairs(members) do
  local key, v = ARGV[1] .. m, nil
  if ARGV[4] == '' then v = redis.call('GET', key) else v = redis.call('HGET', key, ARGV[4]) end
  if v and tonumber(v) > now then
    redis.call('ZADD', KEYS[1], v, m)
  else
    if v then
      redis.call('DEL', key)
      n = n + 1
    end
    redis.call('ZREM', KEYS[1], m)
  end
end
return {n, #members}
""",
    # KEYS entry, index. ARGV until, ttl, member, prune_before. Keeps the later ``until``;
    # 1 when the entry is new.
    "upsert_max": """
local prev = redis.call('GET', KEYS[1])
if not prev or tonumber(prev) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])
  extend(KEYS[2], ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
if prev then return 0 end
return 1
""",
    # KEYS entry, index. ARGV ttl, time, member, prune_before, then the field/value pairs.
    "put_hash": """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
extend(KEYS[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
return 0
""",
    # KEYS entry, index. ARGV now, until, ttl, member, prune_before. The count after it.
    "attempt": """
local u = redis.call('HGET', KEYS[1], 'until')
if u and tonumber(u) > tonumber(ARGV[1]) then
  return redis.call('HINCRBY', KEYS[1], 'count', 1)
end
redis.call('HSET', KEYS[1], 'count', 1, 'until', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
extend(KEYS[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
return 1
""",
}

__all__ = ["HELPERS", "SCRIPTS"]
