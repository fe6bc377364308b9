-- breaker_failure: count one failure on a queue's circuit breaker (the manual API).
--
-- KEYS[1] breaker  HASH  circuit breaker of the queue
-- ARGV[1] now (ms)  ARGV[2] max failures  ARGV[3] reset timeout (ms)  ARGV[4] ttl (ms)
--
-- Returns the number of consecutive failures now counted.
--!include includes/breaker.lua
return breaker_failure(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]))
