-- history/append.lua: append one event to a user's transaction history, capped.
--
-- KEYS[1] history. ARGV[1] event JSON, ARGV[2] events kept.
-- Needs lib/history.lua.
history_append(KEYS[1], ARGV[1], ARGV[2])
return 1
