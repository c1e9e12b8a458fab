-- bands.lua: the usage samples of one key against its band state, in order.
-- KEYS[1] band HASH: u = usage armed ("1"/"0", absent = armed), o = over armed,
--         p = latest position evaluated, h = recent "position=result,..." newest first
-- ARGV[1] UsageAt, ARGV[2] UsageRearmBelow, ARGV[3] OverAbove,
-- ARGV[4] OverRearmAtOrBelow, ARGV[5] how many recent results to remember,
-- then per sample: position (cdc.Position text; a position that cannot be
-- ordered against the latest is evaluated), X (percent).
-- Returns per sample 0 nothing fired, 1 usage, 2 over.
local usageAt, usageRearm = tonumber(ARGV[1]), tonumber(ARGV[2])
local overAbove, overRearm = tonumber(ARGV[3]), tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
local st = redis.call('HMGET', KEYS[1], 'u', 'o', 'p', 'h')
local u = st[1] ~= '0'
local o = st[2] ~= '0'
local latest = st[3]
-- h is searched and rebuilt as text (plain finds run in C; splitting it into
-- a table per call cost more than the rest of the script).
local h = st[4] or ''
local out, changed = {}, false
for i = 6, #ARGV - 1, 2 do
  local pos, x = ARGV[i], tonumber(ARGV[i + 1])
  local res
  local needle, from = pos .. '=', 1
  while true do
    local f = string.find(h, needle, from, true)
    if not f then break end
    if f == 1 or string.byte(h, f - 1) == 44 then -- ','
      res = tonumber(string.sub(h, f + #needle, f + #needle))
      break
    end
    from = f + 1
  end
  if res == nil then
    res = 0
    if not (latest and pm_order(pos, latest) == -1) then
      if x < usageRearm then u = true end
      if x <= overRearm then o = true end
      if x > overAbove and o then
        o, u, res = false, false, 2
      elseif x >= usageAt and u then
        u, res = false, 1
      end
      if h == '' then h = needle .. res else h = needle .. res .. ',' .. h end
      -- keep the newest `keep` entries: cut at the keep-th comma
      local n, c = 0, 0
      repeat
        c = string.find(h, ',', c + 1, true)
        n = n + 1
      until not c or n == keep
      if c then h = string.sub(h, 1, c - 1) end
      latest, changed = pos, true
    end
  end
  out[#out + 1] = res
end
if changed then
  redis.call('HSET', KEYS[1], 'u', u and '1' or '0', 'o', o and '1' or '0', 'p', latest,
    'h', h)
end
return out
