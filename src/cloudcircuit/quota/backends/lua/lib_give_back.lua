-- give back the hold of a 'held' record's rest (amount, expiry, scope keys); returns the
-- amount and expiry fields (strings)
local function give_back(rest)
  local amt_s, exp_s, at = string.match(rest, '^([^\n]*)\n([^\n]*)()')
  local minus = '-' .. amt_s
  for key in string.gmatch(string.sub(rest, at), '[^\n]+') do
    redis.call('HINCRBY', key, 'h', minus)
  end
  return amt_s, exp_s
end
