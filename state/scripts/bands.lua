-- bands.lua: the usage samples of one key against its band state, in order
-- (pm_bands).
-- KEYS[1] band HASH: u = usage armed ("1"/"0", absent = armed), o = over armed,
--         p = latest position evaluated, h = recent "position=result,..." newest first
-- ARGV[1] UsageAt, ARGV[2] UsageRearmBelow, ARGV[3] OverAbove,
-- ARGV[4] OverRearmAtOrBelow, ARGV[5] how many recent results to remember,
-- then per sample: position (cdc.Position text; a position that cannot be
-- ordered against the latest is evaluated), X (percent).
-- Returns per sample 0 nothing fired, 1 usage, 2 over.
return pm_bands(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]),
  tonumber(ARGV[5]), ARGV, 6, #ARGV)
