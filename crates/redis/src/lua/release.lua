-- release: KEYS[5] the use's released mark; ARGV[O..O+3] id, at, day_start, requests. Gives
-- back everything the use took; the day's count only if it is still the day the use was
-- counted in. Once: a release retried after a lost reply finds the mark and does nothing.
local s = load()
if s.zone == nil then return {'ok'} end
if redis.call('SET', KEYS[5], '1', 'NX', 'PX', TTL) == false then return {'ok'} end
local v = redis.call('HGET', E, ARGV[O])
if v then
  local e = parse_entry(v)
  if fmt(e.at) == ARGV[O + 1] then
    for _, d in ipairs(MINUTE) do
      s['u_' .. d] = math.max(0, (opt(s['u_' .. d]) or 0) - e[d])
      e[d] = 0
    end
    redis.call('HSET', E, ARGV[O], entry_string(e))
  end
end
if opt(s.day_start) ~= nil and s.day_start == ARGV[O + 2] then
  s.day_count = math.max(0, (opt(s.day_count) or 0) - tonumber(ARGV[O + 3]))
end
save(s)
return {'ok'}
