-- needs: record give_back limits state
-- The record is written first, as 'held', only if the request id is new (SET NX): one call
-- where a lookup and a write would be two. A denial overwrites it below; a known id replays.
local ttl = tonumber(ARGV[3])
local exp = string.format('%d', now + ttl)
if not redis.call('SET', req, 'held\n' .. amount_s .. '\n' .. exp .. '\n'
                  .. table.concat(KEYS, '\n', 4), 'NX', 'PX',
                  string.format('%d', ttl + tonumber(keep_s))) then
  local state, rest = record(req)
  if state == 'charged' then return {'charged'} end  -- the id belongs to a charge
  if state == 'denied' then
    local f = fields(rest, 5)
    return {'denied', tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4]),
            tonumber(f[5]), 1}
  end
  local f = fields(rest, 2)
  return {'reserved', tonumber(f[1]), tonumber(f[2]), 1}
end
local lim = limits()
purge()
local expiries = {}
for i = 1, n do
  local limit = lim[i]
  local committed, held, expiry = state_of(i)
  if limit >= 0 and committed + held + amount > limit then
    redis.call('SET', req, 'denied\n' .. i .. '\n' .. string.format('%d', limit) .. '\n'
               .. string.format('%d', committed) .. '\n' .. string.format('%d', held) .. '\n'
               .. amount_s, 'PX', keep_s)
    return {'denied', i, limit, committed, held, amount, 0}
  end
  expiries[i] = expiry
end
for i = 1, n do
  local key = KEYS[3 + i]
  redis.call('HINCRBY', key, 'h', amount_s)
  -- the counters must outlive this hold and their last write by two days (ARGV expiry);
  -- 'x' remembers the expiry last set, so a busy scope refreshes it once per time slot
  local expire_s = ARGV[EXPIRE + i]
  if expiries[i] < tonumber(expire_s) then
    redis.call('HSET', key, 'x', expire_s)
    redis.call('PEXPIREAT', key, expire_s)
  end
end
redis.call('ZADD', exps, exp, req)
if not due_at or tonumber(exp) < due_at then redis.call('HSET', lims, DUE, exp) end
return {'reserved', amount, tonumber(exp), 0}
