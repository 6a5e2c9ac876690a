-- Move a tenant's due delayed requests onto its stream and report what work the tenant has left,
-- so the caller can keep the index of tenants with work (and know when to look again).
-- KEYS: 1 delayed, 2 requests, 3 stream
-- ARGV: 1 now ms, 2 batch
-- Returns {due seen, moved, stream length, delayed left, next due ms (-1: none)}. A due id whose
-- request is gone (cancelled) is dropped from the set. Acked entries are deleted from the stream,
-- so stream length 0 also means nothing is pending.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local moved = 0
for _, cid in ipairs(due) do
  local req = redis.call('HGET', KEYS[2], cid)
  if req then
    redis.call('XADD', KEYS[3], '*', 'cid', cid, 'req', req)
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], cid)
end
local next_due = -1
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[2] then next_due = tonumber(first[2]) end
return {#due, moved, redis.call('XLEN', KEYS[3]), redis.call('ZCARD', KEYS[1]), next_due}
