-- lib/status.lua: storing a status row, and the tenant's summary counters (M1) that move with it.
--
-- The summary hash of a tenant counts its status rows by '<State>|<MigrationType>'. Every script
-- that stores or removes a row goes through these functions, in the same atomic step as the row,
-- so the counters never disagree with the rows and a summary costs the same for 10 users and for
-- 1,000,000 (Store::tenant_summary reads only the hash).

-- The counter a stored row counts under, or nil for no row (GET's false) or a row that does not
-- decode (it was never counted either).
local function summary_field(json)
  if not json then return nil end
  local ok, row = pcall(cjson.decode, json)
  if not ok or type(row) ~= 'table' then return nil end
  if type(row.State) ~= 'string' or type(row.MigrationType) ~= 'string' then return nil end
  return row.State .. '|' .. row.MigrationType
end

-- Move one count from the counter of `old_json` to that of `new_json` (either may be nil: a row
-- created, a row removed). A counter that reaches zero is removed, to keep the hash small, and
-- none goes below zero: a row stored before the counters existed was never counted, so its first
-- move only adds (Store::rebuild_tenant_summary counts such rows at an upgrade).
local function summary_move(summary_key, old_json, new_json)
  local from, to = summary_field(old_json), summary_field(new_json)
  if from == to then return end
  if from then
    local n = tonumber(redis.call('HGET', summary_key, from)) or 0
    if n > 1 then
      redis.call('HINCRBY', summary_key, from, -1)
    elseif n == 1 then
      redis.call('HDEL', summary_key, from)
    end
  end
  if to then redis.call('HINCRBY', summary_key, to, 1) end
end

-- The summary key of the tenant a status key belongs to: `{ns:tenant}:status:<id>` gives
-- `{ns:tenant}:summary` (same hash tag, so the same Redis Cluster slot). Only for callers written
-- before the summary existed; new scripts pass the summary key in KEYS.
local function summary_key_beside(status_key)
  local tag = string.match(status_key, '^(.*}):status:')
  if not tag then error('not a status key: ' .. status_key) end
  return tag .. ':summary'
end

-- Store a row (replacing any), index it by creation time in the tenant's and the user's sorted
-- sets, and move the summary counters from the old row to the new one. Idempotent.
local function status_put(status_key, statuses_key, user_key, json, create_ms, correlation, summary_key)
  summary_key = summary_key or summary_key_beside(status_key)
  summary_move(summary_key, redis.call('GET', status_key), json)
  redis.call('SET', status_key, json)
  redis.call('ZADD', statuses_key, create_ms, correlation)
  redis.call('ZADD', user_key, create_ms, correlation)
end

-- Replace a row that is already indexed (a merge changing its types), counters included.
local function status_replace(status_key, json, summary_key)
  summary_key = summary_key or summary_key_beside(status_key)
  summary_move(summary_key, redis.call('GET', status_key), json)
  redis.call('SET', status_key, json)
end
