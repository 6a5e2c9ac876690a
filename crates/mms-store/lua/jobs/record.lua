-- Record one user's result in a job, counted once: a user already recorded (a batch re-run
-- after a crash) changes nothing. Fenced by the runner's claim.
-- KEYS: 1 job hash, 2 job outcomes hash
-- ARGV: 1 owner, 2 user, 3 counter field (queued, merged, skipped, refused)
-- Returns 1 when the claim holds (recorded now or before), 0 when the claim is lost.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
end
return 1
