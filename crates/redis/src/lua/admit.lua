-- admit: ARGV[O..O+3] requests, tokens, images, the admission's id. An id already in the
-- window's admissions answers the reservation made under it (a retry after a lost reply). Checks every dimension and reserves on all of them, or on none.
-- Replies {"go", id, at, day_start} | {"wait", until, dim} |
-- {"exhausted", why, until, dim, cost, limit, advice} | {"noconfig"} | {"days", now}.
local s = load()
if s.zone == nil then return {'noconfig'} end
local prior = redis.call('HGET', I, ARGV[O + 3])
if prior then
  local id, at, ds = string.match(prior, '^(%S+) (%S+) (%S+)$')
  return {'go', id, at, ds}
end
local now = advance(s)
if now == nil then return {'days', fmt(s.latest)} end
local cost = {rpm = tonumber(ARGV[O]), rpd = tonumber(ARGV[O]), tpm = tonumber(ARGV[O + 1]),
  ipm = tonumber(ARGV[O + 2])}
if s.billing ~= nil and s.billing ~= '' then
  save(s)
  return {'exhausted', 'billing', '', '', '', '', s.billing}
end
for _, d in ipairs(ALL) do
  local lim = limit(s, d)
  if lim ~= nil and cost[d] > lim then
    save(s)
    return {'exhausted', 'toolarge', '', d, fmt(cost[d]), fmt(lim), ''}
  end
end
local daily = opt(s.daily_until)
if daily ~= nil then
  if daily > now then
    save(s)
    local d = s.daily_dim
    if d == nil or d == '' then d = 'rpd' end
    return {'exhausted', 'quota', fmt(daily), d, '', '', ''}
  end
  s.daily_until, s.daily_dim = '', ''
end
local rpd = limit(s, 'rpd')
if rpd ~= nil and (opt(s.day_count) or 0) + cost.rpd > rpd then
  save(s)
  return {'exhausted', 'quota', fmt(s.day_end), 'rpd', '', '', ''}
end
local wait_until, wait_dim = nil, ''
local w = opt(s.wait_until)
if w ~= nil then
  if w > now then
    wait_until, wait_dim = w, s.wait_dim or ''
  else
    s.wait_until, s.wait_dim = '', ''
  end
end
local log = nil
for _, d in ipairs(MINUTE) do
  local lim = limit(s, d)
  local used = opt(s['u_' .. d]) or 0
  if lim ~= nil and used + cost[d] > lim then
    -- The earliest instant enough of the window has left for the cost to fit.
    local need = used + cost[d] - lim
    local untl = nil
    local freed = 0
    if log == nil then log = redis.call('LRANGE', L, 0, -1) end
    for _, item in ipairs(log) do
      local id, at = string.match(item, '^(%S+) (%S+) ')
      local v = redis.call('HGET', E, id)
      if v then freed = freed + parse_entry(v)[d] end
      if freed >= need then untl = tonumber(at) + WINDOW break end
    end
    if untl == nil then untl = s.latest + WINDOW end
    if wait_until == nil or untl > wait_until then wait_until, wait_dim = untl, d end
  end
end
if wait_until ~= nil then
  save(s)
  return {'wait', fmt(wait_until), wait_dim}
end
local id = push(s, now, cost, ARGV[O + 3])
s.day_count = (opt(s.day_count) or 0) + cost.rpd
local reply = fmt(id) .. ' ' .. fmt(now) .. ' ' .. fmt(s.day_start)
if redis.call('HSET', I, ARGV[O + 3], reply) == 1 and redis.call('HLEN', I) == 1 then
  redis.call('PEXPIRE', I, TTL)
end
save(s)
return {'go', fmt(id), fmt(now), fmt(s.day_start)}
