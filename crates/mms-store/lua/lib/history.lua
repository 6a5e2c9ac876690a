-- lib/history.lua: appending to a user's transaction history in the same atomic step as the
-- change it records (the queue's Queued and Merged events, Store::append_history).

-- The cap for a caller that passes none. Keep equal to RetentionConfig's default
-- `history_events` (a Rust test compares them).
local HISTORY_CAP_DEFAULT = 1000

-- Push one event (JSON) and keep only the newest `cap` events.
local function history_append(key, json, cap)
  redis.call('RPUSH', key, json)
  redis.call('LTRIM', key, -(tonumber(cap) or HISTORY_CAP_DEFAULT), -1)
end
