-- directory/install_operator.lua: make one token the only operator token, in one step (rotation
-- is: change the configured token, restart).
--
-- KEYS[1] tokens. ARGV[1] the token's hash, ARGV[2] its role JSON.
-- Returns how many other operator entries were removed.
local all = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #all, 2 do
  local hash, role = all[i], all[i + 1]
  local ok, decoded = pcall(cjson.decode, role)
  if hash ~= ARGV[1] and ok and type(decoded) == 'table' and decoded['Role'] == 'Operator' then
    redis.call('HDEL', KEYS[1], hash)
    removed = removed + 1
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return removed
