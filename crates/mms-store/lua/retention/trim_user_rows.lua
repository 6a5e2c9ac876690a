-- retention/trim_user_rows.lua: keep a user's status rows to the configured number by removing
-- the oldest final ones, each with its journal, journal counters and pre-images (issue 11.9).
--
-- KEYS[1] user's migrations index, KEYS[2] tenant's statuses index, KEYS[3] tenant summary, then
-- four per candidate, oldest first: status, journal, journal counters, pre-images.
-- ARGV[1] how many rows to remove at most, then the candidates' correlation ids (same order).
-- A candidate that is Pending or InProgress is kept (it is live), one already gone is only
-- unindexed. Idempotent: running it twice removes nothing more than once.
-- Returns how many rows were removed.
-- Needs lib/status.lua.
local wanted = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  if removed >= wanted then break end
  local base = 3 + (i - 2) * 4
  local status_key, journal_key, counts_key = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local pre_images_key = KEYS[base + 4]
  local correlation = ARGV[i]
  local row = redis.call('GET', status_key)
  local final = true
  if row then
    local ok, decoded = pcall(cjson.decode, row)
    final = ok and type(decoded) == 'table'
      and (decoded.State == 'Succeeded' or decoded.State == 'Failed')
  end
  if final then
    summary_move(KEYS[3], row, nil)
    redis.call('DEL', status_key, journal_key, counts_key, pre_images_key)
    redis.call('ZREM', KEYS[1], correlation)
    redis.call('ZREM', KEYS[2], correlation)
    removed = removed + 1
  end
end
return removed
