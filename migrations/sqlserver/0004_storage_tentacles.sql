-- Shared storage paths with their verification on each node, polling
-- Tentacles with the server entry each keeps for every node and the last
-- poll each node saw, and the port each node has in UniquePort mode
-- (SQL Server 2019+).
CREATE TABLE dbo.StoragePaths (
    Folder NVARCHAR(20) NOT NULL CONSTRAINT PK_StoragePaths PRIMARY KEY CLUSTERED,
    Path NVARCHAR(400) NOT NULL,
    ChangedAt BIGINT NOT NULL,
    ChangedBy NVARCHAR(200) NULL,
    TaskId NVARCHAR(50) NULL
);
GO

CREATE TABLE dbo.StorageVerifications (
    NodeId NVARCHAR(100) NOT NULL,
    Folder NVARCHAR(20) NOT NULL,
    Path NVARCHAR(400) NOT NULL,
    Ok SMALLINT NOT NULL,
    VerifiedAt BIGINT NOT NULL,
    Error NVARCHAR(1000) NULL,
    CONSTRAINT PK_StorageVerifications PRIMARY KEY CLUSTERED (NodeId, Folder)
);
GO

CREATE TABLE dbo.Tentacles (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_Tentacles PRIMARY KEY CLUSTERED,
    Name NVARCHAR(200) NOT NULL,
    Thumbprint CHAR(40) NOT NULL,
    CommunicationStyle NVARCHAR(20) NOT NULL,
    SubscriptionId NVARCHAR(120) NULL,
    Uri NVARCHAR(400) NULL,
    RegisteredAt BIGINT NOT NULL,
    RegisteredBy NVARCHAR(200) NULL,
    ServersChangedAt BIGINT NULL,
    NeedsReRegistration SMALLINT NOT NULL CONSTRAINT DF_Tentacles_NeedsReRegistration DEFAULT 0,
    HealthStatus NVARCHAR(30) NULL,
    HealthCheckedAt BIGINT NULL,
    HealthDetail NVARCHAR(400) NULL,
    CoverageWarnedAt BIGINT NULL,
    CONSTRAINT UQ_Tentacles_Name UNIQUE (Name)
);
GO

CREATE TABLE dbo.TentacleServers (
    TentacleId NVARCHAR(50) NOT NULL,
    NodeId NVARCHAR(100) NOT NULL,
    Address NVARCHAR(255) NOT NULL,
    Port INT NOT NULL,
    AddedAt BIGINT NOT NULL,
    CONSTRAINT PK_TentacleServers PRIMARY KEY CLUSTERED (TentacleId, NodeId)
);
GO

CREATE TABLE dbo.TentaclePolls (
    TentacleId NVARCHAR(50) NOT NULL,
    NodeId NVARCHAR(100) NOT NULL,
    LastPollAt BIGINT NOT NULL,
    CONSTRAINT PK_TentaclePolls PRIMARY KEY CLUSTERED (TentacleId, NodeId)
);
GO

ALTER TABLE dbo.OctopusServerNodes ADD PollingPort INT NULL;
GO
CREATE UNIQUE INDEX UX_OctopusServerNodes_PollingPort ON dbo.OctopusServerNodes (PollingPort)
    WHERE PollingPort IS NOT NULL;
GO

-- One storage change at a time: its request takes this row's lock.
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'storage-change', 0);
GO
-- Polling settings and port assignment: every writer takes this row's lock.
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'polling', 0);
GO
