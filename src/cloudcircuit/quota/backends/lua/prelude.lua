-- Prelude of every cloudcircuit quota script; the script's "-- needs:" line names the library
-- parts (lib_*.lua) put between this prelude and its body, so a call defines only what it uses.
--
-- KEYS[1] request record (a string), KEYS[2] hold expiries (zset), KEYS[3] stored limits
-- (hash), then per scope i: KEYS[3 + i], the scope's window hash: field 'h' = held amount,
-- 'x' = the key expiry last set by a reserve, numeric fields = committed per window bucket.
-- ARGV: now_ms, amount, ttl_ms, keep_ms, then groups of n (one per scope, so group g of scope
-- i is ARGV[4 + g * n + i]): current buckets, first buckets, expire at (ms), scope keys,
-- configured limits. A commit gets the first three groups, a release none (each operation
-- is sent only what it reads).
-- Every key shares the chain's hash tag, so on Redis Cluster the script runs in one slot.
--
-- Cost matters here (this runs on every request): each redis.call costs about a microsecond,
-- and so does turning a Lua number back into a string, so values that Redis only stores are
-- passed on as the ARGV strings they arrived as, and per-scope arguments are read in place.
--
-- A request record is one string, '\n'-separated (entities and scope keys hold no
-- whitespace), written with one SET ... PX:
--   held|expired|released: state, amount, expiry ms, scope key 1, scope key 2, ...
--   committed:             state, amount, expiry ms, actual, late
--   denied:                state, scope index, limit, committed, held, amount
--   charged:               state, amount, over flags
local now_s, amount_s, keep_s = ARGV[1], ARGV[2], ARGV[4]
local now = tonumber(now_s)
local amount = tonumber(amount_s)
local req, exps, lims = KEYS[1], KEYS[2], KEYS[3]
local n = #KEYS - 3
local HI, LO, EXPIRE, SCOPE, LIMIT = 4, 4 + n, 4 + 2 * n, 4 + 3 * n, 4 + 4 * n
