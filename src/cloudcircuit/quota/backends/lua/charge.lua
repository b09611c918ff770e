-- needs: record give_back limits state committed
local state, rest = record(req)
if state then
  if state ~= 'charged' then return {state} end
  local f = fields(rest, 2)
  return {'charged', tonumber(f[1]), 1, f[2]}
end
local lim = limits()
purge()
local over = {}
for i = 1, n do
  if amount > 0 then add_committed(i, amount_s, true) end
  local limit = lim[i]
  local committed, held = state_of(i)
  local used = committed + held
  if limit >= 0 and used > limit then over[i] = '1' else over[i] = '0' end
end
local flags = table.concat(over, '')
redis.call('SET', req, 'charged\n' .. amount_s .. '\n' .. flags, 'PX', keep_s)
return {'charged', amount, 0, flags}
