purge()
local reply = {'usage'}
for i = 1, n do
  reply[#reply + 1] = window_sum(i)
  reply[#reply + 1] = held_of(i)
  reply[#reply + 1] = limit_of(i)
end
return reply
