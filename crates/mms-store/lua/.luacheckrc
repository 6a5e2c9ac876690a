-- luacheck configuration of the store's Redis scripts (`make lint`).
--
-- Scripts run inside Redis's Lua 5.1 with the Redis API as globals. Each script file is prepended
-- with the shared parts under lib/ before it is loaded (see the Rust side's `concat!`), so the
-- shared functions are globals as far as a script file alone is concerned, and unused locals
-- in lib/ (a script uses only some of them) are expected.
std = "lua51"
read_globals = { "redis", "KEYS", "ARGV", "cjson", "cmsgpack", "bit", "struct" }
max_line_length = 110

-- Functions of lib/*.lua that scripts call.
local lib = { "fence_ok", "status_put", "status_replace", "summary_move", "history_append",
              "journal_write", "journal_counts_ensure", "journal_stage", "summary_field", "summary_key_beside" }

files["**/lib/*.lua"] = { unused = false }
files["**/progress/*.lua"] = { read_globals = lib }
files["**/lease/*.lua"] = { read_globals = lib }
files["**/history/*.lua"] = { read_globals = lib }
files["**/directory/*.lua"] = { read_globals = lib }
files["**/retention/*.lua"] = { read_globals = lib }
files["**/queue/*.lua"] = { read_globals = lib }
