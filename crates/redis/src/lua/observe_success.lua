-- observe_success: ARGV[O..O+3] dimension, limit (""), remaining (""), reset (""). The stated
-- limit is learned; a higher upstream count is adopted; nothing remaining blocks until reset.
local s = load()
if s.zone == nil then return {'noconfig'} end
local now = advance(s)
if now == nil then return {'days', fmt(s.latest)} end
local d = ARGV[O]
local stated, remaining, reset = opt(ARGV[O + 1]), opt(ARGV[O + 2]), opt(ARGV[O + 3])
if stated ~= nil then s['l_' .. d] = stated end
local lim = limit(s, d)
if lim ~= nil and remaining ~= nil then
  local upstream = math.max(0, lim - remaining)
  local ours = used_on(s, d)
  if upstream > ours then
    if d == 'rpd' then
      s.day_count = upstream
    else
      local amounts = {rpm = 0, tpm = 0, ipm = 0}
      amounts[d] = upstream - ours
      push(s, now, amounts, '-')
    end
  end
end
if remaining == 0 and reset ~= nil and reset > now then
  if d == 'rpd' then hold_daily(s, reset, d) else hold_wait(s, reset, d) end
end
save(s)
return {'ok'}
