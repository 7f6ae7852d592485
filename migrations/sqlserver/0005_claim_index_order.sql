-- The claim orders by NextRunAt, QueueTime, Id, but the claim index ended at
-- QueueTime: tasks queued in the same millisecond had to be sorted by Id at
-- every claim.  Id completes the order (SQL Server 2019+).
DROP INDEX IX_ServerTasks_Claim ON dbo.ServerTasks;
GO
CREATE INDEX IX_ServerTasks_Claim ON dbo.ServerTasks (State, IsSystem, NextRunAt, QueueTime, Id);
GO
