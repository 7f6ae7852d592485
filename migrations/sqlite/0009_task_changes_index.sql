-- The event stream reads the tasks whose state or progress changed since
-- its last read, in (LastUpdatedTime, Id) order: an index in that order
-- keeps the read to the changed rows however many tasks the table holds.
CREATE INDEX IX_ServerTasks_Updated ON ServerTasks (LastUpdatedTime, Id);
