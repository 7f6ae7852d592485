-- Octopus Server HA clusters steered from here through their REST API.  The
-- API key is sealed (AES-256-GCM under the node's secrets key), never hashed:
-- it must be sent.  NodesVersion moves when the configured nodes change, so
-- Tentacles registered against the cluster know they must be re-registered.
CREATE TABLE dbo.ManagedClusters (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_ManagedClusters PRIMARY KEY CLUSTERED,
    Name NVARCHAR(200) NOT NULL,
    LoadBalancerUrl NVARCHAR(400) NOT NULL,
    SpaceId NVARCHAR(50) NOT NULL,
    SealedApiKey NVARCHAR(400) NOT NULL,
    ApiKeyPrefix NVARCHAR(20) NOT NULL,
    VerifyTls INT NOT NULL,
    CaFile NVARCHAR(1000) NULL,
    Thumbprint NVARCHAR(40) NULL,
    NodesVersion INT NOT NULL,
    CreatedBy NVARCHAR(200) NOT NULL,
    CreatedAt BIGINT NOT NULL,
    UpdatedAt BIGINT NOT NULL,
    DiscoveredAt BIGINT NULL
);
GO

CREATE UNIQUE INDEX UX_ManagedClusters_Name ON dbo.ManagedClusters (Name);
GO

CREATE TABLE dbo.ManagedClusterNodes (
    ClusterId NVARCHAR(50) NOT NULL,
    Position INT NOT NULL,
    Name NVARCHAR(64) NOT NULL,
    Url NVARCHAR(400) NOT NULL,
    CommsAddress NVARCHAR(255) NULL,
    CommsPort INT NULL,
    OctopusNodeId NVARCHAR(100) NULL,
    CONSTRAINT PK_ManagedClusterNodes PRIMARY KEY CLUSTERED (ClusterId, Name)
);
GO

-- Polling Tentacles registered against every node of a managed cluster.
CREATE TABLE dbo.ManagedTentacles (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_ManagedTentacles PRIMARY KEY CLUSTERED,
    ClusterId NVARCHAR(50) NOT NULL,
    Name NVARCHAR(200) NOT NULL,
    Thumbprint NVARCHAR(40) NOT NULL,
    SubscriptionId NVARCHAR(120) NOT NULL,
    RegisteredAt BIGINT NOT NULL,
    RegisteredBy NVARCHAR(200) NOT NULL,
    ServersVersion INT NOT NULL,
    NeedsReRegistration INT NOT NULL,
    MachineId NVARCHAR(100) NULL,
    HealthStatus NVARCHAR(40) NULL,
    CheckedAt BIGINT NULL,
    CheckDetail NVARCHAR(400) NULL
);
GO

CREATE UNIQUE INDEX UX_ManagedTentacles_Name ON dbo.ManagedTentacles (ClusterId, Name);
GO

-- Rolling maintenance: a run over the nodes of the local cluster ('local') or
-- of a managed one, node by node, each step kept here so that the task that
-- drives it resumes where it was after its node dies.  DriverAttempt fences
-- the writes of a driver whose task was taken over.
CREATE TABLE dbo.MaintenanceRuns (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_MaintenanceRuns PRIMARY KEY CLUSTERED,
    ClusterId NVARCHAR(50) NOT NULL,
    TaskId NVARCHAR(64) NOT NULL,
    State NVARCHAR(20) NOT NULL,
    Reason NVARCHAR(400) NOT NULL,
    MinOnlineNodes INT NOT NULL,
    DrainDeadlineSeconds INT NOT NULL,
    DeadlineAction NVARCHAR(20) NOT NULL,
    SettleSeconds INT NOT NULL,
    BalancerDelaySeconds INT NOT NULL,
    UndrainOnAbort INT NOT NULL,
    AbortRequested INT NOT NULL,
    CurrentStep INT NOT NULL,
    DriverAttempt INT NOT NULL,
    RequestedBy NVARCHAR(200) NOT NULL,
    CreatedAt BIGINT NOT NULL,
    StartedAt BIGINT NULL,
    EndedAt BIGINT NULL,
    Message NVARCHAR(1000) NULL
);
GO

CREATE INDEX IX_MaintenanceRuns_Cluster ON dbo.MaintenanceRuns (ClusterId, State);
GO

CREATE TABLE dbo.MaintenanceSteps (
    RunId NVARCHAR(50) NOT NULL,
    Position INT NOT NULL,
    NodeKey NVARCHAR(100) NOT NULL,
    NodeName NVARCHAR(100) NOT NULL,
    State NVARCHAR(30) NOT NULL,
    DrainTaskId NVARCHAR(64) NULL,
    UndrainTaskId NVARCHAR(64) NULL,
    BaselineStartedAt BIGINT NULL,
    PingLost INT NOT NULL,
    ContinueRequested INT NOT NULL,
    DrainRequestedAt BIGINT NULL,
    DrainedAt BIGINT NULL,
    ReadyAt BIGINT NULL,
    RestartedAt BIGINT NULL,
    UndrainRequestedAt BIGINT NULL,
    OnlineAt BIGINT NULL,
    DoneAt BIGINT NULL,
    Message NVARCHAR(1000) NULL,
    CONSTRAINT PK_MaintenanceSteps PRIMARY KEY CLUSTERED (RunId, Position)
);
GO

-- One run at a time per cluster: starting one takes this row's lock.
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'maintenance', 0);
GO
