-- needs: record give_back committed
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
local est_s, exp_s
if state == 'held' then
  est_s, exp_s = give_back(rest)
  redis.call('ZREM', exps, req)
  if tonumber(exp_s) > now then late = '0' end
else
  est_s, exp_s = string.match(rest, '^([^\n]*)\n([^\n]*)')
end
if amount > 0 then
  for i = 1, n do add_committed(i, amount_s, late == '1') end
end
redis.call('SET', req, 'committed\n' .. est_s .. '\n' .. exp_s .. '\n' .. amount_s .. '\n' .. late,
           'PX', keep_s)
return {'committed', amount, tonumber(late), 0}
