-- settle: ARGV[O..O+3] id, at, tokens ("" unknown), images ("" unknown). The request stays
-- counted; tokens and images replace the estimate while the use is in the window.
local v = redis.call('HGET', E, ARGV[O])
if not v then return {'ok'} end
local e = parse_entry(v)
if fmt(e.at) ~= ARGV[O + 1] then return {'ok'} end
local s = load()
local real = {tpm = opt(ARGV[O + 2]), ipm = opt(ARGV[O + 3])}
for _, d in ipairs({'tpm', 'ipm'}) do
  if real[d] ~= nil then
    s['u_' .. d] = math.max(0, (opt(s['u_' .. d]) or 0) + real[d] - e[d])
    e[d] = real[d]
  end
end
redis.call('HSET', E, ARGV[O], entry_string(e))
redis.call('HSET', H, 'u_tpm', fmt(s.u_tpm or 0), 'u_ipm', fmt(s.u_ipm or 0))
return {'ok'}
