-- Ack a delivery and park its request in the delayed set until a due time, in one step, so the
-- request is always either pending on the stream or delayed (nothing lost). A stored (possibly
-- merged) request is kept over the delivery's copy.
-- KEYS: 1 stream, 2 requests, 3 delayed
-- ARGV: 1 group, 2 stream id, 3 correlation, 4 request, 5 due ms
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
return 1
