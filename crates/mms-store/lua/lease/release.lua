-- lease/release.lua: give a mailbox lease up, only if it is still the caller's (a lease taken
-- over meanwhile is left to its new holder).
--
-- KEYS[1] lease. ARGV[1] the caller's lease value. Returns 1.
-- Needs lib/fence.lua.
if fence_ok(KEYS[1], ARGV[1]) then redis.call('DEL', KEYS[1]) end
return 1
