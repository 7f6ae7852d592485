-- The token of a claim: after a COMMIT whose answer was lost, the node finds the
-- batch it holds by the token it chose before the transaction.
ALTER TABLE dbo.ServerTasks ADD ClaimToken NVARCHAR(40) NULL;
GO
CREATE INDEX IX_ServerTasks_ClaimToken ON dbo.ServerTasks (ClaimToken);
GO
-- Idempotency keys are bound to the caller, the operation and the request
-- (a fingerprint of path and body), and expire: they no longer live on the
-- task, where one key served every operation of every caller.
DROP INDEX UX_ServerTasks_Idempotency ON dbo.ServerTasks;
GO
CREATE TABLE dbo.IdempotencyKeys (
    Caller NVARCHAR(200) NOT NULL,
    IdemKey NVARCHAR(200) NOT NULL,
    Operation NVARCHAR(100) NOT NULL,
    Fingerprint NCHAR(64) NOT NULL,
    ResourceId NVARCHAR(100) NOT NULL,
    CreatedAt BIGINT NOT NULL,
    ExpiresAt BIGINT NOT NULL,
    CONSTRAINT PK_IdempotencyKeys PRIMARY KEY CLUSTERED (Caller, IdemKey)
);
GO
CREATE INDEX IX_IdempotencyKeys_Expires ON dbo.IdempotencyKeys (ExpiresAt);
GO
-- Serialises the changes that must see every node as it is (the last node
-- still taking work cannot be drained or capped to 0 by two requests at once).
INSERT INTO dbo.ClusterLocks (Name, Period) VALUES (N'nodes', 0);
GO
