-- due.lua: lease the due, unleased timers of one set (pm_due).
-- KEYS[1] timer ZSET member -> due unix millis, KEYS[2] lease HASH member -> lease expiry millis
-- ARGV[1] now (unix millis), ARGV[2] limit, ARGV[3] lease expiry to set (unix millis)
-- Returns {member, score, member, score, ...} in due order, at most limit pairs.
return pm_due(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), ARGV[3])
