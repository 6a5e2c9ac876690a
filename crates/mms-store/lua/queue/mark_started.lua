-- Close the merge window of a request that starts; return the request as it stands (merges
-- included), or nil when it is gone.
-- KEYS: 1 queued, 2 requests
-- ARGV: 1 correlation
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return redis.call('HGET', KEYS[2], ARGV[1])
