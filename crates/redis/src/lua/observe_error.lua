-- observe_error: ARGV[O..O+7] billing advice ("" when not billing), quota error ("1"/"0"),
-- daily ("1"/"0"), dimension (""), the stated limit (""), the upstream's reset (""), the
-- requested delay in microseconds (""), the longest hint believed (microseconds).
-- Replies {"room", dim, used, limit} when a watched window had room (a shared-pool hint),
-- {"none"}, {"noconfig"} or {"days", now}.
local s = load()
if s.zone == nil then return {'noconfig'} end
local now = advance(s)
if now == nil then return {'days', fmt(s.latest)} end
if ARGV[O] ~= '' then
  s.billing = ARGV[O]
  save(s)
  return {'none'}
end
if ARGV[O + 1] ~= '1' then
  save(s)
  return {'none'}
end
local daily = ARGV[O + 2] == '1'
local d = ARGV[O + 3]
local stated = opt(ARGV[O + 4])
local room = {'none'}
if d ~= '' then
  local window_start = now - WINDOW
  if d == 'rpd' then window_start = opt(s.day_start) end
  local lim = stated or limit(s, d)
  if lim ~= nil then
    local used = used_on(s, d)
    if opt(s.since) <= window_start and used + 1 < lim then
      room = {'room', d, fmt(used), fmt(lim)}
    end
  end
  if stated ~= nil then s['l_' .. d] = stated end
end
if daily then
  local untl = opt(ARGV[O + 5])
  if untl == nil or untl <= now or untl > now + tonumber(ARGV[O + 7]) then untl = opt(s.day_end) end
  hold_daily(s, untl, d)
else
  local delay = opt(ARGV[O + 6])
  if delay ~= nil then hold_wait(s, now + delay, d) end
end
save(s)
return room
