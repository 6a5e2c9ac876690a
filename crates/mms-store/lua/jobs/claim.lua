-- Claim a running job for one runner until ARGV[3] (ms): refused while another runner's claim
-- holds, so two API processes never run one job at the same time.
-- KEYS: 1 job hash
-- ARGV: 1 owner, 2 now ms, 3 claim expiry ms
-- Returns 1 when claimed (or renewed), 0 when the job is not running or claimed by another.
if redis.call('HGET', KEYS[1], 'state') ~= 'Running' then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner')
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'claim_until') or '0')
if owner and owner ~= ARGV[1] and until_ms > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'claim_until', ARGV[3])
if not redis.call('HGET', KEYS[1], 'started_ms') then
  redis.call('HSET', KEYS[1], 'started_ms', ARGV[2])
end
return 1
