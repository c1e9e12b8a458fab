-- apply_many.lua: apply.lua for many changes in one call (standalone Redis
-- and Sentinel only: the keys span hash slots, which Cluster refuses).
-- KEYS[2i-1], KEYS[2i]: row history and parked hash of change i
-- ARGV[1]: RowHistory; ARGV[3i-1], ARGV[3i], ARGV[3i+1]: position, image, TTL of change i
-- Returns one {outcome, prev, next, parked} per change, in order.
local keep = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  out[i] = pm_apply(KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 * i - 1], ARGV[3 * i], keep, tonumber(ARGV[3 * i + 1]))
end
return out
