-- drop the buckets of scope i older than its window (when a new bucket opens)
local function drop_old(i)
  local key = KEYS[3 + i]
  local lo = tonumber(ARGV[LO + i])
  local old = {}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local b = tonumber(f)
    if b and b < lo then old[#old + 1] = f end
  end
  if #old > 0 then redis.call('HDEL', key, unpack(old)) end
end

-- refresh: false when the key's expiry is already far enough (a timely commit: its reserve
-- set it at least two days ahead, a hold lives at most one day) unless this write opened a
-- new bucket (a window boundary was crossed since the reserve; older buckets go then)
local function add_committed(i, delta_s, refresh)
  local key = KEYS[3 + i]
  local total = redis.call('HINCRBY', key, ARGV[HI + i], delta_s)
  local opened = total == tonumber(delta_s)
  if opened then drop_old(i) end
  if refresh or opened then
    redis.call('PEXPIREAT', key, ARGV[EXPIRE + i])
  end
end
