-- Shared prelude of every cloudcircuit quota script (prepended to each one at load time).
-- KEYS[1] request record (a string), KEYS[2] hold expiries (zset), KEYS[3] stored limits
-- (hash), then per scope i: KEYS[3 + i], the scope's window hash: field 'h' = held amount,
-- 'x' = the key expiry last set by a reserve, numeric fields = committed per window bucket.
-- ARGV: prefix, now_ms, amount, ttl_ms, keep_ms, then five groups of n (one per scope, so
-- group g of scope i is ARGV[5 + g * n + i]): scope keys, limits, first buckets, current
-- buckets, expire at (ms). Grouped so that the scope keys can be unpacked in place.
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
local now_s, amount_s, keep_s = ARGV[2], ARGV[3], ARGV[5]
local now = tonumber(now_s)
local amount = tonumber(amount_s)
local req, exps, lims = KEYS[1], KEYS[2], KEYS[3]
local n = (#ARGV - 5) / 5
local LIMIT, LO, HI, EXPIRE = 5 + n, 5 + 2 * n, 5 + 3 * n, 5 + 4 * n

-- a record an older version wrote as a hash (live across an upgrade), in today's form
local function legacy(key)
  local h = {}
  local flat = redis.call('HGETALL', key)
  for j = 1, #flat, 2 do h[flat[j]] = flat[j + 1] end
  local s = h['state']
  if s == 'denied' then
    return table.concat({s, h['idx'], h['limit'], h['committed'], h['held'], h['amount']}, '\n')
  elseif s == 'charged' then
    return table.concat({s, h['amount'], h['over']}, '\n')
  elseif s == 'committed' then
    return table.concat({s, h['amount'], h['exp'], h['actual'], h['late']}, '\n')
  end
  return table.concat({s, h['amount'], h['exp'], h['scopes']}, '\n')
end

-- the record's state and the rest of it, or nil
local function record(key)
  local value = redis.pcall('GET', key)
  if type(value) == 'table' then value = legacy(key) end  -- WRONGTYPE: an older hash record
  if not value then return nil end
  local cut = string.find(value, '\n', 1, true)
  if not cut then return value, '' end
  return string.sub(value, 1, cut - 1), string.sub(value, cut + 1)
end

-- the first k fields of a record's rest
local function fields(rest, k)
  local out = {}
  for f in string.gmatch(rest, '[^\n]+') do
    out[#out + 1] = f
    if #out == k then break end
  end
  return out
end

-- give back the hold of a 'held' record's rest (amount, expiry, scope keys)
local function give_back(rest)
  local i, amt = 0, nil
  for f in string.gmatch(rest, '[^\n]+') do
    i = i + 1
    if i == 1 then
      amt = '-' .. f
    elseif i > 2 then
      redis.call('HINCRBY', f, 'h', amt)
    end
  end
end

-- Purge marker: field DUE of the limits hash (no scope key holds a newline) is a time at or
-- before every hold's expiry in the zset (absent: unknown). limits() reads it with the
-- limits; purge() skips the zset while it lies ahead, and a reserve lowers it when it adds
-- an earlier expiry. So an operation looks at the zset about once per hold TTL, not always.
local DUE = '\n~due'
local due_at = nil

-- limits in force, stored (admin) first, else the configured one, and the purge marker: one
-- HMGET for the chain
local function limits()
  local stored = redis.call('HMGET', lims, DUE, unpack(ARGV, 6, 5 + n))
  due_at = tonumber(stored[1])
  local result = {}
  for i = 1, n do result[i] = tonumber(stored[i + 1] or ARGV[LIMIT + i]) end
  return result
end

-- give back the holds of reservations whose TTL has passed (a bounded batch per call);
-- call limits() first (it reads the marker)
local function purge()
  if due_at and due_at > now then return false end
  local due = redis.call('ZRANGEBYSCORE', exps, '-inf', now_s, 'LIMIT', '0', '100')
  for _, q in ipairs(due) do
    local state, rest = record(q)
    if state == 'held' then
      give_back(rest)
      redis.call('SET', q, 'expired\n' .. rest, 'KEEPTTL')
    end
    redis.call('ZREM', exps, q)
  end
  local first = redis.call('ZRANGE', exps, '0', '0', 'WITHSCORES')
  if first[2] then
    due_at = tonumber(first[2])
    redis.call('HSET', lims, DUE, first[2])
  else
    due_at = nil
    redis.call('HDEL', lims, DUE)
  end
  return #due > 0
end

-- drop the buckets of scope i older than its window (when a new bucket opens)
local function drop_old(i)
  local key = KEYS[3 + i]
  local lo = tonumber(ARGV[LO + i])
  local old = {}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local b = tonumber(f)
    if b and b < lo then old[#old + 1] = f end
  end
  if #old > 0 then redis.call('HDEL', key, unpack(old)) end
end

-- (committed over buckets lo..hi, held, key expiry set by a reserve) of scope i. A calendar
-- window has one bucket: three fields are read (its older buckets are dropped when a new one
-- opens); a rolling window reads all its buckets and drops those older than its first.
local function state_of(i)
  local key = KEYS[3 + i]
  local lo_s, hi_s = ARGV[LO + i], ARGV[HI + i]
  if lo_s == hi_s then
    local v = redis.call('HMGET', key, 'h', 'x', hi_s)
    return tonumber(v[3] or 0), tonumber(v[1] or 0), tonumber(v[2] or 0)
  end
  local flat = redis.call('HGETALL', key)
  local lo, hi = tonumber(lo_s), tonumber(hi_s)
  local total, held, expiry = 0, 0, 0
  local old = {}
  for j = 1, #flat, 2 do
    local f = flat[j]
    if f == 'h' then
      held = tonumber(flat[j + 1])
    elseif f == 'x' then
      expiry = tonumber(flat[j + 1])
    else
      local b = tonumber(f)
      if b < lo then
        old[#old + 1] = f
      elseif b <= hi then
        total = total + tonumber(flat[j + 1])
      end
    end
  end
  if #old > 0 then redis.call('HDEL', key, unpack(old)) end
  return total, held, expiry
end

-- refresh: false when the key's expiry is already far enough (a timely commit: its reserve
-- set it at least two days ahead, a hold lives at most one day) unless this write opened a
-- new bucket (a window boundary was crossed since the reserve; older buckets go then)
local function add_committed(i, delta_s, refresh)
  local key = KEYS[3 + i]
  local total = redis.call('HINCRBY', key, ARGV[HI + i], delta_s)
  local opened = total == tonumber(delta_s)
  if opened then drop_old(i) end
  if refresh or opened then
    redis.call('PEXPIREAT', key, ARGV[EXPIRE + i])
  end
end
