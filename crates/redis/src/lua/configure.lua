-- configure: ARGV[O..O+7] zone, learning ("1"/"0"), configured rpm, rpd, tpm, ipm ("" none),
-- models (JSON), lost ("1" when the caller had this pool in Redis before: Redis lost its
-- counts, so the pool waits one window rather than spend again what was already used).
-- Keeps counts, learned limits and blocks; a new zone starts a new day.
local s = load()
if s.zone == nil then
  local now = clock(s)
  if ARGV[O + 7] == '1' then s.wait_until, s.wait_dim = now + WINDOW, '' end
elseif s.zone ~= ARGV[O] then
  s.day_start, s.day_end, s.day_count = '', '', 0
end
redis.call('HSET', H, 'zone', ARGV[O], 'learning', ARGV[O + 1], 'c_rpm', ARGV[O + 2],
  'c_rpd', ARGV[O + 3], 'c_tpm', ARGV[O + 4], 'c_ipm', ARGV[O + 5], 'models', ARGV[O + 6])
save(s)
return {'ok'}
