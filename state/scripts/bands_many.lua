-- bands_many.lua: bands.lua for many keys in one call (standalone Redis and
-- Sentinel only: the keys span hash slots, which Cluster refuses).
-- KEYS[i] band HASH of key i; ARGV[1..5] as bands.lua's, then per key i: how
-- many samples it has, then those samples as bands.lua takes them.
-- Returns one bands.lua reply per key, in order.
local usageAt, usageRearm = tonumber(ARGV[1]), tonumber(ARGV[2])
local overAbove, overRearm = tonumber(ARGV[3]), tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
local out, a = {}, 6
for i = 1, #KEYS do
  local n = tonumber(ARGV[a])
  out[i] = pm_bands(KEYS[i], usageAt, usageRearm, overAbove, overRearm, keep, ARGV, a + 1, a + 2 * n)
  a = a + 1 + 2 * n
end
return out
