-- needs:
for i = 1, n do
  local limit = ARGV[LIMIT + i]
  if limit == '-2' then
    redis.call('HDEL', lims, ARGV[SCOPE + i])
  else
    redis.call('HSET', lims, ARGV[SCOPE + i], limit)
  end
end
return {'ok'}
