-- ack.lua: acknowledge a fired timer.
-- KEYS[1] timer ZSET, KEYS[2] lease HASH; ARGV[1] member, ARGV[2] due (unix millis) it fired at.
-- Removes the member only if it is still due at ARGV[2] (not re-scheduled
-- meanwhile); always drops its lease. Returns 1 if removed, else 0.
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
local removed = 0
if s and tonumber(s) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  removed = 1
end
redis.call('HDEL', KEYS[2], ARGV[1])
return removed
