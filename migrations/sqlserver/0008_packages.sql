-- The built-in package repository (one row per package version, written
-- only once its file is in the Packages folder) and the cluster's
-- InstallationId, which the root document reports and which stays the same
-- for the life of the database (SQL Server 2019+).
CREATE TABLE dbo.Packages (
    Id NVARCHAR(250) NOT NULL CONSTRAINT PK_Packages PRIMARY KEY CLUSTERED,
    SpaceId NVARCHAR(50) NOT NULL,
    PackageId NVARCHAR(100) NOT NULL,
    -- PackageId in lower case: package ids are case-insensitive.
    PackageKey NVARCHAR(100) NOT NULL,
    Version NVARCHAR(100) NOT NULL,
    -- The version's precedence as a string of digits, so every collation
    -- orders it the same way (SemVer / NuGet precedence).  VARCHAR: digits
    -- only, and a unique key on it must stay under 1,700 bytes.
    VersionSort VARCHAR(1000) NOT NULL,
    FileExtension NVARCHAR(20) NOT NULL,
    -- Where the file is, relative to the Packages folder.
    FileName NVARCHAR(400) NOT NULL,
    PackageSizeBytes BIGINT NOT NULL,
    Hash CHAR(40) NOT NULL,
    Sha256 CHAR(64) NOT NULL,
    Published BIGINT NOT NULL,
    PublishedBy NVARCHAR(200) NULL,
    Title NVARCHAR(400) NULL,
    Summary NVARCHAR(4000) NULL,
    Description NVARCHAR(4000) NULL,
    ReleaseNotes NVARCHAR(4000) NULL,
    CONSTRAINT UQ_Packages_Version UNIQUE (SpaceId, PackageKey, VersionSort)
);
GO
CREATE INDEX IX_Packages_FileName ON dbo.Packages (FileName);
GO

INSERT INTO dbo.ClusterSettings (Name, Value)
VALUES (N'InstallationId', LOWER(CONVERT(NVARCHAR(36), NEWID())));
GO

-- Package retention is queued by one node per period: its slot.
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'package-retention', 0);
GO
