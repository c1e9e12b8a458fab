-- trim.lua: a row's change at a position is committed: drop the history
-- entries older than it (keeping older ones of the same instant).
-- KEYS[i] row history LIST, ARGV[i] its committed position (one or many
-- rows; many only on standalone Redis and Sentinel).
-- Returns the number of entries dropped.
local n = 0
for i = 1, #KEYS do n = n + pm_trim(KEYS[i], ARGV[i]) end
return n
