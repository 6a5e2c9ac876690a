-- Create a user's queued request (P1), with its Pending status row and history event.
-- Needs the status_put and history_append fragments prepended (see queue/scripts.rs).
-- KEYS: 1 queued, 2 requests, 3 status, 4 statuses, 5 user migrations, 6 stream, 7 delayed,
--       8 history
-- ARGV: 1 correlation, 2 request, 3 status json, 4 create ms, 5 delay ms, 6 due ms,
--       7 history json
-- Returns 0 when the user already has a live queued request (the caller merges instead), 1 when
-- created.
local queued = redis.call('GET', KEYS[1])
if queued and redis.call('HEXISTS', KEYS[2], queued) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
status_put(KEYS[3], KEYS[4], KEYS[5], ARGV[3], ARGV[4], ARGV[1])
if ARGV[5] == '0' then
  redis.call('XADD', KEYS[6], '*', 'cid', ARGV[1], 'req', ARGV[2])
else
  redis.call('ZADD', KEYS[7], ARGV[6], ARGV[1])
end
history_append(KEYS[8], ARGV[7])
return 1
