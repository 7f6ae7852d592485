-- API keys (only a hash of each key is kept), the audit log, webhook
-- subscriptions with their deliveries, and the chat replies that wait for a
-- task to end.
CREATE TABLE ApiKeys (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    Name VARCHAR(200) NOT NULL,
    Role VARCHAR(20) NOT NULL,
    Prefix VARCHAR(16) NOT NULL,
    KeyHash CHAR(64) NOT NULL,
    CreatedBy VARCHAR(200) NOT NULL,
    CreatedAt BIGINT NOT NULL,
    LastUsedAt BIGINT NULL
);
CREATE UNIQUE INDEX UX_ApiKeys_Hash ON ApiKeys (KeyHash);

CREATE TABLE Events (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    Occurred BIGINT NOT NULL,
    Category VARCHAR(50) NOT NULL,
    Operation VARCHAR(100) NOT NULL,
    ResourceId VARCHAR(200) NULL,
    UserId VARCHAR(50) NULL,
    Username VARCHAR(200) NULL,
    RemoteAddress VARCHAR(100) NULL,
    ForwardedFor VARCHAR(200) NULL,
    Result VARCHAR(20) NOT NULL,
    StatusCode INTEGER NULL,
    Message VARCHAR(1000) NOT NULL,
    Details TEXT NULL
);
CREATE INDEX IX_Events_Occurred ON Events (Occurred, Id);

CREATE TABLE Subscriptions (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    Name VARCHAR(200) NOT NULL,
    Url VARCHAR(2000) NOT NULL,
    EventTypes VARCHAR(1000) NOT NULL,
    SecretSealed VARCHAR(400) NOT NULL,
    CreatedBy VARCHAR(200) NOT NULL,
    CreatedAt BIGINT NOT NULL
);

CREATE TABLE WebhookDeliveries (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    SubscriptionId VARCHAR(50) NOT NULL,
    EventId VARCHAR(50) NOT NULL,
    TaskId VARCHAR(50) NOT NULL,
    Attempt INTEGER NOT NULL,
    DeliveredAt BIGINT NOT NULL,
    StatusCode INTEGER NULL,
    Succeeded INTEGER NOT NULL,
    DurationMs INTEGER NOT NULL,
    Error VARCHAR(1000) NULL
);
CREATE INDEX IX_WebhookDeliveries_Sub ON WebhookDeliveries (SubscriptionId, DeliveredAt);

CREATE TABLE ChatReplies (
    TaskId VARCHAR(50) NOT NULL PRIMARY KEY,
    ResponseUrl VARCHAR(2000) NOT NULL,
    QueuedAt BIGINT NULL
);

ALTER TABLE OctopusServerNodes ADD COLUMN OfflineEventAt BIGINT NULL;
INSERT INTO ClusterLocks (Name, Period) VALUES ('archive', 0);
