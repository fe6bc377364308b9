-- breaker_reset: close a queue's circuit breaker and forget its failures (the manual API).
--
-- KEYS[1] breaker  HASH  circuit breaker of the queue
-- KEYS[2] wake     LIST  wake-up token, so workers held back by the open breaker claim again
--
-- Returns 1 when there was a breaker record to delete, 0 otherwise.
--!include includes/ready_score.lua
local existed = redis.call('DEL', KEYS[1])
if existed == 1 then
  wake_workers(KEYS[2])
end
return existed
