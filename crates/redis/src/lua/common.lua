-- imagegate quota: the prelude every script shares (see src/script.rs).
-- KEYS[1] the pool's state hash, KEYS[2] its log (list of "id at admission", oldest first),
-- KEYS[3] its entries (hash id -> "at requests tokens images"), KEYS[4] the admissions of the
-- window (hash admission id -> "id at day_start"); all under the pool's hash tag.
-- ARGV[1] the caller's instant in microseconds, or "" for Redis's own clock (TIME);
-- ARGV[2] the window in microseconds; ARGV[3] the keys' time to live in milliseconds;
-- ARGV[4] n, then n midnights of the pool's zone (microseconds, ascending), computed by the
-- caller with the zone database around Redis's time; the operation's own arguments follow.
local H, L, E, I = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local WINDOW = tonumber(ARGV[2])
local TTL = tonumber(ARGV[3])
local NM = tonumber(ARGV[4])
local O = 5 + NM
local MINUTE = {'rpm', 'tpm', 'ipm'}
local ALL = {'rpm', 'rpd', 'tpm', 'ipm'}

local function fmt(x) return string.format('%d', x) end
local function opt(v) if v == nil or v == '' then return nil end return tonumber(v) end

-- What `load` read, so that `save` writes only the fields that changed.
local ORIG = {}

local function load()
  local raw = redis.call('HGETALL', H)
  local s = {}
  for i = 1, #raw, 2 do
    s[raw[i]] = raw[i + 1]
    ORIG[raw[i]] = raw[i + 1]
  end
  return s
end

local function limit(s, d) return opt(s['l_' .. d]) or opt(s['c_' .. d]) end

local function parse_entry(v)
  local at, r, t, i = string.match(v, '^(%S+) (%S+) (%S+) (%S+)$')
  return {at = tonumber(at), rpm = tonumber(r), tpm = tonumber(t), ipm = tonumber(i)}
end
local function entry_string(e)
  return fmt(e.at) .. ' ' .. fmt(e.rpm) .. ' ' .. fmt(e.tpm) .. ' ' .. fmt(e.ipm)
end

-- The instant used: Redis's clock (or the caller's), never earlier than the latest seen.
local function clock(s)
  local n = opt(ARGV[1])
  if n == nil then
    local t = redis.call('TIME')
    n = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  local latest = opt(s.latest)
  if latest ~= nil and n < latest then n = latest end
  s.latest = n
  if s.since == nil or s.since == '' then s.since = n end
  return n
end

-- The calendar day holding `now`: the stored one, or one of the caller's midnights. False when
-- the caller's midnights do not bracket `now` (its estimate of Redis's time was off).
local function day(s, now)
  local ds, de = opt(s.day_start), opt(s.day_end)
  if ds ~= nil and de ~= nil and now >= ds and now < de then return true end
  for i = 1, NM - 1 do
    local a, b = tonumber(ARGV[4 + i]), tonumber(ARGV[5 + i])
    if now >= a and now < b then
      s.day_start, s.day_end, s.day_count = a, b, 0
      return true
    end
  end
  return false
end

-- Drops what left the window; keeps the running sums.
local function prune(s, now)
  local cut = now - WINDOW
  local used = {rpm = opt(s.u_rpm) or 0, tpm = opt(s.u_tpm) or 0, ipm = opt(s.u_ipm) or 0}
  while true do
    local front = redis.call('LINDEX', L, 0)
    if not front then break end
    local id, at, admission = string.match(front, '^(%S+) (%S+) (%S+)$')
    if tonumber(at) > cut then break end
    if admission ~= '-' then redis.call('HDEL', I, admission) end
    local v = redis.call('HGET', E, id)
    if v then
      local e = parse_entry(v)
      for _, d in ipairs(MINUTE) do used[d] = math.max(0, used[d] - e[d]) end
      redis.call('HDEL', E, id)
    end
    redis.call('LPOP', L)
  end
  s.u_rpm, s.u_tpm, s.u_ipm = used.rpm, used.tpm, used.ipm
end

local function used_on(s, d)
  if d == 'rpd' then return opt(s.day_count) or 0 end
  return opt(s['u_' .. d]) or 0
end

-- Moves the pool to now; false (and nothing written) when the caller must send other midnights.
local function advance(s)
  local now = clock(s)
  if not day(s, now) then return nil end
  prune(s, now)
  return now
end

local SAVED = {'latest', 'since', 'u_rpm', 'u_tpm', 'u_ipm', 'day_start', 'day_end', 'day_count',
  'next_id', 'wait_until', 'wait_dim', 'daily_until', 'daily_dim', 'billing',
  'l_rpm', 'l_rpd', 'l_tpm', 'l_ipm'}

-- Writes the fields that changed. The keys' time to live is renewed when a tenth of it has
-- passed since the last renewal (and when the log is created, in `push`), not on every call.
local function save(s)
  local now = opt(s.latest) or 0
  local renewed = opt(s.ttl_at)
  local renew = renewed == nil or now - renewed > TTL * 100 or now < renewed
  if renew then s.ttl_at = now end
  local args = {}
  for _, k in ipairs(SAVED) do
    local v = s[k]
    if v == nil then v = '' end
    if type(v) == 'number' then v = fmt(v) end
    if ORIG[k] ~= v then
      args[#args + 1] = k
      args[#args + 1] = v
    end
  end
  if renew then
    args[#args + 1] = 'ttl_at'
    args[#args + 1] = fmt(now)
  end
  if #args > 0 then redis.call('HSET', H, unpack(args)) end
  if renew then
    redis.call('PEXPIRE', H, TTL)
    redis.call('PEXPIRE', L, TTL)
    redis.call('PEXPIRE', E, TTL)
    redis.call('PEXPIRE', I, TTL)
  end
end

local function hold_wait(s, untl, d)
  local w = opt(s.wait_until)
  if w == nil or untl > w then s.wait_until, s.wait_dim = untl, d or '' end
end
local function hold_daily(s, untl, d)
  local w = opt(s.daily_until)
  if w == nil or untl > w then s.daily_until, s.daily_dim = untl, d or '' end
end

-- Appends a use to the log and counts it; `admission` is its admission id, or '-'.
local function push(s, now, amounts, admission)
  local id = opt(s.next_id) or 0
  s.next_id = id + 1
  local created = redis.call('RPUSH', L, fmt(id) .. ' ' .. fmt(now) .. ' ' .. admission) == 1
  redis.call('HSET', E, fmt(id), entry_string({at = now, rpm = amounts.rpm, tpm = amounts.tpm, ipm = amounts.ipm}))
  if created then
    redis.call('PEXPIRE', L, TTL)
    redis.call('PEXPIRE', E, TTL)
  end
  for _, d in ipairs(MINUTE) do s['u_' .. d] = (opt(s['u_' .. d]) or 0) + amounts[d] end
  return id
end
