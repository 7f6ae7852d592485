-- The claim orders by NextRunAt, QueueTime, Id, but the claim index ended at
-- QueueTime: tasks queued in the same millisecond had to be sorted by Id at
-- every claim (22 ms for 20,000 such tasks, against 0.1 ms with the index
-- in the claim's full order).  Id completes the order.
DROP INDEX IX_ServerTasks_Claim;
CREATE INDEX IX_ServerTasks_Claim ON ServerTasks (State, IsSystem, NextRunAt, QueueTime, Id);
