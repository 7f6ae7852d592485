-- The task queue shared by every node, drain bookkeeping on nodes, and the
-- per-period slots that let exactly one node run cluster housekeeping.
CREATE TABLE dbo.ServerTasks (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_ServerTasks PRIMARY KEY CLUSTERED,
    Name NVARCHAR(50) NOT NULL,
    Description NVARCHAR(400) NOT NULL,
    Arguments NVARCHAR(MAX) NOT NULL,
    State NVARCHAR(20) NOT NULL,
    IsSystem BIT NOT NULL CONSTRAINT DF_ServerTasks_IsSystem DEFAULT 0,
    TargetNodeId NVARCHAR(100) NULL,
    ServerNodeId NVARCHAR(100) NULL,
    LeaseOwner NVARCHAR(64) NULL,
    LeaseExpiresAt BIGINT NULL,
    Attempt INT NOT NULL CONSTRAINT DF_ServerTasks_Attempt DEFAULT 0,
    MaxAttempts INT NOT NULL,
    NextRunAt BIGINT NOT NULL,
    QueueTime BIGINT NOT NULL,
    StartTime BIGINT NULL,
    LastUpdatedTime BIGINT NOT NULL,
    CompletedTime BIGINT NULL,
    ErrorMessage NVARCHAR(2000) NULL,
    Progress INT NOT NULL CONSTRAINT DF_ServerTasks_Progress DEFAULT 0,
    ProgressMessage NVARCHAR(400) NULL,
    Result NVARCHAR(MAX) NULL,
    IdempotencyKey NVARCHAR(200) NULL,
    RequestedBy NVARCHAR(200) NULL
);
GO
-- Serves the claim: equality on State and IsSystem, then NextRunAt in order,
-- so TOP stops after the first rows however long the queue is.
CREATE INDEX IX_ServerTasks_Claim ON dbo.ServerTasks (State, IsSystem, NextRunAt, QueueTime);
GO
CREATE INDEX IX_ServerTasks_Lease ON dbo.ServerTasks (LeaseOwner);
GO
CREATE INDEX IX_ServerTasks_Node ON dbo.ServerTasks (ServerNodeId, State);
GO
-- A filtered index: SQL Server's UNIQUE would allow only one NULL key.
CREATE UNIQUE INDEX UX_ServerTasks_Idempotency ON dbo.ServerTasks (IdempotencyKey)
    WHERE IdempotencyKey IS NOT NULL;
GO
-- One column per statement: the same as one ADD with a list, in the form
-- the T-SQL grammar the tests parse with (sqlfluff 1.4) knows.
ALTER TABLE dbo.OctopusServerNodes ADD DrainReason NVARCHAR(400) NULL;
GO
ALTER TABLE dbo.OctopusServerNodes ADD DrainRequestedBy NVARCHAR(200) NULL;
GO
ALTER TABLE dbo.OctopusServerNodes ADD DrainRequestedAt BIGINT NULL;
GO
ALTER TABLE dbo.OctopusServerNodes ADD DrainTaskId NVARCHAR(50) NULL;
GO
CREATE TABLE dbo.ClusterLocks (
    Name NVARCHAR(100) NOT NULL CONSTRAINT PK_ClusterLocks PRIMARY KEY CLUSTERED,
    Period BIGINT NOT NULL
);
GO
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'housekeeping', 0);
GO
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'retention', 0);
GO
