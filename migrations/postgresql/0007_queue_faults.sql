-- The token of a claim: after a COMMIT whose answer was lost, the node finds the
-- batch it holds by the token it chose before the transaction.
ALTER TABLE ServerTasks ADD COLUMN ClaimToken VARCHAR(40) NULL;
CREATE INDEX IX_ServerTasks_ClaimToken ON ServerTasks (ClaimToken);

-- Idempotency keys are bound to the caller, the operation and the request
-- (a fingerprint of path and body), and expire: they no longer live on the
-- task, where one key served every operation of every caller.
DROP INDEX UX_ServerTasks_Idempotency;
CREATE TABLE IdempotencyKeys (
    Caller VARCHAR(200) NOT NULL,
    IdemKey VARCHAR(200) NOT NULL,
    Operation VARCHAR(100) NOT NULL,
    Fingerprint CHAR(64) NOT NULL,
    ResourceId VARCHAR(100) NOT NULL,
    CreatedAt BIGINT NOT NULL,
    ExpiresAt BIGINT NOT NULL,
    PRIMARY KEY (Caller, IdemKey)
);
CREATE INDEX IX_IdempotencyKeys_Expires ON IdempotencyKeys (ExpiresAt);

-- Serialises the changes that must see every node as it is (the last node
-- still taking work cannot be drained or capped to 0 by two requests at once).
INSERT INTO ClusterLocks (Name, Period) VALUES ('nodes', 0);
