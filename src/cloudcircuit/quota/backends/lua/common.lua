-- Shared prelude of every cloudcircuit quota script (prepended to each one at load time).
-- KEYS[1] request record (hash), KEYS[2] hold expiries (zset), KEYS[3] stored limits (hash),
-- then per scope i: KEYS[2 + 2i] held counter (string), KEYS[3 + 2i] committed buckets (hash).
-- ARGV: prefix, now_ms, amount, ttl_ms, keep_ms, n, then per scope: key, limit, lo, hi, expire.
-- Every key shares the chain's hash tag, so on Redis Cluster the script runs in one slot.
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
local n = tonumber(ARGV[6])
local req, exps, lims = KEYS[1], KEYS[2], KEYS[3]

local function scope_arg(i, j)
  return ARGV[6 + (i - 1) * 5 + j]
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
    redis.call('DECRBY', prefix .. 'h:' .. s, amt)
  end
end

-- give back the holds of reservations whose TTL has passed (a bounded batch per call)
local function purge()
  local due = redis.call('ZRANGEBYSCORE', exps, '-inf', now, 'LIMIT', 0, 100)
  for _, q in ipairs(due) do
    local rec = record(q)
    if rec and rec['state'] == 'held' then
      give_back(rec)
      redis.call('HSET', q, 'state', 'expired')
    end
    redis.call('ZREM', exps, q)
  end
end

local function limit_of(i)
  local stored = redis.call('HGET', lims, scope_arg(i, 1))
  if stored then return tonumber(stored) end
  return tonumber(scope_arg(i, 2))
end

-- committed amount over buckets lo..hi; buckets older than lo are dropped
local function window_sum(i)
  local key = KEYS[3 + 2 * i]
  local lo, hi = tonumber(scope_arg(i, 3)), tonumber(scope_arg(i, 4))
  local flat = redis.call('HGETALL', key)
  local total = 0
  for j = 1, #flat, 2 do
    local b = tonumber(flat[j])
    if b < lo then
      redis.call('HDEL', key, flat[j])
    elseif b <= hi then
      total = total + tonumber(flat[j + 1])
    end
  end
  return total
end

local function held_of(i)
  return tonumber(redis.call('GET', KEYS[2 + 2 * i]) or '0')
end

local function add_committed(i, delta)
  local key = KEYS[3 + 2 * i]
  redis.call('HINCRBY', key, scope_arg(i, 4), delta)
  redis.call('PEXPIREAT', key, scope_arg(i, 5))
end
