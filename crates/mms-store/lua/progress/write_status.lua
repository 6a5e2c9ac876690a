-- progress/write_status.lua: store a migration's status row under the mailbox lease (D4, M2).
--
-- KEYS[1] lease, KEYS[2] status, KEYS[3] tenant's statuses index, KEYS[4] user's migrations
-- index, KEYS[5] journal, KEYS[6] journal counters, KEYS[7] tenant summary, KEYS[8] the
-- migration's pre-images (kept as long as its journal).
-- ARGV[1] lease value, ARGV[2] row JSON, ARGV[3] create time (ms), ARGV[4] correlation id,
-- ARGV[5] journal retention (ms) once final, 0 while the migration still runs.
-- Returns 1, or 0 (nothing written) when the lease is no longer the caller's.
-- Needs lib/fence.lua, lib/status.lua.
if not fence_ok(KEYS[1], ARGV[1]) then return 0 end
status_put(KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4], KEYS[7])
if tonumber(ARGV[5]) > 0 then
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
  redis.call('PEXPIRE', KEYS[6], ARGV[5])
  redis.call('PEXPIRE', KEYS[8], ARGV[5])
end
return 1
