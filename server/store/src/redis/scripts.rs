//! The Lua scripts that make Redis writes compare-and-set. Each runs atomically on the
//! server. Versions are compared as strings (exactly as stored), never as Lua numbers
//! (doubles). `KEYS[1]` is the session hash, `KEYS[2]` the app's expiry index; the scripts
//! that scan the index get the session-key prefix as `ARGV[1]`.
//!
//! Return shape of the writes: `{1, ""}` done, `{0, current}` conflict (`""`: no record).

/// ARGV: expect ("" = absent), id, version, valid, max_inactive_s, last_access_ms,
/// has_owner ("1"/"0"), owner, data, expire_at_ms ("" = never). The hash is overwritten in
/// place (one `HSET`; no `DEL` and re-create), its `owner` dropped and its expiry cleared
/// when the new record has none.
pub(super) const SAVE: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if cur then return {0, cur} end
elseif cur ~= ARGV[1] then
  return {0, cur or ''}
end
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 'valid', ARGV[4], 'mi', ARGV[5], 'la', ARGV[6], 'data', ARGV[9], 'owner', ARGV[8])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 'valid', ARGV[4], 'mi', ARGV[5], 'la', ARGV[6], 'data', ARGV[9])
  if cur then redis.call('HDEL', KEYS[1], 'owner') end
end
if ARGV[10] == '' then
  if cur then redis.call('PERSIST', KEYS[1]) end
  redis.call('ZADD', KEYS[2], '+inf', ARGV[2])
else
  redis.call('PEXPIREAT', KEYS[1], ARGV[10])
  redis.call('ZADD', KEYS[2], ARGV[10], ARGV[2])
end
return {1, ''}
"#;

/// ARGV: version, id.
pub(super) const REMOVE: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'v')
if cur ~= ARGV[1] then return {0, cur or ''} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return {1, ''}
"#;

/// ARGV: version, id, last_access_ms. Moves the last access forward only, and with it
/// the key's expiry and its score in the index.
pub(super) const TOUCH: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'v')
if cur ~= ARGV[1] then return {0, cur or ''} end
local la = tonumber(redis.call('HGET', KEYS[1], 'la'))
local new = tonumber(ARGV[3])
if new > la then
  redis.call('HSET', KEYS[1], 'la', ARGV[3])
  local mi = tonumber(redis.call('HGET', KEYS[1], 'mi'))
  if mi > 0 then
    local at = string.format('%.0f', new + mi * 1000)
    redis.call('PEXPIREAT', KEYS[1], at)
    redis.call('ZADD', KEYS[2], at, ARGV[2])
  end
end
return {1, ''}
"#;

/// Drop index entries whose key Redis has expired (their score is in the past), then
/// answer `ids` (ARGV[2] == "ids") or the count. KEYS[1]: the index. ARGV[1]: key prefix.
pub(super) const LIST: &str = r#"
local t = redis.call('TIME')
local now = string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000))
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  if redis.call('EXISTS', ARGV[1] .. id) == 0 then redis.call('ZREM', KEYS[1], id) end
end
if ARGV[2] == 'ids' then return redis.call('ZRANGE', KEYS[1], 0, -1) end
return redis.call('ZCARD', KEYS[1])
"#;

/// Ids whose expiry is before ARGV[2] (ms), earliest first, at most ARGV[3], as a flat
/// list id, version, id, version… KEYS[1]: the index. ARGV[1]: key prefix.
pub(super) const EXPIRED: &str = r#"
local out = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local v = redis.call('HGET', ARGV[1] .. id, 'v')
  if v then
    table.insert(out, id)
    table.insert(out, v)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"#;
