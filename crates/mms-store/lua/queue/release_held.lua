-- Bring forward the users' requests held in the delayed set (a fan-out job holds what it queues
-- until its directory change is saved): each one due later than ARGV[1] becomes due then.
-- KEYS: 1 delayed, 2.. each user's queued key
-- ARGV: 1 due ms
-- Returns how many were brought forward.
local due = tonumber(ARGV[1])
local released = 0
for i = 2, #KEYS do
  local correlation = redis.call('GET', KEYS[i])
  if correlation then
    local score = redis.call('ZSCORE', KEYS[1], correlation)
    if score and tonumber(score) > due then
      redis.call('ZADD', KEYS[1], 'XX', due, correlation)
      released = released + 1
    end
  end
end
return released
