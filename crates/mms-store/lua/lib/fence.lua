-- lib/fence.lua: the fence check every lease-guarded write starts with (D4).
--
-- fence_ok(lease_key, value) is true when the lease key still holds exactly `value`
-- (`<token>:<owner>`). Comparing the owner too keeps a stale holder out even if the token
-- counter were ever rolled back (Redis restored from an old snapshot). A script that gets false
-- must return before it writes anything, so that a stale worker changes nothing.
--
-- Prepended (Rust `concat!`) to the scripts that need it; a local, because Redis forbids
-- scripts to define globals.
local function fence_ok(lease_key, value)
  return redis.call('GET', lease_key) == value
end
