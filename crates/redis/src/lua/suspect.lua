-- suspect: ARGV[O] the suspicion the caller saw (JSON, "" none), ARGV[O+1] the merged one to
-- store. Compare-and-set: replies {"ok"}, or {"retry", current} when another instance wrote
-- first (the caller merges again).
local cur = redis.call('HGET', H, 'shared') or ''
if cur ~= ARGV[O] then return {'retry', cur} end
redis.call('HSET', H, 'shared', ARGV[O + 1])
redis.call('PEXPIRE', H, TTL)
return {'ok'}
