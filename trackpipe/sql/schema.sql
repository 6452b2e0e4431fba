-- trackpipe ClickHouse schema.  `{db}` is replaced by the configured database.
-- Statements are separated by a line holding only ';'.
CREATE DATABASE IF NOT EXISTS {db}
;
-- Every position a device reported.  A resent point (same device, same fix time)
-- collapses into one row: ReplacingMergeTree keeps the latest server_time.
-- Query with FINAL (or argMax) for exact counts before background merges.
-- Partitioned by YEAR of the fix time: a resent point always lands in the partition of
-- its first copy (so it collapses), and as the position filters bound fix times to
-- 2000 .. receipt + 1 day (streams/quality.py), one INSERT touches at most ~28
-- partitions, far below ClickHouse's 100 per INSERT, whatever a device's clock says.
-- (A block refused anyway -- filters relaxed, or a table made with an older schema --
-- is split by the worker until it fits.)
-- Retention: TRACKPIPE_TTL_* (days after server_time; default keep forever) is applied
-- by `ALTER TABLE ... MODIFY TTL` at start (trackpipe/store.py apply_ttls), here as on a server.
CREATE TABLE IF NOT EXISTS {db}.positions
(
    device_id     String,
    protocol      LowCardinality(String),
    fix_time      DateTime64(3, 'UTC'),
    server_time   DateTime64(3, 'UTC'),
    valid         Bool,
    latitude      Float64,
    longitude     Float64,
    altitude      Nullable(Float64),
    speed         Nullable(Float64),           -- km/h
    course        Nullable(Float64),           -- degrees
    satellites    Nullable(UInt16),
    archive       Bool,                        -- buffered point uploaded late
    alarms        Array(LowCardinality(String)),
    battery_level Nullable(Float64),           -- percent
    battery       Nullable(Float64),           -- volts
    power         Nullable(Float64),           -- volts
    ignition      Nullable(Bool),
    odometer      Nullable(Float64),           -- metres
    device_name   String,
    account       String,
    registered    Bool,
    attributes    Map(String, String),
    transport     LowCardinality(String),
    edge_id       LowCardinality(String),
    connection_id String
)
ENGINE = ReplacingMergeTree(server_time)
PARTITION BY toYear(fix_time)
ORDER BY (device_id, fix_time)
;
-- One row per alarm a device reported, or event derived from its positions (streams/rules.py).
-- Partitioned like positions; `time` is the receive time when the fix time is impossible.
CREATE TABLE IF NOT EXISTS {db}.events
(
    device_id   String,
    protocol    LowCardinality(String),
    time        DateTime64(3, 'UTC'),          -- fix time, else receive time
    server_time DateTime64(3, 'UTC'),
    type        LowCardinality(String),        -- 'alarm' for device-reported alarms
    alarm       LowCardinality(String),        -- normalized: sos, lowBattery, tampering ...
    latitude    Nullable(Float64),
    longitude   Nullable(Float64),
    archive     Bool,
    device_name String,
    account     String,
    registered  Bool,
    attributes  Map(String, String),
    key         String                         -- tells events of one type at one time apart: geofence id, else ''
)
ENGINE = ReplacingMergeTree(server_time)
PARTITION BY toYear(time)
ORDER BY (device_id, time, type, alarm, key)
;
-- A store made before `key`: the column is added and put in the sorting key in one statement
-- (ClickHouse allows that only for a column added by the same ALTER, without an explicit
-- DEFAULT: a String's implicit '' it is).  Rerun on an upgraded store it changes nothing.
ALTER TABLE {db}.events
    ADD COLUMN IF NOT EXISTS key String,
    MODIFY ORDER BY (device_id, time, type, alarm, key)
;
-- Frames that could not be used, with the reason and the raw bytes.  `time` is the
-- receive time (the edge's clock).  Kept 30 days by default (TRACKPIPE_TTL_DEADLETTER).
CREATE TABLE IF NOT EXISTS {db}.deadletter
(
    time          DateTime64(3, 'UTC'),
    reason        LowCardinality(String),
    detail        String,
    stage         LowCardinality(String),      -- edge | decode | filter (position quality) | store (refused row)
    protocol      LowCardinality(String),
    transport     LowCardinality(String),
    peer          String,                      -- host:port of the sender
    local_port    UInt16,
    device_id     String,
    edge_id       LowCardinality(String),
    connection_id String,
    raw           String                       -- the bytes as received (binary-safe)
)
-- at least once: a frame delivered again (edge spool replay, worker restart) can give its letter twice
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (time)
;
-- Every frame the worker consumed from tracker.raw, exactly as the device sent it: history that
-- outlives Kafka's retention, and what `trackpipe replay` re-decodes after a decoder fix.
-- `device_id` is the device the frame's rows went to ('' when no decode found one); a frame
-- delivered again (edge spool replay, worker restart) collapses on (connection_id, seq).
-- Kept TRACKPIPE_TTL_RAW_FRAMES days (default 365) after receipt; frames are ZSTD-compressed.
CREATE TABLE IF NOT EXISTS {db}.raw_frames
(
    received_at   DateTime64(3, 'UTC'),
    device_id     String,
    protocol      LowCardinality(String),
    kind          LowCardinality(String),      -- the edge's view: login, heartbeat, position ...
    transport     LowCardinality(String),
    peer_host     String,
    peer_port     UInt16,
    local_port    UInt16,
    edge_id       LowCardinality(String),
    connection_id String,
    seq           UInt64,                      -- frame number within the connection (UDP: the edge's socket)
    frame         String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (device_id, received_at, connection_id, seq)
;
-- Last contact and last reported status of every device, heartbeats included.
CREATE TABLE IF NOT EXISTS {db}.device_status
(
    device_id     String,
    protocol      LowCardinality(String),
    last_seen     DateTime64(3, 'UTC'),
    kind          LowCardinality(String),      -- kind of the last frame: heartbeat, position ...
    transport     LowCardinality(String),
    peer          String,
    battery_level Nullable(Float64),
    power         Nullable(Float64),
    ignition      Nullable(Bool),
    device_name   String,
    account       String,
    registered    Bool
)
ENGINE = ReplacingMergeTree(last_seen)
ORDER BY device_id
;
-- Latest position per device.  argMax over fix_time: a late (archive) point,
-- whose fix time is older, can never move a device's latest position backwards.
CREATE TABLE IF NOT EXISTS {db}.latest_positions_state
(
    device_id   String,
    last_fix    AggregateFunction(max, DateTime64(3, 'UTC')),
    latitude    AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
    longitude   AggregateFunction(argMax, Float64, DateTime64(3, 'UTC')),
    speed       AggregateFunction(argMax, Nullable(Float64), DateTime64(3, 'UTC')),
    course      AggregateFunction(argMax, Nullable(Float64), DateTime64(3, 'UTC')),
    valid       AggregateFunction(argMax, Bool, DateTime64(3, 'UTC')),
    server_time AggregateFunction(argMax, DateTime64(3, 'UTC'), DateTime64(3, 'UTC')),
    protocol    AggregateFunction(argMax, LowCardinality(String), DateTime64(3, 'UTC')),
    device_name AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    account     AggregateFunction(argMax, String, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY device_id
;
-- A store made before device_name/account were kept: the columns are added (rows from
-- before hold an empty state, which merges as '' until the device's next point).
ALTER TABLE {db}.latest_positions_state
    ADD COLUMN IF NOT EXISTS device_name AggregateFunction(argMax, String, DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS account AggregateFunction(argMax, String, DateTime64(3, 'UTC'))
;
-- The view feeding the state (v2: with device_name and account).  It is created under a
-- new name BEFORE the old view is dropped, so no INSERT into positions goes unseen while a
-- store is upgraded; for the moment both feed the state, max/argMax states merge the same.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.latest_positions_mv_v2 TO {db}.latest_positions_state AS
SELECT
    device_id,
    maxState(fix_time) AS last_fix,
    argMaxState(latitude, fix_time) AS latitude,
    argMaxState(longitude, fix_time) AS longitude,
    argMaxState(speed, fix_time) AS speed,
    argMaxState(course, fix_time) AS course,
    argMaxState(valid, fix_time) AS valid,
    argMaxState(server_time, fix_time) AS server_time,
    argMaxState(protocol, fix_time) AS protocol,
    argMaxState(device_name, fix_time) AS device_name,
    argMaxState(account, fix_time) AS account
FROM {db}.positions
GROUP BY device_id
;
DROP VIEW IF EXISTS {db}.latest_positions_mv
;
CREATE OR REPLACE VIEW {db}.latest_positions AS
SELECT
    device_id,
    maxMerge(last_fix) AS fix_time,
    argMaxMerge(latitude) AS latitude,
    argMaxMerge(longitude) AS longitude,
    argMaxMerge(speed) AS speed,
    argMaxMerge(course) AS course,
    argMaxMerge(valid) AS valid,
    argMaxMerge(server_time) AS server_time,
    argMaxMerge(protocol) AS protocol,
    argMaxMerge(device_name) AS device_name,
    argMaxMerge(account) AS account
FROM {db}.latest_positions_state
GROUP BY device_id
