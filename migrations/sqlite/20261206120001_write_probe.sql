-- One row `/readyz` rewrites to learn whether the database takes a write (issue 22). A full
-- or read-only disk still answers reads, so a read alone would call the database ready while
-- every sign-in fails; while an outage is open, readiness also asks for this write, and the
-- outage is over once it succeeds. Nothing reads `probed_at`: it only changes, so that every
-- probe is a real write.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at BIGINT NOT NULL
);
INSERT INTO write_probe (id, probed_at) VALUES (1, 0);
