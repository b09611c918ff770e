-- (committed over buckets lo..hi, held, key expiry set by a reserve) of scope i. A calendar
-- window has one bucket: three fields are read (its older buckets are dropped when a new one
-- opens); a rolling window reads all its buckets and drops those older than its first.
local function state_of(i)
  local key = KEYS[3 + i]
  local lo_s, hi_s = ARGV[LO + i], ARGV[HI + i]
  if lo_s == hi_s then
    local v = redis.call('HMGET', key, 'h', 'x', hi_s)
    return tonumber(v[3] or 0), tonumber(v[1] or 0), tonumber(v[2] or 0)
  end
  local flat = redis.call('HGETALL', key)
  local lo, hi = tonumber(lo_s), tonumber(hi_s)
  local total, held, expiry = 0, 0, 0
  local old = {}
  for j = 1, #flat, 2 do
    local f = flat[j]
    if f == 'h' then
      held = tonumber(flat[j + 1])
    elseif f == 'x' then
      expiry = tonumber(flat[j + 1])
    else
      local b = tonumber(f)
      if b < lo then
        old[#old + 1] = f
      elseif b <= hi then
        total = total + tonumber(flat[j + 1])
      end
    end
  end
  if #old > 0 then redis.call('HDEL', key, unpack(old)) end
  return total, held, expiry
end
