-- API keys (only a hash of each key is kept), the audit log, webhook
-- subscriptions with their deliveries, and the chat replies that wait for a
-- task to end (SQL Server 2019+).
CREATE TABLE dbo.ApiKeys (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_ApiKeys PRIMARY KEY CLUSTERED,
    Name NVARCHAR(200) NOT NULL,
    Role NVARCHAR(20) NOT NULL,
    Prefix NVARCHAR(16) NOT NULL,
    KeyHash CHAR(64) NOT NULL,
    CreatedBy NVARCHAR(200) NOT NULL,
    CreatedAt BIGINT NOT NULL,
    LastUsedAt BIGINT NULL
);
GO
CREATE UNIQUE INDEX UX_ApiKeys_Hash ON dbo.ApiKeys (KeyHash);
GO

CREATE TABLE dbo.Events (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_Events PRIMARY KEY NONCLUSTERED,
    Occurred BIGINT NOT NULL,
    Category NVARCHAR(50) NOT NULL,
    Operation NVARCHAR(100) NOT NULL,
    ResourceId NVARCHAR(200) NULL,
    UserId NVARCHAR(50) NULL,
    Username NVARCHAR(200) NULL,
    RemoteAddress NVARCHAR(100) NULL,
    ForwardedFor NVARCHAR(200) NULL,
    Result NVARCHAR(20) NOT NULL,
    StatusCode INT NULL,
    Message NVARCHAR(1000) NOT NULL,
    Details NVARCHAR(MAX) NULL
);
GO
CREATE CLUSTERED INDEX IX_Events_Occurred ON dbo.Events (Occurred, Id);
GO

CREATE TABLE dbo.Subscriptions (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_Subscriptions PRIMARY KEY CLUSTERED,
    Name NVARCHAR(200) NOT NULL,
    Url NVARCHAR(2000) NOT NULL,
    EventTypes NVARCHAR(1000) NOT NULL,
    SecretSealed NVARCHAR(400) NOT NULL,
    CreatedBy NVARCHAR(200) NOT NULL,
    CreatedAt BIGINT NOT NULL
);
GO

CREATE TABLE dbo.WebhookDeliveries (
    Id NVARCHAR(50) NOT NULL CONSTRAINT PK_WebhookDeliveries PRIMARY KEY NONCLUSTERED,
    SubscriptionId NVARCHAR(50) NOT NULL,
    EventId NVARCHAR(50) NOT NULL,
    TaskId NVARCHAR(50) NOT NULL,
    Attempt INT NOT NULL,
    DeliveredAt BIGINT NOT NULL,
    StatusCode INT NULL,
    Succeeded BIT NOT NULL,
    DurationMs INT NOT NULL,
    Error NVARCHAR(1000) NULL
);
GO
CREATE CLUSTERED INDEX IX_WebhookDeliveries_Sub ON dbo.WebhookDeliveries (SubscriptionId, DeliveredAt);
GO

CREATE TABLE dbo.ChatReplies (
    TaskId NVARCHAR(50) NOT NULL CONSTRAINT PK_ChatReplies PRIMARY KEY CLUSTERED,
    ResponseUrl NVARCHAR(2000) NOT NULL,
    QueuedAt BIGINT NULL
);
GO

ALTER TABLE dbo.OctopusServerNodes ADD OfflineEventAt BIGINT NULL;
GO
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'archive', 0);
GO
