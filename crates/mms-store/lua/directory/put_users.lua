-- directory/put_users.lua: write a chunk of users, all or none, keeping the SIP-address and
-- user-id indexes in step.
--
-- KEYS[1] users, KEYS[2] SIP index, KEYS[3] user-id index.
-- ARGV: four per user: upn, profile JSON, SIP address ('' for none), user id.
-- First every SIP address and user id is checked against the indexes: a conflict returns
-- {field, value, owner, upn} and writes nothing. Then each user's old index entries are removed
-- only while they still point at that user, and the new ones are set. Returns {} when written.
local users, sips, ids = KEYS[1], KEYS[2], KEYS[3]
local n = #ARGV / 4
for i = 0, n - 1 do
  local upn, sip, id = ARGV[i*4+1], ARGV[i*4+3], ARGV[i*4+4]
  if sip ~= '' then
    local owner = redis.call('HGET', sips, sip)
    if owner and owner ~= upn then return {'SipAddress', sip, owner, upn} end
  end
  local owner = redis.call('HGET', ids, id)
  if owner and owner ~= upn then return {'UserId', id, owner, upn} end
end
for i = 0, n - 1 do
  local upn, json, sip, id = ARGV[i*4+1], ARGV[i*4+2], ARGV[i*4+3], ARGV[i*4+4]
  local old = redis.call('HGET', users, upn)
  if old then
    local prev = cjson.decode(old)
    local old_sip, old_id = prev['SipAddress'], prev['UserId']
    if type(old_sip) == 'string' and old_sip ~= sip and redis.call('HGET', sips, old_sip) == upn then
      redis.call('HDEL', sips, old_sip)
    end
    if type(old_id) == 'string' and old_id ~= id and redis.call('HGET', ids, old_id) == upn then
      redis.call('HDEL', ids, old_id)
    end
  end
  redis.call('HSET', users, upn, json)
  redis.call('HSET', ids, id, upn)
  if sip ~= '' then redis.call('HSET', sips, sip, upn) end
end
return {}
