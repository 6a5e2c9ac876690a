-- lib/journal.lua: one meeting's journal entry, and the migration's per-stage counters (D5).
--
-- The counters hash of a migration counts its journal entries by stage. A write reads the
-- meeting's previous entry first and moves the count from the old stage to the new one, so a
-- repeated write, a resumed migration or a retried page never counts a meeting twice.

-- The stage of a stored entry (its JSON `Stage`), nil for none or one that does not decode.
local function journal_stage(json)
  if not json then return nil end
  local ok, entry = pcall(cjson.decode, json)
  if not ok or type(entry) ~= 'table' or type(entry.Stage) ~= 'string' then return nil end
  return entry.Stage
end

-- Counters for a journal written before they existed (a migration resumed across an upgrade):
-- count what the journal holds, once, so that later moves start from the truth.
local function journal_counts_ensure(journal_key, counts_key)
  if redis.call('EXISTS', counts_key) == 1 then return end
  local all = redis.call('HGETALL', journal_key)
  for i = 2, #all, 2 do
    local stage = journal_stage(all[i])
    if stage then redis.call('HINCRBY', counts_key, stage, 1) end
  end
end

-- Store `json` (whose stage is `stage`) as the entry of `meeting_key`, counters moved.
local function journal_write(journal_key, counts_key, meeting_key, json, stage)
  local old = journal_stage(redis.call('HGET', journal_key, meeting_key))
  if old ~= stage then
    if old then redis.call('HINCRBY', counts_key, old, -1) end
    redis.call('HINCRBY', counts_key, stage, 1)
  end
  redis.call('HSET', journal_key, meeting_key, json)
end
