-- lease/renew.lua: extend a mailbox lease, only while it is still the caller's.
--
-- KEYS[1] lease. ARGV[1] the caller's lease value (`<token>:<owner>`), ARGV[2] ttl (ms).
-- Returns 1 when extended, 0 when the lease is not the caller's any more.
-- Needs lib/fence.lua.
if not fence_ok(KEYS[1], ARGV[1]) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
