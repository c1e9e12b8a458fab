-- release.lua: give up a send claim.
-- KEYS[1] claim key; ARGV[1] "sending:<owner>". Deletes the key only if the
-- owner still holds it. Returns 1 if deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
