-- needs: record give_back
local state, rest = record(req)
if not state then return {'unknown'} end
if state == 'released' then return {'released', 1} end
if state ~= 'held' then return {state} end
local _, exp_s = give_back(rest)
redis.call('ZREM', exps, req)
if tonumber(exp_s) <= now then
  -- due but not purged yet: it expired on its own
  redis.call('SET', req, 'expired\n' .. rest, 'PX', keep_s)
  return {'expired'}
end
redis.call('SET', req, 'released\n' .. rest, 'PX', keep_s)
return {'released', 0}
