-- Read, acknowledge and delete one entry in ONE round trip: no client can beat this.
-- KEYS[1] = stream, ARGV[1] = group. The same commands qbench's valkey_streams worker sends
-- (XREADGROUP, then XACK + XDEL), minus the round trips and the completion counter.
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], 'ceiling', 'COUNT', '1', 'STREAMS', KEYS[1], '>')
if r then
  local id = r[1][2][1][1]
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
  return 1
end
return 0
