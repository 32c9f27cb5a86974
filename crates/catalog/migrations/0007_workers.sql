-- Distributed runs (`strata migrate --queue`, `strata worker`).
--
-- `workers`: each worker process announces itself here and refreshes its row every few
-- seconds (`heartbeat_at`), so `strata status` shows who works on what. A row whose
-- heartbeat is old belongs to a worker that stopped without saying so (killed, node lost).
-- `bandwidth_cap` and `throughput` are bytes per second (NULL cap: none); `job_id` and
-- `task` describe the task the worker holds (NULL: idle). No foreign key on `job_id`: a
-- worker's row outlives the jobs it ran.
CREATE TABLE workers (
    id            TEXT    NOT NULL PRIMARY KEY,
    host          TEXT    NOT NULL,
    pid           INTEGER NOT NULL,
    cores         INTEGER NOT NULL CHECK (cores >= 0),
    bandwidth_cap INTEGER CHECK (bandwidth_cap IS NULL OR bandwidth_cap >= 0),
    throughput    INTEGER NOT NULL CHECK (throughput >= 0),
    bytes_done    INTEGER NOT NULL CHECK (bytes_done >= 0),
    tasks_done    INTEGER NOT NULL CHECK (tasks_done >= 0),
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL,
    job_id        INTEGER,
    task          TEXT
);

-- Who finishes a distributed job (writes its dataset manifest): claimed, in one
-- transaction, by the first task that finds none of the job's files pending. `run` names
-- the `strata migrate --queue` invocation that published the tasks, so a later run of the
-- same job can be finished again; `task` lets a redelivery of the claiming task (its worker
-- died before the manifest was written) take the claim over.
CREATE TABLE job_finishers (
    job_id     INTEGER NOT NULL PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    run        TEXT    NOT NULL,
    task       TEXT    NOT NULL,
    worker     TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL
);
