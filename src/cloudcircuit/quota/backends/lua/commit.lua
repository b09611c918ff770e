local rec = record(req)
if not rec then return {'unknown'} end
local state = rec['state']
if state == 'committed' then
  return {'committed', tonumber(rec['actual']), tonumber(rec['late']), 1}
end
if state ~= 'held' and state ~= 'expired' then return {state} end
if purge() then state = redis.call('HGET', req, 'state') end
local late = 1
if state == 'held' then
  give_back(rec)
  redis.call('ZREM', exps, req)
  if tonumber(rec['exp']) > now then late = 0 end
end
if amount > 0 then
  for i = 1, n do add_committed(i, amount, late == 1) end
end
redis.call('HSET', req, 'state', 'committed', 'actual', amount, 'late', late)
redis.call('PEXPIRE', req, keep)
return {'committed', amount, late, 0}
