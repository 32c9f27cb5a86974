-- Who finishes a file that several distributed tasks copied (the range tasks of one large
-- file, each copying some of its chunks on whichever worker took it): claimed, in one
-- transaction, by the first range task that finds every chunk of the file verified. The
-- claimer merges the chunk values into the file's hash, publishes the staged copy and
-- records the file done. `run` and `task` as in `job_finishers`: a redelivery of the
-- claiming task (its worker died before the file was published) takes the claim over, and
-- a later run of the job replaces it. References the job only: a plan replaced under it
-- drops its files, and the claim of a file of the old plan then names a run that is over.
CREATE TABLE file_finishers (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    file_index INTEGER NOT NULL CHECK (file_index >= 0),
    run        TEXT    NOT NULL,
    task       TEXT    NOT NULL,
    worker     TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, file_index)
);
