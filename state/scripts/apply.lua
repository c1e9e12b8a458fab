-- apply.lua: compare-and-set of one change against a row's history.
-- KEYS[1] row history LIST "<position>|<json>", newest first
-- KEYS[2] parked HASH intent key -> encoded intent (same hash tag)
-- ARGV[1] position (canonical decimal string)
-- ARGV[2] image JSON, "null" for a delete
-- ARGV[3] replayable positions kept (RowHistory); the list holds one more
--         entry so that the oldest replayable position still has its previous image
-- ARGV[4] TTL of the row in milliseconds, 0 for none
-- Returns {outcome, prev, next, parked}: outcome 1 applied, 2 replay, 3 stale;
-- prev/next are images ("" for none; next is "" on applied: it is ARGV[2]); parked is HGETALL of KEYS[2] on applied
-- and replay when next is not "null", else empty.
local pos, img = ARGV[1], ARGV[2]
local keep = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local head = redis.call('LINDEX', KEYS[1], 0)
local outcome, prev, nxt = 3, '', ''
if not head then
  outcome = 1
else
  local hpos, himg = pm_split(head)
  if pm_cmp(pos, hpos) > 0 then
    outcome, prev = 1, himg
  else
    local hist = redis.call('LRANGE', KEYS[1], 0, keep)
    local n = #hist
    if n > keep then n = keep end
    for i = 1, n do
      local p, im = pm_split(hist[i])
      local c = pm_cmp(pos, p)
      if c == 0 then
        outcome, nxt = 2, im
        if hist[i + 1] then
          local _, pim = pm_split(hist[i + 1])
          prev = pim
        end
        break
      elseif c > 0 then
        break
      end
    end
  end
end
if outcome == 1 then
  redis.call('LPUSH', KEYS[1], pos .. '|' .. img)
  redis.call('LTRIM', KEYS[1], 0, keep)
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
local parked = {}
if (outcome == 1 and img ~= 'null') or (outcome == 2 and nxt ~= 'null') then
  parked = redis.call('HGETALL', KEYS[2])
end
return {outcome, prev, nxt, parked}
