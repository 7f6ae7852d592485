-- The node registry and cluster-wide settings.
-- Times are milliseconds since the Unix epoch, always taken from the
-- database server's clock so node clocks never need to agree.
CREATE TABLE OctopusServerNodes (
    Id VARCHAR(100) NOT NULL PRIMARY KEY,
    Name VARCHAR(64) NOT NULL,
    InstanceId VARCHAR(64) NOT NULL,
    PublicUrl VARCHAR(400) NOT NULL,
    CommunicationsAddress VARCHAR(255) NOT NULL,
    CommunicationsPort INTEGER NOT NULL,
    MaxConcurrentTasks INTEGER NOT NULL,
    Platform VARCHAR(16) NOT NULL,
    Version VARCHAR(64) NOT NULL,
    IsInMaintenanceMode INTEGER NOT NULL DEFAULT 0,
    IsStopped INTEGER NOT NULL DEFAULT 0,
    StartedAt BIGINT NOT NULL,
    LastSeen BIGINT NOT NULL,
    CONSTRAINT UQ_OctopusServerNodes_Name UNIQUE (Name)
);

CREATE TABLE ClusterSettings (
    Name VARCHAR(100) NOT NULL PRIMARY KEY,
    Value VARCHAR(4000) NOT NULL
);
