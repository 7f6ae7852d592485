-- Scale: every list is read through an index in its own ORDER BY, for every
-- filter its endpoint accepts, so a page costs the rows it returns (plus a
-- bounded skip) whatever the size of the table: background passes read
-- indexed ranges.
--
-- GET /api/tasks orders by QueueTime DESC, Id DESC: each states filter is
-- read one state at a time (State, QueueTime, Id) and merged.
CREATE INDEX IX_ServerTasks_List ON ServerTasks (QueueTime, Id);
CREATE INDEX IX_ServerTasks_StateList ON ServerTasks (State, QueueTime, Id);
-- node and name filters, each with every state (also the running counts per
-- node, which IX_ServerTasks_Node served).
DROP INDEX IX_ServerTasks_Node;
CREATE INDEX IX_ServerTasks_NodeList ON ServerTasks (ServerNodeId, State, QueueTime, Id);
CREATE INDEX IX_ServerTasks_NameList ON ServerTasks (Name, State, QueueTime, Id);
-- Retention (CompletedTime < x ORDER BY CompletedTime, Id) and the ended
-- task counts of /metrics, advanced over recent completions only.
CREATE INDEX IX_ServerTasks_Completed ON ServerTasks (CompletedTime, Id);
-- The claim reads tasks for any node and tasks targeted at this node as two
-- ordered ranges, never the tasks targeted at other nodes.
DROP INDEX IX_ServerTasks_Claim;
CREATE INDEX IX_ServerTasks_Claim ON ServerTasks (State, IsSystem, TargetNodeId, NextRunAt, QueueTime, Id);

-- Ended tasks per state with CompletedTime < CountedTo: /metrics adds the
-- few that ended since.  Advanced by a background pass, lowered by retention.
CREATE TABLE TaskCounts (
    State VARCHAR(20) NOT NULL PRIMARY KEY,
    Total BIGINT NOT NULL,
    CountedTo BIGINT NOT NULL
);
INSERT INTO TaskCounts (State, Total, CountedTo) VALUES ('Success', 0, 0);
INSERT INTO TaskCounts (State, Total, CountedTo) VALUES ('Failed', 0, 0);
INSERT INTO TaskCounts (State, Total, CountedTo) VALUES ('Canceled', 0, 0);
INSERT INTO TaskCounts (State, Total, CountedTo) VALUES ('TimedOut', 0, 0);
INSERT INTO ClusterLocks (Name, Period) VALUES ('task-counts', 0);

-- GET /api/events orders by Occurred DESC, Id DESC (IX_Events_Occurred):
-- one index per filter, each in that order.
CREATE INDEX IX_Events_Category ON Events (Category, Occurred, Id);
CREATE INDEX IX_Events_Operation ON Events (Operation, Occurred, Id);
CREATE INDEX IX_Events_Resource ON Events (ResourceId, Occurred, Id);
CREATE INDEX IX_Events_UserId ON Events (UserId, Occurred, Id);
CREATE INDEX IX_Events_Username ON Events (Username, Occurred, Id);

-- Deliveries newest first, Id breaking ties.
DROP INDEX IX_WebhookDeliveries_Sub;
CREATE INDEX IX_WebhookDeliveries_Sub ON WebhookDeliveries (SubscriptionId, DeliveredAt, Id);

-- Chat replies still to queue.
CREATE INDEX IX_ChatReplies_Queued ON ChatReplies (QueuedAt, TaskId);

-- Tentacle coverage, kept when a poll is recorded: the oldest of a polling
-- Tentacle's last polls at the nodes in CoverageNodes (0 when it has not
-- polled one of them: NULL for listening Tentacles and when no node is
-- online).  It misses a node exactly when OldestPollAt < now - window, so
-- the Tentacles missing a node are one index range.
ALTER TABLE Tentacles ADD COLUMN OldestPollAt BIGINT NULL;
CREATE INDEX IX_Tentacles_Coverage ON Tentacles (OldestPollAt, Id);
CREATE INDEX IX_Tentacles_Warn ON Tentacles (CoverageWarnedAt, OldestPollAt);
CREATE INDEX IX_Tentacles_Rereg ON Tentacles (NeedsReRegistration, Name);
CREATE INDEX IX_Tentacles_Style ON Tentacles (CommunicationStyle, Id);
-- The machines list (by Name) filtered by communication style or thumbprint.
CREATE INDEX IX_Tentacles_StyleName ON Tentacles (CommunicationStyle, Name);
CREATE INDEX IX_Tentacles_Thumbprint ON Tentacles (Thumbprint, Name);
-- The online nodes coverage was last computed for.
CREATE TABLE CoverageNodes (
    NodeId VARCHAR(100) NOT NULL PRIMARY KEY
);
INSERT INTO ClusterLocks (Name, Period) VALUES ('coverage', 0);

-- The package list: package id, then newest version first (the unique
-- constraint's columns, with the versions in the list's direction).
-- PostgreSQL and SQLite could also sort each package's versions from the
-- unique index (a sort per package on the page); SQL Server would sort the
-- whole space's rows.
CREATE INDEX IX_Packages_List ON Packages (SpaceId, PackageKey, VersionSort DESC);

-- Maintenance runs newest first, Id ascending among runs created in the same
-- millisecond (the order the list always had).  Managed clusters page by
-- Name and a cluster's Tentacles by Name within it: their unique indexes
-- (migration 0010) are in those orders.  The nodes of a page of clusters
-- are read by cluster, each cluster's in position order.
CREATE INDEX IX_MaintenanceRuns_List ON MaintenanceRuns (CreatedAt DESC, Id);
CREATE INDEX IX_ManagedClusterNodes_Position ON ManagedClusterNodes (ClusterId, Position);
