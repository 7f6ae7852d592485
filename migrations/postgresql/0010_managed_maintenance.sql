-- Octopus Server HA clusters steered from here through their REST API.  The
-- API key is sealed (AES-256-GCM under the node's secrets key), never hashed:
-- it must be sent.  NodesVersion moves when the configured nodes change, so
-- Tentacles registered against the cluster know they must be re-registered.
CREATE TABLE ManagedClusters (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    Name VARCHAR(200) NOT NULL,
    LoadBalancerUrl VARCHAR(400) NOT NULL,
    SpaceId VARCHAR(50) NOT NULL,
    SealedApiKey VARCHAR(400) NOT NULL,
    ApiKeyPrefix VARCHAR(20) NOT NULL,
    VerifyTls INTEGER NOT NULL,
    CaFile VARCHAR(1000) NULL,
    Thumbprint VARCHAR(40) NULL,
    NodesVersion INTEGER NOT NULL,
    CreatedBy VARCHAR(200) NOT NULL,
    CreatedAt BIGINT NOT NULL,
    UpdatedAt BIGINT NOT NULL,
    DiscoveredAt BIGINT NULL
);
CREATE UNIQUE INDEX UX_ManagedClusters_Name ON ManagedClusters (Name);
CREATE TABLE ManagedClusterNodes (
    ClusterId VARCHAR(50) NOT NULL,
    Position INTEGER NOT NULL,
    Name VARCHAR(64) NOT NULL,
    Url VARCHAR(400) NOT NULL,
    CommsAddress VARCHAR(255) NULL,
    CommsPort INTEGER NULL,
    OctopusNodeId VARCHAR(100) NULL,
    PRIMARY KEY (ClusterId, Name)
);
-- Polling Tentacles registered against every node of a managed cluster.
CREATE TABLE ManagedTentacles (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    ClusterId VARCHAR(50) NOT NULL,
    Name VARCHAR(200) NOT NULL,
    Thumbprint VARCHAR(40) NOT NULL,
    SubscriptionId VARCHAR(120) NOT NULL,
    RegisteredAt BIGINT NOT NULL,
    RegisteredBy VARCHAR(200) NOT NULL,
    ServersVersion INTEGER NOT NULL,
    NeedsReRegistration INTEGER NOT NULL,
    MachineId VARCHAR(100) NULL,
    HealthStatus VARCHAR(40) NULL,
    CheckedAt BIGINT NULL,
    CheckDetail VARCHAR(400) NULL
);
CREATE UNIQUE INDEX UX_ManagedTentacles_Name ON ManagedTentacles (ClusterId, Name);

-- Rolling maintenance: a run over the nodes of the local cluster ('local') or
-- of a managed one, node by node, each step kept here so that the task that
-- drives it resumes where it was after its node dies.  DriverAttempt fences
-- the writes of a driver whose task was taken over.
CREATE TABLE MaintenanceRuns (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    ClusterId VARCHAR(50) NOT NULL,
    TaskId VARCHAR(64) NOT NULL,
    State VARCHAR(20) NOT NULL,
    Reason VARCHAR(400) NOT NULL,
    MinOnlineNodes INTEGER NOT NULL,
    DrainDeadlineSeconds INTEGER NOT NULL,
    DeadlineAction VARCHAR(20) NOT NULL,
    SettleSeconds INTEGER NOT NULL,
    BalancerDelaySeconds INTEGER NOT NULL,
    UndrainOnAbort INTEGER NOT NULL,
    AbortRequested INTEGER NOT NULL,
    CurrentStep INTEGER NOT NULL,
    DriverAttempt INTEGER NOT NULL,
    RequestedBy VARCHAR(200) NOT NULL,
    CreatedAt BIGINT NOT NULL,
    StartedAt BIGINT NULL,
    EndedAt BIGINT NULL,
    Message VARCHAR(1000) NULL
);
CREATE INDEX IX_MaintenanceRuns_Cluster ON MaintenanceRuns (ClusterId, State);
CREATE TABLE MaintenanceSteps (
    RunId VARCHAR(50) NOT NULL,
    Position INTEGER NOT NULL,
    NodeKey VARCHAR(100) NOT NULL,
    NodeName VARCHAR(100) NOT NULL,
    State VARCHAR(30) NOT NULL,
    DrainTaskId VARCHAR(64) NULL,
    UndrainTaskId VARCHAR(64) NULL,
    BaselineStartedAt BIGINT NULL,
    PingLost INTEGER NOT NULL,
    ContinueRequested INTEGER NOT NULL,
    DrainRequestedAt BIGINT NULL,
    DrainedAt BIGINT NULL,
    ReadyAt BIGINT NULL,
    RestartedAt BIGINT NULL,
    UndrainRequestedAt BIGINT NULL,
    OnlineAt BIGINT NULL,
    DoneAt BIGINT NULL,
    Message VARCHAR(1000) NULL,
    PRIMARY KEY (RunId, Position)
);
-- One run at a time per cluster: starting one takes this row's lock.
INSERT INTO ClusterLocks (Name, Period) VALUES ('maintenance', 0);
