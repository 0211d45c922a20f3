-- qbench: sequence numbers for every PostgreSQL design. A producer takes a block of
-- numbers from here before it sends a job, so every job of a queue has its own number
-- across producer processes, hosts and runs (a reset of the queue keeps the counter).
-- The audit checks jobs by these numbers.

CREATE TABLE IF NOT EXISTS qbench_seq (
    queue text   PRIMARY KEY,   -- the design's table
    next  bigint NOT NULL       -- the first number not yet handed out
);

\quit

-- name: allocate
-- $1 the queue, $2 how many; returns the first of the block. One row lock, held for the
-- statement only: producers queue here for microseconds, once per block.
INSERT INTO qbench_seq AS s (queue, next) VALUES ($1, 1 + $2::bigint)
ON CONFLICT (queue) DO UPDATE SET next = s.next + $2
RETURNING next - $2
