-- Create a job (Running, cursor 0, every counter 0) and list it in the tenant's job index.
-- KEYS: 1 job hash, 2 tenant's job index
-- ARGV: 1 job id, 2 spec json, 3 create ms
-- Returns 1 when created, 0 when a job with that id exists already.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'spec', ARGV[2], 'state', 'Running',
  'created_ms', ARGV[3], 'cursor', 0, 'total', 0, 'queued', 0, 'merged', 0,
  'skipped', 0, 'refused', 0)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
