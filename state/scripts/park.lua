-- park.lua: park an intent on a row, atomically with the check that the
-- row is absent.
-- KEYS[1] row history LIST, KEYS[2] parked HASH; ARGV[1] intent key,
-- ARGV[2] encoded intent, ARGV[3] the table's truncate position ("" none).
-- Returns 1 parked (or already parked: the first stays), 0 refused: the row
-- is present (stored, not deleted, not older than a truncate).
local head = redis.call('LINDEX', KEYS[1], 0)
if head then
  local p, _, _, im = pm_entry(head)
  if im ~= 'null' and not pm_older(p, ARGV[3]) then return 0 end
end
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
return 1
