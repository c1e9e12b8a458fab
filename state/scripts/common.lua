-- common.lua: helpers prepended to every script of package state (see
-- scripts.go). Lua 5.1 numbers are doubles, exact only up to 2^53, and source
-- positions (PostgreSQL LSNs, microseconds) are int64: positions therefore
-- travel as text (cdc.Position.String: "lsn:24024100", "us:<n>~<digest>",
-- "ms:<n>~<digest>", "none~<digest>"), and their numbers are compared here
-- as canonical decimal strings, never with tonumber.
--
-- Row history LIST (one per row): its entries newest first, then, as the
-- last element, the index of their positions, newest first, separated by
-- spaces: [e1, ..., en, "p1 ... pn"]. An entry is
-- "<position>|<set before>|<set>|<json>": the first-set columns the row had
-- set before this change, those this image has set (comma lists), and the
-- image ("null" for a delete). Every entry not yet trimmed by a commit is
-- replayable; the index lets a script find one without reading the images.

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

-- pm_parse splits a position into its kind and number ("" for kind none).
local function pm_parse(p)
  local t = string.find(p, '~', 1, true)
  if t then p = string.sub(p, 1, t - 1) end
  local c = string.find(p, ':', 1, true)
  if not c then return p, '' end
  return string.sub(p, 1, c - 1), string.sub(p, c + 1)
end

-- pm_order compares positions a and b: -1, 0 or 1 by number when they are
-- of one kind, nil when they cannot be ordered (kinds differ, or none).
-- 0 is the same instant, not necessarily the same change.
local function pm_order(a, b)
  local ka, na = pm_parse(a)
  local kb, nb = pm_parse(b)
  if ka ~= kb or ka == 'none' then return nil end
  return pm_cmp(na, nb)
end

-- pm_older: is position p older than the truncate position t ("" or nil: none)?
local function pm_older(p, t)
  if t == nil or t == '' then return false end
  return pm_order(p, t) == -1
end

-- pm_entry splits a history entry into position, set before, set, image.
local function pm_entry(e)
  local a = string.find(e, '|', 1, true)
  local b = string.find(e, '|', a + 1, true)
  local c = string.find(e, '|', b + 1, true)
  return string.sub(e, 1, a - 1), string.sub(e, a + 1, b - 1), string.sub(e, b + 1, c - 1), string.sub(e, c + 1)
end

-- pm_positions splits a history index into its positions, newest first.
local function pm_positions(idx)
  local out = {}
  if idx then
    for p in string.gmatch(idx, '[^ ]+') do out[#out + 1] = p end
  end
  return out
end

-- pm_union is the union of two comma lists.
local function pm_union(a, b)
  if b == '' then return a end
  if a == '' then return b end
  local out, have = a, ',' .. a .. ','
  for s in string.gmatch(b, '[^,]+') do
    if not string.find(have, ',' .. s .. ',', 1, true) then
      out = out .. ',' .. s
      have = have .. s .. ','
    end
  end
  return out
end

-- pm_parked returns about n entries (a flat field, value list) of a parked
-- HASH, and 1 when more remain: a row many intents wait for releases them in
-- chunks (the engine drains the rest), never all at once.
local function pm_parked(parkedKey, n)
  local total = redis.call('HLEN', parkedKey)
  if total == 0 then return {}, 0 end
  if total <= n then return redis.call('HGETALL', parkedKey), 0 end
  local out, cursor = {}, '0'
  repeat
    local r = redis.call('HSCAN', parkedKey, cursor, 'COUNT', n)
    cursor = r[1]
    for i = 1, #r[2] do out[#out + 1] = r[2][i] end
  until cursor == '0' or #out >= 2 * n
  for i = #out, 2 * n + 1, -1 do out[i] = nil end
  local more = 0
  if #out / 2 < total then more = 1 end
  return out, more
end

-- pm_trim_idx drops the entries of rowKey older than the one at pos
-- (keeping older ones of the same instant), given the row's index idx.
-- Returns the index it leaves and how many entries it dropped.
local function pm_trim_idx(rowKey, idx, pos)
  if not string.find(idx, ' ', 1, true) then return idx, 0 end -- one entry
  local ps = pm_positions(idx)
  local at = nil
  for i = 1, #ps do
    if ps[i] == pos then at = i; break end
  end
  if not at then return idx, 0 end
  local keep = at
  while keep < #ps and pm_order(ps[keep + 1], pos) == 0 do keep = keep + 1 end
  if keep == #ps then return idx, 0 end
  redis.call('LTRIM', rowKey, '0', string.format('%d', keep - 1)) -- text: see pm_apply
  local left = table.concat(ps, ' ', 1, keep)
  redis.call('RPUSH', rowKey, left)
  return left, #ps - keep
end

-- pm_trim drops the entries older than the one at pos (keeping older ones
-- of the same instant). Returns how many it dropped.
local function pm_trim(rowKey, pos)
  local idx = redis.call('LINDEX', rowKey, '-1')
  if not idx then return 0 end
  local _, n = pm_trim_idx(rowKey, idx, pos)
  return n
end

-- pm_apply is the compare-and-set of one change (see apply.lua). fresh: the
-- change is an INSERT, so the row starts a new life and its set before is
-- empty (the row was absent, whether state knew of its delete or truncate).
-- trimPos, when not '', is a committed position of the row whose trim was
-- deferred (pm_trim): it is done first, as the commit would have. ttl and
-- delTTL are milliseconds as decimal text ('0': none), and list indexes are
-- passed as text too: Redis 7.0 formats a Lua number argument of
-- redis.call with snprintf("%.17g"), a measurable part of its CPU here.
local function pm_apply(rowKey, parkedKey, pos, img, set, ttl, delTTL, trunc, chunk, fresh, trimPos)
  local idx = redis.call('LINDEX', rowKey, '-1')
  if idx and trimPos ~= '' then idx = pm_trim_idx(rowKey, idx, trimPos) end
  -- The index is split into a table only for a replay: a new change needs
  -- its newest position, and whether pos is in it at all, which plain
  -- string searches answer (a row changed k times between two commits
  -- costs k string scans, not k table builds of up to k positions).
  local newest, ps, n = nil, nil, 0
  local outcome, unordered, at = 1, 0, nil
  if idx then
    local sp = string.find(idx, ' ', 1, true)
    if sp then newest = string.sub(idx, 1, sp - 1) else newest = idx end
    if newest == pos or string.find(' ' .. idx .. ' ', ' ' .. pos .. ' ', 1, true) then
      ps = pm_positions(idx)
      n = #ps
      for i = 1, n do
        if ps[i] == pos then at = i; break end
      end
    end
    if at then
      outcome = 2
    else
      local c = pm_order(pos, newest)
      if c == -1 then
        outcome = 3
      elseif c ~= 1 then
        unordered = 1
      end
    end
  end
  local prevE, prevPos, headE = nil, nil, nil
  local nextImg, eps = '', ''
  if outcome == 2 then
    local e = redis.call('LINDEX', rowKey, at - 1)
    local _, s0, _, im = pm_entry(e)
    nextImg, eps = im, s0
    if at < n then prevE, prevPos = redis.call('LINDEX', rowKey, at), ps[at + 1] end
    if at == 1 then headE = e else headE = redis.call('LINDEX', rowKey, '0') end
  elseif idx then
    headE = redis.call('LINDEX', rowKey, '0')
    if outcome == 1 then prevE, prevPos = headE, newest end
  end
  -- A change older than the truncate of its table (its record came after
  -- the truncate's, from another partition) still mails its transition,
  -- against the image before it, which is older too; the row stays absent.
  local late = pm_older(pos, trunc)
  local prevImg = ''
  local headImg = nil -- headE's image, when prevE is headE
  if prevE ~= nil and (late or not pm_older(prevPos, trunc)) then
    local _, pps, pset, pim = pm_entry(prevE)
    prevImg = pim
    if prevE == headE then headImg = pim end
    if outcome == 1 and not fresh then eps = pm_union(pps, pset) end
  elseif outcome == 2 then
    eps = ''
  end
  local head = ''
  if outcome == 1 then
    redis.call('LPUSH', rowKey, pos .. '|' .. eps .. '|' .. set .. '|' .. img)
    if idx then
      redis.call('LSET', rowKey, '-1', pos .. ' ' .. idx)
    else
      redis.call('RPUSH', rowKey, pos)
    end
    if img == 'null' then
      if delTTL ~= '0' then redis.call('PEXPIRE', rowKey, delTTL) end
    elseif ttl ~= '0' then
      redis.call('PEXPIRE', rowKey, ttl)
    elseif headE then
      local him = headImg
      if him == nil then him = select(4, pm_entry(headE)) end
      if him == 'null' then redis.call('PERSIST', rowKey) end
    end
    if not late then head = '=' end
  elseif headE and not pm_older(newest, trunc) then
    local _, _, _, him = pm_entry(headE)
    head = him
  end
  if outcome == 3 then return {3, 0, '', '', head, '', {}, 0} end
  -- Intents park only on an absent row (park.lua refuses otherwise), so
  -- only a change that makes the row present can have any to release; the
  -- ones a first release left (more) are drained by the engine's timer.
  -- A late change leaves the row absent: it releases none.
  local parked, more = {}, 0
  if not late and (prevImg == '' or prevImg == 'null') and
     ((outcome == 1 and img ~= 'null') or (outcome == 2 and nextImg ~= 'null')) then
    parked, more = pm_parked(parkedKey, chunk)
  end
  return {outcome, unordered, prevImg, nextImg, head, eps, parked, more}
end

-- pm_truncate records a TRUNCATE of table tbl at pos in the truncate HASH:
-- returns outcome (1 applied, 2 replay, 3 stale) and unordered (0/1).
local function pm_truncate(truncKey, tbl, pos)
  local cur = redis.call('HGET', truncKey, tbl)
  if cur then
    if cur == pos then return 2, 0 end
    local c = pm_order(pos, cur)
    if c ~= nil and c <= 0 then return 3, 0 end
    redis.call('HSET', truncKey, tbl, pos)
    if c == nil then return 1, 1 end
    return 1, 0
  end
  redis.call('HSET', truncKey, tbl, pos)
  return 1, 0
end

-- pm_due leases the due, unleased timers of one set: zkey the timer ZSET
-- (member -> due unix millis), lkey the lease HASH (member -> lease expiry
-- millis); now and leaseTo are unix millis as text, limit a number. Returns
-- {member, score, member, score, ...} in due order, at most limit pairs.
local function pm_due(zkey, lkey, now, limit, leaseTo)
  local nowN = tonumber(now)
  local out = {}
  local offset, chunk = 0, limit
  if chunk < 64 then chunk = 64 end
  while #out < 2 * limit do
    local batch = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'WITHSCORES', 'LIMIT', offset, chunk)
    for i = 1, #batch, 2 do
      local m = batch[i]
      local l = redis.call('HGET', lkey, m)
      if (not l) or tonumber(l) <= nowN then
        redis.call('HSET', lkey, m, leaseTo)
        out[#out + 1] = m
        out[#out + 1] = batch[i + 1]
        if #out >= 2 * limit then break end
      end
    end
    if #batch < 2 * chunk then break end
    offset = offset + chunk
  end
  return out
end

-- pm_bands evaluates the usage samples of one subscription against its band
-- HASH at key, in order (see bands.lua): args holds the samples from index
-- from to to as position, X (percent) pairs. usageAt, usageRearm, overAbove
-- and overRearm are the band rules, keep how many recent results to
-- remember. Returns per sample 0 nothing fired, 1 usage, 2 over.
local function pm_bands(key, usageAt, usageRearm, overAbove, overRearm, keep, args, from, to)
  local st = redis.call('HMGET', key, 'u', 'o', 'p', 'h')
  local u = st[1] ~= '0'
  local o = st[2] ~= '0'
  local latest = st[3]
  -- h is searched and rebuilt as text (plain finds run in C; splitting it into
  -- a table per call cost more than the rest of the script).
  local h = st[4] or ''
  local out, changed = {}, false
  for i = from, to - 1, 2 do
    local pos, x = args[i], tonumber(args[i + 1])
    local res
    local needle, at = pos .. '=', 1
    while true do
      local f = string.find(h, needle, at, true)
      if not f then break end
      if f == 1 or string.byte(h, f - 1) == 44 then -- ','
        res = tonumber(string.sub(h, f + #needle, f + #needle))
        break
      end
      at = f + 1
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
    redis.call('HSET', key, 'u', u and '1' or '0', 'o', o and '1' or '0', 'p', latest,
      'h', h)
  end
  return out
end
