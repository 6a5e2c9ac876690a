-- End a job (Succeeded or Failed), release the claim, keep the counters for the retention period:
-- the job and its per-user outcomes expire then, and the tenant's job index drops the jobs that
-- ended before that period (their records are gone or about to be).
-- KEYS: 1 job hash, 2 job outcomes hash, 3 tenant's job index
-- ARGV: 1 owner, 2 state, 3 finish ms, 4 last error ('' = none), 5 note ('' = none),
--       6 retention ms
-- Returns 1 when written, 0 when the claim is lost.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'finished_ms', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'last_error', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'note', ARGV[5]) end
redis.call('HDEL', KEYS[1], 'owner', 'claim_until')
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(ARGV[3]) - tonumber(ARGV[6])))
return 1
