package stream

import "testing"

// TestMemoryPlanFitsTheBudget: the parts the runtime sizes from MemoryBudget stay within half of
// it, for small and large budgets and partition counts, and the default budget reproduces the fixed
// sizes streamd had before the budget.
func TestMemoryPlanFitsTheBudget(t *testing.T) {
	for _, tc := range []struct {
		name       string
		budget     int64
		partitions int32
	}{
		{"minimum, one partition", 64 << 20, 1},
		{"default, four partitions", DefaultMemoryBudget, 4},
		{"default, 64 partitions", DefaultMemoryBudget, 64},
		{"large, 16 partitions", 4 << 30, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Brokers: []string{"b:9092"}, MemoryBudget: tc.budget}
			c.EnsureDefaults()
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			m := c.memoryPlan(tc.partitions)
			parts := int64(m.fetchMaxBytes)*int64(m.concurrentFetches) + int64(m.producerBytes) +
				c.StateCacheBytes + c.RecordCacheBytes + int64(m.memTableBytes)*4*int64(tc.partitions)
			if m.memTableBytes > 256<<10 && parts > tc.budget/2 {
				t.Errorf("parts take %d bytes, more than half of the budget %d: %+v", parts, tc.budget, m)
			}
			if int64(m.producerBytes) < 2*int64(c.producerBatchMaxBytes()) || m.fetchMaxBytes < c.fetchMaxPartitionBytes() {
				t.Errorf("buffers smaller than one batch or one partition's fetch: %+v", m)
			}
		})
	}
	c := Config{}
	c.EnsureDefaults()
	m := c.memoryPlan(4)
	if m.fetchMaxBytes != 16<<20 || m.memTableBytes != 4<<20 || c.StateCacheBytes != 32<<20 || c.RecordCacheBytes != 16<<20 {
		t.Errorf("default budget: fetch %d, memtable %d, block cache %d, record cache %d; want 16MiB, 4MiB, 32MiB, 16MiB",
			m.fetchMaxBytes, m.memTableBytes, c.StateCacheBytes, c.RecordCacheBytes)
	}
}

// TestValidateCachesWithinBudget: caches set larger than half of the budget are refused, naming
// the budget.
func TestValidateCachesWithinBudget(t *testing.T) {
	c := Config{Brokers: []string{"b:9092"}, MemoryBudget: 128 << 20, StateCacheBytes: 96 << 20}
	c.EnsureDefaults()
	err := c.Validate()
	if err == nil {
		t.Fatal("a 96MiB block cache in a 128MiB budget was accepted")
	}
	c = Config{Brokers: []string{"b:9092"}, MemoryBudget: 32 << 20}
	c.EnsureDefaults()
	if err := c.Validate(); err == nil {
		t.Fatal("a 32MiB budget was accepted")
	}
}
