-- Give up a claim after a transient failure, saying why: the job stays Running and the next
-- runner round (this one or another process) resumes it from its cursor.
-- KEYS: 1 job hash
-- ARGV: 1 owner, 2 last error
-- Returns 1 when released, 0 when the claim was not ours.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'last_error', ARGV[2])
redis.call('HDEL', KEYS[1], 'owner', 'claim_until')
return 1
