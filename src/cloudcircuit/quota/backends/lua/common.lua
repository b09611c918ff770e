-- Shared prelude of every cloudcircuit quota script (prepended to each one at load time).
-- KEYS[1] request record (hash), KEYS[2] hold expiries (zset), KEYS[3] stored limits (hash),
-- then per scope i: KEYS[3 + i], the scope's window hash: field 'h' = held amount, numeric
-- fields = committed amount per window bucket.
-- ARGV: prefix, now_ms, amount, ttl_ms, keep_ms, then five per scope: scope key, limit, first
-- bucket, current bucket, expire at (ms).
-- Every key shares the chain's hash tag, so on Redis Cluster the script runs in one slot.
local now = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
local req, exps, lims = KEYS[1], KEYS[2], KEYS[3]
local sk, slim, slo, shi, sexp = {}, {}, {}, {}, {}
local n = (#ARGV - 5) / 5
for i = 1, n do
  local b = 5 * i
  sk[i], slim[i], slo[i], shi[i], sexp[i] =
    ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), ARGV[b + 4], ARGV[b + 5]
end

local function record(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local rec = {}
  for i = 1, #flat, 2 do rec[flat[i]] = flat[i + 1] end
  return rec
end

local function give_back(rec)
  local amt = tonumber(rec['amount'])
  for s in string.gmatch(rec['scopes'], '[^\n]+') do
    redis.call('HINCRBY', s, 'h', -amt)
  end
end

-- give back the holds of reservations whose TTL has passed (a bounded batch per call)
local function purge()
  local due = redis.call('ZRANGEBYSCORE', exps, '-inf', now, 'LIMIT', 0, 100)
  if #due == 0 then return false end
  for _, q in ipairs(due) do
    local rec = record(q)
    if rec and rec['state'] == 'held' then
      give_back(rec)
      redis.call('HSET', q, 'state', 'expired')
    end
    redis.call('ZREM', exps, q)
  end
  return true
end

-- limits in force, stored (admin) first, else the configured one; one HMGET for the chain
local function limits()
  local stored = redis.call('HMGET', lims, unpack(sk))
  local result = {}
  for i = 1, n do
    if stored[i] then result[i] = tonumber(stored[i]) else result[i] = slim[i] end
  end
  return result
end

-- (committed over buckets lo..hi, held) of scope i; buckets older than lo are dropped
local function state_of(i)
  local key = KEYS[3 + i]
  local flat = redis.call('HGETALL', key)
  local total, held = 0, 0
  for j = 1, #flat, 2 do
    local f = flat[j]
    if f == 'h' then
      held = tonumber(flat[j + 1])
    else
      local b = tonumber(f)
      if b < slo[i] then
        redis.call('HDEL', key, f)
      elseif b <= tonumber(shi[i]) then
        total = total + tonumber(flat[j + 1])
      end
    end
  end
  return total, held
end

-- refresh: false when the key's expiry is already far enough (a timely commit: its reserve
-- set it at least two days ahead, a hold lives at most one day) unless this write opened a
-- new bucket (a window boundary was crossed since the reserve)
local function add_committed(i, delta, refresh)
  local total = redis.call('HINCRBY', KEYS[3 + i], shi[i], delta)
  if refresh or total == delta then redis.call('PEXPIREAT', KEYS[3 + i], sexp[i]) end
end
