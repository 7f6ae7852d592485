-- Shared storage paths with their verification on each node, polling
-- Tentacles with the server entry each keeps for every node and the last
-- poll each node saw, and the port each node has in UniquePort mode.
CREATE TABLE StoragePaths (
    Folder VARCHAR(20) NOT NULL PRIMARY KEY,
    Path VARCHAR(400) NOT NULL,
    ChangedAt BIGINT NOT NULL,
    ChangedBy VARCHAR(200) NULL,
    TaskId VARCHAR(50) NULL
);

CREATE TABLE StorageVerifications (
    NodeId VARCHAR(100) NOT NULL,
    Folder VARCHAR(20) NOT NULL,
    Path VARCHAR(400) NOT NULL,
    Ok SMALLINT NOT NULL,
    VerifiedAt BIGINT NOT NULL,
    Error VARCHAR(1000) NULL,
    PRIMARY KEY (NodeId, Folder)
);

CREATE TABLE Tentacles (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    Name VARCHAR(200) NOT NULL,
    Thumbprint CHAR(40) NOT NULL,
    CommunicationStyle VARCHAR(20) NOT NULL,
    SubscriptionId VARCHAR(120) NULL,
    Uri VARCHAR(400) NULL,
    RegisteredAt BIGINT NOT NULL,
    RegisteredBy VARCHAR(200) NULL,
    ServersChangedAt BIGINT NULL,
    NeedsReRegistration SMALLINT NOT NULL DEFAULT 0,
    HealthStatus VARCHAR(30) NULL,
    HealthCheckedAt BIGINT NULL,
    HealthDetail VARCHAR(400) NULL,
    CoverageWarnedAt BIGINT NULL,
    CONSTRAINT UQ_Tentacles_Name UNIQUE (Name)
);

CREATE TABLE TentacleServers (
    TentacleId VARCHAR(50) NOT NULL,
    NodeId VARCHAR(100) NOT NULL,
    Address VARCHAR(255) NOT NULL,
    Port INTEGER NOT NULL,
    AddedAt BIGINT NOT NULL,
    PRIMARY KEY (TentacleId, NodeId)
);

CREATE TABLE TentaclePolls (
    TentacleId VARCHAR(50) NOT NULL,
    NodeId VARCHAR(100) NOT NULL,
    LastPollAt BIGINT NOT NULL,
    PRIMARY KEY (TentacleId, NodeId)
);

ALTER TABLE OctopusServerNodes ADD COLUMN PollingPort INTEGER NULL;
CREATE UNIQUE INDEX UX_OctopusServerNodes_PollingPort ON OctopusServerNodes (PollingPort)
    WHERE PollingPort IS NOT NULL;

-- One storage change at a time: its request takes this row's lock.
INSERT INTO ClusterLocks (Name, Period) VALUES ('storage-change', 0);
-- Polling settings and port assignment: every writer takes this row's lock.
INSERT INTO ClusterLocks (Name, Period) VALUES ('polling', 0);
