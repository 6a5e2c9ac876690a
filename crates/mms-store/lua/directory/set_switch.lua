-- directory/set_switch.lua: set one switch of a tenant's settings, leaving the other as stored
-- whatever a concurrent writer did to it.
--
-- KEYS[1] settings. ARGV[1] the settings field, ARGV[2] '1' (on) or '0' (off).
-- Returns the new settings JSON, or false when the tenant does not exist.
local text = redis.call('GET', KEYS[1])
if not text then return false end
local settings = cjson.decode(text)
settings[ARGV[1]] = (ARGV[2] == '1')
local updated = cjson.encode(settings)
redis.call('SET', KEYS[1], updated)
return updated
