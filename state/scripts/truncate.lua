-- truncate.lua: record a TRUNCATE (the Cluster path).
-- KEYS[1] truncate HASH table -> position; ARGV[1] table, ARGV[2] position.
-- Returns {outcome, unordered}: 1 applied (newer, or not comparable), 2 the
-- same position again, 3 older.
local o, u = pm_truncate(KEYS[1], ARGV[1], ARGV[2])
return {o, u}
