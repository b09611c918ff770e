local prev = record(req)
if prev then
  if prev['state'] == 'denied' then
    return {'denied', tonumber(prev['idx']), tonumber(prev['limit']),
            tonumber(prev['committed']), tonumber(prev['held']), tonumber(prev['amount']), 1}
  end
  return {'reserved', tonumber(prev['amount']), tonumber(prev['exp']), 1}
end
purge()
local scopes = {}
for i = 1, n do
  local limit = limit_of(i)
  local committed = window_sum(i)
  local held = held_of(i)
  if limit >= 0 and committed + held + amount > limit then
    redis.call('HSET', req, 'state', 'denied', 'idx', i, 'limit', limit,
               'committed', committed, 'held', held, 'amount', amount)
    redis.call('PEXPIRE', req, keep)
    return {'denied', i, limit, committed, held, amount, 0}
  end
  scopes[i] = scope_arg(i, 1)
end
for i = 1, n do
  redis.call('INCRBY', KEYS[2 + 2 * i], amount)
end
local exp = now + ttl
redis.call('HSET', req, 'state', 'held', 'amount', amount, 'exp', exp,
           'scopes', table.concat(scopes, '\n'))
redis.call('PEXPIRE', req, ttl + keep)
redis.call('ZADD', exps, exp, req)
return {'reserved', amount, exp, 0}
