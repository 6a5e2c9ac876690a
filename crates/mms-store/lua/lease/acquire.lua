-- lease/acquire.lua: take a mailbox lease with a fresh fencing token (D4).
--
-- KEYS[1] lease, KEYS[2] fence counter (never reset, so every token is larger than the last).
-- ARGV[1] owner, ARGV[2] ttl (ms).
-- Returns the new token, or false when someone holds the lease.
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
