local rec = record(req)
if not rec then return {'unknown'} end
local state = rec['state']
if state == 'released' then return {'released', 1} end
if state ~= 'held' then return {state} end
give_back(rec)
redis.call('ZREM', exps, req)
if tonumber(rec['exp']) <= now then
  -- due but not purged yet: it expired on its own
  redis.call('HSET', req, 'state', 'expired')
  redis.call('PEXPIRE', req, keep)
  return {'expired'}
end
redis.call('HSET', req, 'state', 'released')
redis.call('PEXPIRE', req, keep)
return {'released', 0}
