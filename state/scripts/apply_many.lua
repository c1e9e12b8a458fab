-- apply_many.lua: apply.lua and truncate.lua for many changes in one call
-- (standalone Redis and Sentinel only: the keys span hash slots, which
-- Cluster refuses). The truncate HASH is read here, so a truncate and the
-- changes after it in one chunk see each other.
-- KEYS[1] truncate HASH; KEYS[2i], KEYS[2i+1]: row history and parked hash of change i
-- ARGV[1] TTL of a deleted row in ms, ARGV[2] parked chunk; change i at
-- ARGV[7i-4 .. 7i+2]: kind ("c" change, "n" an INSERT, whose row starts
-- afresh, "t" truncate), table, position,
-- image, set, TTL, deferred trim position ("" none; see pm_apply)
-- Returns one apply.lua reply per change ({outcome, unordered} for a truncate).
local delTTL, chunk = ARGV[1], tonumber(ARGV[2])
local trunc = {}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do trunc[flat[i]] = flat[i + 1] end
local out = {}
for i = 1, (#KEYS - 1) / 2 do
  local a = 7 * i - 4
  local kind, tbl, pos = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  if kind == 't' then
    local o, u = pm_truncate(KEYS[1], tbl, pos)
    if o == 1 then trunc[tbl] = pos end
    out[i] = {o, u}
  else
    out[i] = pm_apply(KEYS[2 * i], KEYS[2 * i + 1], pos, ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], delTTL, trunc[tbl], chunk, kind == 'n', ARGV[a + 6])
  end
end
return out
