-- status: the pool at now, as name/value pairs, plus the oldest use still counted on each
-- per-minute dimension ("first_rpm" ...). Replies {"noconfig"} or {"days", now} too.
-- ARGV[O] "1" to also forget every block (clear_blocks), replying with whether there was one.
local s = load()
if s.zone == nil then return {'noconfig'} end
local now = advance(s)
if now == nil then return {'days', fmt(s.latest)} end
local had = ''
if ARGV[O] == '1' then
  local b = (s.billing or '') ~= '' or (s.daily_until or '') ~= '' or (s.wait_until or '') ~= ''
  if b then had = '1' else had = '0' end
  s.billing, s.daily_until, s.daily_dim, s.wait_until, s.wait_dim = '', '', '', '', ''
end
save(s)
local out = {'status', 'now', fmt(now), 'had', had}
for _, k in ipairs({'day_start', 'day_end', 'day_count', 'u_rpm', 'u_tpm', 'u_ipm', 'l_rpm', 'l_rpd',
  'l_tpm', 'l_ipm', 'billing', 'daily_until', 'daily_dim', 'wait_until', 'wait_dim', 'shared'}) do
  local v = s[k]
  if v == nil then v = '' end
  if type(v) == 'number' then v = fmt(v) end
  out[#out + 1] = k
  out[#out + 1] = v
end
local found = {}
local log = redis.call('LRANGE', L, 0, -1)
for _, item in ipairs(log) do
  local id = string.match(item, '^(%S+) ')
  local v = redis.call('HGET', E, id)
  if v then
    local e = parse_entry(v)
    for _, d in ipairs(MINUTE) do
      if found[d] == nil and e[d] > 0 then found[d] = e.at + WINDOW end
    end
  end
  if found.rpm and found.tpm and found.ipm then break end
end
for _, d in ipairs(MINUTE) do
  out[#out + 1] = 'first_' .. d
  out[#out + 1] = found[d] and fmt(found[d]) or ''
end
return out
