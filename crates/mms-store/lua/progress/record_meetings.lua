-- progress/record_meetings.lua: journal a page of meetings under the mailbox lease, in one step
-- (D4, D5; issue 11.4): each meeting's entry with its stage counters, its pending update (set,
-- cleared or kept), the Message-IDs SMTP accepted for it (the sent ledger) and what the
-- migration replaced in it (its pre-image, for an undo; issue 9.2).
--
-- KEYS[1] lease, KEYS[2] journal, KEYS[3] journal counters, KEYS[4] user's pending updates,
-- KEYS[5] user's sent ledger, KEYS[6] the migration's pre-images.
-- ARGV[1] lease value, ARGV[2] now (ms), ARGV[3] sent-ledger retention (ms), then seven per
-- meeting: key, entry JSON, stage, pending change ('keep' | 'set' | 'clear'), pending update JSON
-- (for 'set', else ''), accepted Message-IDs (a JSON array, or '' for none), pre-image JSON (or
-- '' to leave the stored one).
-- Returns 1, or 0 (nothing written) when the lease is no longer the caller's.
-- Needs lib/fence.lua, lib/journal.lua.
local HEAD, STRIDE = 3, 7
if (#ARGV - HEAD) % STRIDE ~= 0 then
  return redis.error_reply('record_meetings: ARGV after the first 3 must come in groups of 7')
end
if not fence_ok(KEYS[1], ARGV[1]) then return 0 end
journal_counts_ensure(KEYS[2], KEYS[3])
local ledger_touched = false
for i = HEAD + 1, #ARGV, STRIDE do
  local key, json, stage = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local pending, pending_json, sent = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local pre_image = ARGV[i + 6]
  if pre_image ~= '' then redis.call('HSET', KEYS[6], key, pre_image) end
  journal_write(KEYS[2], KEYS[3], key, json, stage)
  if pending == 'set' then
    redis.call('HSET', KEYS[4], key, pending_json)
  elseif pending == 'clear' then
    redis.call('HDEL', KEYS[4], key)
  end
  if sent ~= '' then
    for _, message_id in ipairs(cjson.decode(sent)) do
      redis.call('HSET', KEYS[5], message_id, ARGV[2])
      ledger_touched = true
    end
  end
end
if ledger_touched then redis.call('PEXPIRE', KEYS[5], ARGV[3]) end
return 1
