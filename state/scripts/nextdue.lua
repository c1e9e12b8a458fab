-- nextdue.lua: the earliest time DueTimers can return a timer of one set.
-- KEYS[1] timer ZSET, KEYS[2] lease HASH.
-- A leased timer counts at the later of its due time and its lease expiry.
-- Returns that time in unix millis, or nil when the set is empty.
local best = nil
local offset, chunk = 0, 64
while true do
  local batch = redis.call('ZRANGE', KEYS[1], offset, offset + chunk - 1, 'WITHSCORES')
  for i = 1, #batch, 2 do
    local due = tonumber(batch[i + 1])
    if best and due >= best then return best end
    local eff = due
    local l = redis.call('HGET', KEYS[2], batch[i])
    if l and tonumber(l) > eff then eff = tonumber(l) end
    if (not best) or eff < best then best = eff end
  end
  if #batch < 2 * chunk then break end
  offset = offset + chunk
end
if best then return best end
return false
