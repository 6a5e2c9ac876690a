-- Move a job's cursor past a batch, set its total, and extend the runner's claim.
-- KEYS: 1 job hash
-- ARGV: 1 owner, 2 cursor, 3 total, 4 claim expiry ms
-- Returns 1 when written, 0 when the claim is lost.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'Running' then return 0 end
redis.call('HSET', KEYS[1], 'cursor', ARGV[2], 'total', ARGV[3], 'claim_until', ARGV[4])
return 1
