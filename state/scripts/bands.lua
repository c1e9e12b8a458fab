-- bands.lua: one usage sample against the band state of its key.
-- KEYS[1] band HASH: u = usage armed ("1"/"0", absent = armed), o = over armed,
--         p = latest position evaluated, h = recent "position=result,..." newest first
-- ARGV[1] position (cdc.Position text; a position that cannot be ordered
--         against the latest is evaluated), ARGV[2] X (percent)
-- ARGV[3] UsageAt, ARGV[4] UsageRearmBelow, ARGV[5] OverAbove,
-- ARGV[6] OverRearmAtOrBelow, ARGV[7] how many recent results to remember
-- Returns 0 nothing fired, 1 usage, 2 over.
local pos = ARGV[1]
local x = tonumber(ARGV[2])
local usageAt, usageRearm = tonumber(ARGV[3]), tonumber(ARGV[4])
local overAbove, overRearm = tonumber(ARGV[5]), tonumber(ARGV[6])
local keep = tonumber(ARGV[7])
local st = redis.call('HMGET', KEYS[1], 'u', 'o', 'p', 'h')
local h = st[4] or ''
for p, r in string.gmatch(h, '([^=,]+)=(%d)') do
  if p == pos then return tonumber(r) end
end
if st[3] and pm_order(pos, st[3]) == -1 then return 0 end
local u = st[1] ~= '0'
local o = st[2] ~= '0'
if x < usageRearm then u = true end
if x <= overRearm then o = true end
local res = 0
if x > overAbove and o then
  o, u, res = false, false, 2
elseif x >= usageAt and u then
  u, res = false, 1
end
local recent = {pos .. '=' .. res}
for e in string.gmatch(h, '[^,]+') do
  if #recent >= keep then break end
  recent[#recent + 1] = e
end
redis.call('HSET', KEYS[1], 'u', u and '1' or '0', 'o', o and '1' or '0', 'p', pos,
  'h', table.concat(recent, ','))
return res
