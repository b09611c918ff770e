for i = 1, n do
  local limit = tonumber(scope_arg(i, 2))
  if limit == -2 then
    redis.call('HDEL', lims, scope_arg(i, 1))
  else
    redis.call('HSET', lims, scope_arg(i, 1), limit)
  end
end
return {'ok'}
