package stream

// SetMemoryProbe makes r's memory guard read the live heap from live and collect with collect,
// so that a test can put the runtime under memory pressure. Call it before Run.
func SetMemoryProbe(r *Runtime, live func() int64, collect func()) {
	r.memProbe, r.memCollect = live, collect
}
