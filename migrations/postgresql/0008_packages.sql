-- The built-in package repository (one row per package version, written
-- only once its file is in the Packages folder) and the cluster's
-- InstallationId, which the root document reports and which stays the same
-- for the life of the database.
CREATE TABLE Packages (
    Id VARCHAR(250) NOT NULL PRIMARY KEY,
    SpaceId VARCHAR(50) NOT NULL,
    PackageId VARCHAR(100) NOT NULL,
    -- PackageId in lower case: package ids are case-insensitive.
    PackageKey VARCHAR(100) NOT NULL,
    Version VARCHAR(100) NOT NULL,
    -- The version's precedence as a string of digits, so every collation
    -- orders it the same way (SemVer / NuGet precedence).
    VersionSort VARCHAR(1000) NOT NULL,
    FileExtension VARCHAR(20) NOT NULL,
    -- Where the file is, relative to the Packages folder.
    FileName VARCHAR(400) NOT NULL,
    PackageSizeBytes BIGINT NOT NULL,
    Hash CHAR(40) NOT NULL,
    Sha256 CHAR(64) NOT NULL,
    Published BIGINT NOT NULL,
    PublishedBy VARCHAR(200) NULL,
    Title VARCHAR(400) NULL,
    Summary VARCHAR(4000) NULL,
    Description VARCHAR(4000) NULL,
    ReleaseNotes VARCHAR(4000) NULL,
    CONSTRAINT UQ_Packages_Version UNIQUE (SpaceId, PackageKey, VersionSort)
);
CREATE INDEX IX_Packages_FileName ON Packages (FileName);

INSERT INTO ClusterSettings (Name, Value)
VALUES ('InstallationId', CAST(gen_random_uuid() AS VARCHAR(36)));

-- Package retention is queued by one node per period: its slot.
INSERT INTO ClusterLocks (Name, Period) VALUES ('package-retention', 0);
