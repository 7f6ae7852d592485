-- The node registry and cluster-wide settings (SQL Server 2019+).
-- Times are milliseconds since the Unix epoch, always taken from the
-- database server's clock (SYSUTCDATETIME) so node clocks never need to agree.
CREATE TABLE dbo.OctopusServerNodes (
    Id NVARCHAR(100) NOT NULL CONSTRAINT PK_OctopusServerNodes PRIMARY KEY CLUSTERED,
    Name NVARCHAR(64) NOT NULL,
    InstanceId NVARCHAR(64) NOT NULL,
    PublicUrl NVARCHAR(400) NOT NULL,
    CommunicationsAddress NVARCHAR(255) NOT NULL,
    CommunicationsPort INT NOT NULL,
    MaxConcurrentTasks INT NOT NULL,
    Platform NVARCHAR(16) NOT NULL,
    Version NVARCHAR(64) NOT NULL,
    IsInMaintenanceMode BIT NOT NULL CONSTRAINT DF_OctopusServerNodes_Maint DEFAULT 0,
    IsStopped BIT NOT NULL CONSTRAINT DF_OctopusServerNodes_Stopped DEFAULT 0,
    StartedAt BIGINT NOT NULL,
    LastSeen BIGINT NOT NULL,
    CONSTRAINT UQ_OctopusServerNodes_Name UNIQUE (Name)
);
GO

CREATE TABLE dbo.ClusterSettings (
    Name NVARCHAR(100) NOT NULL CONSTRAINT PK_ClusterSettings PRIMARY KEY CLUSTERED,
    Value NVARCHAR(4000) NOT NULL
);
GO
