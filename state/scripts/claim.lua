-- claim.lua: claim an idempotency key for sending.
-- KEYS[1] claim key; ARGV[1] "sending:<owner>", ARGV[2] lease in milliseconds.
-- Returns 1 acquired (new or re-entrant, lease refreshed), 2 already sent, 3 in flight elsewhere.
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if string.sub(v, 1, 5) == 'sent:' then return 2 end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 3
