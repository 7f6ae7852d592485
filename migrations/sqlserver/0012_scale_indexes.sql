-- Scale: every list is read through an index in its own ORDER BY, for every
-- filter its endpoint accepts, so a page costs the rows it returns (plus a
-- bounded skip) whatever the size of the table: background passes read
-- indexed ranges (SQL Server 2019+).
--
-- GET /api/tasks orders by QueueTime DESC, Id DESC: each states filter is
-- read one state at a time (State, QueueTime, Id) and merged.
CREATE INDEX IX_ServerTasks_List ON dbo.ServerTasks (QueueTime, Id);
GO
CREATE INDEX IX_ServerTasks_StateList ON dbo.ServerTasks (State, QueueTime, Id);
GO
-- node and name filters, each with every state (also the running counts per
-- node, which IX_ServerTasks_Node served).
DROP INDEX IX_ServerTasks_Node ON dbo.ServerTasks;
GO
CREATE INDEX IX_ServerTasks_NodeList ON dbo.ServerTasks (ServerNodeId, State, QueueTime, Id);
GO
CREATE INDEX IX_ServerTasks_NameList ON dbo.ServerTasks (Name, State, QueueTime, Id);
GO
-- Retention (CompletedTime < x ORDER BY CompletedTime, Id) and the ended
-- task counts of /metrics, advanced over recent completions only.
CREATE INDEX IX_ServerTasks_Completed ON dbo.ServerTasks (CompletedTime, Id);
GO
-- The claim reads tasks for any node and tasks targeted at this node as two
-- ordered ranges, never the tasks targeted at other nodes.
DROP INDEX IX_ServerTasks_Claim ON dbo.ServerTasks;
GO
CREATE INDEX IX_ServerTasks_Claim ON dbo.ServerTasks (
    State, IsSystem, TargetNodeId, NextRunAt, QueueTime, Id
);
GO

-- Ended tasks per state with CompletedTime < CountedTo: /metrics adds the
-- few that ended since.  Advanced by a background pass, lowered by retention.
CREATE TABLE dbo.TaskCounts (
    State NVARCHAR(20) NOT NULL CONSTRAINT PK_TaskCounts PRIMARY KEY CLUSTERED,
    Total BIGINT NOT NULL,
    CountedTo BIGINT NOT NULL
);
GO
INSERT INTO dbo.TaskCounts (State, Total, CountedTo) VALUES (N'Success', 0, 0);
INSERT INTO dbo.TaskCounts (State, Total, CountedTo) VALUES (N'Failed', 0, 0);
INSERT INTO dbo.TaskCounts (State, Total, CountedTo) VALUES (N'Canceled', 0, 0);
INSERT INTO dbo.TaskCounts (State, Total, CountedTo) VALUES (N'TimedOut', 0, 0);
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'task-counts', 0);
GO

-- GET /api/events orders by Occurred DESC, Id DESC (the clustered
-- IX_Events_Occurred): one index per filter, each in that order.
CREATE INDEX IX_Events_Category ON dbo.Events (Category, Occurred, Id);
GO
CREATE INDEX IX_Events_Operation ON dbo.Events (Operation, Occurred, Id);
GO
CREATE INDEX IX_Events_Resource ON dbo.Events (ResourceId, Occurred, Id);
GO
CREATE INDEX IX_Events_UserId ON dbo.Events (UserId, Occurred, Id);
GO
CREATE INDEX IX_Events_Username ON dbo.Events (Username, Occurred, Id);
GO

-- Deliveries newest first, Id breaking ties.
DROP INDEX IX_WebhookDeliveries_Sub ON dbo.WebhookDeliveries;
GO
CREATE CLUSTERED INDEX IX_WebhookDeliveries_Sub ON dbo.WebhookDeliveries (
    SubscriptionId, DeliveredAt, Id
);
GO

-- Chat replies still to queue.
CREATE INDEX IX_ChatReplies_Queued ON dbo.ChatReplies (QueuedAt, TaskId);
GO

-- Tentacle coverage, kept when a poll is recorded: the oldest of a polling
-- Tentacle's last polls at the nodes in CoverageNodes (0 when it has not
-- polled one of them: NULL for listening Tentacles and when no node is
-- online).  It misses a node exactly when OldestPollAt < now - window, so
-- the Tentacles missing a node are one index range.
ALTER TABLE dbo.Tentacles ADD OldestPollAt BIGINT NULL;
GO
CREATE INDEX IX_Tentacles_Coverage ON dbo.Tentacles (OldestPollAt, Id);
GO
CREATE INDEX IX_Tentacles_Warn ON dbo.Tentacles (CoverageWarnedAt, OldestPollAt);
GO
CREATE INDEX IX_Tentacles_Rereg ON dbo.Tentacles (NeedsReRegistration, Name);
GO
CREATE INDEX IX_Tentacles_Style ON dbo.Tentacles (CommunicationStyle, Id);
GO
-- The machines list (by Name) filtered by communication style or thumbprint.
CREATE INDEX IX_Tentacles_StyleName ON dbo.Tentacles (CommunicationStyle, Name);
GO
CREATE INDEX IX_Tentacles_Thumbprint ON dbo.Tentacles (Thumbprint, Name);
GO
-- The online nodes coverage was last computed for.
CREATE TABLE dbo.CoverageNodes (
    NodeId NVARCHAR(100) NOT NULL CONSTRAINT PK_CoverageNodes PRIMARY KEY CLUSTERED
);
GO
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'coverage', 0);
GO

-- The package list: package id, then newest version first (the unique
-- constraint's columns, with the versions in the list's direction).
-- PostgreSQL and SQLite could also sort each package's versions from the
-- unique index (a sort per package on the page); SQL Server would sort the
-- whole space's rows.
CREATE INDEX IX_Packages_List ON dbo.Packages (SpaceId, PackageKey, VersionSort DESC);
GO

-- Maintenance runs newest first, Id ascending among runs created in the same
-- millisecond (the order the list always had).  Managed clusters page by
-- Name and a cluster's Tentacles by Name within it: their unique indexes
-- (migration 0010) are in those orders.  The nodes of a page of clusters
-- are read by cluster, each cluster's in position order.
CREATE INDEX IX_MaintenanceRuns_List ON dbo.MaintenanceRuns (CreatedAt DESC, Id);
GO
CREATE INDEX IX_ManagedClusterNodes_Position ON dbo.ManagedClusterNodes (ClusterId, Position);
GO
