local prev = record(req)
if prev then
  if prev['state'] ~= 'charged' then return {prev['state']} end
  return {'charged', tonumber(prev['amount']), 1, prev['over']}
end
purge()
local lim = limits()
local over = {}
for i = 1, n do
  if amount > 0 then add_committed(i, amount, true) end
  local limit = lim[i]
  local committed, held = state_of(i)
  local used = committed + held
  if limit >= 0 and used > limit then over[i] = '1' else over[i] = '0' end
end
local flags = table.concat(over, '')
redis.call('HSET', req, 'state', 'charged', 'amount', amount, 'over', flags)
redis.call('PEXPIRE', req, keep)
return {'charged', amount, 0, flags}
