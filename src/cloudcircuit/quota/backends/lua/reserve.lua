local prev = record(req)
if prev then
  if prev['state'] == 'denied' then
    return {'denied', tonumber(prev['idx']), tonumber(prev['limit']),
            tonumber(prev['committed']), tonumber(prev['held']), tonumber(prev['amount']), 1}
  end
  return {'reserved', tonumber(prev['amount']), tonumber(prev['exp']), 1}
end
purge()
local lim = limits()
local scopes = {}
for i = 1, n do
  local limit = lim[i]
  local committed, held = state_of(i)
  if limit >= 0 and committed + held + amount > limit then
    redis.call('HSET', req, 'state', 'denied', 'idx', i, 'limit', limit,
               'committed', committed, 'held', held, 'amount', amount)
    redis.call('PEXPIRE', req, keep)
    return {'denied', i, limit, committed, held, amount, 0}
  end
  scopes[i] = KEYS[3 + i]
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[3 + i], 'h', amount)
  redis.call('PEXPIREAT', KEYS[3 + i], sexp[i])
end
local exp = now + ttl
redis.call('HSET', req, 'state', 'held', 'amount', amount, 'exp', exp,
           'scopes', table.concat(scopes, '\n'))
redis.call('PEXPIRE', req, ttl + keep)
redis.call('ZADD', exps, exp, req)
return {'reserved', amount, exp, 0}
