-- A migration reached its final state: drop its stream entry and its stored request.
-- KEYS: 1 stream, 2 queued, 3 requests
-- ARGV: 1 group, 2 stream id, 3 correlation
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
