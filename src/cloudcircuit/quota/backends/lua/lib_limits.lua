-- Purge marker: field DUE of the limits hash (no scope key holds a newline) is a time at or
-- before every hold's expiry in the zset (absent: unknown). limits() reads it with the
-- limits; purge() skips the zset while it lies ahead, and a reserve lowers it when it adds
-- an earlier expiry. So an operation looks at the zset about once per hold TTL, not always.
local DUE = '\n~due'
local due_at = nil

-- limits in force, stored (admin) first, else the configured one, and the purge marker: one
-- HMGET for the chain
local function limits()
  local stored = redis.call('HMGET', lims, DUE, unpack(ARGV, SCOPE + 1, SCOPE + n))
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
