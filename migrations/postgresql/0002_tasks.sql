-- The task queue shared by every node, drain bookkeeping on nodes, and the
-- per-period slots that let exactly one node run cluster housekeeping.
CREATE TABLE ServerTasks (
    Id VARCHAR(50) NOT NULL PRIMARY KEY,
    Name VARCHAR(50) NOT NULL,
    Description VARCHAR(400) NOT NULL,
    Arguments TEXT NOT NULL,
    State VARCHAR(20) NOT NULL,
    IsSystem SMALLINT NOT NULL DEFAULT 0,
    TargetNodeId VARCHAR(100) NULL,
    ServerNodeId VARCHAR(100) NULL,
    LeaseOwner VARCHAR(64) NULL,
    LeaseExpiresAt BIGINT NULL,
    Attempt INTEGER NOT NULL DEFAULT 0,
    MaxAttempts INTEGER NOT NULL,
    NextRunAt BIGINT NOT NULL,
    QueueTime BIGINT NOT NULL,
    StartTime BIGINT NULL,
    LastUpdatedTime BIGINT NOT NULL,
    CompletedTime BIGINT NULL,
    ErrorMessage VARCHAR(2000) NULL,
    Progress INTEGER NOT NULL DEFAULT 0,
    ProgressMessage VARCHAR(400) NULL,
    Result TEXT NULL,
    IdempotencyKey VARCHAR(200) NULL,
    RequestedBy VARCHAR(200) NULL
);
-- Serves the claim: equality on State and IsSystem, then NextRunAt in order,
-- so LIMIT stops after the first rows however long the queue is.
CREATE INDEX IX_ServerTasks_Claim ON ServerTasks (State, IsSystem, NextRunAt, QueueTime);
CREATE INDEX IX_ServerTasks_Lease ON ServerTasks (LeaseOwner);
CREATE INDEX IX_ServerTasks_Node ON ServerTasks (ServerNodeId, State);
CREATE UNIQUE INDEX UX_ServerTasks_Idempotency ON ServerTasks (IdempotencyKey)
    WHERE IdempotencyKey IS NOT NULL;

ALTER TABLE OctopusServerNodes ADD COLUMN DrainReason VARCHAR(400) NULL;
ALTER TABLE OctopusServerNodes ADD COLUMN DrainRequestedBy VARCHAR(200) NULL;
ALTER TABLE OctopusServerNodes ADD COLUMN DrainRequestedAt BIGINT NULL;
ALTER TABLE OctopusServerNodes ADD COLUMN DrainTaskId VARCHAR(50) NULL;

CREATE TABLE ClusterLocks (
    Name VARCHAR(100) NOT NULL PRIMARY KEY,
    Period BIGINT NOT NULL
);
INSERT INTO ClusterLocks (Name, Period) VALUES ('housekeeping', 0);
INSERT INTO ClusterLocks (Name, Period) VALUES ('retention', 0);
