-- needs: record give_back limits state
local lim = limits()
purge()
local reply = {'usage'}
for i = 1, n do
  local committed, held = state_of(i)
  reply[#reply + 1] = committed
  reply[#reply + 1] = held
  reply[#reply + 1] = lim[i]
end
return reply
