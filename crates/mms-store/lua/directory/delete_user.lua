-- directory/delete_user.lua: remove one user and the index entries that still point at it.
--
-- KEYS[1] users, KEYS[2] SIP index, KEYS[3] user-id index. ARGV[1] upn.
-- Returns 1 when the user existed, 0 otherwise.
local users, sips, ids, upn = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local old = redis.call('HGET', users, upn)
if not old then return 0 end
redis.call('HDEL', users, upn)
local prev = cjson.decode(old)
local old_sip, old_id = prev['SipAddress'], prev['UserId']
if type(old_sip) == 'string' and redis.call('HGET', sips, old_sip) == upn then
  redis.call('HDEL', sips, old_sip)
end
if type(old_id) == 'string' and redis.call('HGET', ids, old_id) == upn then
  redis.call('HDEL', ids, old_id)
end
return 1
