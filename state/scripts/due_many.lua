-- due_many.lua: due.lua for many timer sets in one call (standalone Redis
-- and Sentinel only: the keys span hash slots, which Cluster refuses).
-- KEYS[2i-1], KEYS[2i] timer ZSET and lease HASH of set i; ARGV as due.lua's.
-- Returns one due.lua reply per set, in order.
local limit = tonumber(ARGV[2])
local out = {}
for i = 1, #KEYS / 2 do
  out[i] = pm_due(KEYS[2 * i - 1], KEYS[2 * i], ARGV[1], limit, ARGV[3])
end
return out
