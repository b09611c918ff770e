for i = 1, n do
  local limit = ARGV[5 * i + 2]
  if limit == '-2' then
    redis.call('HDEL', lims, ARGV[5 * i + 1])
  else
    redis.call('HSET', lims, ARGV[5 * i + 1], limit)
  end
end
return {'ok'}
