-- common.lua: helpers prepended to every script of package state (see
-- scripts.go). Lua 5.1 numbers are doubles, exact only up to 2^53, and source
-- positions (PostgreSQL LSNs) are int64: positions therefore travel as
-- canonical decimal strings (strconv.FormatInt: optional '-', no leading
-- zeros) and are compared here as strings, never with tonumber.

-- pm_cmp compares two canonical decimal integer strings: -1, 0 or 1.
local function pm_cmp(a, b)
  local na = string.byte(a, 1) == 45 -- '-'
  local nb = string.byte(b, 1) == 45
  if na ~= nb then
    if na then return -1 end
    return 1
  end
  local r = 0
  if #a ~= #b then
    if #a < #b then r = -1 else r = 1 end
  else
    for i = 1, #a do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then
        if x < y then r = -1 else r = 1 end
        break
      end
    end
  end
  if na then return -r end
  return r
end

-- pm_split splits a row-history entry "<position>|<json>".
local function pm_split(e)
  local bar = string.find(e, '|', 1, true)
  if not bar then return e, 'null' end
  return string.sub(e, 1, bar - 1), string.sub(e, bar + 1)
end

-- pm_apply is the compare-and-set of one change (see apply.lua).
local function pm_apply(rowKey, parkedKey, pos, img, keep, ttl)
  local head = redis.call('LINDEX', rowKey, 0)
  local outcome, prev, nxt = 3, '', ''
  if not head then
    outcome = 1
  else
    local hpos, himg = pm_split(head)
    if pm_cmp(pos, hpos) > 0 then
      outcome, prev = 1, himg
    else
      local hist = redis.call('LRANGE', rowKey, 0, keep)
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
    redis.call('LPUSH', rowKey, pos .. '|' .. img)
    redis.call('LTRIM', rowKey, 0, keep)
    if ttl > 0 then redis.call('PEXPIRE', rowKey, ttl) end
  end
  local parked = {}
  if (outcome == 1 and img ~= 'null') or (outcome == 2 and nxt ~= 'null') then
    parked = redis.call('HGETALL', parkedKey)
  end
  return {outcome, prev, nxt, parked}
end
