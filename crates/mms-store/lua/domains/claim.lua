-- Claim mail domains for a tenant, all or none.
-- KEYS[1]: the domains hash (domain -> owning tenant).
-- ARGV[1]: the tenant; ARGV[2..]: the domains, lower-cased.
-- Returns {0} when every domain is now the tenant's, or {1, domain, owner} for the first domain
-- another tenant owns (and nothing is written).
local tenant = ARGV[1]
for i = 2, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= tenant then
    return {1, ARGV[i], owner}
  end
end
for i = 2, #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], tenant)
end
return {0}
