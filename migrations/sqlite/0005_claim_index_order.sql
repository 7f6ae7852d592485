-- The claim orders by NextRunAt, QueueTime, Id, but the claim index ended at
-- QueueTime: tasks queued in the same millisecond had to be sorted by Id at
-- every claim.  Id completes the order.
DROP INDEX IX_ServerTasks_Claim;
CREATE INDEX IX_ServerTasks_Claim ON ServerTasks (State, IsSystem, NextRunAt, QueueTime, Id);
