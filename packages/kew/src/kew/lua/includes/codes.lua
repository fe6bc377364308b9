-- Outcome codes returned to Python; the same numbers as kew.exceptions.ScriptCode (a unit test
-- keeps them in step).
local OK = 0
local DUPLICATE = 1
local QUEUE_FULL = 2
local LEASE_LOST = 3
local NOT_FOUND = 4
