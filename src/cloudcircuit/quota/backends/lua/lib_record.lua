-- a record an older version wrote as a hash (live across an upgrade), in today's form
local function legacy(key)
  local h = {}
  local flat = redis.call('HGETALL', key)
  for j = 1, #flat, 2 do h[flat[j]] = flat[j + 1] end
  local s = h['state']
  if s == 'denied' then
    return table.concat({s, h['idx'], h['limit'], h['committed'], h['held'], h['amount']}, '\n')
  elseif s == 'charged' then
    return table.concat({s, h['amount'], h['over']}, '\n')
  elseif s == 'committed' then
    return table.concat({s, h['amount'], h['exp'], h['actual'], h['late']}, '\n')
  end
  return table.concat({s, h['amount'], h['exp'], h['scopes']}, '\n')
end

-- the record's state and the rest of it, or nil
local function record(key)
  local value = redis.pcall('GET', key)
  if type(value) == 'table' then value = legacy(key) end  -- WRONGTYPE: an older hash record
  if not value then return nil end
  local cut = string.find(value, '\n', 1, true)
  if not cut then return value, '' end
  return string.sub(value, 1, cut - 1), string.sub(value, cut + 1)
end

-- the first k fields of a record's rest
local function fields(rest, k)
  local out = {}
  for f in string.gmatch(rest, '[^\n]+') do
    out[#out + 1] = f
    if #out == k then break end
  end
  return out
end
