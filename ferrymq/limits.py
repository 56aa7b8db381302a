"""Every bound FerryMQ enforces, in one place, with the relations between them asserted.

Units are at the end of each name. Defaults follow RabbitMQ 3.x where a client can observe them.
"""

from __future__ import annotations

# --- AMQP 0-9-1 connection tuning (RabbitMQ defaults) ---
FRAME_MAX_BYTES = 131_072  # proposed in connection.tune
FRAME_MIN_BYTES = 4_096  # the spec's floor for frame_max
CHANNEL_MAX = 2_047  # proposed in connection.tune
HEARTBEAT_S = 60  # proposed in connection.tune
HANDSHAKE_TIMEOUT_MS = 10_000  # a peer that never finishes the handshake is dropped
TLS_HANDSHAKE_TIMEOUT_MS = 10_000  # a TLS client that never finishes its handshake is dropped
FRAME_OVERHEAD_BYTES = 8  # type(1) + channel(2) + size(4) + end(1)

# --- messages ---
MESSAGE_MAX_BYTES = 128 * 1024 * 1024  # RabbitMQ's default max_message_size (128 MiB)
SHORTSTR_MAX_BYTES = 255
QUEUE_NAME_MAX_BYTES = 255
TOPIC_WORDS_MAX = 255  # bound on words in a topic routing key or pattern
HEADERS_DEPTH_MAX = 16  # nesting bound when decoding field tables

# --- queues ---
PRIORITY_MAX = 255  # x-max-priority upper bound
PREFETCH_MAX = 65_535  # basic.qos prefetch_count is a short
CONSUMER_TIMEOUT_DEFAULT_MS = 30 * 60 * 1000  # RabbitMQ 3.8.15+: 30 minutes
CONSUMER_TIMEOUT_CHECK_MS = 1_000  # unacked deliveries are checked this often, not per event
DEDUP_WINDOW_MS = 5 * 60 * 1000  # SQS's deduplication window
DELIVERY_LIMIT_MAX = 2**31 - 1
# Per-delivery leases (FerryMQ extension, ferrymq.core.lease): x-delivery-lease and x-lease-ms
# are at most a week; a channel remembers this many taken-back tags so a late ack is ignored (at
# least a whole prefetch window of them; a few MB at worst, for a channel that never settles them).
DELIVERY_LEASE_MAX_MS = 7 * 24 * 60 * 60 * 1000
LEASE_LATE_TAGS_MAX = 65_536

# Queued message bodies above this raise the memory alarm: publishers get connection.blocked.
MEMORY_HIGH_WATERMARK_BYTES = 1024 * 1024 * 1024
# Free disk below this raises the disk alarm (RabbitMQ's default disk_free_limit is 50 MB).
DISK_FREE_LIMIT_BYTES = 50_000_000

# --- server I/O ---
READ_CHUNK_BYTES = 256 * 1024
OUTPUT_HIGH_WATER_BYTES = 4 * 1024 * 1024  # pause delivering to a consumer connection above this
OUTPUT_LOW_WATER_BYTES = 1 * 1024 * 1024
# Flow control: a consumed queue with more ready messages than this stops publishers' reads
# until it drains below the low mark (or the pause times out, so a stuck consumer cannot
# stall publishers forever). RabbitMQ's credit flow plays the same role.
FLOW_READY_HIGH = 1_000
FLOW_READY_LOW = 500
FLOW_PAUSE_MAX_MS = 50
# Paging: a durable queue keeps at most this many ready messages (and bytes) in memory; the rest of
# its backlog stays in its log and is read back a batch at a time as the head drains.
PAGE_WINDOW_MESSAGES = 4_096
PAGE_WINDOW_BYTES = 16 * 1024 * 1024
PAGE_BATCH_MESSAGES = 1_024
PAGE_BATCH_BYTES = 4 * 1024 * 1024
INPUT_BUFFER_MAX_BYTES = FRAME_MAX_BYTES + FRAME_OVERHEAD_BYTES  # incomplete input beyond this is an error

# --- relations ---
assert FRAME_MIN_BYTES <= FRAME_MAX_BYTES
assert INPUT_BUFFER_MAX_BYTES > FRAME_MAX_BYTES
assert OUTPUT_LOW_WATER_BYTES < OUTPUT_HIGH_WATER_BYTES
assert FLOW_READY_LOW < FLOW_READY_HIGH
assert PAGE_BATCH_MESSAGES <= PAGE_WINDOW_MESSAGES and PAGE_BATCH_BYTES <= PAGE_WINDOW_BYTES
assert 1 <= PRIORITY_MAX <= 255
assert DELIVERY_LEASE_MAX_MS < 2**63 and LEASE_LATE_TAGS_MAX >= PREFETCH_MAX
assert CHANNEL_MAX <= 65_535

# --- Kafka (names and defaults from Apache Kafka's broker configs) ---
KAFKA_REQUEST_MAX_BYTES = 100 * 1024 * 1024  # socket.request.max.bytes
KAFKA_MESSAGE_MAX_BYTES = 1_048_588  # message.max.bytes: the largest record batch a topic accepts
KAFKA_NUM_PARTITIONS_DEFAULT = 1  # num.partitions, for auto-created topics
KAFKA_FETCH_MAX_WAIT_MS = 30_000  # a long-polling fetch is answered at the latest after this
KAFKA_SEGMENT_BYTES_MIN = 14  # segment.bytes floor (Kafka's); below it every batch would roll
KAFKA_RETENTION_CHECK_MS = 5 * 60 * 1000  # log.retention.check.interval.ms
KAFKA_CLEANER_BACKOFF_MS = 15_000  # log.cleaner.backoff.ms: the cleaner's pause when nothing is left
# log.cleaner.dedupe.buffer.size: the compaction offset map's memory bound. Kafka's default is 128 MiB
# shared by its cleaner threads at 24 bytes a key; ours costs 160 bytes a key (a dict of digests,
# ferrymq.storage.stream_compact), so 64 MiB holds about 420,000 keys a pass.
KAFKA_CLEANER_DEDUPE_BUFFER_BYTES = 64 * 1024 * 1024
KAFKA_GROUP_TICK_MS = 100  # group session timeouts are checked at least this often
assert KAFKA_MESSAGE_MAX_BYTES < KAFKA_REQUEST_MAX_BYTES

# --- HTTP plane ----------------------------------------------------------------------------------
HTTP_BODY_MAX_BYTES = 20 * 1024 * 1024  # RabbitMQ's management.http_max_body_size default (20 MiB)
HTTP_PAGE_SIZE_MAX = 500  # RabbitMQ refuses page_size above 500
HTTP_LIVE_INTERVAL_MS = 1_000  # the dashboard's live stream pushes a snapshot this often
HTTP_ADMIN_TIMEOUT_S = 10.0  # `ferrymq queues|status|...`: a broker silent this long counts as unreachable
HTTP_LIVE_QUEUE_ROWS_MAX = 200  # the live stream sends the deepest queues only (totals cover all)
HTTP_LIVE_HISTORY_POINTS = 300  # samples the dashboard keeps for its charts (5 minutes at 1 s)
DLQ_PEEK_MAX = 100  # messages one dead-letter peek may show
DLQ_PREVIEW_BYTES = 1_024  # body bytes a peek shows of each message
DLQ_REPLAY_MAX = 10_000  # dead letters one replay request moves (the loop must not stall)

# --- metrics and traces (ferrymq.core.stats, ferrymq.core.trace, ferrymq.http.metrics) ----------
TIME_IN_QUEUE_BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
                            60_000, 300_000, 900_000, 3_600_000)
FSYNC_LATENCY_BUCKETS_US = (100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
                            250_000, 500_000, 1_000_000)
# The time in queue is observed for one first delivery in 8 (entries whose seq is a multiple of 8):
# one observation costs ~200 ns, more than the rest of a delivery's bookkeeping.
TIME_IN_QUEUE_SAMPLE_MASK = 7
COMMIT_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # logs fsynced by one group commit
LOOP_LAG_BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1_000)
LOOP_LAG_PROBE_MS = 100  # the event-loop lag probe's period
METRICS_SCRAPE_YIELD_QUEUES = 1_000  # a scrape renders this many queues of one family per loop turn
TRACE_CAPACITY = 1_000  # sampled messages kept in the trace ring (oldest evicted)
TRACE_EVENTS_MAX = 64  # lifecycle events kept per traced message (a requeue loop cannot grow one)
TRACE_SAMPLE_EVERY_MAX = 2**31 - 1
assert tuple(sorted(TIME_IN_QUEUE_BUCKETS_MS)) == TIME_IN_QUEUE_BUCKETS_MS
assert tuple(sorted(FSYNC_LATENCY_BUCKETS_US)) == FSYNC_LATENCY_BUCKETS_US

# --- SQS (ferrymq.http.sqs): AWS's documented quotas --------------------------------------------
SQS_MESSAGE_MAX_BYTES = 1024 * 1024  # MaximumMessageSize's top and default (1 MiB since 2025)
SQS_BATCH_MAX_ENTRIES = 10
SQS_RECEIVE_MAX_MESSAGES = 10
SQS_WAIT_MAX_S = 20  # WaitTimeSeconds
SQS_VISIBILITY_MAX_S = 43_200  # 12 hours
SQS_DELAY_MAX_S = 900
SQS_LIST_MAX_RESULTS = 1000
SQS_INFLIGHT_MAX = 120_000  # in-flight messages per standard queue (AWS's quota); FIFO: 120,000 too
SQS_RECENT_DELETE_S = 60  # a deleted queue's name cannot be reused for this long
SQS_PURGE_INTERVAL_S = 60  # one PurgeQueue per queue per minute
SQS_FIRST_RECEIVE_MEMORY = 1_000_000  # first-receive stamps kept (oldest forgotten first)

# --- AWS Signature V4 (ferrymq.protocols.aws.sigv4) ----------------------------------------------
AWS_SIGNATURE_SKEW_MS = 15 * 60 * 1000  # a signed date further from the broker's clock is refused (AWS)
AWS_PRESIGN_EXPIRES_MAX_S = 7 * 24 * 60 * 60  # X-Amz-Expires bound: a SigV4 signing key lives 7 days

# --- SNS (ferrymq.http.sns): AWS's documented quotas --------------------------------------------
SNS_MESSAGE_MAX_BYTES = 256 * 1024  # Publish: message and attributes together
SNS_SUBJECT_MAX = 100  # characters
SNS_BATCH_MAX_ENTRIES = 10  # PublishBatch
SNS_LIST_PAGE = 100  # ListTopics / ListSubscriptions page size (AWS's)
SNS_FILTER_KEYS_MAX = 5  # keys in one filter policy
SNS_FILTER_COMBINATIONS_MAX = 150
SNS_FILTER_POLICY_MAX_BYTES = 256 * 1024
SNS_TAGS_MAX = 50
SNS_HTTP_TIMEOUT_S = 15  # one HTTP delivery attempt (AWS waits 15 s)
SNS_HTTP_RETRIES_MAX = 100  # numRetries' top (AWS's healthyRetryPolicy)
SNS_HTTP_DELAY_MAX_S = 3600  # maxDelayTarget's top
SNS_DEDUP_MEMORY = 1_000_000  # FIFO-topic deduplication ids remembered (oldest forgotten first)
SNS_HTTP_PENDING_MAX = 10_000  # HTTP deliveries waiting to retry; beyond it new ones are dropped
assert SNS_MESSAGE_MAX_BYTES <= SQS_MESSAGE_MAX_BYTES  # an SNS message fits any SQS queue's top

# --- limits that protect the broker (ferrymq.server.memory, ferrymq.core.vhost_limits) -----------
# The memory alarm by the process's RSS: RabbitMQ's vm_memory_high_watermark (relative 0.4 of the
# machine's memory by default, or an absolute amount), read from /proc/self/statm this often
# (RabbitMQ's memory_monitor_interval is 2.5 s).
MEMORY_WATERMARK_RELATIVE_DEFAULT = 0.4
MEMORY_WATERMARK_RELATIVE_MAX = 1.0
MEMORY_CHECK_INTERVAL_MS = 1_000
MEMORY_TOTAL_FALLBACK_BYTES = 1024 * 1024 * 1024  # where /proc/meminfo cannot be read
# Before connection.tune-ok a frame may be at most this big (RabbitMQ's initial_frame_max).
FRAME_MAX_BEFORE_TUNE_BYTES = FRAME_MIN_BYTES
# Kafka: a SASL exchange's frames before authentication completes (sasl.server.max.receive.size).
KAFKA_SASL_MAX_RECEIVE_BYTES = 524_288
# Kafka produce during a memory or disk alarm: stored, answered with this throttle_time_ms (quota style).
KAFKA_ALARM_THROTTLE_MS = 1_000
assert 0 < MEMORY_WATERMARK_RELATIVE_DEFAULT <= MEMORY_WATERMARK_RELATIVE_MAX
assert FRAME_MAX_BEFORE_TUNE_BYTES <= FRAME_MAX_BYTES
assert KAFKA_SASL_MAX_RECEIVE_BYTES < KAFKA_REQUEST_MAX_BYTES
# --- dashboard Jobs page (ferrymq.http.dashboard.jobs_view) --------------------------------------
HTTP_JOBS_ROWS_MAX = 200  # rows of one Jobs-page list (retry schedule, dead letters shown, workers)
# held delayed messages (per vhost) one look decodes: ~10-40 us each here, in slices of 300 between
# yields to the loop (jobs_view.YIELD_EVERY), so a look never stalls the loop more than ~12 ms
HTTP_JOBS_DELAYED_SCAN_MAX = 10_000
HTTP_JOBS_NEXT_RUNS = 3  # next runs shown per cron entry
