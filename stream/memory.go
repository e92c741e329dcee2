package stream

// memoryPlan is how the runtime splits Config.MemoryBudget between the buffers it sizes. The
// shares of a budget B are:
//
//   - fetch: B/12, as at most two fetches (MaxConcurrentFetches) of FetchMaxBytes = B/24 each,
//     capped at 16MiB (more does not make a 2-core instance faster) and at least the
//     partition fetch size. franz-go counts a fetch until every record of it has been polled, so
//     the client holds no more than this when the poll loop stops polling: that is the
//     backpressure, a cycle polls at most its record budget (cycleBudget) and waits at its barrier
//     for the tasks before it polls again.
//   - producer: B/8 of buffered records (MaxBufferedBytes); a produce past it blocks its task until
//     the brokers acknowledge earlier batches, which holds the cycle at its barrier and so pauses
//     fetching too. At least two batches, so that a record of MaxRecordBytes always fits.
//   - block cache: B/12 (StateCacheBytes, unless set).
//   - record cache: B/24 (RecordCacheBytes, unless set).
//   - memtables: B/6, split between the source's partitions: each task's database keeps at most
//     four memtables (Pebble's MemTableStopWritesThreshold), each of B/6/4/partitions, between
//     256KiB and 4MiB.
//
// The other half is left to what the runtime does not size up front: the Go runtime and GC
// headroom, the records of the open cycle (polled, decoded, and their outputs in the tasks'
// outboxes), Pebble's write caches and the operators' own state (models). At the default budget,
// 384MiB, the parts come out as the fixed sizes streamd had before the budget (16MiB fetches,
// 32MiB block cache, 16MiB record cache, 4MiB memtables up to 16 partitions), and the whole fits a
// 512MiB pod limit with room for the Go runtime's overshoot under GOMEMLIMIT.
type memoryPlan struct {
	fetchMaxBytes     int32
	concurrentFetches int
	producerBytes     int
	memTableBytes     uint64
}

// maxFetchBytes caps the fetch share: franz-go's 50MB default is most of a small instance's
// memory, and 16MiB per fetch keeps a 2-core machine busy.
const maxFetchBytes = 16 << 20

func (c *Config) memoryPlan(partitions int32) memoryPlan {
	b := c.MemoryBudget
	partBytes := int64(c.fetchMaxPartitionBytes())
	return memoryPlan{
		fetchMaxBytes:     int32(max(min(b/24, maxFetchBytes), partBytes)),
		concurrentFetches: 2,
		producerBytes:     int(max(b/8, 2*int64(c.producerBatchMaxBytes()))),
		memTableBytes:     uint64(min(max(b/6/4/int64(max(partitions, 1)), 256<<10), 4<<20)),
	}
}

// fetchMaxPartitionBytes is the most the runtime fetches of one partition at a time: enough for
// its largest record.
func (c *Config) fetchMaxPartitionBytes() int32 {
	return int32(max(c.MaxRecordBytes+64<<10, 1<<20))
}

// producerBatchMaxBytes bounds the record batches the producer builds per partition. A broker
// refuses a batch larger than the topic's max.message.bytes (1048588 by default) with
// MESSAGE_TOO_LARGE, which fails the cycle, so at the default MaxRecordBytes batches stay at
// franz-go's default, under that limit, however many small records a busy cycle produces. A
// pipeline that raises MaxRecordBytes past 1MiB gets batches that fit its largest record; its
// topics need a max.message.bytes to match (docs/config.md says so).
func (c *Config) producerBatchMaxBytes() int32 {
	const brokerSafe = 1_000_012 // franz-go's default
	if c.MaxRecordBytes <= 1<<20 {
		return brokerSafe
	}
	return int32(c.MaxRecordBytes + 64<<10)
}
