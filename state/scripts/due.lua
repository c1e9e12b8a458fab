-- due.lua: lease the due, unleased timers of one set.
-- KEYS[1] timer ZSET member -> due unix millis, KEYS[2] lease HASH member -> lease expiry millis
-- ARGV[1] now (unix millis), ARGV[2] limit, ARGV[3] lease expiry to set (unix millis)
-- Returns {member, score, member, score, ...} in due order, at most limit pairs.
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local out = {}
local offset, chunk = 0, limit
if chunk < 64 then chunk = 64 end
while #out < 2 * limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, chunk)
  for i = 1, #batch, 2 do
    local m = batch[i]
    local l = redis.call('HGET', KEYS[2], m)
    if (not l) or tonumber(l) <= now then
      redis.call('HSET', KEYS[2], m, ARGV[3])
      out[#out + 1] = m
      out[#out + 1] = batch[i + 1]
      if #out >= 2 * limit then break end
    end
  end
  if #batch < 2 * chunk then break end
  offset = offset + chunk
end
return out
