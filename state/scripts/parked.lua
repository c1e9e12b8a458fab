-- parked.lua: some of the intents parked on a row, to drain a row that
-- released only a chunk when it arrived.
-- KEYS[1] parked HASH; ARGV[1] how many (about).
-- Returns {entries (field, value, ...), more (1 when more remain)}.
local out, more = pm_parked(KEYS[1], tonumber(ARGV[1]))
return {out, more}
