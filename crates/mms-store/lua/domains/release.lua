-- Release mail domains a tenant owns; a domain owned by another tenant is left alone.
-- KEYS[1]: the domains hash (domain -> owning tenant).
-- ARGV[1]: the tenant; ARGV[2..]: the domains, lower-cased.
-- Returns how many domains were released.
local released = 0
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    released = released + 1
  end
end
return released
