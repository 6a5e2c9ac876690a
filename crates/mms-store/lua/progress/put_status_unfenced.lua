-- progress/put_status_unfenced.lua: store a status row without a lease, for the queue side
-- (Pending rows, holds, cancellation), unless a live worker is running that migration.
--
-- KEYS[1] lease, KEYS[2] status, KEYS[3] tenant's statuses index, KEYS[4] user's migrations
-- index, KEYS[5] journal, KEYS[6] journal counters, KEYS[7] tenant summary, KEYS[8] the
-- migration's pre-images (kept as long as its journal).
-- ARGV[1] row JSON, ARGV[2] create time (ms), ARGV[3] correlation id, ARGV[4] journal retention
-- (ms) when the new row is final, 0 otherwise.
-- Returns 1, or 0 (nothing written) when the stored row is InProgress and the lease is held.
-- Needs lib/status.lua.
local old = redis.call('GET', KEYS[2])
if old and redis.call('EXISTS', KEYS[1]) == 1 then
  local ok, row = pcall(cjson.decode, old)
  if ok and type(row) == 'table' and row.State == 'InProgress' then return 0 end
end
status_put(KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], KEYS[7])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[5], ARGV[4])
  redis.call('PEXPIRE', KEYS[6], ARGV[4])
  redis.call('PEXPIRE', KEYS[8], ARGV[4])
end
return 1
