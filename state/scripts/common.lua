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
