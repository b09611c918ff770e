for i = 1, n do
  local limit = slim[i]
  if limit == -2 then
    redis.call('HDEL', lims, sk[i])
  else
    redis.call('HSET', lims, sk[i], limit)
  end
end
return {'ok'}
