-- Move an undecodable stream entry to the tenant's capped dead-letter list.
-- KEYS: 1 stream, 2 dead letters
-- ARGV: 1 group, 2 stream id, 3 record json, 4 cap
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
return 1
