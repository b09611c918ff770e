local state, rest = record(req)
if not state then return {'unknown'} end
if state == 'committed' then
  local f = fields(rest, 4)
  return {'committed', tonumber(f[3]), tonumber(f[4]), 1}
end
if state ~= 'held' and state ~= 'expired' then return {state} end
-- no purge of other holds here: a commit checks no limit, and every operation that does
-- (reserve, charge, usage) purges first. This request's own hold, when due, is handled
-- exactly as a purge would have: given back, and the commit is late.
local late = '1'
local f = fields(rest, 2)
if state == 'held' then
  give_back(rest)
  redis.call('ZREM', exps, req)
  if tonumber(f[2]) > now then late = '0' end
end
if amount > 0 then
  for i = 1, n do add_committed(i, amount_s, late == '1') end
end
redis.call('SET', req, 'committed\n' .. f[1] .. '\n' .. f[2] .. '\n' .. amount_s .. '\n' .. late,
           'PX', keep_s)
return {'committed', amount, tonumber(late), 0}
