-- Compare-and-set of a queued request and its status row (the P1 merge).
-- Needs the history_append fragment prepended.
-- KEYS: 1 queued, 2 requests, 3 status, 4 history
-- ARGV: 1 correlation, 2 old request, 3 merged request, 4 old status ('' = none),
--       5 new status ('' = none), 6 history json
-- Returns 0 when anything changed since the caller read it, 1 when merged.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if (redis.call('GET', KEYS[3]) or '') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5]) end
history_append(KEYS[4], ARGV[6])
return 1
